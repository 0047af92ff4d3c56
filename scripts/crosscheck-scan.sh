#!/usr/bin/env bash
# Cross-check `postern tls scan` against sslscan (an independent scanner built on
# OpenSSL) on local servers: a legacy `openssl s_server` (TLS 1.0-1.2, CBC,
# static RSA, DHE 1024, server order), a modern one (TLS 1.2 + 1.3, server
# order), and Postern itself (`postern serve`, STARTTLS, a chosen suite order).
# Fails when the accepted protocol versions, the accepted suites or their
# order differ. Installs sslscan from Debian when missing.
#
# Usage: scripts/crosscheck-scan.sh [path/to/postern]   (default: target/debug/postern)
#
# Only suites both tools can test are configured: sslscan asks its OpenSSL 3
# for legacy ciphers, which no longer has RC4, 3DES, EXPORT or SSLv3 (those
# are covered by the fake servers in crates/diag/tests/scan_fake.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/postern}
[ -x "$BIN" ] || cargo build --locked -p postern
if ! "$BIN" tls scan --help >/dev/null 2>&1; then
  echo "crosscheck-scan: '$BIN tls scan' is not available (CLI not wired yet?)"; exit 2
fi
if ! command -v sslscan >/dev/null; then
  (apt-get install -y sslscan || (apt-get update && apt-get install -y sslscan)) >/dev/null
fi
command -v openssl >/dev/null || { echo "crosscheck-scan: openssl CLI missing"; exit 1; }
command -v python3 >/dev/null || { echo "crosscheck-scan: python3 missing"; exit 1; }
export OPENSSL_CONF=/dev/null

W=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # Also the `sleep` feeding each s_server's stdin: every child of this script.
  pkill -P $$ 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "crosscheck-scan: nothing listens on port $1"; tail -n 20 "$W"/*.log; return 1
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 30 2>/dev/null
# RFC 2409 §6.2 1024-bit MODP group (fixed: no slow parameter generation).
python3 - "$W/dh.der" <<'PY'
import sys
p = bytes.fromhex(
  "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
  "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
  "F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381"
  "FFFFFFFFFFFFFFFF")
open(sys.argv[1], "wb").write(b"\x30\x81\x87\x02\x81\x81\x00" + p + b"\x02\x01\x02")
PY
openssl dhparam -inform DER -in "$W/dh.der" -out "$W/dh.pem" 2>/dev/null

# s_server exits at EOF on stdin: feed it a pipe that stays open.
s_server() { # port args...
  local port=$1; shift
  sleep 3600 | openssl s_server -accept "127.0.0.1:$port" -cert "$W/cert.pem" -key "$W/key.pem" \
    -quiet "$@" >"$W/s_server.$port.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port"
}

P_LEGACY=$(free_port)
s_server "$P_LEGACY" -no_ssl3 -no_tls1_3 -serverpref -dhparam "$W/dh.pem" \
  -cipher 'AES256-SHA:DHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA:CAMELLIA128-SHA:@SECLEVEL=0'

P_MODERN=$(free_port)
# No -dhparam: OpenSSL picks 2048-bit parameters itself.
s_server "$P_MODERN" -no_ssl3 -no_tls1 -no_tls1_1 -serverpref \
  -cipher 'ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384' \
  -ciphersuites 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384'

P_POSTERN=$(free_port)
cat >"$W/postern.toml" <<TOML
data_dir = "$W/data"
hostname = "localhost"
[[listener]]
name = "smtp"
address = "127.0.0.1:$P_POSTERN"
kind = "smtp"
[tls]
min_version = "1.2"
cipher_suites = ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384",
                 "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES256-GCM-SHA384"]
[[tls.certificate]]
cert = "$W/cert.pem"
key = "$W/key.pem"
[relay]
accepted_domains = ["localhost"]
TOML
"$BIN" serve --config "$W/postern.toml" >"$W/postern.log" 2>&1 &
PIDS+=($!)
wait_port "$P_POSTERN"

FAIL=0
check() { # name port starttls(smtp|none)
  local name=$1 port=$2 st=$3 sargs=()
  [ "$st" = smtp ] && sargs=(--starttls-smtp)
  sslscan --xml="$W/$name.xml" --no-colour --show-cipher-ids "${sargs[@]}" "127.0.0.1:$port" >"$W/$name.sslscan.txt" 2>&1 || true
  "$BIN" tls scan --json --no-progress --starttls "$st" "127.0.0.1:$port" >"$W/$name.json" \
    || { echo "FAIL $name: postern tls scan exited $?"; FAIL=1; return; }
  if python3 - "$name" "$W/$name.xml" "$W/$name.json" <<'PY'; then :; else FAIL=1; fi
import json, sys, xml.etree.ElementTree as ET
name, xml_path, json_path = sys.argv[1:]
names = {("ssl", "3"): "SSLv3", ("tls", "1.0"): "TLS 1.0", ("tls", "1.1"): "TLS 1.1",
         ("tls", "1.2"): "TLS 1.2", ("tls", "1.3"): "TLS 1.3"}
cipher_versions = {"SSLv3": "SSLv3", "TLSv1.0": "TLS 1.0", "TLSv1.1": "TLS 1.1",
                   "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}
root = ET.parse(xml_path).getroot()
s_protocols, s_suites = set(), {}
for p in root.iter("protocol"):
    key = (p.get("type"), p.get("version"))
    if key == ("ssl", "2"):
        if p.get("enabled") == "1":
            print(f"note {name}: sslscan says SSLv2 is enabled (postern does not probe SSLv2)")
        continue
    if p.get("enabled") == "1":
        s_protocols.add(names[key])
for c in root.iter("cipher"):
    s_suites.setdefault(cipher_versions[c.get("sslversion")], []).append(int(c.get("id"), 16))
report = json.load(open(json_path))
p_protocols = {p["version"] for p in report["protocols"] if p["accepted"]}
p_suites = {p["version"]: [s["id"] for s in p["suites"]] for p in report["protocols"] if p["accepted"]}
ok = True
if s_protocols != p_protocols:
    ok = False
    print(f"FAIL {name}: protocols differ: sslscan {sorted(s_protocols)} postern {sorted(p_protocols)}")
for v in sorted(s_protocols | p_protocols):
    a, b = s_suites.get(v, []), p_suites.get(v, [])
    fmt = lambda l: " ".join(f"0x{i:04x}" for i in l)
    if a != b:
        ok = False
        what = "order" if sorted(a) == sorted(b) else "set"
        print(f"FAIL {name} {v}: suite {what} differs:\n  sslscan {fmt(a)}\n  postern {fmt(b)}")
    else:
        print(f"ok   {name} {v}: {len(a)} suites, same order: {fmt(a)}")
print(f"     {name}: postern grade {report['grade']}")
sys.exit(0 if ok else 1)
PY
}

check legacy-openssl "$P_LEGACY" none
check modern-openssl "$P_MODERN" none
check postern-starttls "$P_POSTERN" smtp

if [ "$FAIL" -ne 0 ]; then
  echo "crosscheck-scan: DIFFERENCES (outputs in $W are removed on exit; rerun with 'bash -x' to inspect)"
  exit 1
fi
echo "crosscheck-scan: postern tls scan agrees with sslscan on all servers"
