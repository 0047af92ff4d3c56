#!/bin/sh
# Stop the Postern started by postern-start.sh: SIGTERM (graceful), then SIGKILL
# after POSTERN_STOP_WAIT seconds (default 10). Only the PID in the PID file.
set -u
: "${BENCH_WORKDIR:?}"
W="$BENCH_WORKDIR/postern"
PF="$W/postern.pid"
[ -f "$PF" ] || exit 0
PID=$(cat "$PF")
WAIT=${POSTERN_STOP_WAIT:-10}
if kill -0 "$PID" 2>/dev/null; then
  kill -TERM "$PID" 2>/dev/null || true
  i=0
  while kill -0 "$PID" 2>/dev/null && [ $i -lt $((WAIT * 10)) ]; do
    sleep 0.1
    i=$((i + 1))
  done
  if kill -0 "$PID" 2>/dev/null; then
    echo "postern-stop: pid $PID still running after ${WAIT}s, SIGKILL" >&2
    kill -KILL "$PID" 2>/dev/null || true
  fi
fi
rm -f "$PF"
# keep a copy of the logs of every SUT run (the harness wipes the workdir per scenario)
if [ -n "${POSTERN_LOG_KEEP:-}" ]; then
  mkdir -p "$POSTERN_LOG_KEEP"
  n=$(ls "$POSTERN_LOG_KEEP" | wc -l)
  d="$POSTERN_LOG_KEEP/run-$(date +%H%M%S)-$n"
  mkdir -p "$d"
  cp "$W/stderr.log" "$W/stdout.log" "$d/" 2>/dev/null || true
  # the transcript can be large: keep its size and its non-2xx/3xx replies only
  DATA=$(cat "$W/data.current" 2>/dev/null || echo "$W/data")
  T="$DATA/log/transcript.log"
  if [ -f "$T" ]; then
    wc -c < "$T" > "$d/transcript.size"
    grep -E '>>> [45][0-9][0-9][ -]' "$T" | head -200 > "$d/transcript-4xx5xx.txt" || true
  fi
  if [ -d "$DATA/spool" ]; then
    find "$DATA/spool/msg" -type f | wc -l > "$d/spool.msg.files"
  fi
fi
exit 0
