#!/bin/bash
# Message tracking cost (issue 12, "Performance"): the same build, the same load as
# scripts/bench/postern-runs.sh (N x 10 KiB, 50 sessions x 200 messages, plain SMTP,
# relayed to an smtpload sink, transcript on, [delivery] mail_log = true), with the
# tracking indexer off and on, alternating, in one call:
#   tracking-off: [tracking] enabled = false (the mail log is still written, and the
#                 Prometheus registry still counts every record: metrics have no switch);
#   tracking-on:  [tracking] enabled = true (the indexer thread tails the mail log into
#                 <data_dir>/tracking.db).
# Each call starts one Postern with a fresh data directory (the old ones are deleted
# only when the script ends, so no deletion falls into a run: docs/benchmarks.md,
# finding 1) and sends RUNS runs of N messages, each run to its own recipient
# (t<call>r<run>@bench.example.net). After each run of either label the script waits
# until the indexer has caught up: its checkpoint is at the end of the mail log, and
# the database holds N `received` and N `delivered` events for the run's recipient
# (read-only, python3's sqlite3 on the file). Then `postern track search --recipient
# R --event received --json --limit 10000` must count N (a run where tracking
# silently did nothing stops the script), and `--limit 1` is timed.
# Per run it prints accept msg/s, e2e msg/s, Postern's CPU ms per message during the
# run (load start until the sink has all N) and including the catch-up, the indexer
# thread's own CPU ms per message (/proc/PID/task/TID/stat of `track-indexer`; "run":
# the part of it spent before the sink had every message), the
# indexer's lag when the sink had everything (bytes of mail log not yet indexed), the
# catch-up time, events and database size; then the medians and on / off.
#
#   scripts/bench/tracking.sh [--bin PATH] [--runs 3] [--rounds 2] [--n 5000]
#       [--conc 50] [--per-conn 200] [--catchup-max 900] [--database-dir DIR]
#       [--only on|off] [--perf-record] [--indexer-idle] [--seed-db FILE] [--keep DIR]
#
# --conc C / --per-conn M: the load (default 50 sessions x 200 messages); fewer
#   sessions give a lower accept rate (used to find the rate at which the indexer
#   stops keeping up).
# --database-dir DIR: each call's tracking database in DIR (e.g. /dev/shm, to tell the
#   indexer's disk writes from its CPU) instead of <data_dir>/tracking.db.
# --only on|off: one label only (e.g. the rate sweep of docs/benchmarks.md).
# --perf-record: `perf record -F 999 -g` of run 2 of the first call of each label
#   (root, --keep): DIR/call-K-LABEL/perf.data.
# --indexer-idle: diagnostic, `chrt --idle` on the track-indexer thread (SCHED_IDLE
#   instead of its nice 10), labels tracking-on-idle: what a change of the
#   indexer's scheduling class would give (docs/benchmarks.md, "Issue 12").
# --seed-db FILE: each tracking-on call starts from a copy of FILE (a database made by
#   `cargo run --release -p postern-trackdb --example gen_events`, e.g. 1 000 000
#   events: an index as a month of traffic leaves it, not an empty one), with
#   `retention = "0"` so that no pruning of the old events falls into the runs.
# --catchup-max S: fail when the indexer has not caught up S seconds after a run.
# --keep DIR: work directory kept afterwards (configs, results, logs; the data
#   directories are deleted); default a temporary one.
# Needs python3 and the harness's smtpload source (/work/shared/bench/smtpload, or
# SMTPLOAD_SRC=DIR), built as scripts/bench/authentication.sh does (patched copy in
# /tmp/postern-authbench-smtpload, offline). Ports: free ones on 127.0.0.1.
set -euo pipefail
BIN=${POSTERN_BIN:-/work/tgt-bench/release/postern}
RUNS=3; ROUNDS=2; N=5000; CONC=50; PER_CONN=200; CATCHUP_MAX=900; KEEP=""; DBDIR=""; ONLY=""
PERF=""; PERFED=""; IDLE=""; SEED=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --conc) CONC=$2; shift 2 ;;
    --per-conn) PER_CONN=$2; shift 2 ;;
    --catchup-max) CATCHUP_MAX=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    --database-dir) DBDIR=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --perf-record) PERF=1; shift ;;
    --indexer-idle) IDLE=1; shift ;;
    --seed-db) SEED=$2; shift 2 ;;
    -h|--help) sed -n '2,50p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
