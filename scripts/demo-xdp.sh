#!/usr/bin/env bash
# The appliance over AF_XDP on a veth pair, compared with kernel TCP on the same veth (root).
#
#   scripts/demo-xdp.sh [SECONDS] [RATE]
#
# Makes a namespace pair (scripts/netns.sh), runs `hotwire venue` (wss, its own CA) in the server
# namespace, then in the client namespace `hotwire run` twice with the same endpoints for SECONDS
# (default 10) at RATE messages/s (default 10000): first with network.path = "xdp" (the stack on
# 10.77.ID.3, dedicated IP, busy-polled), then with network.path = "kernel" (10.77.ID.2, direct
# busy-poll selector). Prints both reports and a comparison of the latency percentiles
# (receive time minus the venue's send stamp). Called by scripts/demo.sh; HOTWIRE_BIN overrides the
# binary (default: a release build with the xdp feature).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
RATE=${2:-10000}
[[ $(id -u) -eq 0 ]] || { echo "demo-xdp.sh: needs root (network namespaces, AF_XDP)" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [[ -z ${HOTWIRE_BIN:-} ]]; then
    cargo build --release --features xdp --bin hotwire >&2
    HOTWIRE_BIN=$CARGO_TARGET_DIR/release/hotwire
fi
# The UMEM goes on huge pages when enough are free: reserve some for the demo and put the count
# back afterwards.
HUGE_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
WORK=$(mktemp -d /tmp/hotwire-demo-xdp.XXXXXX)
eval "$(HOTWIRE_NETNS_OWNER=demo-xdp scripts/netns.sh up)"
VENUE=""
cleanup() {
    [[ -z $VENUE ]] || kill "$VENUE" 2>/dev/null || true
    echo "$HUGE_BEFORE" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
    scripts/netns.sh down "$HW_ID" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
echo $((HUGE_BEFORE + 64)) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
STACK_IP=${HW_CLIENT_IP%.*}.3

ip netns exec "$HW_SERVER_NS" taskset -c 1 "$HOTWIRE_BIN" venue \
    --listen "$HW_SERVER_IP:9001" --tls --tls-listen "$HW_SERVER_IP:9443" --cert-dir "$WORK" \
    >"$WORK/venue.log" 2>&1 &
VENUE=$!
for _ in $(seq 100); do [[ -s $WORK/ca.pem ]] && break; sleep 0.1; done
[[ -s $WORK/ca.pem ]] || { cat "$WORK/venue.log" >&2; exit 1; }

config() { # PATH-TABLE
    cat <<TOML
$1

[[thread]]
name = "md"
core = 0
selector = "direct"

[[endpoint]]
name = "feed"
url = "wss://$HW_SERVER_IP:9443/feed?rate=$RATE"
latency = "embedded"
heartbeat = "1s"
[endpoint.tls]
ca = "$WORK/ca.pem"
server_name = "localhost"   # the venue's certificate names localhost
TOML
}
config "[network]
path = \"xdp\"
interface = \"$HW_CLIENT_IF\"
local_ip = \"$STACK_IP/$HW_PREFIX_LEN\"
fallback = false" >"$WORK/xdp.toml"
config "[network]
path = \"kernel\"" >"$WORK/kernel.toml"

for path in xdp kernel; do
    echo "== hotwire run over $path ($SECONDS_RUN s, $RATE msg/s)"
    ip netns exec "$HW_CLIENT_NS" "$HOTWIRE_BIN" run "$WORK/$path.toml" \
        --duration "$SECONDS_RUN" --json "$WORK/$path.json" | grep -v '^\['
done

python3 - "$WORK/xdp.json" "$WORK/kernel.json" <<'PY'
import json, sys
x, k = (json.load(open(p))["endpoints"][0] for p in sys.argv[1:3])
print("== comparison (same veth, same venue; client core 0, venue core 1)")
print(f"{'':14}{'xdp':>12}{'kernel':>12}{'xdp/kernel':>12}")
for key, name in (("latency_ns", "latency"), ("round_trip_ns", "ping rtt")):
    a, b = x.get(key), k.get(key)
    if not a or not b:
        continue
    for p in ("p50", "p99", "p999"):
        print(f"{name + ' ' + p:14}{a[p]/1000:>10.1f}us{b[p]/1000:>10.1f}us{a[p]/max(b[p],1):>12.2f}")
print(f"{'messages':14}{x['messages']:>12}{k['messages']:>12}")
PY
