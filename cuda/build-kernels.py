#!/usr/bin/env python3
"""Compile the CUDA kernels in cuda/kernels/*.cu into the committed artifacts in cuda/kernels/build/.

No nvcc is needed: NVRTC 12.6 (PyPI nvidia-cuda-nvrtc-cu12) compiles each kernel to PTX, and
ptxas (PyPI nvidia-cuda-nvcc-cu12) assembles the Jetson's cubin. Per kernel:

  <name>.compute_87.ptx   Jetson Orin (PTX ISA 8.5, loadable by JetPack 6's CUDA 12.2/12.6 driver)
  <name>.sm_87.cubin      Jetson Orin, ready to run (no JIT at start-up)
  <name>.compute_75.ptx   desktop and data-centre GPUs from Turing on (the driver JITs it)

Options: --fmad=false (the CPU references do not fuse multiply-adds either, so results agree bit
for bit), -O3 for ptxas.

  python3 cuda/build-kernels.py --nvrtc LIBNVRTC --ptxas PTXAS          # rewrite the artifacts
  python3 cuda/build-kernels.py --nvrtc LIBNVRTC --ptxas PTXAS --check  # fail if they differ

scripts/test.sh runs the --check form, so a kernel that does not compile, or artifacts that do
not match their source, never land.
"""

import argparse
import ctypes
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
KERNELS = HERE / "kernels"
BUILD = KERNELS / "build"
OPTIONS = ["--fmad=false", "--std=c++17", f"--include-path={KERNELS}"]
TARGETS = ["compute_87", "compute_75"]


def nvrtc_compile(lib, source, name, arch):
    prog = ctypes.c_void_p()
    check = lambda code, what: code == 0 or sys.exit(f"{name}: {what} failed (nvrtc error {code})")
    check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), f"{name}.cu".encode(), 0, None, None),
          "nvrtcCreateProgram")
    opts = [f"--gpu-architecture={arch}", *OPTIONS]
    arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
    result = lib.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    if result != 0:
        sys.exit(f"{name}.cu for {arch} does not compile:\n{log.value.decode(errors='replace')}")
    lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    check(lib.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return ptx.value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nvrtc", required=True, help="path of libnvrtc.so.12 (12.6)")
    parser.add_argument("--ptxas", required=True, help="path of ptxas (12.6)")
    parser.add_argument("--check", action="store_true", help="compare with the committed artifacts")
    args = parser.parse_args()
    lib = ctypes.CDLL(args.nvrtc)
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    if (major.value, minor.value) != (12, 6):
        sys.exit(f"NVRTC {major.value}.{minor.value}: use 12.6 (12.9 emits PTX 8.8, too new for JetPack 6)")

    outputs = {}
    for cu in sorted(KERNELS.glob("*.cu")):
        name = cu.stem
        source = cu.read_text()
        for arch in TARGETS:
            outputs[f"{name}.{arch}.ptx"] = nvrtc_compile(lib, source, name, arch)
        with tempfile.TemporaryDirectory() as tmp:
            ptx = pathlib.Path(tmp) / f"{name}.ptx"
            cubin = pathlib.Path(tmp) / f"{name}.cubin"
            ptx.write_bytes(outputs[f"{name}.compute_87.ptx"])
            run = subprocess.run([args.ptxas, "-arch=sm_87", "-O3", "-v", str(ptx), "-o", str(cubin)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"ptxas rejected {name}:\n{run.stderr}")
            for line in run.stderr.splitlines():
                if "registers" in line or "Compiling entry" in line:
                    print(f"  {name}: {line.strip()}")
            outputs[f"{name}.sm_87.cubin"] = cubin.read_bytes()

    stale = []
    for file, data in outputs.items():
        path = BUILD / file
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(file)
        else:
            BUILD.mkdir(exist_ok=True)
            path.write_bytes(data)
    known = {p.name for p in BUILD.glob("*")} if BUILD.exists() else set()
    extra = sorted(known - set(outputs))
    if args.check:
        if stale or extra:
            sys.exit("kernel artifacts differ from their sources: "
                     + ", ".join(stale + [f"{e} (no source)" for e in extra])
                     + "\nrun: python3 cuda/build-kernels.py --nvrtc ... --ptxas ...")
        print(f"kernels: {len(outputs)} artifacts match their sources (NVRTC 12.6, ptxas sm_87)")
    else:
        for e in extra:
            (BUILD / e).unlink()
        print(f"kernels: wrote {len(outputs)} artifacts to {BUILD}")


if __name__ == "__main__":
    main()
