#!/usr/bin/env bash
# XDP path vs kernel TCP on the same veth pair, in one run (root). Not a timed test.
#
#   scripts/bench-xdp.sh [COUNT] [BULK_BYTES] [ROUNDS] [JUMBO_MTUS]
#
# Builds the xdp_echo harness (tests/harness/xdp_echo.rs, an example target; release, feature xdp),
# makes a namespace pair with scripts/netns.sh and
# starts the kernel servers in the server namespace, pinned to core 1 and busy-polling their sockets
# (`serve --spin`, as a venue's gateway spins; a blocking server would add a thread wake-up to every
# round trip, the same for both paths, and most of the run-to-run noise). The client is pinned to
# core 0 and busy-polls. Kernel TCP and the XDP path alternate, ROUNDS times (default 3); each
# figure is the median of its rounds.
#   latency:    64-byte ping-pong, COUNT round trips (default 20000), MTU 1500: p50/p99/p99.9;
#               and a 64 KiB request echoed back (COUNT/10 round trips): p50/p99, a burst of 45
#               frames each way.
#   throughput: BULK_BYTES (default 500 MB; 0 skips the throughput runs: the short variant,
#               `scripts/bench-xdp.sh 20000 0 5` takes about a minute) per run, at MTU 1500 and at each of JUMBO_MTUS
#               (default "3500 9000": 3500 fits one 4 KiB UMEM frame, 9000 spans three, AF_XDP
#               multi-buffer):
#                 recv  one way in, from the server's source (the market-data direction)
#                 send  one way out, to the server's sink, timed until the sink confirms
#                 echo  out and back at once (every byte crosses the client twice); MB/s one way
#   huge pages: the XDP path runs once more per round with everything on 4 KiB pages (xdp4k:
#               ping-pong and recv), for the A/B of what huge pages buy on the packet path.
#               For these, the server end's received packets are processed on the server's core
#               (RPS to core 1), as they would be on a separate machine. Without it a veth charges
#               the server's TCP receive work to the sending client's core.
# The XDP stack uses 10.77.ID.3 (dedicated IP) on the client end, whose kernel keeps 10.77.ID.2;
# 64 huge pages are reserved for the run (UMEM, socket and read buffers) and released after.
# Prints a table and writes it to target/bench-xdp.txt.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-20000}
BULK=${2:-500000000}
ROUNDS=${3:-3}
JUMBO=${4:-3500 9000}
[[ $(id -u) -eq 0 ]] || { echo "bench-xdp.sh: needs root" >&2; exit 1; }

./scripts/peers.sh >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --features xdp --example xdp_echo >&2
ECHO=$CARGO_TARGET_DIR/release/examples/xdp_echo

