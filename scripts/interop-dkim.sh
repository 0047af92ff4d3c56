#!/usr/bin/env bash
# DKIM interop: messages signed by `postern dkim sign` must verify with dkimpy
# (Debian python3-dkim, an independent implementation), the key record served
# from the key `postern dkim keygen` printed (a dnsfunc, no real DNS).
# Cases: Ed25519 and RSA-2048 keys x relaxed and simple canonicalization x
# bodies with trailing blank lines, whitespace-only trailing lines (mail-auth
# 0.13.3's relaxed-body bug), long folded headers, an 8-bit body, an empty
# body; plus a tampered message that must FAIL (so the check can fail).
# Installs python3-dkim and python3-nacl (Ed25519) from Debian when missing.
# Usage: scripts/interop-dkim.sh [path/to/postern]   (default: target/debug/postern)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/postern}
[ -x "$BIN" ] || cargo build --locked -p postern
PY=/usr/bin/python3 # the Debian interpreter that sees python3-dkim
if ! "$PY" -c 'import dkim, nacl' 2>/dev/null; then
  (apt-get install -y python3-dkim python3-nacl || (apt-get update && apt-get install -y python3-dkim python3-nacl)) >/dev/null
fi

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
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
