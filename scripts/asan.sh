#!/usr/bin/env bash
# The unit tests of the modules with `unsafe` blocks (src/xdp, src/buf.rs, kTLS in
# src/stream/ktls.rs, the WebSocket mask, the kernel TCP stream) under AddressSanitizer, on the
# nightly toolchain. Called by scripts/test.sh; kept to lib tests of those modules so its CI cost
# stays small.
#
#   scripts/asan.sh
#
# Without a nightly toolchain it says so and exits 0 (the same tests ran unsanitized in cargo
# test). With the rust-src component, std is rebuilt instrumented (-Zbuild-std); without it only
# hotwire and its dependencies are, which still catches their out-of-bounds and use-after-free
# errors. Its own target folder (target/asan) keeps the sanitized build apart.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "asan: no nightly toolchain here; AddressSanitizer run skipped (the tests ran unsanitized in cargo test)"
    exit 0
fi
TARGET=x86_64-unknown-linux-gnu
BUILD_STD=()
if rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
    BUILD_STD=(-Zbuild-std)
else
    echo "asan: nightly has no rust-src: std stays uninstrumented (rustup component add rust-src --toolchain nightly)"
fi
export RUSTFLAGS="-Zsanitizer=address ${RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export CARGO_TARGET_DIR=$PWD/target/asan
# Module paths of the lib's unsafe code; libtest runs the tests whose names contain any of them.
cargo +nightly test "${BUILD_STD[@]}" --target "$TARGET" --lib --features xdp,ktls -- \
    xdp:: buf:: stream::ktls ws::mask stream::tcp
echo "asan: the unsafe modules' tests passed under AddressSanitizer"
