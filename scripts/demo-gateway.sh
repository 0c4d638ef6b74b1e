#!/usr/bin/env bash
# The gateway: one appliance, its venue sessions shared with strategy processes (root).
#
#   scripts/demo-gateway.sh [ORDERS] [RATE]
#
# Makes a namespace pair (scripts/netns.sh) and runs `hotwire venue` (TLS WebSocket feed at RATE
# msg/s, default 2000, and a FIX acceptor) in the server namespace. Then, once over kernel TCP and
# once over AF_XDP (the userspace stack on 10.77.ID.3), the appliance in the client namespace
# terminates the feed and a FIX session with `publish = true`, and two strategy processes share
# them over iceoryx2 shared memory: examples/strategy.py (Python, the `iceoryx2` package) and
# examples/strategy (Rust). Each reads the feed, sends ORDERS (default 200) NewOrderSingles through
# `hotwire/orders/send`, matches every ExecutionReport from `hotwire/orders/in` and prints its
# tick-to-trade from the venue's clock. `hotwire check` shows the services and their subscribers
# while the strategies run. Called by scripts/demo.sh; HOTWIRE_BIN and STRATEGY_BIN override the
# binaries (default: release builds with the xdp and gateway features).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ORDERS=${1:-200}
RATE=${2:-2000}
[[ $(id -u) -eq 0 ]] || { echo "demo-gateway.sh: needs root (network namespaces, AF_XDP)" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [[ -z ${HOTWIRE_BIN:-} || -z ${STRATEGY_BIN:-} ]]; then
    cargo build --release --features xdp,gateway --bin hotwire --example strategy >&2
    HOTWIRE_BIN=$CARGO_TARGET_DIR/release/hotwire
    STRATEGY_BIN=$CARGO_TARGET_DIR/release/examples/strategy
fi
PYTHON=${HOTWIRE_VENV:-${HOTWIRE_CACHE:-$ROOT/.cache}/venv}/bin/python
# The appliance and the strategies agree on the shared-memory prefix; this one is the demo's own.
export HOTWIRE_GATEWAY_PREFIX="hwdemo$$_"
WORK=$(mktemp -d /tmp/hotwire-demo-gateway.XXXXXX)
eval "$(HOTWIRE_NETNS_OWNER=demo-gateway scripts/netns.sh up)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/netns.sh down "$HW_ID" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    rm -f /dev/shm/"$HOTWIRE_GATEWAY_PREFIX"*
}
trap cleanup EXIT
STACK_IP=${HW_CLIENT_IP%.*}.3

ip netns exec "$HW_SERVER_NS" "$HOTWIRE_BIN" venue --listen "$HW_SERVER_IP:9001" --tls \
    --tls-listen "$HW_SERVER_IP:9443" --fix-listen "$HW_SERVER_IP:9878" --cert-dir "$WORK" \
    >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $WORK/ca.pem ]] && break; sleep 0.05; done
sleep 0.3

for path in kernel xdp; do
    cfg=$WORK/gateway-$path.toml
    {
        if [[ $path == xdp ]]; then
            printf '[network]\npath = "xdp"\ninterface = "%s"\nqueue = 0\nlocal_ip = "%s/24"\n' \
                "$HW_CLIENT_IF" "$STACK_IP"
            printf 'steering = "dedicated-ip"\nattach = "native"\nbind = "copy"\n\n'
        fi
        cat <<TOML
[[thread]]
name = "io"
selector = "direct"

[[endpoint]]
name = "feed"
url = "wss://$HW_SERVER_IP:9443/feed?rate=$RATE&size=128"
publish = true
tls = { ca = "$WORK/ca.pem", server_name = "localhost" }

[[endpoint]]
name = "orders"
url = "fix://$HW_SERVER_IP:9878"
publish = true
fix = { sender = "HW-$path", target = "VENUE" }
TOML
    } >"$cfg"
    echo
    echo "== gateway over $path: hotwire run (feed and FIX session, publish = true)"
    sed 's/^/   /' "$cfg"
    ip netns exec "$HW_CLIENT_NS" "$HOTWIRE_BIN" run "$cfg" >"$WORK/run-$path.log" 2>&1 &
    APP=$!
    PIDS+=($APP)
    echo "== examples/strategy.py (Python) and examples/strategy (Rust), side by side"
    "$PYTHON" examples/strategy.py --every 10 --orders-count "$ORDERS" --timeout 60 \
        >"$WORK/py-$path.out" 2>&1 &
    PY=$!
    PIDS+=($PY)
    "$STRATEGY_BIN" --every 10 --orders-count "$ORDERS" --timeout 60 >"$WORK/rs-$path.out" 2>&1 &
    RS=$!
    PIDS+=($RS)
    # Once both strategies have subscribed (the appliance's services come first).
    for _ in $(seq 40); do
        "$HOTWIRE_BIN" check "$cfg" >"$WORK/check.out" 2>/dev/null || true
        grep -q "feed/in: 1 publisher(s), 2 subscriber(s)" "$WORK/check.out" && break
        sleep 0.25
    done
    echo "== hotwire check (the gateway's services and their subscribers)"
    grep gateway "$WORK/check.out" || true
    wait "$PY" || echo "   (the Python strategy failed)"
    wait "$RS" || echo "   (the Rust strategy failed)"
    echo "-- Python:"; sed 's/^/   /' "$WORK/py-$path.out" | tail -2
    echo "-- Rust:";   sed 's/^/   /' "$WORK/rs-$path.out" | tail -1
    kill -INT "$APP"
    wait "$APP" || true
    grep -E "network path|gateway" "$WORK/run-$path.log" | sed 's/^/   /' | head -4
done
echo
echo "== after a clean stop of everything, /dev/shm holds only iceoryx2's node counter for the prefix:"
ls /dev/shm | grep "^$HOTWIRE_GATEWAY_PREFIX" | sed 's/^/   /' || echo "   (nothing)"
