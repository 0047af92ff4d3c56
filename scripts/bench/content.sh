#!/bin/bash
# Content policy cost (issue 11, "Performance"): the same build, the same load
# (scripts/bench/postern-runs.sh: N x ~10 KiB, 50 sessions, relayed to a sink), with
# and without the content policy, alternating, in one call. Every message is the
# same 10 563-octet multipart/mixed file (English prose, a base64 PDF attachment),
# written with the dictionaries and rules by scripts/bench/content-data.py.
#   filters-off: no [filters];
#   filters-on:  [filters] message_rules = 50 rules (envelope, header, subject,
#                body, attachment, size, session and verdict tests, sender and
#                recipient dictionary membership, body `in dictionary` and
#                `dictionary score` over a 100 000-entry dictionary), none of
#                whose final actions matches the message: it is delivered;
#   filters-tag: the same rules, the dictionary with one body word in place of
#                its last entry: rule 50 adds "X-Postern-Listed: body", which the
#                sink must see (a run where the filters silently did nothing
#                stops the script);
#   engines-off / rspamd / clamav / both: no engine, [rspamd], [clamav], both;
#                rspamd 3.4 and clamd from the Debian packages, started here on
#                127.0.0.1 free ports in private directories (as
#                crates/engines/tests/support/mod.rs does: rspamd's stock
#                configuration, its resolver a local responder that answers
#                NXDOMAIN; clamd with a one-line .hdb for EICAR). After each call
#                the sink's message must carry our X-Spam-Status (rspamd) and the
#                engines' logs must count one scan per message.
#   lat-*:       the engine configurations again with ONE session (--conc 1,
#                LAT_N messages): per-message latency (MAIL FROM to the 250 after
#                DATA, the load tool's p50/p99) without queueing, so on - off is
#                the latency an engine call adds.
# Prints each run (accept msg/s, e2e msg/s, Postern CPU ms per message, latency),
# the engines' own CPU per message, the medians and the differences on - off.
#
#   scripts/bench/content.sh [--bin PATH] [--runs 3] [--rounds 2] [--n 10000]
#       [--lat-n 1000] [--only filters|engines|latency] [--keep DIR]
#       [--perf-record LABEL] [--perf-stat]
#
# --keep DIR: work directory kept afterwards (data, configs, results, the sink's
#   saved messages, the engines' logs); default a temporary one.
# --perf-record LABEL: `perf record -g` of run 2 of LABEL's first call (root, --keep).
# --perf-stat: `perf stat` of run 2 of every label's first call (root).
# Needs python3, rspamd and clamav-daemon (apt-get install rspamd clamav-daemon; the
# engine labels are skipped without them) and the harness's smtpload source
# (/work/shared/bench/smtpload, or SMTPLOAD_SRC=DIR): copied to
# /tmp/postern-authbench-smtpload, patched with scripts/bench/smtpload-message.patch
# and built there (offline), as scripts/bench/authentication.sh does.
set -euo pipefail
BIN=${POSTERN_BIN:-/work/tgt-bench/release/postern}
RUNS=3; ROUNDS=2; N=10000; LAT_N=1000; ONLY=""; KEEP=""; PERF=""; PSTAT=""; STATTED=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --lat-n) LAT_N=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    --perf-record) PERF=$2; shift 2 ;;
    --perf-stat) PSTAT=1; shift ;;
    -h|--help) sed -n '2,44p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
