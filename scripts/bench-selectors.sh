#!/usr/bin/env bash
# The selectors side by side in one run (root for the veth part). Not a timed test.
#
#   scripts/bench-selectors.sh [ROUNDS] [BULK_BYTES]     defaults: 20000 round trips, 256 MiB
#   scripts/bench-selectors.sh --short                   CI-safe: 2000 round trips, 16 MiB
#
# Builds examples/selector_bench (release, feature io-uring) and runs, on loopback and then on a
# veth pair between two namespaces (scripts/netns.sh), mio (epoll, waiting), direct (busy-poll),
# io_uring waiting, io_uring busy-polling and io_uring with SQPOLL, each driving one IoService
# endpoint against the same peer (`selector_bench serve`, pinned to core 1; the client is pinned
# to core 0). Per selector: 64-byte round trips (p50/p99/p99.9), process CPU time per round trip
# (the SQPOLL kernel thread included), and the receive throughput of one bulk transfer, with ratios
# to mio. The SQPOLL kernel thread is pinned to the server's core (a kernel thread left unpinned
# inherits the pinned client's core and shares it: milliseconds per round trip). Prints the tables
# and writes them to target/bench-selectors.txt.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --short ]]; then
    ROUNDS=2000 BULK=$((16 << 20))
else
    ROUNDS=${1:-20000} BULK=${2:-$((256 << 20))}
fi
CARGO=${CARGO:-cargo}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
$CARGO build --release --features io-uring --example selector_bench >&2
BENCH=$CARGO_TARGET_DIR/release/examples/selector_bench
OUT=$CARGO_TARGET_DIR/bench-selectors.txt
PORT=7100
CORES=$(nproc)
SERVER_CORE=$((CORES > 1 ? 1 : 0))

SERVER="" NS_ID=""
cleanup() {
    [[ -z $SERVER ]] || kill "$SERVER" 2>/dev/null || true
    [[ -z $NS_ID ]] || scripts/netns.sh down "$NS_ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT

exec > >(tee "$OUT")
{
    taskset -c "$SERVER_CORE" "$BENCH" serve "127.0.0.1:$PORT" >/dev/null &
    SERVER=$!
    sleep 0.3
    "$BENCH" client "127.0.0.1:$PORT" --rounds "$ROUNDS" --bytes "$BULK" --core 0 \
        --sqpoll-core "$SERVER_CORE" --label loopback
    kill "$SERVER"
    SERVER=""

    if [[ $(id -u) -eq 0 ]]; then
        eval "$(HOTWIRE_NETNS_OWNER=bench-selectors scripts/netns.sh up)"
        NS_ID=$HW_ID
        ip netns exec "$HW_SERVER_NS" taskset -c "$SERVER_CORE" "$BENCH" serve "$HW_SERVER_IP:$PORT" >/dev/null &
        SERVER=$!
        sleep 0.5
        ip netns exec "$HW_CLIENT_NS" "$BENCH" client "$HW_SERVER_IP:$PORT" --rounds "$ROUNDS" \
            --bytes "$BULK" --core 0 --sqpoll-core "$SERVER_CORE" --label "veth ($HW_CLIENT_IF -> $HW_SERVER_IP)"
    else
        echo "(veth part skipped: needs root)"
    fi
}
