#!/usr/bin/env bash
# Installs what building and the demo need on Debian 12; with --test, also what the test suite
# needs (a headless browser, Node.js for Playwright, Python venv for the OpenCV comparison, an
# MQTT broker, a ClickHouse server, an RTSP server, openssl and systemd-analyze).
# Idempotent: packages already present are not touched, and apt runs only when something is
# missing.
set -euo pipefail

# Debian packages, by what needs them.
PACKAGES=(
  # Building Rust crates that link C libraries.
  build-essential pkg-config
  # Video: encoding and decoding through GStreamer (rig-sim, edge capture).
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
)

if [ "${1:-}" = "--test" ]; then
  # The web pages are tested in a real browser driven by Playwright (Node.js).
  PACKAGES+=(chromium fonts-dejavu-core python3-venv)
  # The daemon's MQTT tests run a real broker (the tests start their own on 127.0.0.1).
  PACKAGES+=(mosquitto)
  # The cloud service's tests write to a real ClickHouse server (the tests start their own).
  PACKAGES+=(clickhouse-server)
  # An RTSP camera for the daemon's tests (GStreamer's RTSP server from Debian's Python).
  PACKAGES+=(python3-gi gir1.2-gst-rtsp-server-1.0)
  # Certificates for the HTTPS test; systemd-analyze for the Yocto unit's checks.
  PACKAGES+=(openssl systemd)
  # Real people filmed by a fixed camera (vtest.avi) for the detector's real-footage figures.
  PACKAGES+=(opencv-doc)
  # libclang for bindgen, which regenerates the TensorRT shim's bindings to check them.
  PACKAGES+=(libclang-dev)
  # Node.js may come from elsewhere (nodesource ships npm inside nodejs): only fill gaps.
  command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
  command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: error: no Rust toolchain (cargo) on PATH; install one with rustup (rust-version in Cargo.toml)" >&2
  exit 1
fi
echo "setup: ok ($(cargo --version), GStreamer $(pkg-config --modversion gstreamer-1.0))"
