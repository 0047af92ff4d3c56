#!/bin/bash
# Gateway admission cost (issue 9, "Performance"): the same build, the same load
# (scripts/bench/postern-runs.sh: N x 10 KiB, 50 sessions x 200 messages, relayed
# to a sink), with and without admission, alternating, in one call:
#   off: no sender groups (the client is a relay network, as in the harness);
#   on:  1 000 sender-group match entries (10 groups x 100 addresses that do not
#        match), two DNS lists asked for every session (answered NXDOMAIN by a
#        local dnsmasq, then cached by the resolver), a final ALL group whose
#        policy has every rate limit on (high enough not to refuse), greylisting
#        off; the client is NOT a relay network, so the limits apply to it.
# Prints each run (accept msg/s, e2e msg/s, CPU ms per message) and the medians.
#
#   scripts/bench/admission.sh [--bin PATH] [--runs 3] [--rounds 2] [--n 10000]
# Needs dnsmasq (apt-get install dnsmasq-base) and the harness's smtpload.
set -euo pipefail
BIN=${POSTERN_BIN:-/work/tgt-bench/release/postern}
RUNS=3; ROUNDS=2; N=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/postern-admission.XXXXXX)
command -v dnsmasq > /dev/null || { echo "dnsmasq is not installed (apt-get install dnsmasq-base)" >&2; exit 1; }
dnsmasq --keep-in-foreground --port=25353 --listen-address=127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --local=/bl1.bench.invalid/ --local=/bl2.bench.invalid/ \
  --pid-file="$W/dnsmasq.pid" 2> "$W/dnsmasq.log" &
DNSMASQ=$!
trap 'kill $DNSMASQ 2>/dev/null || true; rm -rf "$W"' EXIT
{
  echo '[[dns_list]]'; echo 'zone = "bl1.bench.invalid"'; echo 'weight = 2'
  echo '[[dns_list]]'; echo 'zone = "bl2.bench.invalid"'; echo 'weight = 1'
  for g in $(seq 0 9); do
    echo '[[sender_group]]'
    echo "name = \"LIST$g\""
    printf 'match = ['
    for i in $(seq 0 99); do printf '"10.%d.%d.%d", ' "$g" "$((i / 250))" "$((i % 250 + 1))"; done
    echo '"dnsbl:bl1.bench.invalid=127.0.0.2"]'
    echo 'policy = "BLOCKED"'
  done
  echo '[[sender_group]]'; echo 'name = "SCORED"'; echo 'match = ["dnsbl-score>=2"]'; echo 'policy = "BLOCKED"'
  echo '[[sender_group]]'; echo 'name = "ALL"'; echo 'match = ["all"]'; echo 'policy = "LIMITED"'
  echo '[[mail_flow_policy]]'; echo 'name = "BLOCKED"'; echo 'action = "reject"'
  echo '[[mail_flow_policy]]'; echo 'name = "LIMITED"'; echo 'action = "accept"'
  echo 'max_messages_per_session = 100000'
  echo 'max_recipients_per_message = 100'
  echo 'max_concurrent_connections_per_ip = 5000'
  echo 'max_connections_per_minute_per_ip = 1000000'
  echo 'max_recipients_per_hour_per_ip = 100000000'
  echo 'max_messages_per_hour_per_sender = 100000000'
  echo 'max_invalid_recipients_per_hour = 1000'
} > "$W/admission.toml"
run() { # label, extra args…
  local label=$1; shift
  "$HERE/postern-runs.sh" --bin "$BIN" --runs "$RUNS" --n "$N" --dir "$W/runs-$label" "$@" \
    | sed -n "s/^run [0-9]*: /$label /p" | tee -a "$W/results"
}
for _ in $(seq 1 "$ROUNDS"); do
  run off
  run on --extra "$W/admission.toml" --relay-networks '[]' --nameserver 127.0.0.1:25353
  t="$W/runs-on/data/log/transcript.log"
  echo "  (on: $(grep -c 'sender group ALL (matched by all), policy LIMITED, dnsbl score 0' "$t" || true) sessions classified ALL with both DNS lists asked)"
done
python3 - "$W/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+) accept (\d+)/s, e2e (\d+)/s, cpu ([\d.]+) ms/msg", line)
    if m:
        rows.setdefault(m[1], []).append((int(m[2]), int(m[3]), float(m[4])))
print("\nmedians over", {k: len(v) for k, v in rows.items()}, "runs")
for k in ("off", "on"):
    if k in rows:
        a, e, c = (statistics.median(x[i] for x in rows[k]) for i in range(3))
        print(f"  admission {k:3}: accept {a:6.0f}/s  e2e {e:6.0f}/s  cpu {c:.3f} ms/msg")
if "off" in rows and "on" in rows:
    a0 = statistics.median(x[0] for x in rows["off"]); a1 = statistics.median(x[0] for x in rows["on"])
    print(f"  accept on/off: {a1 / a0 * 100:.1f} %")
PY
