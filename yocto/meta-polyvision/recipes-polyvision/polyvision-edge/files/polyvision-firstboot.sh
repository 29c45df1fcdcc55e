#!/bin/sh
# polyvision-firstboot CONFIG: make what a rig needs on its first boot, on the device itself.
# - the device's Ed25519 key pair (polyvision-edge device-key; prints serial and public key for
#   enrolment, see README "From the rig to ClickHouse");
# - a technician PIN when the config names a technician_pin_file that does not exist yet;
# - the TensorRT engine of the detector, built by the daemon's own code into [detect]
#   engine_cache (polyvision-edge prepare-detector; keyed by the model's sha256, the TensorRT
#   version and the GPU), so the first match does not wait minutes for it.
# Each step is skipped when its result exists, so a failed first boot can simply run again.
set -eu

CONFIG=${1:-/etc/polyvision/edge.toml}
STATE=${STATE_DIRECTORY:-/var/lib/polyvision}
EDGE=${POLYVISION_EDGE:-/usr/bin/polyvision-edge}

log() { echo "polyvision-firstboot: $*"; }

# A value of the config: the first `key = "value"` line (the files here are flat and simple).
config_value() {
    sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\(.*\)\"[[:space:]]*\$/\1/p" "$CONFIG" | head -n 1
}

"$EDGE" device-key --config "$CONFIG"

pin_file=$(config_value technician_pin_file)
if [ -n "$pin_file" ] && [ ! -e "$pin_file" ]; then
    pin=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ' | cut -c1-8)
    while [ ${#pin} -lt 8 ]; do pin="0$pin"; done
    (umask 077 && printf '%s\n' "$pin" > "$pin_file.tmp" && mv "$pin_file.tmp" "$pin_file")
    log "technician PIN: $pin (stored in $pin_file)"
fi

log "preparing the detector (a TensorRT engine build takes minutes)"
"$EDGE" prepare-detector "$CONFIG"

touch "$STATE/.firstboot-done"
log "done"
