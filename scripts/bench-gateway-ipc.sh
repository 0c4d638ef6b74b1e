#!/usr/bin/env bash
# The gateway's shared-memory path alone (examples/gateway_latency.rs), in the setups that decide
# appliance -> strategy latency on this machine. Not a timed test.
#
#   scripts/bench-gateway-ipc.sh [MESSAGES] [ROUNDS]
#
# Each setup publishes MESSAGES (default 100000) 128-byte messages, one every 10 us, from a thread
# pinned to core 0 with the gateway's settings, to a strategy thread (its own iceoryx2 node) that
# polls receive(); ROUNDS (default 3) rounds, interleaved. Setups:
#   gateway/spin/own core   the gateway's service variant, strategy spinning on core 1
#   ipc/spin/own core       iceoryx2's plain ipc::Service (one Rc allocation per loan)
#   gateway/yield/own core  strategy yielding core 1 when idle (as in bench-gateway.sh)
#   gateway/yield/shared    strategy on core 0 with the publisher, yielding
# Prints per step p50 in ns: loan, write (header + 128-byte copy), send, deliver (send returned ->
# strategy holds the sample), total (clock read before the loan -> strategy holds it).
# Set CARGO (e.g. CARGO=hwcargo) to build through a wrapper.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-100000}
ROUNDS=${2:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
${CARGO:-cargo} build --release --features gateway --example gateway_latency >&2
BIN=$CARGO_TARGET_DIR/release/examples/gateway_latency
run() { "$BIN" "$@"; }
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    run --messages "$MESSAGES" --service gateway --sub-core 1
    run --messages "$MESSAGES" --service ipc --sub-core 1
    run --messages "$MESSAGES" --service gateway --sub-core 1 --yield-when-idle
    run --messages $((MESSAGES / 10)) --service gateway --sub-core 0 --yield-when-idle --interval-ns 100000
done | tee "$CARGO_TARGET_DIR/bench-gateway-ipc.txt"
