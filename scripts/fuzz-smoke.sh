#!/usr/bin/env bash
# Smoke-runs every cargo-fuzz target of postern-proto on the STABLE toolchain
# (`-s none`: no sanitizer, so no nightly needed). It is a smoke test — it proves
# the targets build and survive a short run from the seed corpora — not a
# fuzzing campaign. For real fuzzing: `cd fuzz && cargo +nightly fuzz run <target>`.
#
# Usage: scripts/fuzz-smoke.sh [seconds-per-target]   (default 20)
# Installs cargo-fuzz from crates.io if it is missing (about a minute).
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail

seconds="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

targets=(command_line data_decoder spool_record session proxy filter_rules message_view)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for target in "${targets[@]}"; do
    # libFuzzer writes new inputs into the first corpus directory: give it a
    # scratch copy so the committed seeds stay as they are.
    mkdir -p "$scratch/$target"
    cp -R "corpus/$target/." "$scratch/$target/"
    echo "fuzz-smoke: $target (${seconds}s)" >&2
    cargo fuzz run --sanitizer none "$target" "$scratch/$target" -- \
        -max_total_time="$seconds" -max_len=4096
done
echo "fuzz-smoke: all targets passed" >&2
