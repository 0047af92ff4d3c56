#!/bin/bash
# Mail authentication cost (issue 10, "Performance"): the same build, the same load
# (scripts/bench/postern-runs.sh: N x ~10 KiB, 50 sessions x 200 messages, relayed to
# a sink), with and without authentication, alternating, in one call:
#   verify-off / verify-on: the client is NOT a relay network (verification is only
#     for other people's mail); every message carries one valid RSA-2048
#     DKIM-Signature (relaxed/relaxed) and a From in bench.example.com; a local
#     dnsmasq serves SPF "v=spf1 ip4:127.0.0.0/8 -all" (MAIL FROM domain and HELO
#     name), the DKIM key record and "_dmarc" "v=DMARC1; p=reject", TTL one hour,
#     so the caches are warm after the first message. [authentication] verify =
#     false / true.
#   sign-off / sign-ed25519 / sign-rsa2048: the client is a relay network (its mail
#     is signed by default: dkim_sign includes "relay-clients"); the same message
#     unsigned; no [[dkim]] / an Ed25519 [[dkim]] key / an RSA-2048 one for
#     bench.example.com.
# Before the runs it checks that the test message passes `postern auth check`
# (spf, dkim, dmarc = pass) against the dnsmasq; after every run the first message
# the sink received is checked: Authentication-Results with spf, dkim and dmarc =
# pass for verify-on (and none for verify-off), a DKIM-Signature of the right
# algorithm that `postern auth check` verifies for sign-*; and the transcript must
# hold one "spf=pass … dkim=pass … dmarc=pass" verdict / one signature per message. A run where
# authentication silently did nothing stops the script.
# Prints each run (accept msg/s, e2e msg/s, CPU ms per message), the medians and
# the differences on - off in CPU ms per message (the issue's figure).
#
#   scripts/bench/authentication.sh [--bin PATH] [--runs 3] [--rounds 2] [--n 10000]
#       [--only verify|sign] [--keep DIR] [--perf-record LABEL] [--perf-stat]
#
# --keep DIR: work directory kept afterwards (keys, messages, configs, results,
#   the sink's saved messages, dnsmasq's query log); default a temporary one.
# --perf-record LABEL: `perf record -g` of run 2 of LABEL's first call (needs root
#   and --keep): DIR/runs-LABEL/perf.data.
# --perf-stat: `perf stat` of run 2 of every label's first call (root): context
#   switches, futex and file syscalls per message, printed under the run.
# Needs dnsmasq (apt-get install dnsmasq-base), python3 and the harness's smtpload
# source (/work/shared/bench/smtpload, or SMTPLOAD_SRC=DIR): it is copied to
# /tmp/postern-authbench-smtpload, patched with scripts/bench/smtpload-message.patch
# (send a given file as every message; sink --save) and built there (offline).
set -euo pipefail
BIN=${POSTERN_BIN:-/work/tgt-bench/release/postern}
RUNS=3; ROUNDS=2; N=10000; ONLY=""; KEEP=""; PERF=""; PSTAT=""; STATTED=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    --perf-record) PERF=$2; shift 2 ;;
    --perf-stat) PSTAT=1; shift ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
case "$ONLY" in ""|verify|sign) ;; *) echo "--only: verify or sign" >&2; exit 2 ;; esac
[ -z "$PERF" ] || [ -n "$KEEP" ] || { echo "--perf-record needs --keep DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$BIN" ] || { echo "no postern binary at $BIN (--bin)" >&2; exit 1; }
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || { echo "dnsmasq is not installed (apt-get install dnsmasq-base)" >&2; exit 1; }
if [ -n "$KEEP" ]; then W=$KEEP; rm -rf "$W"; mkdir -p "$W"; else W=$(mktemp -d /tmp/postern-authbench.XXXXXX); fi
DNSMASQ_PID=""
cleanup() {
  [ -n "$DNSMASQ_PID" ] && kill "$DNSMASQ_PID" 2>/dev/null || true
  if [ -z "$KEEP" ]; then rm -rf "$W"; else rm -rf "$W"/runs-*/data "$W"/runs-*/data.old.*; fi
}
trap cleanup EXIT
fail() { echo "authentication.sh: $*" >&2; exit 1; }

# --- smtpload with --message / --save ------------------------------------------
L=$("$HERE/smtpload-build.sh") || fail "cannot build smtpload"

