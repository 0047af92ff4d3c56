#!/usr/bin/env bash
# DKIM interop with two independent implementations, both directions:
#  A. messages signed by `postern dkim sign` verify with dkimpy (Debian
#     python3-dkim), the key record served by a dnsfunc;
#  B. messages signed by Postern verify with opendkim (`opendkim -t`, test mode
#     of the opendkim filter itself, key records from its `TestDNSData` file);
#  C. messages signed by dkimpy verify in Postern (`postern auth check
#     --nameserver`, key records served by dnsmasq on 127.0.0.1);
#  D. messages signed by opendkim (`opendkim -t` in sign mode, the same
#     libopendkim) verify in Postern;
#  E. the running server (`postern serve`, [authentication] verify = true, DNS
#     from the same dnsmasq) takes a dkimpy-signed message from swaks with
#     dkim=pass dmarc=pass in its Authentication-Results, and refuses an
#     unsigned one claiming a p=reject domain with 550 5.7.1.
# Cases: Ed25519 and RSA-2048 keys x relaxed and simple canonicalization x
# bodies with trailing blank lines, whitespace-only trailing lines (mail-auth
# 0.13.3's relaxed-body bug, both directions), inner whitespace runs, 8-bit
# octets, an empty body, under a long folded Subject; plus tampered messages
# that must FAIL in each direction (so every check can fail).
# Known gap: opendkim 2.11.0's own Ed25519 signatures with c=simple/simple
# verify nowhere (opendkim itself and dkimpy reject them; checked each run),
# so that cell of D is skipped; Ed25519 relaxed and RSA both ways are tested.
# Why `opendkim -t` and not `opendkim-testmsg` for signing: opendkim-testmsg
# 2.11.0 (Debian 12) stops with "dkim_chunk(): Syntax error" on every input
# we gave it (CRLF or LF), and it verifies only through live DNS on port 53;
# the filter's test mode signs with any c=/a= from a config file and resolves
# keys from a file, fully offline.
# Installs python3-dkim, python3-nacl, opendkim, opendkim-tools, dnsmasq and swaks
# from Debian when missing.
# Usage: scripts/interop-dkim.sh [path/to/postern]   (default: target/debug/postern)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/postern}
[ -x "$BIN" ] || cargo build --locked -p postern
PY=/usr/bin/python3 # the Debian interpreter that sees python3-dkim
need=""
"$PY" -c 'import dkim, nacl' 2>/dev/null || need="$need python3-dkim python3-nacl"
command -v opendkim >/dev/null 2>&1 || [ -x /usr/sbin/opendkim ] || need="$need opendkim opendkim-tools"
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need="$need dnsmasq"
command -v swaks >/dev/null 2>&1 || need="$need swaks"
if [ -n "$need" ]; then
  (apt-get install -y $need || (apt-get update && apt-get install -y $need)) >/dev/null
fi
OPENDKIM=$(command -v opendkim || echo /usr/sbin/opendkim)
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