case "$ONLY" in ""|filters|engines|latency) ;; *) echo "--only: filters, engines or latency" >&2; exit 2 ;; esac
[ -z "$PERF" ] || [ -n "$KEEP" ] || { echo "--perf-record needs --keep DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$BIN" ] || { echo "no postern binary at $BIN (--bin)" >&2; exit 1; }
if [ -n "$KEEP" ]; then W=$KEEP; rm -rf "$W"; mkdir -p "$W"; else W=$(mktemp -d /tmp/postern-contentbench.XXXXXX); fi
W=$(cd "$W" && pwd)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -z "$KEEP" ]; then rm -rf "$W"; else rm -rf "$W"/runs-*/data "$W"/runs-*/data.old.*; fi
}
trap cleanup EXIT
fail() { echo "content.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- smtpload with --message / --save (as authentication.sh) ----------------------
L=$("$HERE/smtpload-build.sh") || fail "cannot build smtpload"

# --- data and configurations --------------------------------------------------------
python3 "$HERE/content-data.py" "$W"
filters_toml() { # dictionary file
  cat <<EOF
[[quarantine]]
name = "attachments"
retention = "7d"
[[quarantine]]
name = "dlp"
retention = "30d"
[[dictionary]]
name = "blocklist"
path = "$W/$1"
[[dictionary]]
name = "ex-employees"
path = "$W/ex-employees.txt"
[[dictionary]]
name = "partners"
path = "$W/partners.txt"
[[dictionary]]
name = "confidential"
path = "$W/confidential.txt"
[filters]
message_rules = "$W/message.rules"
EOF
}
: > "$W/filters-off.toml"
filters_toml blocklist.txt > "$W/filters-on.toml"
filters_toml blocklist-tag.txt > "$W/filters-tag.toml"
: > "$W/engines-off.toml"

# --- engines --------------------------------------------------------------------------
HAVE_ENGINES=""
RSPAMD_PID=""; CLAMD_PID=""
tree_ticks() { # PID: utime + stime of the process and its children (rspamd's workers)
  local p t=0
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
wait_idle() { # name PID: until the process tree uses < 5 % of a core over 2 s (max 300 s)
  local a b i
  for i in $(seq 1 150); do
    a=$(tree_ticks "$2"); sleep 2; b=$(tree_ticks "$2")
    [ $((b - a)) -lt 10 ] && { echo "  $1 idle after $((i * 2)) s"; return 0; }
  done
  fail "$1 still busy after 300 s"
}
start_engines() {
  command -v rspamd > /dev/null && [ -x /usr/sbin/clamd ] || {
    echo "skipped: the engine runs (rspamd or clamd not installed: apt-get install rspamd clamav-daemon)"
    return 0
  }
  local E="$W/engines" dns normal controller proxy clamd_port i
  mkdir -p "$E/rspamd/db" "$E/rspamd/run" "$E/rspamd/log" "$E/rspamd/conf/local.d" \
    "$E/rspamd/conf/override.d" "$E/clamd/db" "$E/clamd/tmp"
  # A resolver that answers NXDOMAIN to everything (hermetic, instant), as FakeDns.
  dns=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 - "$dns" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    q, peer = s.recvfrom(1500)
    if len(q) < 12 or q[2] & 0x80:
        continue
    at = 12
    while at < len(q) and q[at]:
        at += 1 + q[at]
    end = at + 5
    if end > len(q):
        continue
    r = bytearray(q[:end])
    r[2] = 0x80 | (q[2] & 0x79); r[3] = 0x80 | 3
    r[4:6] = b"\0\1"; r[6:12] = bytes(6)
    s.sendto(bytes(r), peer)
PY
  PIDS+=($!)
  normal=$(free_port); controller=$(free_port); proxy=$(free_port); clamd_port=$(free_port)
  local C="$E/rspamd/conf"
  printf 'bind_socket = "127.0.0.1:%s";\n' "$normal" > "$C/override.d/worker-normal.inc"
  printf 'bind_socket = "127.0.0.1:%s";\nsecure_ip = "192.0.2.255";\n' "$controller" > "$C/override.d/worker-controller.inc"
  printf 'bind_socket = "127.0.0.1:%s";\n' "$proxy" > "$C/override.d/worker-proxy.inc"
  printf 'dns {\n  nameserver = ["127.0.0.1:%s"];\n  timeout = 1s;\n  retransmits = 1;\n}\n' "$dns" > "$C/local.d/options.inc"
  printf 'use = ["x-spamd-result", "x-rspamd-queue-id"];\nskip_local = false;\nskip_authenticated = false;\n' \
    > "$C/local.d/milter_headers.conf"
  rspamd -f -i -c /etc/rspamd/rspamd.conf --var "LOCAL_CONFDIR=$C" --var "DBDIR=$E/rspamd/db" \
    --var "RUNDIR=$E/rspamd/run" --var "LOGDIR=$E/rspamd/log" > "$E/rspamd/out.log" 2>&1 &
  RSPAMD_PID=$!; PIDS+=($RSPAMD_PID)
  # clamd: one signature (EICAR's MD5:size:name), LogClean to count the scans.
  echo "44d88612fea8a8f36de82e1278abb02f:68:Postern.Bench.EICAR" > "$E/clamd/db/postern-bench.hdb"
  cat > "$E/clamd/clamd.conf" <<EOF
Foreground yes
DatabaseDirectory $E/clamd/db
LocalSocket $E/clamd/clamd.sock
TCPSocket $clamd_port
TCPAddr 127.0.0.1
TemporaryDirectory $E/clamd/tmp
LogFile $E/clamd/clamd.log
LogClean yes
LogFileMaxSize 0
SelfCheck 0
EOF
  /usr/sbin/clamd -c "$E/clamd/clamd.conf" > "$E/clamd/out.log" 2>&1 &
  CLAMD_PID=$!; PIDS+=($CLAMD_PID)
  for i in $(seq 1 1200); do
    python3 - "$normal" <<'PY' 2>/dev/null && break
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
sys.exit(0 if b"pong" in s.recv(4096) else 1)
PY
    kill -0 "$RSPAMD_PID" 2>/dev/null || fail "rspamd exited: $(tail -5 "$E/rspamd/out.log")"
    [ "$i" = 1200 ] && fail "rspamd did not answer /ping in 120 s"
    sleep 0.1
  done
  for i in $(seq 1 600); do
    python3 - "$clamd_port" <<'PY' 2>/dev/null && break
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"zPING\0")
sys.exit(0 if s.recv(16) == b"PONG\0" else 1)
PY
    kill -0 "$CLAMD_PID" 2>/dev/null || fail "clamd exited: $(tail -5 "$E/clamd/out.log")"
    [ "$i" = 600 ] && fail "clamd did not answer PING in 60 s"
    sleep 0.1
  done
  echo "engines: rspamd $(rspamd --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' | head -1) on 127.0.0.1:$normal, clamd on 127.0.0.1:$clamd_port"
  # rspamd compiles its regexps (hyperscan) after it starts: not during the runs.
  wait_idle rspamd "$RSPAMD_PID"
  wait_idle clamd "$CLAMD_PID"
  printf '[rspamd]\naddress = "127.0.0.1:%s"\n' "$normal" > "$W/rspamd.toml"
  printf '[clamav]\naddress = "127.0.0.1:%s"\n' "$clamd_port" > "$W/clamav.toml"
  cat "$W/rspamd.toml" "$W/clamav.toml" > "$W/both.toml"
  for c in rspamd clamav both engines-off; do cp "$W/$c.toml" "$W/lat-$c.toml"; done
  HAVE_ENGINES=1
}
count_in() { local n; n=$(grep -c "$1" "$2" 2>/dev/null || true); echo "${n:-0}"; }
rspamd_scans() { count_in rspamd_task_write_log "$W/engines/rspamd/log/rspamd.log"; }
clamd_scans() { count_in 'instream(.*): OK$' "$W/engines/clamd/clamd.log"; }

# --- runs ---------------------------------------------------------------------------
run() { # label, extra args...
  local label=$1; shift
  local out r0 r1 c0 c1 e0 e1 n=$N
  case "$label" in lat-*) n=$LAT_N; set -- "$@" --conc 1 --per-conn 200 ;; esac
  if [ "$label" = "$PERF" ] && [ "$RUNS" -ge 2 ]; then set -- "$@" --perf-record 2; PERF=""; fi
  if [ -n "$PSTAT" ] && [ "$RUNS" -ge 2 ] && [[ " $STATTED " != *" $label "* ]]; then
    set -- "$@" --perf-stat 2; STATTED="$STATTED $label"
  fi
  r0=$(rspamd_scans); c0=$(clamd_scans)
  e0=0; [ -n "$RSPAMD_PID" ] && e0=$(( $(tree_ticks "$RSPAMD_PID") + $(tree_ticks "$CLAMD_PID") ))
  out=$("$HERE/postern-runs.sh" --bin "$BIN" --runs "$RUNS" --n "$n" --dir "$W/runs-$label" \
    --smtpload "$L" --message "$W/message.eml" --sink-save "$W/sink-$label.eml" \
    --extra "$W/$label.toml" "$@") \
    || fail "$label: postern-runs.sh failed: $out; $(tail -c 600 "$W/runs-$label/send.out" 2> /dev/null); $(grep -v ' WARN tls' "$W/runs-$label/stderr.log" | tail -3)"
  e1=0; [ -n "$RSPAMD_PID" ] && e1=$(( $(tree_ticks "$RSPAMD_PID") + $(tree_ticks "$CLAMD_PID") ))
  r1=$(rspamd_scans); c1=$(clamd_scans)
  echo "$out" | sed -n "s/^run [0-9]*: /$label /p" | tee -a "$W/results"
  echo "$out" | grep ' per msg$' || true
  grep -q 'failed 0,' <<< "$out" || fail "$label: messages failed: $out"
  verify_run "$label" $((RUNS * n)) $((r1 - r0)) $((c1 - c0))
  if [ -n "$RSPAMD_PID" ]; then
    python3 -c "import sys; print(f'$label engines-cpu {($e1 - $e0) * 10 / ($RUNS * $n):.3f} ms/msg')" | tee -a "$W/results"
  fi
}
header_in() { # ERE, file: in the header section (awk reads the whole file: no SIGPIPE)
  awk '{ sub(/\r$/, "") } /^$/ { done = 1 } !done { print }' "$2" | grep -Ei "$1" > /dev/null
}
verify_run() { # label, messages, rspamd scans, clamd scans
  local label=$1 want=$2 rs=$3 cs=$4 saved="$W/sink-$1.eml"
  [ -s "$saved" ] || fail "$label: the sink saved no message"
  grep -q 'Planning notes and the draft report' "$saved" || fail "$label: not the test message: $saved"
  case "$label" in
    filters-tag)
      header_in '^X-Postern-Listed: body' "$saved" || fail "$label: rule 50 did not add X-Postern-Listed ($saved)"
      ;;
    filters-*)
      ! header_in '^X-Postern-Listed:' "$saved" || fail "$label: X-Postern-Listed without the tag word"
      ;;
  esac
  case "$label" in
    rspamd|both|lat-rspamd|lat-both)
      header_in '^X-Spam-Status: No, score=' "$saved" || fail "$label: no X-Spam-Status: No in $saved"
      [ "$rs" -ge "$want" ] || fail "$label: rspamd logged $rs scans, want $want"
      ;;
    *) [ "$rs" = 0 ] || fail "$label: rspamd scanned $rs messages with [rspamd] off" ;;
  esac
  case "$label" in
    clamav|both|lat-clamav|lat-both)
      [ "$cs" -ge "$want" ] || fail "$label: clamd logged $cs clean scans, want $want"
      ;;
    *) [ "$cs" = 0 ] || fail "$label: clamd scanned $cs messages with [clamav] off" ;;
  esac
  echo "  ($label: sink message checked; rspamd scans $rs, clamd scans $cs for $want messages)"
}

