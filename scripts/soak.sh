#!/usr/bin/env bash
# A long run of the whole system on this machine, for memory: the daemon records a rendered
# match from its two video files (every frame goes through capture, stitch, the detector, the
# tracker and the buffer; on 2 cores the CPU detector makes ~80 s of match last ~30 minutes),
# heartbeats go to a Mosquitto broker, the uploader syncs to the cloud service and a ClickHouse
# server, all started here on 127.0.0.1. The daemon's RSS is sampled every 15 s; the run fails
# when it grows by 5 % or more from the first sample after warm-up (3 minutes) to the largest of
# the last 3 minutes.
#
#   bash scripts/soak.sh [MATCH_SECONDS] [MAX_MINUTES]    (defaults 80 and 40)
#
# Needs the release binaries (cargo build --release --workspace --bins) and the test set-up
# (bash scripts/setup.sh --test: mosquitto, clickhouse-server).
set -euo pipefail
cd "$(dirname "$0")/.."
MATCH_SECONDS=${1:-80}
MAX_MINUTES=${2:-40}
BIN=target/release
WORK=$(mktemp -d /tmp/polyvision-soak.XXXXXX)
echo "soak: working in $WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 300); do
    if curl -sf "$1" >/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "soak: $1 did not answer" >&2
  return 1
}

"$BIN/rig-sim" render --seconds "$MATCH_SECONDS" --out "$WORK/match" --quiet

CH_HTTP=$(free_port)
CH_TCP=$(free_port)
mkdir -p "$WORK/clickhouse"
/usr/sbin/clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
  --listen_host=127.0.0.1 --http_port="$CH_HTTP" --tcp_port="$CH_TCP" --interserver_http_port=0 \
  --path="$WORK/clickhouse/" --tmp_path="$WORK/clickhouse/tmp/" \
  --user_files_path="$WORK/clickhouse/user_files/" --format_schema_path="$WORK/clickhouse/fs/" \
  --users_config="$PWD/scripts/clickhouse-users.xml" \
  --logger.log="$WORK/clickhouse/server.log" --logger.errorlog="$WORK/clickhouse/err.log" \
  >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$CH_HTTP/ping"

API=$(free_port)
ADMIN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
echo "$ADMIN" >"$WORK/admin.token"
"$BIN/polyvision-cloud-api" --listen "127.0.0.1:$API" --clickhouse-url "http://127.0.0.1:$CH_HTTP" \
  --signing-key "$WORK/cloud-api.key" --admin-token-file "$WORK/admin.token" 2>"$WORK/cloud-api.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$API/readyz"

MQTT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT" >"$WORK/mosquitto.conf"
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" >/dev/null 2>&1 &
PIDS+=($!)

WEB=$(free_port)
cat >"$WORK/edge.toml" <<EOF
[calibration]
file = "match/truth/calibration.json"
[capture.left]
source = "match/camera-left.mkv"
[capture.right]
source = "match/camera-right.mkv"
[device]
serial = "PV-SOAK-1"
[detect]
model = "$PWD/models/polyvision-det.onnx"
[web]
listen = "127.0.0.1:$WEB"
technician_pin = "482913"
[storage]
database = "buffer.db"
min_free_mb = 64
[mqtt]
host = "127.0.0.1"
port = $MQTT
heartbeat_s = 10
[cloud]
endpoint = "http://127.0.0.1:$API"
key_file = "device.key"
poll_s = 5
EOF
PUBLIC=$("$BIN/polyvision-edge" device-key --config "$WORK/edge.toml" | awk '/^public_key:/ { print $2 }')
curl -sf -X POST "http://127.0.0.1:$API/v1/factory/devices" -H "Authorization: Bearer $ADMIN" \
  -H 'Content-Type: application/json' \
  -d "{\"serial\":\"PV-SOAK-1\",\"public_key\":\"$PUBLIC\",\"organization_id\":\"0190a1b2-0000-7000-8000-000000005a4c\"}" >/dev/null

"$BIN/polyvision-edge" run --config "$WORK/edge.toml" --start-match 2>"$WORK/daemon.log" &
DAEMON=$!
PIDS+=($DAEMON)
wait_http "http://127.0.0.1:$WEB/healthz"

echo "seconds,rss_kb,tracked_frames,unsynced_rows" >"$WORK/rss.csv"
START=$SECONDS
while kill -0 "$DAEMON" 2>/dev/null; do
  RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON/status" 2>/dev/null || echo 0)
  METRICS=$(curl -sf "http://127.0.0.1:$WEB/metrics" || true)
  FRAMES=$(echo "$METRICS" | awk '/^polyvision_stage_frames_total\{stage="track"\}/ { print $2 }')
  UNSYNCED=$(echo "$METRICS" | awk '/^polyvision_unsynced_rows / { print $2 }')
  echo "$((SECONDS - START)),$RSS,${FRAMES:-0},${UNSYNCED:-0}" >>"$WORK/rss.csv"
  RUNNING=$(echo "$METRICS" | awk '/^polyvision_match_running / { print $2 }')
  if { [ "${RUNNING:-1}" = "0" ] && ((SECONDS - START > 30)); } || ((SECONDS - START > MAX_MINUTES * 60)); then
    break
  fi
  sleep 15
done
ELAPSED=$((SECONDS - START))
kill -TERM "$DAEMON" 2>/dev/null || true
wait "$DAEMON" 2>/dev/null || true
sleep 6

STORED=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM positions").fetchone()[0])' "$WORK/buffer.db" 2>/dev/null || echo '?')
IN_CLOUD=$(curl -sf "http://127.0.0.1:$CH_HTTP/" --data-binary 'SELECT count() FROM polyvision.detections FINAL' || echo '?')
python3 - "$WORK/rss.csv" "$ELAPSED" "$STORED" "$IN_CLOUD" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]))]
samples = [(int(r["seconds"]), int(r["rss_kb"])) for r in rows if int(r["rss_kb"]) > 0]
elapsed = int(sys.argv[2])
warm = [kb for s, kb in samples if s >= 180]
if len(warm) < 4:
    sys.exit(f"soak: too short a run to judge ({elapsed} s)")
baseline = warm[0]
last = [kb for s, kb in samples if s >= samples[-1][0] - 180]
peak = max(last)
growth = (peak - baseline) / baseline * 100
frames = max(int(float(r["tracked_frames"] or 0)) for r in rows)
stored, in_cloud = sys.argv[3], sys.argv[4]
waiting = int(stored) - int(in_cloud) if stored.isdigit() and in_cloud.isdigit() else "?"
print(f"soak: {elapsed / 60:.1f} min, {frames} frames tracked, {stored} rows in the buffer, {in_cloud} in ClickHouse ({waiting} flushed at shutdown, sent at the next start)")
print(f"soak: daemon RSS {baseline / 1024:.1f} MB at 3 min, {peak / 1024:.1f} MB at most in the last 3 min: {growth:+.2f} % (limit +5 %); min {min(kb for _, kb in samples) / 1024:.1f} MB, max {max(kb for _, kb in samples) / 1024:.1f} MB over {len(samples)} samples")
sys.exit(0 if growth < 5 else 1)
PY