# --- keys, DNS, messages --------------------------------------------------------
DOM=bench.example.com
record_of() { sed -e 's/^[^"]*"//' -e 's/"$//' -e 's/" "//g'; }
"$BIN" dkim keygen --domain $DOM --selector rsa --algorithm rsa2048 --out "$W/keys" 2> /dev/null | record_of > "$W/rsa.txt"
"$BIN" dkim keygen --domain $DOM --selector ed --algorithm ed25519 --out "$W/keys" 2> /dev/null | record_of > "$W/ed.txt"
grep -q '^v=DKIM1; k=rsa; p=MII' "$W/rsa.txt" || fail "rsa record: $(cat "$W/rsa.txt")"
grep -q '^v=DKIM1; k=ed25519; p=' "$W/ed.txt" || fail "ed25519 record: $(cat "$W/ed.txt")"
PORT=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
txt_arg() { printf -- '--txt-record=%s' "$1"; fold -w 255 "$2" | while IFS= read -r c; do printf ',%s' "$c"; done; }
echo "v=spf1 ip4:127.0.0.0/8 -all" > "$W/spf.txt"
echo "v=DMARC1; p=reject" > "$W/dmarc.txt"
# --local-ttl: answers from the configuration get a TTL of 0 otherwise (nothing cached).
"$DNSMASQ" --keep-in-foreground --port "$PORT" --listen-address 127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --conf-file=/dev/null --local=/$DOM/ --local=/bench.invalid/ \
  --local-ttl=3600 --log-queries --log-facility="$W/dnsmasq.log" \
  "$(txt_arg $DOM "$W/spf.txt")" "$(txt_arg client.$DOM "$W/spf.txt")" \
  "$(txt_arg _dmarc.$DOM "$W/dmarc.txt")" \
  "$(txt_arg rsa._domainkey.$DOM "$W/rsa.txt")" "$(txt_arg ed._domainkey.$DOM "$W/ed.txt")" &
DNSMASQ_PID=$!
for _ in $(seq 1 100); do grep -q started "$W/dnsmasq.log" 2> /dev/null && break; sleep 0.1; done
grep -q started "$W/dnsmasq.log" || fail "dnsmasq did not start: $(cat "$W/dnsmasq.log" 2> /dev/null)"
queries() { grep -c ' query\[' "$W/dnsmasq.log" || true; }

# The message smtpload would send (same headers, ~10 KiB of 76-column text).
python3 - "$W/message.eml" $DOM <<'PY'
import sys
out, dom = sys.argv[1:]
alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.;:-"
x, body, line = 0x12345678, bytearray(), bytearray()
while len(body) < 10240:
    x ^= (x << 13) & 0xFFFFFFFF; x ^= x >> 17; x ^= (x << 5) & 0xFFFFFFFF
    line.append(alphabet[x % len(alphabet)])
    if len(line) == 76:
        body += line + b"\r\n"; line.clear()