[ "$ONLY" = filters ] || start_engines
for _ in $(seq 1 "$ROUNDS"); do
  if [ -z "$ONLY" ] || [ "$ONLY" = filters ]; then
    run filters-off; run filters-on; run filters-tag
  fi
  if [ -n "$HAVE_ENGINES" ] && { [ -z "$ONLY" ] || [ "$ONLY" = engines ]; }; then
    run engines-off; run rspamd; run clamav; run both
  fi
  if [ -n "$HAVE_ENGINES" ] && { [ -z "$ONLY" ] || [ "$ONLY" = latency ]; }; then
    run lat-engines-off; run lat-rspamd; run lat-clamav; run lat-both
  fi
done
python3 - "$W/results" <<'PY'
import re, statistics, sys
rows, eng = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"([\w-]+) accept (\d+)/s, e2e (\d+)/s, cpu ([\d.]+) ms/msg.*p50 ([\d.]+) ms p99 ([\d.]+) ms", line)
    if m:
        rows.setdefault(m[1], []).append((int(m[2]), int(m[3]), float(m[4]), float(m[5]), float(m[6])))
    m = re.match(r"([\w-]+) engines-cpu ([\d.]+) ms/msg", line)
    if m:
        eng.setdefault(m[1], []).append(float(m[2]))
