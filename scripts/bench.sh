#!/bin/bash
# Benchmark Postern against Postfix with the shared loopback harness
# (shared/bench: bench.py + smtpload), same machine, same options, back to back.
#
#   scripts/bench.sh [bench.sh options] [bench.py run options...]
#
# bench.sh options:
#   --out-dir DIR        results (postern.json, postfix.json, report.md, logs); default /tmp/postern-bench/<time>
#   --only postern|postfix   run one SUT only
#   --no-build           do not (re)build Postern / smtpload
#   --from-head          build Postern from `git archive HEAD` (not the work tree, which others may be editing)
#   --no-interleave      run all Postern scenarios, then all Postfix ones (default: per scenario, Postern then Postfix)
#   --postern-drain-timeout S  sink idle timeout for the Postern runs when the build has no delivery
#                        (default 2: the sink never gets anything and would otherwise wait
#                        --drain-timeout (120 s) per rep); ignored when Postern delivers
#   --postern-wipe / --postern-keep  whether bench.py wipes Postern's workdir before each start (its
#                        default). Default: wipe when Postern delivers (options then identical to
#                        Postfix's), keep when it does not: then bench.py restarts it after every rep
#                        (e2e never completes) and the Postern runs use --keep-workdir with a fresh
#                        data dir per start (POSTERN_FRESH_DATA=1), spools deleted after all runs,
#                        because deleting ~10^4 files right before a rep slows ext4 (no journal)
#                        inode allocation for minutes (docs/benchmarks.md)
# Postern builds with delivery relay to the harness's sink (scripts/bench/postern-start.sh).
# Everything else goes to `bench.py run` for both SUTs, after these defaults:
#   --scenarios plain_persist,tls_persist,idle_plain,idle_tls --reps 3 --nice -10 --quiet 0.5
#   --port 24125 --sink-port 24126
# Environment: BENCH_DIR (harness; default /work/shared/bench, or a private copy under /tmp when the
#   shared smtpload is not built), CARGO_TARGET_DIR (default /work/tgt-bench), POSTERN_BIN.
# Needs root (cgroup accounting, Postfix). Binds 127.0.0.1 only.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
HERE="$REPO/scripts/bench"
SHARED=${BENCH_SHARED:-/work/shared/bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/tgt-bench}
OUT=""
ONLY=""
BUILD=1
FROM_HEAD=0
INTERLEAVE=1
PDRAIN=2
PWIPE=auto
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out-dir) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --from-head) FROM_HEAD=1; shift ;;
    --no-interleave) INTERLEAVE=0; shift ;;
    --postern-drain-timeout) PDRAIN=$2; shift 2 ;;
    --postern-wipe) PWIPE=1; shift ;;
    --postern-keep) PWIPE=0; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) PASS+=("$1"); shift ;;
  esac
