#!/usr/bin/env bash
# The gateway, measured (root). Not a timed test.
#
#   scripts/bench-gateway.sh [ORDERS] [RATE] [EVERY] [SECONDS]
#
# The venue (`hotwire venue --tls --fix-listen`, release build) runs in the server namespace of a
# veth pair, pinned to core 1. In the client namespace the appliance (`hotwire run`, one IO thread
# busy-polling on core 0, `publish = true` on a TLS WebSocket feed at RATE msg/s (default 5000)
# and on a FIX session) shares both sessions through iceoryx2. examples/strategy (Rust, polling on
# core 1 beside the venue and yielding the core when idle: the machine has two cores) reads the feed and sends a NewOrderSingle
# on every EVERY-th message (default 10) through `hotwire/orders/send`, ORDERS orders per run
# (default 2000). Two figures per network path (kernel TCP, then AF_XDP on the veth):
#   appliance -> strategy   the sample's recv_ns (the appliance read the bytes) to the strategy
#                           holding it: publish, shared memory, receive (CLOCK_REALTIME, one host)
#   tick-to-trade           venue clock to venue clock: feed message sent -> order read by the
#                           venue, through appliance, strategy and appliance again
# Then appliance -> strategy alone for SECONDS (default 10) with no orders. Writes the table to
# target/bench-gateway.txt. Set CARGO (e.g. CARGO=hwcargo) to build through a wrapper. The
# shared-memory path alone, step by step: scripts/bench-gateway-ipc.sh.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ORDERS=${1:-2000}
RATE=${2:-5000}
EVERY=${3:-10}
SECONDS_FEED=${4:-10}
[[ $(id -u) -eq 0 ]] || { echo "bench-gateway.sh: needs root" >&2; exit 1; }

./scripts/peers.sh >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
${CARGO:-cargo} build --release --features xdp,gateway --bin hotwire --example strategy >&2
BIN=$CARGO_TARGET_DIR/release
eval "$(HOTWIRE_NETNS_OWNER=bench-gateway scripts/netns.sh up)"
WORK=$(mktemp -d)
export HOTWIRE_GATEWAY_PREFIX="hwbench$$_"
VENUE="" APP=""
cleanup() {
    [[ -z $APP ]] || kill "$APP" 2>/dev/null || true
    [[ -z $VENUE ]] || kill "$VENUE" 2>/dev/null || true
    wait 2>/dev/null || true
    scripts/netns.sh down "$HW_ID" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    rm -f /dev/shm/"$HOTWIRE_GATEWAY_PREFIX"*
}
trap cleanup EXIT
STACK_IP=${HW_CLIENT_IP%.*}.3
ip netns exec "$HW_SERVER_NS" sh -c "echo 2 > /sys/class/net/$HW_SERVER_IF/queues/rx-0/rps_cpus"
ip netns exec "$HW_SERVER_NS" taskset -c 1 "$BIN/hotwire" venue --listen "$HW_SERVER_IP:9001" \
    --tls --tls-listen "$HW_SERVER_IP:9443" --fix-listen "$HW_SERVER_IP:9878" \
    --cert-dir "$WORK" >/dev/null 2>&1 &
VENUE=$!
for _ in $(seq 50); do [[ -s $WORK/ca.pem ]] && break; sleep 0.1; done
sleep 0.3

config() { # PATH
    if [[ $1 == xdp ]]; then
        printf '[network]\npath = "xdp"\ninterface = "%s"\nqueue = 0\nlocal_ip = "%s/24"\n' \
            "$HW_CLIENT_IF" "$STACK_IP"
        printf 'steering = "dedicated-ip"\nattach = "native"\nbind = "copy"\nfallback = false\n\n'
    fi
    cat <<TOML
[[thread]]
name = "io"
selector = "direct"
core = 0

[[endpoint]]
name = "feed"
url = "wss://$HW_SERVER_IP:9443/feed?rate=$RATE&size=128"
publish = true
tls = { ca = "$WORK/ca.pem", server_name = "localhost" }

[[endpoint]]
name = "orders"
url = "fix://$HW_SERVER_IP:9878"
publish = true
fix = { sender = "HW", target = "VENUE" }
TOML
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
us() { awk -v n="$1" 'BEGIN { if (n == "") print "n/a"; else printf "%.2f", n / 1000 }'; }

declare -A R
for path in kernel xdp; do
    config "$path" >"$WORK/$path.toml"
    ip netns exec "$HW_CLIENT_NS" "$BIN/hotwire" run "$WORK/$path.toml" >"$WORK/$path.log" 2>&1 &
    APP=$!
    t2t=$(taskset -c 1 "$BIN/examples/strategy" --yield-when-idle --every "$EVERY" --orders-count "$ORDERS" \
        --timeout 120 | tail -1)
    feed=$(taskset -c 1 "$BIN/examples/strategy" --yield-when-idle --orders-count 0 --seconds "$SECONDS_FEED" | tail -1)
    kill -INT "$APP"
    wait "$APP" || true
    APP=""
    echo "$path t2t: $t2t" >&2
    echo "$path feed: $feed" >&2
    for m in p50_ns p99_ns p999_ns; do
        R[$path,t2t_$m]=$(field "t2t_$m" <<<"$t2t")
        R[$path,app_$m]=$(field "app_to_strategy_$m" <<<"$feed")
    done
    R[$path,n]=$(field "t2t_n" <<<"$t2t")
done
{
    echo "gateway: feed $RATE msg/s over TLS WebSocket, an order every $EVERY messages, $ORDERS orders"
    echo "(appliance busy-polling on core 0; venue and Rust strategy on core 1), microseconds"
    printf '%-8s %-22s %10s %10s %10s\n' path figure p50 p99 p99.9
    for path in kernel xdp; do
        printf '%-8s %-22s %10s %10s %10s\n' "$path" "appliance -> strategy" \
            "$(us "${R[$path,app_p50_ns]}")" "$(us "${R[$path,app_p99_ns]}")" "$(us "${R[$path,app_p999_ns]}")"
        printf '%-8s %-22s %10s %10s %10s\n' "$path" "tick-to-trade" \
            "$(us "${R[$path,t2t_p50_ns]}")" "$(us "${R[$path,t2t_p99_ns]}")" "$(us "${R[$path,t2t_p999_ns]}")"
    done
} | tee "$CARGO_TARGET_DIR/bench-gateway.txt"
