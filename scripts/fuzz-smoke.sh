#!/usr/bin/env bash
# Smoke-runs every cargo-fuzz target (fuzz/fuzz_targets) for a short time, starting from the
# committed seed corpus (copied, so the repository is not touched). Called by scripts/test.sh.
# xdp_rx (the AF_XDP device's receive path) builds hotwire with the `xdp` feature, so the first run
# also builds libbpf/libxdp from C (about a minute; the packages are in scripts/peers.sh).
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]   (default 10; HOTWIRE_FUZZ_SECONDS also sets it)
#
# cargo-fuzz needs a nightly toolchain. When the machine has one, cargo-fuzz is installed from
# crates.io if missing and each target runs with libFuzzer; a crash fails the script and leaves the
# reproducer under target/fuzz-artifacts. Without nightly (it cannot be fetched on these machines)
# the script says so and exits 0: the stable randomized tests (ws codec_tests::random_bytes_never_panic,
# fix_mutation, http fuzz regression tests) have already run under `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-${HOTWIRE_FUZZ_SECONDS:-10}}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz-smoke: no nightly toolchain here; coverage-guided fuzzing skipped (stable randomized tests ran in cargo test)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install --locked --quiet cargo-fuzz
fi
ARTIFACTS=$PWD/target/fuzz-artifacts
mkdir -p "$ARTIFACTS"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for src in fuzz/fuzz_targets/*.rs; do
    target=$(basename "$src" .rs)
    mkdir -p "$WORK/$target"
    [[ -d fuzz/corpus/$target ]] && cp -r "fuzz/corpus/$target/." "$WORK/$target/"
    echo "fuzz-smoke: $target for ${SECONDS_PER_TARGET}s"
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$WORK/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -artifact_prefix="$ARTIFACTS/$target-" \
        -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|Done)" || true
    if ls "$ARTIFACTS/$target-"* >/dev/null 2>&1; then
        echo "fuzz-smoke: $target FOUND A CRASH: $(ls "$ARTIFACTS/$target-"*)" >&2
        exit 1
    fi
done
echo "fuzz-smoke: all targets ran without a crash"