done
OUT=${OUT:-/tmp/postern-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
log() { echo "bench.sh: $*" >&2; }

# ---- prerequisites (README "Build / prerequisites")
if ! command -v postfix >/dev/null || ! command -v fio >/dev/null || ! command -v iperf3 >/dev/null; then
  log "installing postfix fio iperf3"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix fio iperf3 >/dev/null
fi

# ---- harness: the shared one if its load tool is built, else a private copy under /tmp
# (bench.py finds smtpload next to itself; a symlinked bench.py keeps the shared file unmodified)
if [ -z "${BENCH_DIR:-}" ]; then
  if [ -x "$SHARED/smtpload/target/release/smtpload" ]; then
    BENCH_DIR=$SHARED
  else
    BENCH_DIR=/tmp/smtpbench-harness
  fi
fi
if [ ! -x "$BENCH_DIR/smtpload/target/release/smtpload" ]; then
  [ "$BUILD" = 1 ] || { log "no smtpload in $BENCH_DIR and --no-build"; exit 1; }
  if [ "$BENCH_DIR" != "$SHARED" ]; then
    mkdir -p "$BENCH_DIR"
    ln -sfn "$SHARED/bench.py" "$BENCH_DIR/bench.py"
    ln -sfn "$SHARED/suts" "$BENCH_DIR/suts"
    rm -rf "$BENCH_DIR/smtpload"
    cp -r "$SHARED/smtpload" "$BENCH_DIR/smtpload"
    chmod -R u+w "$BENCH_DIR/smtpload"
    rm -rf "$BENCH_DIR/smtpload/target"
  fi
  log "building smtpload in $BENCH_DIR/smtpload"
  # Its own target dir, inside its copy (cargo 1.95 rejects an empty CARGO_TARGET_DIR).
  (cd "$BENCH_DIR/smtpload" && CARGO_TARGET_DIR="$BENCH_DIR/smtpload/target" cargo build --release --locked -q)
fi
BENCH="$BENCH_DIR/bench.py"

# ---- Postern
if [ -z "${POSTERN_BIN:-}" ]; then
  SRC=$REPO
  if [ "$FROM_HEAD" = 1 ]; then
    SRC=/tmp/postern-head-src
    rm -rf "$SRC" && mkdir -p "$SRC"
    git -C "$REPO" archive HEAD | tar -x -C "$SRC"
  fi
  if [ "$BUILD" = 1 ] && [ "$ONLY" != postfix ]; then
    log "building postern (release) from $SRC ($(git -C "$REPO" rev-parse --short HEAD)$([ "$FROM_HEAD" = 1 ] || git -C "$REPO" diff --quiet || echo ', work tree with changes')) into $CARGO_TARGET_DIR"
    (cd "$SRC" && cargo build --release --locked -q -p postern)
  fi
  POSTERN_BIN=$CARGO_TARGET_DIR/release/postern
fi
export POSTERN_BIN
export POSTERN_LOG_KEEP="$OUT/postern-logs"
PVER=$("$POSTERN_BIN" --version 2>/dev/null | awk '{print $2}')
PNAME="postern-${PVER:-dev}-$(git -C "$REPO" rev-parse --short HEAD)"
FVER=$(postconf -d -h mail_version 2>/dev/null || echo unknown)
FNAME="postfix-$FVER"

DEFAULTS=(--scenarios plain_persist,tls_persist,idle_plain,idle_tls --reps 3 --nice -10 --quiet 0.5
          --port 24125 --sink-port 24126)

PDELIV=off
[ "$ONLY" != postfix ] && PDELIV=$("$HERE/postern-start.sh" --probe-delivery)
if [ "$PWIPE" = auto ]; then
  if [ "$PDELIV" = on ]; then PWIPE=1; else PWIPE=0; fi
fi
PEXTRA=()
[ "$PDELIV" = on ] || PEXTRA+=(--drain-timeout "$PDRAIN")
log "postern: delivery $PDELIV; workdir $([ "$PWIPE" = 1 ] && echo 'wiped by bench.py' || echo 'kept, fresh data dir per start')"

PWORK=/tmp/smtpbench-postern
if [ "$PWIPE" = 0 ]; then
  export POSTERN_FRESH_DATA=1
  # leftovers of an earlier run: move aside now, delete at the end
  [ -d "$PWORK/sut" ] && mv "$PWORK/sut" "$PWORK-old.$$"
fi

run_sut() {  # name out scenarios
  local sut=$1 out=$2 sc=$3 extra=()
  [ -n "$sc" ] && extra=(--scenarios "$sc")
  if [ "$sut" = postern ]; then
    [ "$PWIPE" = 0 ] && extra+=(--keep-workdir)
    python3 "$BENCH" run --sut-name "$PNAME" \
      --sut-start "$HERE/postern-start.sh" --sut-stop "$HERE/postern-stop.sh" \
      --workdir "$PWORK" --out "$out" \
      "${DEFAULTS[@]}" "${PASS[@]}" "${extra[@]}" ${PEXTRA[@]+"${PEXTRA[@]}"}
  else
    python3 "$BENCH" run --sut-name "$FNAME" \
      --sut-start "$BENCH_DIR/suts/postfix/start.sh" --sut-stop "$BENCH_DIR/suts/postfix/stop.sh" \
      --workdir /tmp/smtpbench-postfix --out "$out" \
      "${DEFAULTS[@]}" "${PASS[@]}" "${extra[@]}"
  fi
}

SUTS=(postern postfix)
[ -n "$ONLY" ] && SUTS=("$ONLY")
# the scenario list actually in force (last --scenarios wins, as in argparse)
SCEN=$(python3 - "${DEFAULTS[@]}" "${PASS[@]}" <<'PY'
import sys
a = sys.argv[1:]
v = ""
for i, x in enumerate(a):
    if x == "--scenarios" and i + 1 < len(a):
        v = a[i + 1]
    elif x.startswith("--scenarios="):
        v = x.split("=", 1)[1]
print(v)
PY
)
log "results in $OUT; scenarios $SCEN; SUTs ${SUTS[*]}"
if [ "$INTERLEAVE" = 1 ]; then
  IFS=, read -r -a LIST <<< "$SCEN"
  for s in "${LIST[@]}"; do
    for sut in "${SUTS[@]}"; do
      log "== $sut: $s"
      run_sut "$sut" "$OUT/parts/$sut-$s.json" "$s"
    done
  done
  for sut in "${SUTS[@]}"; do
    python3 "$HERE/merge.py" "$OUT/$sut.json" $(for s in "${LIST[@]}"; do echo "$OUT/parts/$sut-$s.json"; done)
  done
else
  for sut in "${SUTS[@]}"; do
    log "== $sut"
    run_sut "$sut" "$OUT/$sut.json" ""
  done
fi

if [ "$PWIPE" = 0 ]; then
  log "removing Postern's spools"
  rm -rf "$PWORK/sut" "$PWORK-old.$$"
fi

FILES=()
for sut in "${SUTS[@]}"; do FILES+=("$OUT/$sut.json"); done
{
  echo "## bench.py report"
  echo
  python3 "$BENCH" report "${FILES[@]}"
  if [ ${#SUTS[@]} = 2 ]; then
    echo
    echo "## Postern vs Postfix"
    echo
    python3 "$HERE/compare.py" "$OUT/postern.json" "$OUT/postfix.json"
  fi
} | tee "$OUT/report.md"
if [ -d "$POSTERN_LOG_KEEP" ]; then
  echo
  echo "Postern stderr lines (all runs): $(cat "$POSTERN_LOG_KEEP"/*/stderr.log 2>/dev/null | wc -l)" \
       "; transcript 4xx/5xx lines: $(cat "$POSTERN_LOG_KEEP"/*/transcript-4xx5xx.txt 2>/dev/null | wc -l)" | tee -a "$OUT/report.md"
fi
