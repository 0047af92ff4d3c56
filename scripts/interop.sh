#!/usr/bin/env bash
# Interop: real clients a mail admin uses (swaks, openssl s_client, Python smtplib)
# against the real `postern` binary on 127.0.0.1. Installs swaks from Debian when
# missing. Usage: scripts/interop.sh [path/to/postern]   (default: target/debug/postern)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/postern}
[ -x "$BIN" ] || cargo build --locked -p postern
if ! command -v swaks >/dev/null; then
  (apt-get install -y swaks || (apt-get update && apt-get install -y swaks)) >/dev/null
fi
command -v openssl >/dev/null || { echo "interop: openssl CLI missing"; exit 1; }

W=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; tail -30 "$W/stderr" || true; exit 1; }
pass() { echo "ok   $*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P25=$(free_port); P587=$(free_port); P465=$(free_port)
HASH=$(printf 's3cret pass' | "$BIN" user hash)
cat > "$W/postern.toml" <<TOML
data_dir = "$W/data"
hostname = "localhost"
[[listener]]
name = "smtp"
address = "127.0.0.1:$P25"
kind = "smtp"
[[listener]]
name = "submission"
address = "127.0.0.1:$P587"
kind = "submission"
[[listener]]
name = "submissions"
address = "127.0.0.1:$P465"
kind = "submissions"
[relay]
accepted_domains = ["localhost", "example.com"]
[[user]]
name = "alice"
password_hash = "$HASH"
[log]
transcript = true
# Delivery runs inside serve: a refusing smart host keeps mail queued for the checks below.
[[route]]
domains = ["*"]
smarthost = "127.0.0.1:9"
TOML
"$BIN" config check --config "$W/postern.toml" >/dev/null || fail "config check"
"$BIN" serve --config "$W/postern.toml" >"$W/stdout" 2>"$W/stderr" &
PID=$!
for _ in $(seq 50); do grep -q "listener submissions" "$W/stdout" 2>/dev/null && break; sleep 0.1; done
grep -q "listener submissions" "$W/stdout" || fail "server did not start"

S="swaks --silent 2 --h-Subject interop --body hello"
$S --server 127.0.0.1:$P25 --from a@example.org --to bob@example.com >/dev/null || fail "swaks plaintext"
pass "swaks plaintext on smtp"
$S --server 127.0.0.1:$P25 --tls --from a@example.org --to bob@example.com >/dev/null || fail "swaks STARTTLS"
pass "swaks STARTTLS on smtp"
out=$($S --server 127.0.0.1:$P25 --from a@example.org --to victim@elsewhere.net 2>&1 || true)
echo "$out" | grep -q "554 5.7.1" || fail "relay not denied: $out"
pass "swaks relay to elsewhere.net denied 554 5.7.1"
for m in PLAIN LOGIN; do
  $S --server 127.0.0.1:$P587 --tls --auth $m --auth-user alice --auth-password 's3cret pass' \
     --from alice@example.com --to someone@elsewhere.net >/dev/null || fail "swaks submission AUTH $m"
  pass "swaks submission STARTTLS + AUTH $m, relay allowed after login"
done
out=$($S --server 127.0.0.1:$P587 --from a@example.com --to bob@example.com 2>&1 || true)
echo "$out" | grep -q "530 5.7.0 Must issue a STARTTLS command first" || fail "submission without TLS: $out"
pass "swaks submission without STARTTLS gets 530 5.7.0"
$S --server 127.0.0.1:$P465 --tlsc --auth PLAIN --auth-user alice --auth-password 's3cret pass' \
   --from alice@example.com --to bob@example.com >/dev/null || fail "swaks implicit TLS"
pass "swaks implicit TLS (submissions) + AUTH PLAIN"

export OPENSSL_CONF=/dev/null
o=$(openssl s_client -starttls smtp -connect 127.0.0.1:$P25 -brief </dev/null 2>&1 || true)
echo "$o" | grep -q "Protocol version: TLSv1.3" || fail "s_client TLS 1.3: $o"
echo "$o" | grep -q "Ciphersuite: TLS_AES_256_GCM_SHA384" || fail "server order (AES-256 first): $o"
pass "openssl s_client -starttls smtp: TLSv1.3 TLS_AES_256_GCM_SHA384"
o=$(openssl s_client -starttls smtp -connect 127.0.0.1:$P25 -tls1_2 -cipher 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' -brief </dev/null 2>&1 || true)
echo "$o" | grep -q "Ciphersuite: ECDHE-ECDSA-AES256-GCM-SHA384" || fail "TLS 1.2 server order: $o"
pass "openssl s_client -tls1_2 offering AES128 first gets ECDHE-ECDSA-AES256-GCM-SHA384 (server order)"
o=$(openssl s_client -starttls smtp -connect 127.0.0.1:$P25 -tls1_1 -cipher 'ALL:@SECLEVEL=0' -brief </dev/null 2>&1 || true)
echo "$o" | grep -q "Protocol version" && fail "TLS 1.1 was accepted: $o"
pass "openssl s_client -tls1_1 refused"

python3 - "$P587" <<'PY' || fail "python smtplib"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.starttls(context=ctx); s.login("alice", "s3cret pass")
    s.sendmail("alice@example.com", ["bob@example.com"], b"Subject: py\r\n\r\nfrom smtplib\r\n")
PY
pass "python smtplib STARTTLS + login"

n=$("$BIN" queue list --json --config "$W/postern.toml" | wc -l)
[ "$n" -eq 6 ] || fail "expected 6 queued messages, found $n"
pass "queue list shows the 6 accepted messages"
grep -q "\[redacted\]" "$W/data/log/transcript.log" || fail "AUTH not redacted in transcript"
if grep -q "czNjcmV0IHBhc3M" "$W/data/log/transcript.log"; then fail "password in transcript"; fi
pass "transcript redacts AUTH payloads"
echo "interop: all passed"
