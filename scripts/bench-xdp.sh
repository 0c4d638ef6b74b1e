#!/usr/bin/env bash
# XDP path vs kernel TCP on the same veth pair, in one run (root). Not a timed test.
#
#   scripts/bench-xdp.sh [COUNT] [BULK_BYTES]
#
# Builds examples/xdp_echo (release, feature xdp), makes a namespace pair with scripts/netns.sh,
# starts the kernel echo server in the server namespace (pinned to core 1) and runs, with the
# client pinned to core 0 and busy-polling:
#   - 64-byte ping-pong, COUNT round trips (default 20000): p50/p99/p99.9, kernel TCP then XDP;
#   - bulk echo of BULK_BYTES (default 200 MB): MB/s one way, kernel TCP then XDP.
# The XDP stack uses 10.77.ID.3 (dedicated IP) on the client end, whose kernel keeps 10.77.ID.2.
# Prints a table and writes it to target/bench-xdp.txt.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-20000}
BULK=${2:-200000000}
[[ $(id -u) -eq 0 ]] || { echo "bench-xdp.sh: needs root" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --features xdp --example xdp_echo >&2
ECHO=$CARGO_TARGET_DIR/release/examples/xdp_echo

eval "$(HOTWIRE_NETNS_OWNER=bench-xdp scripts/netns.sh up)"
SERVER=""
cleanup() {
    [[ -z $SERVER ]] || kill "$SERVER" 2>/dev/null || true
    scripts/netns.sh down "$HW_ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT
STACK_IP=${HW_CLIENT_IP%.*}.3

ip netns exec "$HW_SERVER_NS" taskset -c 1 "$ECHO" serve --server "$HW_SERVER_IP:7000" >/dev/null &
SERVER=$!
sleep 0.5

client() { # MODE ARGS... (kernel) | xdp MODE ARGS...
    local xdp=()
    if [[ $1 == xdp ]]; then
        shift
        xdp=(--xdp "$HW_CLIENT_IF" --local-ip "$STACK_IP/24")
    fi
    ip netns exec "$HW_CLIENT_NS" "$ECHO" "$@" --server "$HW_SERVER_IP:7000" --core 0 "${xdp[@]}" 2>/dev/null
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

k_pp=$(client pingpong --count "$COUNT" --size 64)
x_pp=$(client xdp pingpong --count "$COUNT" --size 64)
k_bulk=$(client bulk --bytes "$BULK")
x_bulk=$(client xdp bulk --bytes "$BULK")

us() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1000 }'; }
ratio=$(awk -v x="$(field p50 <<<"$x_pp")" -v k="$(field p50 <<<"$k_pp")" 'BEGIN { printf "%.2f", x / k }')
{
    echo "hotwire bench-xdp: veth pair $HW_CLIENT_NS/$HW_SERVER_NS, client pinned to core 0, server to core 1"
    echo "kernel $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
    printf '%-12s %10s %10s %10s %14s\n' path "p50 us" "p99 us" "p99.9 us" "bulk MB/s"
    printf '%-12s %10s %10s %10s %14s\n' kernel-tcp "$(us "$(field p50 <<<"$k_pp")")" \
        "$(us "$(field p99 <<<"$k_pp")")" "$(us "$(field p999 <<<"$k_pp")")" "$(field MB_per_s <<<"$k_bulk")"
    printf '%-12s %10s %10s %10s %14s\n' xdp "$(us "$(field p50 <<<"$x_pp")")" \
        "$(us "$(field p99 <<<"$x_pp")")" "$(us "$(field p999 <<<"$x_pp")")" "$(field MB_per_s <<<"$x_bulk")"
    echo "xdp p50 / kernel p50 = $ratio (target <= 0.90); bulk target >= 1000 MB/s"
    echo "ping-pong: $COUNT round trips of 64 bytes; bulk: $BULK bytes echoed, MB/s one way"
} | tee "$CARGO_TARGET_DIR/bench-xdp.txt"
