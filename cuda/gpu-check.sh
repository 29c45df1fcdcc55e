#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and no Rust toolchain. Runs the binaries that
# cuda/prepare-gpu-check.sh built (default folder: target/gpu-check):
#
#   1. the device, and its device-to-device copy bandwidth;
#   2. the backend suite on the GPU, bit for bit against the definition the CPU reference also
#      passes, for every compiled form of the kernels the device can load (cubin on sm_87, PTX
#      compute_87 and compute_75), on random inputs and on a rendered frame pair;
#   3. stitch figures for 2 x 1920x1080 and 2 x 3840x2160 cameras: CPU (all cores), CUDA with
#      copies, CUDA kernel alone, and its bandwidth as a fraction of the copy bandwidth; PyTorch
#      grid_sample on the same GPU and tables where PyTorch is installed;
#   4. preprocessing figures (6 tiles -> 6x3x640x640, FP32 and FP16).
#
# Prints a table; exits 1 when a parity test fails. Takes about two minutes.
set -uo pipefail
DIR=${1:-target/gpu-check}
K="$DIR/polyvision-kernels"
status=0
say() { printf '%s\n' "$*"; }

say "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader 2>/dev/null || say "(no nvidia-smi)"
info=$("$K" device-info) || { say "FAIL: no usable CUDA device"; exit 1; }
say "$info"
copy=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["copy_gb_per_s"])' "$info")

say "== parity: GPU against the definition (and so against the CPU reference), bit for bit"
if POLYVISION_KERNEL_FIXTURES="$DIR/fixtures" "$DIR/backends" --ignored --nocapture --test-threads 1; then
  say "parity: ok"
else
  say "FAIL: parity"
  status=1
fi

say "== stitch"
rows=()
for h in 1080 2160; do
  cal="$DIR/rig-$h.json"
  table="$DIR/table-$h.bin"
  "$K" table --calibration "$cal" --out "$table" >/dev/null
  cpu=$("$K" bench-stitch --table "$table" --backend cpu --iterations 10)
  gpu=$("$K" bench-stitch --table "$table" --backend cuda --iterations 50)
  kern=$("$K" bench-stitch --table "$table" --backend cuda --device-resident --iterations 200)
  nv12=$("$K" bench-stitch --table "$table" --backend cuda --nv12 --iterations 50)
  torch=$(python3 - "$table" 2>/dev/null <<'PY'
import sys, time
import numpy as np
import torch
raw = open(sys.argv[1], "rb").read()
w, h, lw, lh, rw, rh = (int(v) for v in np.frombuffer(raw[12:36], "<u4"))
n = w * h
planes = [np.frombuffer(raw[48 + 4 * n * k:48 + 4 * n * (k + 1)], "<u4").reshape(h, w) for k in (0, 1)]
wl = torch.from_numpy(np.frombuffer(raw[48 + 8 * n:48 + 9 * n], "u1").reshape(1, 1, h, w).astype(np.float32) / 255).cuda()
def grid(p, sw, sh):
    seen = p != 0xFFFFFFFF
    x = np.where(seen, (p & 0xFFFF) / 16.0, -10.0) / (sw - 1) * 2 - 1
    y = np.where(seen, (p >> 16) / 16.0, -10.0) / (sh - 1) * 2 - 1
    return torch.from_numpy(np.stack([x, y], -1).astype(np.float32))[None].cuda()
gl, gr = grid(planes[0], lw, lh), grid(planes[1], rw, rh)
L = torch.randint(0, 255, (1, 4, lh, lw), dtype=torch.uint8, device="cuda")
R = torch.randint(0, 255, (1, 4, rh, rw), dtype=torch.uint8, device="cuda")
def once():
    a = torch.nn.functional.grid_sample(L.float(), gl, mode="bilinear", padding_mode="zeros", align_corners=True)
    b = torch.nn.functional.grid_sample(R.float(), gr, mode="bilinear", padding_mode="zeros", align_corners=True)
    return (a * wl + b * (1 - wl)).round().clamp(0, 255).to(torch.uint8)
for _ in range(3): once()
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(50): once()
torch.cuda.synchronize(); print((time.perf_counter() - t) / 50 * 1e3)
PY
) || torch="n/a"
  rows+=("$h|$cpu|$gpu|$kern|$nv12|$torch")
done
python3 - "$copy" "${rows[@]}" <<'PY'
import json, sys
copy = float(sys.argv[1])
print(f"{'cameras':<12}{'panorama':<14}{'CPU ms':>8}{'CUDA ms':>9}{'kernel ms':>10}{'kernel GB/s':>12}{'of copy':>9}{'NV12 ms':>9}{'torch ms':>9}")
for row in sys.argv[2:]:
    h, cpu, gpu, kern, nv12, torch = row.split("|")
    cpu, gpu, kern, nv12 = (json.loads(v) for v in (cpu, gpu, kern, nv12))
    cams = "2x{}x{}".format(*cpu["cameras"][0])
    pano = "{}x{}".format(*cpu["panorama"])
    frac = kern["gb_per_s"] / copy
    torch = f"{float(torch):.2f}" if torch not in ("", "n/a") else "n/a"
    print(f"{cams:<12}{pano:<14}{cpu['ms_per_frame']:>8.2f}{gpu['ms_per_frame']:>9.2f}{kern['ms_per_frame']:>10.3f}"
          f"{kern['gb_per_s']:>12.1f}{frac:>8.0%}{nv12['ms_per_frame']:>9.2f}{torch:>9}")
print(f"device copy bandwidth {copy:.1f} GB/s; 'CUDA ms' includes the copies to and from the GPU, 'kernel' does not")
PY

say "== preprocessing (6 tiles of the panorama -> 6x3x640x640)"
for p in f32 f16; do
  "$K" bench-preprocess --backend cpu --precision $p --iterations 10
  "$K" bench-preprocess --backend cuda --precision $p --iterations 50
done
exit $status
