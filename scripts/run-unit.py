#!/usr/bin/env python3
"""Run polyvision-edge.service for real without systemd as PID 1, the way systemd would.

Reads the unit file, creates its StateDirectory/ConfigurationDirectory/CacheDirectory under a
temporary root, listens on a NOTIFY_SOCKET (unix datagram) and sets WATCHDOG_USEC from
WatchdogSec=, runs ExecStartPre= then ExecStart= with the unit's Environment= and
WorkingDirectory=, and checks what systemd would: READY=1 within TimeoutStartSec=, WATCHDOG=1
pings at least every WatchdogSec= while a match runs (started through the page's API, as a
technician would), and after KillSignal= a clean exit 0 within TimeoutStopSec=, with the match
closed in the buffer.

Absolute paths of the unit are mapped into the temporary root (/etc/polyvision, /var/lib,
/var/cache) and /usr/bin/polyvision-edge to target/release/polyvision-edge. The config is a
test rig: GStreamer test-pattern cameras, a calibration rendered by rig-sim, the repository's
model. Not exercised here (only real systemd does them): User=/Group=, the sandboxing options,
Restart= after a watchdog timeout. Usage: scripts/run-unit.py [--unit FILE] [--keep]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

print = functools.partial(print, flush=True)  # noqa: A001 - keep order with the daemon's output

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "yocto/meta-polyvision/recipes-polyvision/polyvision-edge/files/polyvision-edge.service"
PIN = "482913"


def fail(msg: str) -> None:
    raise SystemExit(f"run-unit: FAIL: {msg}")


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values in order (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    """A systemd time span such as 30s, 5min, 1min 30s, 90 (seconds)."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for num, unit in re.findall(r"([\d.]+)\s*([a-z]*)", value):
        total += float(num) * units.get(unit or "s", 1)
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--unit", type=Path, default=UNIT)
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release")
    ap.add_argument("--keep", action="store_true", help="keep the temporary root")
    args = ap.parse_args()

    unit = parse_unit(args.unit)
    svc = unit["Service"]
    one = lambda k, d=None: svc.get(k, [d])[-1]  # noqa: E731 - last assignment wins
    if one("Type") != "notify":
        fail("Type= is not notify")
    watchdog = seconds(one("WatchdogSec", "0"))
    start_timeout = seconds(one("TimeoutStartSec", "90s"))
    stop_timeout = seconds(one("TimeoutStopSec", "90s"))
    kill_signal = getattr(signal, one("KillSignal", "SIGTERM"))
    if watchdog <= 0:
        fail("no WatchdogSec=")

    edge = args.bin / "polyvision-edge"
    rig_sim = args.bin / "rig-sim"
    for b in (edge, rig_sim):
        if not os.access(b, os.X_OK):
            fail(f"{b} is missing: build the workspace in release mode first")

    tmp = Path(tempfile.mkdtemp(prefix="run-unit-"))
    try:
        # systemd's directories, mapped into the temporary root.
        paths = {"/etc/": f"{tmp}/etc/", "/var/lib/": f"{tmp}/var/lib/", "/var/cache/": f"{tmp}/var/cache/"}
        spec = {"%S": f"{tmp}/var/lib", "%C": f"{tmp}/var/cache", "%E": f"{tmp}/etc", "%%": "%"}

        def expand(word: str) -> str:
            for k, v in spec.items():
                word = word.replace(k, v)
            if word == "/usr/bin/polyvision-edge":
                return str(edge)
            for k, v in paths.items():
                if word.startswith(k):
                    return v + word[len(k):]
            return word

        for key, base in (("StateDirectory", "var/lib"), ("ConfigurationDirectory", "etc"), ("CacheDirectory", "var/cache")):
            mode = int(one(key + "Mode", "0755"), 8)
            for name in " ".join(svc.get(key, [])).split():
                d = tmp / base / name
                d.mkdir(parents=True, exist_ok=True)
                d.chmod(mode)
        state = tmp / "var/lib/polyvision"

        # A test rig: rendered calibration, test-pattern cameras, the repository's model.
        render = tmp / "render"
        subprocess.run([str(rig_sim), "render", "--seconds", "1", "--no-video", "--out", str(render), "--quiet"], check=True)
        shutil.copy(render / "truth/calibration.json", state / "calibration.json")
        (state / "technician-pin").write_text(PIN + "\n")
        port = free_port()
        config = tmp / "etc/polyvision/edge.toml"
        config.write_text(
            f"""[calibration]
file = "{state}/calibration.json"
[capture.left]
source = "test:1280x720@25"
[capture.right]
source = "test:1280x720@25"
[device]
serial = "PV-RUN-UNIT"
[detect]
model = "{ROOT}/models/polyvision-det.onnx"
[storage]
database = "{state}/buffer.db"
min_free_mb = 1
[cloud]
key_file = "{state}/device.key"
[web]
listen = "127.0.0.1:{port}"
technician_pin_file = "{state}/technician-pin"
"""
        )

        env = dict(os.environ)
        for assignment in svc.get("Environment", []):
            for item in re.findall(r'"[^"]*"|\S+', assignment):
                k, _, v = item.strip('"').partition("=")
                env[k] = expand(v)
        cwd = expand(one("WorkingDirectory", str(tmp)))
        umask = int(one("UMask", "0022"), 8)

        for pre in svc.get("ExecStartPre", []):
            argv = [expand(w) for w in pre.lstrip("-@:+!").split()]
            r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
            if r.returncode != 0 and not pre.startswith("-"):
                fail(f"ExecStartPre {argv} exited {r.returncode}:\n{r.stdout}{r.stderr}")
            print(f"run-unit: ExecStartPre ok: {' '.join(pre.split()[:2])}")

        notify_path = tmp / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(notify_path))
        env["NOTIFY_SOCKET"] = str(notify_path)
        env["WATCHDOG_USEC"] = str(int(watchdog * 1e6))
        # systemd sets WATCHDOG_PID to the main process; the pid is known only after the fork,
        # so a shell sets it to its own pid and execs the daemon in its place.
        argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"]
        argv += [expand(w) for w in one("ExecStart").split()]
        log = open(tmp / "daemon.log", "w")
        t0 = time.monotonic()
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=lambda: os.umask(umask))
        messages: list[tuple[float, str]] = []

        def receive(deadline: float, want) -> bool:
            while time.monotonic() < deadline:
                sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
                try:
                    data = sock.recv(4096).decode()
                except socket.timeout:
                    if child.poll() is not None:
                        return False
                    continue
                for m in data.split("\n"):
                    if m:
                        messages.append((time.monotonic(), m))
                if want():
                    return True
            return False

        def daemon_log() -> str:
            log.flush()
            return (tmp / "daemon.log").read_text()[-4000:]

        try:
            if not receive(t0 + start_timeout, lambda: any(m == "READY=1" for _, m in messages)):
                fail(f"no READY=1 within TimeoutStartSec={start_timeout:g}s\n{daemon_log()}")
            print(f"run-unit: READY=1 after {messages[-1][0] - t0:.1f} s")

            base = f"http://127.0.0.1:{port}"
            token = http("POST", f"{base}/api/login", {"pin": PIN})["token"]
            match = http("POST", f"{base}/api/match/start", token=token)["match"]
            t_match = time.monotonic()
            print(f"run-unit: match {match} started through POST /api/match/start")

            # Pings while the match runs: at least three, never further apart than WatchdogSec.
            pings = lambda: [t for t, m in messages if m == "WATCHDOG=1" and t >= t_match]  # noqa: E731
            if not receive(t_match + 3.5 * watchdog, lambda: len(pings()) >= 3):
                fail(f"fewer than 3 WATCHDOG=1 within {3.5 * watchdog:g}s of the match start\n{daemon_log()}")
            times = [t_match] + pings()
            gap = max(b - a for a, b in zip(times, times[1:]))
            if gap > watchdog:
                fail(f"watchdog pings {gap:.1f}s apart, more than WatchdogSec={watchdog:g}s")
            print(f"run-unit: {len(pings())} WATCHDOG=1 during the match, largest gap {gap:.1f} s "
                  f"(WatchdogSec={watchdog:g}s)")

            child.send_signal(kill_signal)
            t_stop = time.monotonic()
            try:
                rc = child.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                fail(f"still running {stop_timeout:g}s after {kill_signal.name} (TimeoutStopSec)")
            stop_s = time.monotonic() - t_stop
            receive(time.monotonic() + 0.2, lambda: False)
            if rc != 0:
                fail(f"exit status {rc} after {kill_signal.name}\n{daemon_log()}")
            stopping = any(m == "STOPPING=1" for _, m in messages)
            with sqlite3.connect(state / "buffer.db") as db:
                total, closed = db.execute("SELECT count(*), count(stopped_ms) FROM matches").fetchone()
            if (total, closed) != (1, 1):
                fail(f"buffer holds {total} matches, {closed} closed; expected 1 closed match")
            print(f"run-unit: {kill_signal.name}: exit 0 after {stop_s:.1f} s (TimeoutStopSec={stop_timeout:g}s), "
                  f"STOPPING=1 {'sent' if stopping else 'not sent'}, match closed in the buffer")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            sock.close()
            log.close()
        print("run-unit: ok")
        return 0
    finally:
        if args.keep:
            print(f"run-unit: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