head = (f"From: Bench Sender <sender@{dom}>\r\nTo: <rcpt@bench.example.net>\r\n"
        f"Subject: bench message\r\nMessage-ID: <authbench.1@{dom}>\r\n"
        "Date: Sun, 06 Dec 2026 18:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
open(out, "wb").write(head + bytes(body))
PY
"$BIN" dkim sign --domain $DOM --selector rsa --key "$W/keys/$DOM.rsa.key" "$W/message.eml" > "$W/signed.eml"
tr -d '\r\n\t ' < "$W/signed.eml" | grep -q 'a=rsa-sha256;' || fail "postern dkim sign gave no rsa-sha256 signature"
check() { # FILE: postern auth check as the server sees the message
  "$BIN" auth check "$1" --ip 127.0.0.1 --helo client.$DOM --mail-from sender@$DOM \
    --nameserver "127.0.0.1:$PORT" --authserv-id sut.bench.invalid 2>&1
}
check "$W/signed.eml" > "$W/signed.check" || true
for m in '^spf +mailfrom +pass' '^dkim +#1 +pass .*a=rsa-sha256' '^dmarc +pass'; do
  grep -Eq "$m" "$W/signed.check" || fail "the test message does not pass /$m/: $(cat "$W/signed.check")"
done
echo "test message: $(wc -c < "$W/signed.eml") octets signed, postern auth check:"
sed 's/^/  /' "$W/signed.check"

# --- configurations ---------------------------------------------------------------
printf '[authentication]\nverify = false\n' > "$W/verify-off.toml"
printf '[authentication]\nverify = true\n' > "$W/verify-on.toml"
: > "$W/sign-off.toml"
for a in ed25519 rsa2048; do
  sel=ed; [ "$a" = rsa2048 ] && sel=rsa
  printf '[[dkim]]\ndomain = "%s"\nselector = "%s"\nkey = "%s"\n' $DOM $sel "$W/keys/$DOM.$sel.key" > "$W/sign-$a.toml"
done

# --- runs -----------------------------------------------------------------------------
run() { # label, message file, extra args...
  local label=$1 msg=$2; shift 2
  local q0 q1 out
  if [ "$label" = "$PERF" ] && [ "$RUNS" -ge 2 ]; then set -- "$@" --perf-record 2; PERF=""; fi
  if [ -n "$PSTAT" ] && [ "$RUNS" -ge 2 ] && [[ " $STATTED " != *" $label "* ]]; then
    set -- "$@" --perf-stat 2; STATTED="$STATTED $label"
  fi
  q0=$(queries)
  out=$("$HERE/postern-runs.sh" --bin "$BIN" --runs "$RUNS" --n "$N" --dir "$W/runs-$label" \
    --smtpload "$L" --message "$msg" --sink-save "$W/sink-$label.eml" \
    --nameserver "127.0.0.1:$PORT" --extra "$W/$label.toml" "$@") \
    || fail "$label: postern-runs.sh failed: $out; $(tail -c 600 "$W/runs-$label/send.out" 2> /dev/null); $(grep -v ' WARN tls' "$W/runs-$label/stderr.log" | tail -3)"
  q1=$(queries)
  echo "$out" | sed -n "s/^run [0-9]*: /$label /p" | tee -a "$W/results"
  echo "$out" | grep ' per msg$' || true
  echo "$out" | grep -q 'failed 0,' || fail "$label: messages failed: $out"
  verify_run "$label"
  echo "  ($label: $((q1 - q0)) DNS queries to dnsmasq during ${RUNS} x $N messages)"
}
verify_run() { # label: did authentication really happen, for every message?
  local label=$1 saved="$W/sink-$1.eml" want=$((RUNS * N)) n
  local T="$W/runs-$label/data/log/transcript.log"
  [ -s "$saved" ] || fail "$label: the sink saved no message"
  case "$label" in
    verify-on)
      grep -Eiq '^Authentication-Results: sut\.bench\.invalid;' "$saved" || fail "$label: no Authentication-Results in $saved"
      for m in 'spf=pass' 'dkim=pass' 'dmarc=pass'; do
        tr -d '\r' < "$saved" | awk '/^Authentication-Results:/{p=1; print; next} p && /^[ \t]/{print; next} {p=0}' \
          | grep -q "$m" || fail "$label: no $m in the Authentication-Results of $saved"
      done
      n=$(grep -Ec 'authentication: spf=pass .*dkim=pass \(d=bench\.example\.com s=rsa\).*dmarc=pass' "$T" || true)
      [ "$n" -ge "$want" ] || fail "$label: $n messages with spf, dkim and dmarc = pass in the transcript, want $want ($T)"
      ;;
    verify-off)
      ! grep -qi '^Authentication-Results:' "$saved" || fail "$label: verification ran with verify = false"
      ;;
    sign-off)
      [ "$(grep -ci '^DKIM-Signature:' "$saved")" = 0 ] || fail "$label: signed without a key"
      ;;
    sign-*)
      local alg=rsa-sha256; [ "$label" = sign-ed25519 ] && alg=ed25519-sha256
      [ "$(grep -ci '^DKIM-Signature:' "$saved")" = 1 ] || fail "$label: not one DKIM-Signature in $saved"
      tr -d '\r\n\t ' < "$saved" | grep -q "a=$alg;" || fail "$label: the signature is not $alg"
      check "$saved" > "$W/sink-$label.check" || true
      grep -Eq '^dkim +#1 +pass' "$W/sink-$label.check" || fail "$label: the relayed signature does not verify: $(cat "$W/sink-$label.check")"
      n=$(grep -c 'DKIM-signed d=bench.example.com' "$T" || true)
      [ "$n" -ge "$want" ] || fail "$label: $n messages signed in the transcript, want $want"
      ;;
  esac
}
for _ in $(seq 1 "$ROUNDS"); do
  if [ "$ONLY" != sign ]; then
    run verify-off "$W/signed.eml" --relay-networks '[]'
    run verify-on "$W/signed.eml" --relay-networks '[]'
  fi
  if [ "$ONLY" != verify ]; then
    run sign-off "$W/message.eml"
    run sign-ed25519 "$W/message.eml"
    run sign-rsa2048 "$W/message.eml"
  fi
done
python3 - "$W/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"([\w-]+) accept (\d+)/s, e2e (\d+)/s, cpu ([\d.]+) ms/msg", line)
    if m:
        rows.setdefault(m[1], []).append((int(m[2]), int(m[3]), float(m[4])))
med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in rows.items()}
print("\nmedians over", {k: len(v) for k, v in rows.items()}, "runs")
for k in ("verify-off", "verify-on", "sign-off", "sign-ed25519", "sign-rsa2048"):
    if k in med:
        a, e, c = med[k]
        print(f"  {k:13}: accept {a:6.0f}/s  e2e {e:6.0f}/s  cpu {c:.3f} ms/msg")
for on, off in (("verify-on", "verify-off"), ("sign-ed25519", "sign-off"), ("sign-rsa2048", "sign-off")):
    if on in med and off in med:
        print(f"  {on} - {off}: cpu {med[on][2] - med[off][2]:+.3f} ms/msg, "
              f"accept {med[on][0] / med[off][0] * 100:.1f} %, e2e {med[on][1] / med[off][1] * 100:.1f} % of off")
PY
