#!/usr/bin/env python3
"""AUTH flood: N parallel clients keep failing SMTP AUTH against a real
`postern serve`; the server's resident memory is sampled all along.

Each argon2 verification takes ~19 MiB; before the bound (issue 8 §1.4) 8
clients x 12 rounds took the server to 1.3 GB RSS. Now at most one check per
core runs at a time, so memory stays flat however many clients fail at once.

Usage: scripts/bench/auth-flood.py [--bin target/release/postern] [--clients 64]
                                   [--seconds 30] [--limit-mib 128]
Prints attempts, failures seen by clients, peak RSS and VmHWM; exits 1 if the
peak is over --limit-mib. A benchmark, not a test: run it by hand (or in CI
as a smoke run with a short --seconds).
"""
import argparse
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/postern")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--limit-mib", type=float, default=128)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="auth-flood-")
    port = free_port()
    pw_hash = subprocess.run([args.bin, "user", "hash"], input=b"right password",
                             capture_output=True, check=True).stdout.decode().strip()
    conf = os.path.join(work, "postern.toml")
    with open(conf, "w") as f:
        f.write(f"""data_dir = "{work}/data"
hostname = "localhost"
[[listener]]
name = "submission"
address = "127.0.0.1:{port}"
kind = "submission"
[limits]
max_connections = 1000
max_connections_per_ip = 1000
[relay]
accepted_domains = ["example.com"]
[[user]]
name = "alice"
password_hash = "{pw_hash}"
""")
    server = subprocess.Popen([args.bin, "serve", "--config", conf],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    stop = time.time() + args.seconds
    counts = {"attempts": 0, "535": 0, "454": 0, "421": 0, "errors": 0}
    lock = threading.Lock()

    def client():
        while time.time() < stop:
            try:
                s = smtplib.SMTP("127.0.0.1", port, timeout=60)
                s.ehlo("flood.example")
                s.starttls(context=ctx)
                s.ehlo("flood.example")
                while time.time() < stop:
                    code, _ = s.docmd("AUTH", "PLAIN " + __import__("base64").b64encode(
                        b"\0alice\0wrong password").decode())
                    with lock:
                        counts["attempts"] += 1
                        key = str(code)
                        if key in counts:
                            counts[key] += 1
                    if code == 421:
                        break
                s.close()
            except (smtplib.SMTPException, OSError):
                with lock:
                    counts["errors"] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    peak = 0
    t0 = time.time()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_kib(server.pid, "VmRSS"))
        time.sleep(0.1)
    elapsed = time.time() - t0
    hwm = rss_kib(server.pid, "VmHWM")
    server.terminate()
    server.wait(timeout=30)

    peak_mib = max(peak, hwm) / 1024
    print(f"clients={args.clients} seconds={elapsed:.1f} auth_attempts={counts['attempts']} "
          f"rejected_535={counts['535']} busy_454={counts['454']} closed_421={counts['421']} "
          f"client_errors={counts['errors']}")
    print(f"server peak RSS {peak / 1024:.1f} MiB (sampled), VmHWM {hwm / 1024:.1f} MiB; "
          f"limit {args.limit_mib} MiB; checks/s {counts['attempts'] / elapsed:.1f}")
    if peak_mib > args.limit_mib:
        print("FAIL: over the limit")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
