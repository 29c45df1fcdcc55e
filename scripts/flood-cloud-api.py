#!/usr/bin/env python3
"""The cloud service under the floods an outside tester sent, on loopback: its memory (RSS)
before and after each, and a legitimate request's latency from another loopback address while
the flood is on. Starts its own ClickHouse server and the release binary; every loop is bounded.

  1. 48 connections each sending 15 MiB of a 16 MiB upload without a token, then silence
  2. 1,100 idle connections (the service under a file limit of 1,024)
  3. N challenges for random serials (default 100,000), at the default per-address limit and
     with the limit lifted (--auth-rate 1e6) so that each reaches the device lookup

Usage: python3 scripts/flood-cloud-api.py [--bin target/release] [--challenges 100000]
"""

import argparse
import http.client
import json
import os
import pathlib
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, proc, what, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not answer within {seconds} s")


def rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def legit_latency_ms(port):
    """GET /healthz from 127.0.0.2: milliseconds, or None when refused."""
    t = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = s.recv(64)
        s.close()
    except OSError:
        return None
    return (time.perf_counter() - t) * 1e3 if answer.split(b" ")[1:2] == [b"200"] else None


def start_clickhouse(work):
    http_port, tcp_port = free_port(), free_port()
    for d in ("data", "tmp", "user_files", "format_schemas"):
        (work / d).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["/usr/sbin/clickhouse-server", "--config-file=/etc/clickhouse-server/config.xml", "--",
         "--listen_host=127.0.0.1", f"--http_port={http_port}", f"--tcp_port={tcp_port}",
         "--interserver_http_port=0", f"--path={work}/data/", f"--tmp_path={work}/tmp/",
         f"--user_files_path={work}/user_files/", f"--format_schema_path={work}/format_schemas/",
         f"--users_config={ROOT}/scripts/clickhouse-users.xml", f"--logger.log={work}/server.log",
         f"--logger.errorlog={work}/server.err.log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return proc, http_port
        except OSError:
            time.sleep(0.2)
    sys.exit("ClickHouse did not start")


def start_service(binary, work, ch_port, extra):
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    (work / "admin.token").write_text("flood-admin-token-0123456789")

    def limit_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    proc = subprocess.Popen(
        [str(binary), f"--listen=127.0.0.1:{port}", f"--clickhouse-url=http://127.0.0.1:{ch_port}",
         "--database=flood", f"--signing-key={work}/service.key", f"--admin-token-file={work}/admin.token", *extra],
        stdout=subprocess.DEVNULL, stderr=open(work / "service.log", "ab"), preexec_fn=limit_files,
        env={**os.environ, "RUST_LOG": "warn"})
    wait_http(port, "/readyz", proc, "polyvision-cloud-api")
    return proc, port


def flood_bodies(port, pid):
    before = rss_mib(pid)
    conns, answered = [], 0
    for _ in range(48):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /v1/ingest/batches HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (16 << 20))
        s.settimeout(0.2)
        sent = 0
        chunk = b"\0" * (1 << 20)
        try:
            while sent < 15 << 20:
                sent += s.send(chunk)
        except OSError:
            pass
        conns.append(s)
    time.sleep(2)
    latency = legit_latency_ms(port)
    for s in conns:
        try:
            s.settimeout(1)
            if s.recv(16).startswith(b"HTTP/1.1 401"):
                answered += 1
        except OSError:
            pass
    after = rss_mib(pid)
    for s in conns:
        s.close()
    print(f"1. 48 × 15 MiB uploads without a token: RSS {before:.1f} → {after:.1f} MiB; "
          f"{answered} of 48 read a 401 before their body was sent; /healthz from another address meanwhile: "
          f"{'refused' if latency is None else f'{latency:.1f} ms'}")


def flood_idle(port, pid):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    before = rss_mib(pid)
    conns = []
    for _ in range(1100):
        try:
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(1)
    open_now = 0
    for s in conns:
        s.setblocking(False)
        try:
            if s.recv(1) != b"":
                open_now += 1
        except BlockingIOError:
            open_now += 1
        except OSError:
            pass
    latencies = [legit_latency_ms(port) for _ in range(20)]
    ok = [x for x in latencies if x is not None]
    during = rss_mib(pid)
    t = time.time()
    while time.time() - t < 30:
        alive = 0
        for s in conns:
            try:
                if s.recv(1) != b"":
                    alive += 1
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        if alive == 0:
            break
        time.sleep(0.5)
    closed_after = time.time() - t + 1
    for s in conns:
        s.close()
    print(f"2. 1,100 idle connections (service file limit 1,024): {open_now} held open after 1 s, the rest closed "
          f"at once; all closed {closed_after:.0f} s after opening; RSS {before:.1f} → {during:.1f} MiB; /healthz from "
          f"another address meanwhile: {len(ok)}/20 answered, median "
          f"{sorted(ok)[len(ok) // 2] if ok else float('nan'):.1f} ms")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def flood_challenges(port, pid, n, label):
    before = rss_mib(pid)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    counts = {}
    t = time.time()
    for i in range(n):
        body = json.dumps({"serial": f"PV-RANDOM-{i:07d}-{os.getpid()}"})
        try:
            c.request("POST", "/v1/devices/challenge", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
        except (OSError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            counts["error"] = counts.get("error", 0) + 1
    secs = time.time() - t
    after = rss_mib(pid)
    print(f"3. {n:,} challenges for random serials ({label}) in {secs:.0f} s: answers {counts}; "
          f"RSS {before:.1f} → {after:.1f} MiB ({(after - before) * 2**20 / n:.1f} bytes per serial)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=str(ROOT / "target/release"))
    p.add_argument("--challenges", type=int, default=100_000)
    args = p.parse_args()
    binary = pathlib.Path(args.bin) / "polyvision-cloud-api"
    if not binary.exists():
        sys.exit(f"{binary} is missing: cargo build --release -p polyvision-cloud-api")
    work = pathlib.Path(tempfile.mkdtemp(prefix="pv-flood-"))
    ch, ch_port = start_clickhouse(work / "clickhouse")
    services = []
    try:
        svc, port = start_service(binary, work / "a", ch_port, [])
        services.append(svc)
        print(f"service at rest: RSS {rss_mib(svc.pid):.1f} MiB")
        flood_bodies(port, svc.pid)
        flood_idle(port, svc.pid)
        flood_challenges(port, svc.pid, args.challenges, "default limit, 5/s per address")
        svc2, port2 = start_service(binary, work / "b", ch_port, ["--auth-rate=1000000"])
        services.append(svc2)
        flood_challenges(port2, svc2.pid, args.challenges // 4, "limit lifted: every one looked up")
    finally:
        for s in services:
            s.kill()
        ch.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
