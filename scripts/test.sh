#!/usr/bin/env bash
# The whole test suite: set-up, formatting, lints, unit and integration tests, docs, and a
# full-size simulator run with its speed figure. One release build serves the tests and the
# simulator run. Prints a summary line per group and a closing count of tests.
set -uo pipefail
cd "$(dirname "$0")/.."

declare -a SUMMARY=()
FAILED_GROUPS=0
LOG_DIR=${LOG_DIR:-target/test-logs}
mkdir -p "$LOG_DIR"

# run_group NAME COMMAND...: runs one group, shows its output, records ok/FAILED and time.
run_group() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== $name: $*"
  if "$@" 2>&1 | tee "$LOG_DIR/$name.log"; then
    SUMMARY+=("group $name: ok ($((SECONDS - start)) s)")
  else
    SUMMARY+=("group $name: FAILED ($((SECONDS - start)) s, log in $LOG_DIR/$name.log)")
    FAILED_GROUPS=$((FAILED_GROUPS + 1))
  fi
}

run_group setup bash scripts/setup.sh
run_group fmt cargo fmt --all -- --check
run_group clippy cargo clippy --workspace --all-targets --release --locked -- -D warnings
# The geometry test runs in its own group below, with its figures shown.
run_group tests cargo test --workspace --release --locked -- --skip true_homography_lands_where_the_renderer_draws
run_group docs env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --release --locked
# The geometry figures (renderer vs true homography), printed.
run_group geometry cargo test --release --locked -p rig-sim --test geometry -- --nocapture
# A full-size rendering: the default rig, 20 s at 1280×720 per camera.
SIM_OUT=$(mktemp -d)
run_group render bash -c "target/release/rig-sim render --seconds 20 --out '$SIM_OUT' --quiet && target/release/rig-sim describe '$SIM_OUT'"
rm -rf "$SIM_OUT"

read -r passed failed < <(cat "$LOG_DIR"/tests.log "$LOG_DIR"/geometry.log 2>/dev/null | awk '
  /^test result:/ { for (i = 1; i < NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
  END { print p + 0, f + 0 }')
echo
echo "=== summary"
printf '%s\n' "${SUMMARY[@]}"
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
if ((FAILED_GROUPS > 0)); then
  exit 1
fi