# The stack's memory goes on huge pages, as in production (and the demo): reserve some for the
# run and put the count back afterwards.
HUGE_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
eval "$(HOTWIRE_NETNS_OWNER=bench-xdp scripts/netns.sh up)"
SERVER=""
cleanup() {
    [[ -z $SERVER ]] || kill "$SERVER" 2>/dev/null || true
    echo "$HUGE_BEFORE" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
    scripts/netns.sh down "$HW_ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT
echo $((HUGE_BEFORE + 64)) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
STACK_IP=${HW_CLIENT_IP%.*}.3

ip netns exec "$HW_SERVER_NS" taskset -c 1 "$ECHO" serve --spin --server "$HW_SERVER_IP:7000" >/dev/null &
SERVER=$!
sleep 0.5

mtu() {
    ip -n "$HW_SERVER_NS" link set "$HW_SERVER_IF" mtu "$1"
    ip -n "$HW_CLIENT_NS" link set "$HW_CLIENT_IF" mtu "$1"
}
rps() { # CPU mask for the server end's receive processing (0: where the packet arrived)
    ip netns exec "$HW_SERVER_NS" sh -c "echo $1 > /sys/class/net/$HW_SERVER_IF/queues/rx-0/rps_cpus"
}
client() { # kernel|xdp|xdp4k MODE ARGS...
    local path=$1 xdp=()
    shift
    [[ $path == kernel ]] || xdp=(--xdp "$HW_CLIENT_IF" --local-ip "$STACK_IP/24")
    [[ $path != xdp4k ]] || xdp+=(--no-huge-pages)
    ip netns exec "$HW_CLIENT_NS" "$ECHO" "$@" --server "$HW_SERVER_IP:7000" --core 0 "${xdp[@]}" 2>/dev/null
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }
us() { awk -v n="$1" 'BEGIN { if (n == "n/a") print n; else printf "%.1f", n / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

declare -A R # R[path,metric] = "v1 v2 ..."
mtu 1500
rps 0
for _ in $(seq "$ROUNDS"); do
    for path in kernel xdp xdp4k; do
        line=$(client "$path" pingpong --count "$COUNT" --size 64) || line=""
        for q in p50 p99 p999; do R[$path,$q]+="$(field "$q" <<<"$line") "; done
    done
    for path in kernel xdp; do
        line=$(client "$path" pingpong --count $((COUNT / 10)) --size 65536) || line=""
        R[$path,big]+="$(field p50 <<<"$line") "
        R[$path,big99]+="$(field p99 <<<"$line") "
    done
done
rps 2
[[ $BULK -gt 0 ]] || JUMBO=""
# shellcheck disable=SC2086 # JUMBO is a list
for m in 1500 $JUMBO; do
    [[ $BULK -gt 0 ]] || break
    mtu "$m"
    for _ in $(seq "$ROUNDS"); do
        for mode in recv send bulk; do
            for path in kernel xdp; do
                line=$(client "$path" "$mode" --bytes "$BULK") || line=""
                R[$path,$mode,$m]+="$(field MB_per_s <<<"$line") "
            done
        done
        line=$(client xdp4k recv --bytes "$BULK") || line=""
        R[xdp4k,recv,$m]+="$(field MB_per_s <<<"$line") "
    done
done
rps 0
med() { tr ' ' '\n' <<<"${R[$1]}" | sed '/^$/d' | median; }

{
    echo "hotwire bench-xdp: veth pair $HW_CLIENT_NS/$HW_SERVER_NS, client pinned to core 0, spinning server on core 1"
    echo "kernel $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ); medians of $ROUNDS alternating rounds"
    echo
    echo "64 B ping-pong, $COUNT round trips, MTU 1500"
    printf '%-12s %10s %10s %10s\n' path "p50 us" "p99 us" "p99.9 us"
    for path in kernel xdp xdp4k; do
        printf '%-12s %10s %10s %10s\n' "$path" "$(us "$(med "$path,p50")")" \
            "$(us "$(med "$path,p99")")" "$(us "$(med "$path,p999")")"
    done
    echo "xdp p50 / kernel p50 = $(ratio "$(med xdp,p50)" "$(med kernel,p50)") (target <= 0.90)"
    echo "xdp4k: the XDP path with UMEM, socket and read buffers on 4 KiB pages; huge / 4 KiB p50 ="\
        "$(ratio "$(med xdp,p50)" "$(med xdp4k,p50)")"
    echo "64 KiB request and echo, $((COUNT / 10)) round trips: p50 kernel $(us "$(med kernel,big)") us," \
        "xdp $(us "$(med xdp,big)") us, ratio $(ratio "$(med xdp,big)" "$(med kernel,big)") (target <= 1.20);" \
        "p99 kernel $(us "$(med kernel,big99)") us, xdp $(us "$(med xdp,big99)") us," \
        "ratio $(ratio "$(med xdp,big99)" "$(med kernel,big99)")"
    [[ $BULK -gt 0 ]] || exit 0
    echo
    echo "throughput, MB/s one way, $BULK bytes per run (server's receive work on its core)"
    printf '%-6s %-8s %10s %10s %10s\n' MTU path recv send echo
    # shellcheck disable=SC2086 # JUMBO is a list
    for m in 1500 $JUMBO; do
        for path in kernel xdp; do
            printf '%-6s %-8s %10s %10s %10s\n' "$m" "$path" "$(med "$path,recv,$m")" \
                "$(med "$path,send,$m")" "$(med "$path,bulk,$m")"
        done
        printf '%-6s %-8s %10s %10s %10s\n' "$m" "xdp/kern" \
            "$(ratio "$(med "xdp,recv,$m")" "$(med "kernel,recv,$m")")" \
            "$(ratio "$(med "xdp,send,$m")" "$(med "kernel,send,$m")")" \
            "$(ratio "$(med "xdp,bulk,$m")" "$(med "kernel,bulk,$m")")"
    done
    # shellcheck disable=SC2086 # JUMBO is a list
    for m in 1500 $JUMBO; do
        printf '%-6s %-8s %10s %10s\n' "$m" "xdp4k" "$(med "xdp4k,recv,$m")" \
            "huge/4k $(ratio "$(med "xdp,recv,$m")" "$(med "xdp4k,recv,$m")")"
    done
    echo "bulk target >= 1000 MB/s; kernel TCP sends 64 KiB GSO segments through the veth, the XDP"
    echo "path MTU-sized packets (AF_XDP has no segmentation offload; above 3826 a packet spans"
    echo "several 4 KiB UMEM frames, multi-buffer)"
} | tee "$CARGO_TARGET_DIR/bench-xdp.txt"