case "$ONLY" in ""|on|off) ;; *) echo "--only: on or off" >&2; exit 2 ;; esac
[ -z "$PERF" ] || [ -n "$KEEP" ] || { echo "--perf-record needs --keep DIR" >&2; exit 2; }
[ -z "$SEED" ] || [ -f "$SEED" ] || { echo "--seed-db: no file $SEED" >&2; exit 2; }
[ -z "$DBDIR" ] || { mkdir -p "$DBDIR"; DBDIR=$(cd "$DBDIR" && pwd); }
[ "$N" -le 10000 ] || { echo "--n: at most 10000 (the check reads one search of 10 000 rows)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$BIN" ] || { echo "no postern binary at $BIN (--bin)" >&2; exit 1; }
if [ -n "$KEEP" ]; then W=$KEEP; rm -rf "$W"; mkdir -p "$W"; else W=$(mktemp -d /tmp/postern-trackbench.XXXXXX); fi
W=$(cd "$W" && pwd)
P=""; SINK=""
cleanup() {
  [ -n "$SINK" ] && kill "$SINK" 2>/dev/null || true
  [ -n "$P" ] && kill "$P" 2>/dev/null || true
  [ -n "$P" ] && wait "$P" 2>/dev/null || true
  if [ -z "$KEEP" ]; then rm -rf "$W"; else rm -rf "$W"/call-*/data; fi
  [ -z "$DBDIR" ] || rm -f "$DBDIR"/postern-trackbench-$$-*.db*
}
trap cleanup EXIT
fail() { echo "tracking.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- smtpload (as authentication.sh: the patched copy; --to is all this script needs) ---
L=$("$HERE/smtpload-build.sh") || fail "cannot build smtpload"

D=$W/certs
mkdir -p "$D"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=sut.bench.invalid" -addext "subjectAltName=DNS:sut.bench.invalid" \
  -keyout "$D/key.pem" -out "$D/cert.pem" 2>/dev/null
chmod 600 "$D/key.pem"

# The indexer's state, read-only: checkpoint vs the mail log's size, and the run's rows.
# With WANT and MAX: polls every 50 ms until the run's N received and N delivered rows
# are there and the checkpoint is at the end of the mail log ("caught up"; "t" is when),
# or MAX seconds have passed ("caught_up": false).
cat > "$W/state.py" <<'PY'
import json, os, sqlite3, sys, time
db, log, rcpt = sys.argv[1:4]
want = int(sys.argv[4]) if len(sys.argv) > 4 else None
deadline = time.time() + (float(sys.argv[5]) if len(sys.argv) > 5 else 0)
def state():
    out = {"log": os.path.getsize(log) if os.path.exists(log) else 0, "offset": -1,
           "received": 0, "delivered": 0, "events": 0}
    if os.path.exists(db):
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        row = c.execute("SELECT offset FROM checkpoint WHERE id = 1").fetchone()
        out["offset"] = row[0] if row else 0
        for ev in ("received", "delivered"):
            out[ev] = c.execute("SELECT count(*) FROM recipients r JOIN events e ON e.id = r.event "
                                "WHERE r.rcpt = ? AND e.event = ?", (rcpt, ev)).fetchone()[0]
        out["events"] = c.execute("SELECT max(id) FROM events").fetchone()[0] or 0
        c.close()
    out["t"] = time.time()
    return out
s = state()
while want is not None:
    s["caught_up"] = s["received"] == want and s["delivered"] == want and s["offset"] == s["log"]
    if s["caught_up"] or time.time() > deadline:
        break
    time.sleep(0.05)
    s = state()
print(json.dumps(s))
PY
state() { python3 "$W/state.py" "$DB" "$MAILLOG" "$@"; }
jget() { python3 -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu() { awk '{print $14 + $15}' "/proc/$P/stat"; }
indexer_ticks() { # utime + stime of the track-indexer thread (0 when there is none)
  local t
  for t in /proc/"$P"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = track-indexer ] && { awk '{print $14 + $15}' "$t/stat"; return; }
  done
  echo 0
}

CALL=0
call() { # label: one Postern, RUNS runs
  local label=$1 enabled=false port sport r rcpt c0 c1 c2 i0 i1 i2 t0 t1 t2 st lag1 n cnt q0 q1 size
  [ "$label" = tracking-off ] || enabled=true
  CALL=$((CALL + 1))
  local C="$W/call-$CALL-$label"
  mkdir -p "$C"
  port=$(free_port); sport=$(free_port)
  cat > "$C/postern.toml" <<CF
# generated by scripts/bench/tracking.sh (the settings of scripts/bench/postern-runs.sh)
data_dir = "$C/data"
hostname = "sut.bench.invalid"
[[listener]]
name = "bench"
address = "127.0.0.1:$port"
kind = "smtp"
tls = "optional"
auth = "off"
hostname = "sut.bench.invalid"
[limits]
max_connections = 5000
max_connections_per_ip = 5000
[[tls.certificate]]
cert = "$W/certs/cert.pem"
key = "$W/certs/key.pem"
hostnames = ["sut.bench.invalid"]
[relay]
accepted_domains = ["bench.example.net"]
relay_networks = ["127.0.0.0/8"]
[log]
level = "warn"
transcript = true
[delivery]
hostname = "sut.bench.invalid"
relayhost = "127.0.0.1:$sport"
relayhost_tls = "none"
mail_log = true
[dns]
nameservers = ["127.0.0.1:53"]
[tracking]
enabled = $enabled
CF
  DB="$C/data/tracking.db"
  if [ -n "$DBDIR" ]; then
    DB="$DBDIR/postern-trackbench-$$-$CALL.db"
    printf 'database = "%s"\n' "$DB" >> "$C/postern.toml"
  fi
  if [ -n "$SEED" ] && [ "$enabled" = true ]; then
    mkdir -p "$(dirname "$DB")"
    cp "$SEED" "$DB"
    printf 'retention = "0"\n' >> "$C/postern.toml"
  fi
  "$BIN" config check --config "$C/postern.toml" > /dev/null 2>&1 \
    || fail "$label: config check: $("$BIN" config check --config "$C/postern.toml" 2>&1 | tail -5)"
  MAILLOG="$C/data/log/mail.log"
  NO_COLOR=1 nice -n -10 "$BIN" serve --config "$C/postern.toml" > "$C/stdout.log" 2> "$C/stderr.log" &
  P=$!
  for _ in $(seq 1 300); do grep -q "listener bench" "$C/stdout.log" 2> /dev/null && break; sleep 0.1; done
  grep -q "listener bench" "$C/stdout.log" || fail "$label: postern did not start: $(tail -5 "$C/stderr.log")"
  if [ "$label" = tracking-on-idle ]; then
    local t tid=""
    for t in /proc/"$P"/task/*; do [ "$(cat "$t/comm")" = track-indexer ] && tid=${t##*/}; done
    [ -n "$tid" ] || fail "$label: no track-indexer thread"
    chrt --idle -p 0 "$tid" || fail "$label: chrt --idle on thread $tid"
  fi
  for r in $(seq 1 "$RUNS"); do
    rcpt="t${CALL}r${r}@bench.example.net"
    nice -n -10 "$L" sink --addr "127.0.0.1:$sport" --expect "$N" --idle-timeout 60 > "$C/sink.out" 2> /dev/null &
    SINK=$!
    for _ in $(seq 1 50); do ss -ltn | grep -q ":$sport " && break; sleep 0.1; done
    PR=""
    if [ -n "$PERF" ] && [ "$r" = 2 ] && [[ " $PERFED " != *" $label "* ]]; then
      perf record -F 999 -g -p "$P" -o "$C/perf.data" > /dev/null 2>&1 & PR=$!
      PERFED="$PERFED $label"
    fi
    c0=$(cpu); i0=$(indexer_ticks); t0=$(date +%s.%N)
    nice -n -10 "$L" send --addr "127.0.0.1:$port" --count "$N" --conc "$CONC" --per-conn "$PER_CONN" \
      --size 10240 --to "$rcpt" > "$C/send.out"
    wait "$SINK"; SINK=""
    t1=$(date +%s.%N); c1=$(cpu); i1=$(indexer_ticks)
    [ -n "$PR" ] && { kill -INT "$PR"; wait "$PR" || true; }
    if [ "$enabled" = true ]; then
      st=$(state "$rcpt"); lag1=$(( $(jget "$st" log) - $(jget "$st" offset) ))
      # Caught up: N received and N delivered rows for this run's recipient and the
      # checkpoint at the end of the mail log.
      st=$(state "$rcpt" "$N" "$CATCHUP_MAX")
      [ "$(jget "$st" caught_up)" = True ] \
        || fail "$label: run $r: the indexer did not catch up in $CATCHUP_MAX s: $st"
      t2=$(jget "$st" t); c2=$(cpu); i2=$(indexer_ticks)
      # The brief's check, with the CLI: every message of the run is found by recipient.
      cnt=$("$BIN" track search --database "$DB" --recipient "$rcpt" --event received --json --limit 10000 \
        | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
      [ "$cnt" = "$N" ] || fail "$label: run $r: track search found $cnt received events for $rcpt, want $N"
      q0=$(date +%s.%N)
      "$BIN" track search --database "$DB" --recipient "$rcpt" --limit 1 > "$C/search-$r.txt"
      q1=$(date +%s.%N)
      grep -q "$rcpt" "$C/search-$r.txt" || fail "$label: run $r: track search --limit 1 does not show $rcpt"
      size=$(( $(stat -c %s "$DB") + $(stat -c %s "$DB-wal" 2>/dev/null || echo 0) ))
    else
      [ ! -e "$DB" ] || fail "$label: $DB exists with [tracking] enabled = false"
      st=$(state "$rcpt"); lag1=0; t2=$t1; c2=$c1; i2=$i1; q0=0; q1=0; size=0
    fi
    python3 - "$label" "$C/send.out" "$N" "$t0" "$t1" "$t2" "$c0" "$c1" "$c2" "$i0" "$i2" "$lag1" \
      "$q0" "$q1" "$size" "$st" "$i1" <<'PY' | tee -a "$W/results"
import json, sys
label, out, n, t0, t1, t2, c0, c1, c2, i0, i2, lag, q0, q1, size, st, i1 = sys.argv[1:]
load = json.loads(open(out).read().strip().splitlines()[-1])
n = int(n); t0, t1, t2 = float(t0), float(t1), float(t2)
st = json.loads(st)
print(f"{label} accept {load['rate_per_s']:.0f}/s, e2e {n / (t1 - t0):.0f}/s, "
      f"cpu {(float(c1) - float(c0)) * 10 / n:.3f} ms/msg, with catch-up {(float(c2) - float(c0)) * 10 / n:.3f} ms/msg, "
      f"indexer {(float(i2) - float(i0)) * 10 / n:.3f} ms/msg (run {(float(i1) - float(i0)) * 10 / n:.3f}), lag {int(lag) / 1024:.0f} KiB, "
      f"catch-up {t2 - t1:.1f} s, search {(float(q1) - float(q0)) * 1000:.0f} ms, "
      f"events {st['events']}, db {int(size) / 1048576:.1f} MiB, failed {load.get('fail')}")
PY
    tail -1 "$W/results" | grep -q 'failed 0$' \
      || fail "$label: run $r: messages failed: $(tail -c 300 "$C/send.out")"
  done
  kill "$P"; wait "$P" || true; P=""
}

for _ in $(seq 1 "$ROUNDS"); do
  [ "$ONLY" = on ] || call tracking-off
  [ "$ONLY" = off ] || call tracking-on
  [ -z "$IDLE" ] || call tracking-on-idle
done
python3 - "$W/results" <<'PY'
import re, statistics, sys
rows = {}
pat = (r"([\w-]+) accept (\d+)/s, e2e (\d+)/s, cpu ([\d.]+) ms/msg, with catch-up ([\d.]+) ms/msg, "
       r"indexer ([\d.]+) ms/msg \(run [\d.]+\), lag ([\d.]+) KiB, catch-up ([\d.]+) s")
for line in open(sys.argv[1]):
    m = re.match(pat, line)
    if m:
        rows.setdefault(m[1], []).append([float(x) for x in m.groups()[1:]])
names = ["accept/s", "e2e/s", "cpu ms/msg", "with catch-up ms/msg", "indexer ms/msg", "lag KiB", "catch-up s"]
med = {k: [statistics.median(x[i] for x in v) for i in range(len(names))] for k, v in rows.items()}
print("\nmedians over", {k: len(v) for k, v in rows.items()}, "runs")
for k in ("tracking-off", "tracking-on", "tracking-on-idle"):
    if k in med:
        print(f"  {k:12}: " + ", ".join(f"{n} {v:.3f}" if "ms/msg" in n else f"{n} {v:.1f}" for n, v in zip(names, med[k])))
for k in ("tracking-on", "tracking-on-idle"):
    if k not in med or "tracking-off" not in med:
        continue
    on, off = med[k], med["tracking-off"]
    print(f"  {k} / off: accept {on[0] / off[0] * 100:.1f} %, e2e {on[1] / off[1] * 100:.1f} %, "
          f"cpu {on[2] - off[2]:+.3f} ms/msg during the run, {on[3] - off[3]:+.3f} ms/msg with the catch-up")
PY
