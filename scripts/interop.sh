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

# --- Protocol robustness (issue 8 §1): what a real client sees. None of these queue a message.
# A bare LF ends nothing: one 500 5.5.2 for the line, then the server closes (RFC 5321 §2.3.8;
# SMTP smuggling). The RSET after it must never be answered.
python3 - "$P25" <<'PY' || fail "bare LF"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
assert f.readline().startswith(b"220 "), "no greeting"
s.sendall(b"EHLO x\r\nNOOP a\nRSET\r\n")
while True:  # the EHLO reply
    line = f.readline()
    assert line.startswith(b"250"), line
    if line[3:4] == b" ":
        break
rest = b""
try:
    while chunk := f.read1(4096):  # the same buffered reader: it may hold the reply already
        rest += chunk
except ConnectionResetError:
    pass  # closed with unread input: a close all the same
want = b"500 5.5.2 Bare <LF> received; lines must end with <CR><LF> (RFC 5321 section 2.3.8)\r\n"
assert rest == want, f"after EHLO got {rest!r}, want exactly {want!r} then close"
PY
pass "bare LF in a pipelined command: one 500 5.5.2, connection closed, RSET never answered"

LONGPW=$(printf 'x%.0s' $(seq 600))
out=$($S --server 127.0.0.1:$P587 --tls --auth LOGIN --auth-user alice --auth-password "$LONGPW" \
      --from alice@example.com --to bob@example.com 2>&1 || true)
echo "$out" | grep -q "535 5.7.8" || fail "600-octet wrong password (LOGIN): $out"
out=$($S --server 127.0.0.1:$P587 --tls --auth PLAIN --auth-user alice --auth-password "$LONGPW" \
      --from alice@example.com --to bob@example.com 2>&1 || true)
echo "$out" | grep -q "535 5.7.8" || fail "600-octet wrong password (PLAIN): $out"
echo "$out" | grep -qi "too long" && fail "long credential reported as a long line: $out"
pass "swaks AUTH LOGIN and PLAIN with a wrong 600-octet password over STARTTLS: 535 5.7.8"

python3 - "$P25" "$P587" <<'PY' || fail "python dialogues"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p25, p587 = int(sys.argv[1]), int(sys.argv[2])

def expect(got, code, text=b""):
    assert got[0] == code and text in got[1], f"want {code} {text!r}, got {got!r}"

# A refused SASL response ends the exchange: the next line is a command again (RFC 4954 §4).
with smtplib.SMTP("127.0.0.1", p587, timeout=10) as s:
    s.starttls(context=ctx); s.ehlo("client.example")
    expect(s.docmd("AUTH", "LOGIN"), 334)
    expect(s.docmd("!!not base64!!"), 501, b"5.5.2")
    expect(s.docmd("NOOP"), 250)
    expect(s.docmd("AUTH", "LOGIN"), 334)
    expect(s.docmd("*"), 501, b"5.0.0")
    expect(s.docmd("NOOP"), 250)
    # HELP names AUTH where it is offered (so the check below can fail).
    expect(s.docmd("HELP"), 214, b"AUTH")

with smtplib.SMTP("127.0.0.1", p25, timeout=10) as s:
    # RFC 5321 §4.1.1.1: the EHLO argument is a domain or an address literal.
    expect(s.docmd("EHLO", "bad_name!"), 501, b"5.5.4")
    expect(s.docmd("EHLO", "[127.0.0.1]"), 250)
    # HELP lists only what this listener offers: no AUTH on the smtp listener.
    code, text = s.docmd("HELP")
    assert code == 214 and b"STARTTLS" in text and b"AUTH" not in text, (code, text)
    # Sender-specified routing at an accepted domain from an untrusted client: 550 5.7.1.
    expect(s.docmd("MAIL", "FROM:<a@example.org>"), 250)
    expect(s.docmd("RCPT", "TO:<user%elsewhere.net@example.com>"), 550, b"5.7.1")
    expect(s.docmd("RCPT", "TO:<elsewhere.net!user@example.com>"), 550, b"5.7.1")
    expect(s.docmd("RCPT", 'TO:<"user@elsewhere.net"@example.com>'), 550, b"5.7.1")
    # A source route is stripped (RFC 5321 §4.1.1.3, Appendix C): the mailbox is ours.
    expect(s.docmd("RCPT", "TO:<@a.example,@b.example:bob@example.com>"), 250)
    expect(s.docmd("RSET"), 250)
PY
pass "refused AUTH response then NOOP 250; * cancels 501 5.0.0; EHLO bad_name! 501 5.5.4"
pass "HELP on smtp omits AUTH; RCPT user%elsewhere.net@ / ! / quoted @ at example.com: 550 5.7.1"

n=$("$BIN" queue list --json --config "$W/postern.toml" | wc -l)
[ "$n" -eq 6 ] || fail "expected 6 queued messages, found $n"
pass "queue list shows the 6 accepted messages"
grep -q "\[redacted\]" "$W/data/log/transcript.log" || fail "AUTH not redacted in transcript"
if grep -q "czNjcmV0IHBhc3M" "$W/data/log/transcript.log"; then fail "password in transcript"; fi
if grep -q "eHh4eHh4eHh4" "$W/data/log/transcript.log"; then fail "long password in transcript"; fi
pass "transcript redacts AUTH payloads"
echo "interop: all passed"
