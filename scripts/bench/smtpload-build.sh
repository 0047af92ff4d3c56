#!/usr/bin/env bash
# Builds the harness's smtpload with --message / --save (smtpload-message.patch)
# into /tmp/postern-authbench-smtpload and prints the binary's path. Shared by
# authentication.sh, content.sh and tracking.sh. Source: SMTPLOAD_SRC=DIR, else
# /work/shared/bench/smtpload, else /tmp/smtpbench-harness/smtpload. Rebuilds
# only when the patched sources changed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
fail() { echo "smtpload-build.sh: $*" >&2; exit 1; }
SRC=${SMTPLOAD_SRC:-/work/shared/bench/smtpload}
[ -f "$SRC/src/main.rs" ] || SRC=/tmp/smtpbench-harness/smtpload
[ -f "$SRC/src/main.rs" ] || fail "no smtpload source (SMTPLOAD_SRC=DIR)"
S=/tmp/postern-authbench-smtpload
mkdir -p "$S/stage/src"
cp "$SRC/Cargo.toml" "$SRC/Cargo.lock" "$S/stage/"
cp "$SRC/src/main.rs" "$S/stage/src/"
chmod -R u+w "$S/stage"
patch -s -d "$S/stage" -p1 < "$HERE/smtpload-message.patch" || fail "smtpload-message.patch does not apply"
for f in Cargo.toml Cargo.lock src/main.rs; do
  cmp -s "$S/stage/$f" "$S/$f" 2>/dev/null || { mkdir -p "$(dirname "$S/$f")"; cp "$S/stage/$f" "$S/$f"; }
done
(cd "$S" && cargo build --release --offline --quiet) >&2 || fail "cannot build $S"
echo "$S/target/release/smtpload"