med = {k: [statistics.median(x[i] for x in v) for i in range(5)] for k, v in rows.items()}
print("\nmedians over", {k: len(v) for k, v in rows.items()}, "runs")
order = ["filters-off", "filters-on", "filters-tag", "engines-off", "rspamd", "clamav", "both",
         "lat-engines-off", "lat-rspamd", "lat-clamav", "lat-both"]
for k in order:
    if k in med:
        a, e, c, p50, p99 = med[k]
        ec = f"  engines {statistics.median(eng[k]):.3f} ms/msg" if k in eng else ""
        print(f"  {k:15}: accept {a:6.0f}/s  e2e {e:6.0f}/s  cpu {c:.3f} ms/msg  "
              f"latency p50 {p50:6.2f} ms p99 {p99:6.2f} ms{ec}")
pairs = [("filters-on", "filters-off"), ("filters-tag", "filters-off"),
         ("rspamd", "engines-off"), ("clamav", "engines-off"), ("both", "engines-off"),
         ("lat-rspamd", "lat-engines-off"), ("lat-clamav", "lat-engines-off"), ("lat-both", "lat-engines-off")]
for on, off in pairs:
    if on in med and off in med:
        print(f"  {on} - {off}: cpu {med[on][2] - med[off][2]:+.3f} ms/msg, "
              f"accept {med[on][0] / med[off][0] * 100:.1f} %, e2e {med[on][1] / med[off][1] * 100:.1f} % of off, "
              f"latency p50 {med[on][3] - med[off][3]:+.2f} ms p99 {med[on][4] - med[off][4]:+.2f} ms")
PY
