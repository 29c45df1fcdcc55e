#!/bin/sh
# polyvision-firstboot CONFIG: make what a rig needs on its first boot, on the device itself.
# - the device's Ed25519 key pair (polyvision-edge device-key; prints serial and public key for
#   enrolment, see README "From the rig to ClickHouse");
# - a technician PIN when the config names a technician_pin_file that does not exist yet;
# - the TensorRT engine of the detector, cached under /var/lib/polyvision/engines/ by the
#   model's sha256 and the TensorRT version (trtexec from tensorrt-trtexec), when trtexec is
#   installed. The daemon's TensorRT backend is not written yet; until then the engine is
#   prepared for it and the daemon runs tract on the CPU.
# Each step is skipped when its result exists, so a failed first boot can simply run again.
set -eu

CONFIG=${1:-/etc/polyvision/edge.toml}
STATE=${STATE_DIRECTORY:-/var/lib/polyvision}
EDGE=${POLYVISION_EDGE:-/usr/bin/polyvision-edge}
TRTEXEC=${TRTEXEC:-/usr/src/tensorrt/bin/trtexec}

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

model=$(config_value model)
if [ -n "$model" ] && [ -x "$TRTEXEC" ]; then
    sum=$(sha256sum "$model" | cut -c1-16)
    trt=$("$TRTEXEC" --help 2>&1 | sed -n 's/.*TensorRT version: *\([0-9.]*\).*/\1/p' | head -n 1)
    mkdir -p "$STATE/engines"
    engine="$STATE/engines/$(basename "$model" .onnx)-$sum-trt${trt:-unknown}.plan"
    if [ ! -e "$engine" ]; then
        log "building TensorRT engine $engine (minutes)"
        # Input `images` is [N, 3, 512, 512]; N up to [detect] batch (4 by default).
        "$TRTEXEC" --onnx="$model" --saveEngine="$engine.tmp" --fp16 \
            --minShapes=images:1x3x512x512 --optShapes=images:4x3x512x512 \
            --maxShapes=images:4x3x512x512 >"$STATE/engines/build.log" 2>&1
        mv "$engine.tmp" "$engine"
        log "engine cached"
    fi
elif [ -n "$model" ]; then
    log "no trtexec at $TRTEXEC: no TensorRT engine built"
fi

touch "$STATE/.firstboot-done"
log "done"