W=$(mktemp -d)
# opendkim refuses key and data files below a directory others can write
# (/tmp): work in a private directory inside the temp dir.
chmod 700 "$W"
DNSMASQ_PID=
SERVER_PID=
cleanup() {
  [ -n "$DNSMASQ_PID" ] && kill "$DNSMASQ_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "ok   $*"; }

cat > "$W/verify.py" <<'PY'
# verify.py SIGNED_FILE RECORD_FILE: exit 0 when dkimpy verifies the first
# DKIM-Signature with the record text from RECORD_FILE as the DNS answer.
import sys, dkim
msg = open(sys.argv[1], "rb").read()
record = open(sys.argv[2], "rb").read().strip()
def dnsfunc(name, timeout=5):
    return record
ok = dkim.verify(msg, dnsfunc=dnsfunc)
sys.exit(0 if ok else 1)
PY

# The record text (the quoted strings of the printed TXT line, joined).
record_of() { sed -e 's/^[^"]*"//' -e 's/"$//' -e 's/" "//g'; }

"$BIN" dkim keygen --domain example.com --selector ed --out "$W/keys" 2>/dev/null | record_of > "$W/ed.txt"
"$BIN" dkim keygen --domain example.com --selector rsa --algorithm rsa2048 --out "$W/keys" 2>/dev/null | record_of > "$W/rsa.txt"
grep -q '^v=DKIM1; k=ed25519; p=' "$W/ed.txt" || fail "ed25519 record: $(cat "$W/ed.txt")"
grep -q '^v=DKIM1; k=rsa; p=MII' "$W/rsa.txt" || fail "rsa record: $(cat "$W/rsa.txt")"

HEAD='From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: A subject long enough to be folded over several lines,\r\n \tand folded once more   with   runs of   spaces\r\nDate: Sun, 06 Dec 2026 16:00:00 +0000\r\nMessage-ID: <interop@example.com>\r\n\r\n'
declare -A BODY=(
  [plain]='Hello Bob.\r\n'
  [trailing-blank]='Hello Bob.\r\n\r\n\r\n\r\n'
  [trailing-whitespace]='Hello Bob.\r\n \r\n\t\r\n  \t \r\n'
  [inner-whitespace]='Runs  \t of   space \t\r\n\r\nsecond paragraph  \r\n'
  [8bit]='8-bit: \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xff\xfe\r\n'
  [empty]=''
)

n=0
for alg in ed rsa; do
  for canon in relaxed simple; do
    flag=; [ "$canon" = simple ] && flag=--simple
    for case in "${!BODY[@]}"; do
      printf "$HEAD${BODY[$case]}" > "$W/m.eml"
      "$BIN" dkim sign --domain example.com --selector "$alg" --key "$W/keys/example.com.$alg.key" $flag "$W/m.eml" > "$W/s.eml" \
        || fail "$alg $canon $case: postern dkim sign failed"
      "$PY" "$W/verify.py" "$W/s.eml" "$W/$alg.txt" || fail "$alg $canon $case: dkimpy does not verify our signature"
      n=$((n + 1))
    done
    pass "$alg $canon: ${#BODY[@]} bodies verify with dkimpy"
  done
done

# A tampered body must fail (the check above can fail).
printf "${HEAD}Hello Bob.\r\n" > "$W/m.eml"
"$BIN" dkim sign --domain example.com --selector ed --key "$W/keys/example.com.ed.key" "$W/m.eml" > "$W/s.eml"
sed -i 's/Hello Bob/Hello Eve/' "$W/s.eml"
if "$PY" "$W/verify.py" "$W/s.eml" "$W/ed.txt"; then fail "dkimpy verified a tampered message"; fi
pass "tampered body fails at dkimpy"
echo "interop-dkim: $n signatures verified by dkimpy"

# ---------------------------------------------------------------------------
# B. Postern-signed, verified by opendkim (test mode, TestDNSData).
printf 'rsa._domainkey.example.com %s\ned._domainkey.example.com %s\n' "$(cat "$W/rsa.txt")" "$(cat "$W/ed.txt")" > "$W/dns.txt"
printf 'Mode v\nSyslog no\nTestDNSData file:%s/dns.txt\n' "$W" > "$W/verify.conf"
# opendkim_verify FILE: exit 0 when opendkim's own Authentication-Results says dkim=pass.
opendkim_verify() {
  "$OPENDKIM" -x "$W/verify.conf" -t "$1" -vv 2>&1 | grep -q 'dkim=pass'
}
nb=0
for alg in ed rsa; do
  for canon in relaxed simple; do
    flag=; [ "$canon" = simple ] && flag=--simple
    for case in "${!BODY[@]}"; do
      printf "$HEAD${BODY[$case]}" > "$W/m.eml"
      "$BIN" dkim sign --domain example.com --selector "$alg" --key "$W/keys/example.com.$alg.key" $flag "$W/m.eml" > "$W/s.eml"
      opendkim_verify "$W/s.eml" || fail "$alg $canon $case: opendkim does not verify our signature: $("$OPENDKIM" -x "$W/verify.conf" -t "$W/s.eml" -vv 2>&1 | tail -3)"
      nb=$((nb + 1))
    done
    pass "$alg $canon: ${#BODY[@]} bodies verify with opendkim"
  done
done
printf "${HEAD}Hello Bob.\r\n" > "$W/m.eml"
"$BIN" dkim sign --domain example.com --selector rsa --key "$W/keys/example.com.rsa.key" "$W/m.eml" > "$W/s.eml"
sed -i 's/Hello Bob/Hello Eve/' "$W/s.eml"
if opendkim_verify "$W/s.eml"; then fail "opendkim verified a tampered message"; fi
pass "tampered body fails at opendkim"
echo "interop-dkim: $nb Postern signatures verified by opendkim"

# ---------------------------------------------------------------------------
# C and D. Signed by dkimpy and by opendkim, verified in Postern.
# Key records from dnsmasq on 127.0.0.1 (a free port), split in 255-octet strings.
PORT=$("$PY" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
txt_arg() { printf -- '--txt-record=%s' "$1"; fold -w 255 "$2" | while IFS= read -r c; do printf ',%s' "$c"; done; }
"$DNSMASQ" --keep-in-foreground --port "$PORT" --listen-address 127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --conf-file=/dev/null --log-facility="$W/dnsmasq.log" \
  "$(txt_arg rsa._domainkey.example.com "$W/rsa.txt")" "$(txt_arg ed._domainkey.example.com "$W/ed.txt")" \
  '--txt-record=example.com,v=spf1 ip4:192.0.2.1 -all' '--txt-record=_dmarc.example.com,v=DMARC1; p=reject' &
DNSMASQ_PID=$!
for _ in $(seq 1 100); do grep -q started "$W/dnsmasq.log" 2>/dev/null && break; sleep 0.1; done
grep -q started "$W/dnsmasq.log" || fail "dnsmasq did not start: $(cat "$W/dnsmasq.log" 2>/dev/null)"

# postern_verify FILE: exit 0 when `postern auth check` says the first signature passes.
postern_verify() {
  "$BIN" auth check "$1" --nameserver "127.0.0.1:$PORT" > "$W/check.out" 2>&1 || true
  grep -q '^dkim   #1        pass' "$W/check.out"
}

cat > "$W/sign.py" <<'PY'
# sign.py MESSAGE KEYFILE ed|rsa relaxed|simple SELECTOR: print the message signed by dkimpy.
# Ed25519: dkimpy takes the raw 32-byte seed (base64); our PKCS#8 PEM ends with it.
import sys, base64, dkim
msg = open(sys.argv[1], "rb").read()
keyfile, alg, canon, sel = sys.argv[2:6]
pem = open(keyfile, "rb").read()
if alg == "ed":
    der = base64.b64decode(b"".join(l for l in pem.splitlines() if not l.startswith(b"-----")))
    key, sa = base64.b64encode(der[-32:]), b"ed25519-sha256"
else:
    key, sa = pem, b"rsa-sha256"
c = canon.encode()
sig = dkim.sign(msg, sel.encode(), b"example.com", key, canonicalize=(c, c), signature_algorithm=sa,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig + msg)
PY

# opendkim_sign MESSAGE ed|rsa relaxed|simple: print the message signed by opendkim
# (test mode prints the DKIM-Signature field it would insert, its last line
# without CR: every line is made to end in CRLF).
opendkim_sign() {
  local algname=rsa-sha256
  [ "$2" = ed ] && algname=ed25519-sha256
  printf 'Mode s\nSyslog no\nDomain example.com\nSelector %s\nKeyFile %s\nSignatureAlgorithm %s\nCanonicalization %s/%s\nRequireSafeKeys false\n' \
    "$2" "$W/keys/example.com.$2.key" "$algname" "$3" "$3" > "$W/sign.conf"
  "$OPENDKIM" -x "$W/sign.conf" -t "$1" 2>/dev/null | sed -n '/^DKIM-Signature:/,$p' | sed 's/\r*$/\r/'
  cat "$1"
}

nc=0
nd=0
skipped=0
for alg in ed rsa; do
  for canon in relaxed simple; do
    for case in "${!BODY[@]}"; do
      printf "$HEAD${BODY[$case]}" > "$W/m.eml"
      "$PY" "$W/sign.py" "$W/m.eml" "$W/keys/example.com.$alg.key" "$alg" "$canon" "$alg" > "$W/s.eml" \
        || fail "$alg $canon $case: dkimpy could not sign"
      postern_verify "$W/s.eml" || fail "$alg $canon $case: Postern does not verify dkimpy's signature: $(cat "$W/check.out")"
      nc=$((nc + 1))
      opendkim_sign "$W/m.eml" "$alg" "$canon" > "$W/s.eml"
      grep -q '^DKIM-Signature:' "$W/s.eml" || fail "$alg $canon $case: opendkim did not sign"
      grep -q "c=$canon/$canon" "$W/s.eml" || fail "$alg $canon $case: opendkim signed with another c="
      if [ "$alg/$canon" = ed/simple ]; then
        # opendkim 2.11.0's Ed25519 signatures with simple header
        # canonicalization verify nowhere: not in opendkim itself, not in
        # dkimpy (checked here on every run), so not in Postern either.
        # The body hash is right; the header signature is not. Not ours.
        if opendkim_verify "$W/s.eml"; then fail "opendkim ed25519 simple now verifies: test it in Postern (remove this branch)"; fi
        "$PY" "$W/verify.py" "$W/s.eml" "$W/ed.txt" && fail "dkimpy verifies opendkim's ed25519 simple signature: test it in Postern"
        skipped=$((skipped + 1))
        continue
      fi
      opendkim_verify "$W/s.eml" || fail "$alg $canon $case: opendkim's own signature does not verify in opendkim (script bug)"
      postern_verify "$W/s.eml" || fail "$alg $canon $case: Postern does not verify opendkim's signature: $(cat "$W/check.out")"
      nd=$((nd + 1))
    done
    if [ "$alg/$canon" = ed/simple ]; then
      pass "$alg $canon: ${#BODY[@]} bodies signed by dkimpy verify in Postern (opendkim's skipped, see above)"
    else
      pass "$alg $canon: ${#BODY[@]} bodies signed by dkimpy and by opendkim verify in Postern"
    fi
  done
done
# Tampered: must fail in Postern.
printf "${HEAD}Hello Bob.\r\n \r\n\t\r\n" > "$W/m.eml"
"$PY" "$W/sign.py" "$W/m.eml" "$W/keys/example.com.ed.key" ed relaxed ed > "$W/s.eml"
postern_verify "$W/s.eml" || fail "untampered dkimpy message does not verify: $(cat "$W/check.out")"
sed -i 's/Hello Bob/Hello Eve/' "$W/s.eml"
if postern_verify "$W/s.eml"; then fail "Postern verified a tampered dkimpy message"; fi
grep -q 'body hash did not verify' "$W/check.out" || fail "tampered: unexpected reason: $(cat "$W/check.out")"
opendkim_sign "$W/m.eml" rsa simple > "$W/s.eml"
sed -i 's/^Subject: A subject/Subject: B subject/' "$W/s.eml"
if postern_verify "$W/s.eml"; then fail "Postern verified a tampered opendkim message"; fi
pass "tampered messages fail in Postern"
echo "interop-dkim: $nc dkimpy and $nd opendkim signatures verified by Postern ($skipped opendkim ed25519 simple/simple signatures skipped: opendkim and dkimpy reject them too)"

# ---------------------------------------------------------------------------
# E. The server: `postern serve` with [authentication] verify = true asks the
# same dnsmasq; swaks sends (from 127.0.0.1, which example.com's SPF does not
# allow) a dkimpy-signed message — DKIM aligns, DMARC passes, accepted with our
# Authentication-Results — and an unsigned one claiming example.com — DMARC
# fails under p=reject: 550 5.7.1, nothing queued.
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P25=$(free_port)
cat > "$W/postern.toml" <<TOML
data_dir = "$W/data"
hostname = "mx.interop.test"
[[listener]]
name = "smtp"
address = "127.0.0.1:$P25"
kind = "smtp"
tls = "off"
[relay]
accepted_domains = ["example.net"]
[dns]
nameservers = ["127.0.0.1:$PORT"]
[authentication]
verify = true
[pickup]
enabled = false
# Delivery runs inside serve: a refusing smart host keeps mail queued for the checks.
[[route]]
domains = ["*"]
smarthost = "127.0.0.1:9"
TOML
"$BIN" config check --config "$W/postern.toml" >/dev/null || fail "config check: $("$BIN" config check --config "$W/postern.toml" 2>&1)"
"$BIN" serve --config "$W/postern.toml" >"$W/serve.out" 2>"$W/serve.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "listener smtp" "$W/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q "listener smtp" "$W/serve.out" || fail "server did not start: $(tail -5 "$W/serve.err")"

printf "${HEAD}Hello Bob.\r\n" > "$W/m.eml"
"$PY" "$W/sign.py" "$W/m.eml" "$W/keys/example.com.rsa.key" rsa relaxed rsa > "$W/s.eml"
out=$(swaks --server "127.0.0.1:$P25" --from alice@example.com --to bob@example.net \
  --data "$W/s.eml" 2>&1) || fail "swaks signed message refused: $out"
id=$(printf '%s\n' "$out" | sed -n 's/.*queued as \([0-9A-Z]*\).*/\1/p' | head -1)
[ -n "$id" ] || fail "no queue id in: $out"
"$BIN" queue show "$id" --config "$W/postern.toml" > "$W/show.out" 2>&1 || fail "queue show: $(cat "$W/show.out")"
for want in "spf=fail" "dkim=pass" "header.d=example.com" "dmarc=pass"; do
  grep -q "^auth results: mx.interop.test;.*$want" "$W/show.out" || fail "server: $want missing: $(cat "$W/show.out")"
done
pass "server: a dkimpy-signed message sent by swaks is accepted with Authentication-Results dkim=pass dmarc=pass"

printf "${HEAD}Pay this invoice.\r\n" > "$W/spoof.eml"
out=$(swaks --server "127.0.0.1:$P25" --from ceo@example.com --to bob@example.net \
  --data "$W/spoof.eml" 2>&1 || true)
printf '%s\n' "$out" | grep -q '<\*\* 550 5.7.1 ' || fail "server: the spoof was not refused 550 5.7.1: $out"
pass "server: an unsigned message claiming example.com (p=reject) is refused 550 5.7.1 by the running server"
