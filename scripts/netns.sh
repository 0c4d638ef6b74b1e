#!/usr/bin/env bash
# Test network: a veth pair whose ends live in the project's own network namespaces (root needed).
#
#   scripts/netns.sh up [ID]         pair mode: both ends in namespaces
#       hwc-ID (client)  hwc0 10.77.ID.2/24  <-- veth -->  hws0 10.77.ID.1/24  hws-ID (server)
#   scripts/netns.sh up-host [ID]    host mode: the client end stays in the root namespace
#       root namespace   hwhID 10.77.ID.2/24 <-- veth -->  hws0 10.77.ID.1/24  hws-ID (server)
#   scripts/netns.sh down ID         removes that set (namespaces, veth, bookkeeping)
#   scripts/netns.sh down-owner TAG  removes every set created with HOTWIRE_NETNS_OWNER=TAG
#   scripts/netns.sh down-stale      removes sets whose owner was a scripts/test.sh run that is gone
#   scripts/netns.sh steer ID Q=ADDR...  packets to ADDR leave the server end on queue Q, so they
#                                    arrive on the client end's RX queue Q (HOTWIRE_NETNS_QUEUES)
#   scripts/netns.sh list            the sets that exist, one "ID MODE OWNER" line each
#
# HOTWIRE_NETNS_QUEUES=N (default 1) gives both ends N TX and N RX queues, for one AF_XDP socket
# per queue. The peer then answers every flow on the queue it arrived on (see "Multi-queue" below).
#
# ID is the third octet of the subnet (1..254). Without one, `up` takes the lowest free ID: creating
# the namespace hws-ID is the lock (it fails if it exists), so parallel runs never collide. `up`
# prints KEY=VALUE lines on stdout and nothing else:
#   HW_ID HW_MODE HW_PREFIX_LEN
#   HW_SERVER_NS HW_SERVER_IF HW_SERVER_IP HW_SERVER_MAC
#   HW_CLIENT_NS (empty in host mode: the root namespace) HW_CLIENT_IF HW_CLIENT_IP HW_CLIENT_MAC
#
# The recipe follows shared/XDP.md so AF_XDP and smoltcp work on it: one TX and one RX queue per end
# (packets on a queue without a bound XSK never arrive); on the server end (the kernel peer) TX
# checksum offload off (smoltcp drops partial checksums) and TSO/GSO off (large segments stall
# generic-mode XDP).
#
# Multi-queue: a real NIC puts each flow on its AF_XDP thread's queue with an n-tuple rule
# (`ethtool -N`, nic/tune.sh). A veth picks the client end's RX queue from the TX queue the server
# end sends on, so `steer` does it on the server end's egress: scripts/queue-steer.bpf.c (see
# there why this takes a BPF classifier and not `tc ... action skbedit`, which these kernels lack).
# IPv6 is disabled on both ends so no router solicitations or DAD probes add
# packets: the interface counters then count only the tests' own traffic.
set -Eeuo pipefail

PREFIX=10.77
STATE=/run/hotwire-netns

die() {
    echo "netns.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

valid_id() {
    [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 254))
}

# Claims ID by creating its server namespace; fails if it exists or the subnet is in use.
claim() {
    local id=$1
    [[ -z "$(ip -4 -o addr show to "$PREFIX.$id.0/24" 2>/dev/null)" ]] || return 1
    ip netns add "hws-$id" 2>/dev/null
}

mac_of() { # NS IF (NS empty: root namespace)
    if [[ -n $1 ]]; then
        ip -n "$1" -o link show "$2"
    else
        ip -o link show "$2"
    fi | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

# Configures one end: no IPv6, address, up. NS empty = root namespace.
configure_end() { # NS IF ADDR
    local ns=$1 dev=$2 addr=$3 run=()
    [[ -z $ns ]] || run=(ip netns exec "$ns")
    # (A kernel without IPv6 has nothing to disable.)
    if [[ -d /proc/sys/net/ipv6 ]]; then
        "${run[@]}" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    fi
    "${run[@]}" ip addr add "$addr/24" dev "$dev"
    "${run[@]}" ip link set "$dev" up
    if [[ -n $ns ]]; then
        ip -n "$ns" link set lo up
    fi
}

cmd_up() { # MODE [ID]
    local mode=$1 id=${2:-}
    [[ $(id -u) -eq 0 ]] || die "needs root"
    command -v ethtool >/dev/null || die "ethtool is missing (scripts/peers.sh installs it)"
    if [[ -n $id ]]; then
        valid_id "$id" || die "ID must be 1..254, got '$id'"
        claim "$id" || die "ID $id is in use (hws-$id exists or $PREFIX.$id.0/24 is assigned)"
    else
        for id in $(seq 1 254); do
            claim "$id" && break
            id=
        done
        [[ -n $id ]] || die "no free ID in 1..254"
    fi
    mkdir -p "$STATE"
    printf '%s %s\n' "$mode" "${HOTWIRE_NETNS_OWNER:-none}" >"$STATE/$id"
    # Anything failing from here on leaves nothing behind.
    trap 'cmd_down '"$id"' >/dev/null 2>&1' ERR

    local sns=hws-$id sif=hws0 sip=$PREFIX.$id.1 cns cif cip=$PREFIX.$id.2
    local nq=${HOTWIRE_NETNS_QUEUES:-1}
    [[ $nq =~ ^[0-9]+$ ]] && ((nq >= 1 && nq <= 16)) || die "HOTWIRE_NETNS_QUEUES must be 1..16"
    local q=(numtxqueues "$nq" numrxqueues "$nq")
    if [[ $mode == pair ]]; then
        cns=hwc-$id cif=hwc0
        ip netns add "$cns"
        ip link add "$cif" netns "$cns" "${q[@]}" type veth peer name "$sif" netns "$sns" "${q[@]}"
    else
        cns='' cif=hwh$id
        ip link add "$cif" "${q[@]}" type veth peer name "$sif" netns "$sns" "${q[@]}"
    fi
    configure_end "$sns" "$sif" "$sip"
    configure_end "$cns" "$cif" "$cip"
    ip netns exec "$sns" ethtool -K "$sif" tx off tso off gso off >/dev/null
    trap - ERR

    cat <<EOF
HW_ID=$id
HW_MODE=$mode
HW_PREFIX_LEN=24
HW_QUEUES=$nq
HW_SERVER_NS=$sns
HW_SERVER_IF=$sif
HW_SERVER_IP=$sip
HW_SERVER_MAC=$(mac_of "$sns" "$sif")
HW_CLIENT_NS=$cns
HW_CLIENT_IF=$cif
HW_CLIENT_IP=$cip
HW_CLIENT_MAC=$(mac_of "$cns" "$cif")
EOF
}

cmd_steer() { # ID Q=ADDR...
    local id=$1 rules='' r q a dir
    shift
    valid_id "$id" || die "ID must be 1..254, got '$id'"
    ip netns pids "hws-$id" >/dev/null 2>&1 || die "no set $id"
    command -v clang >/dev/null || die "clang is needed (scripts/peers.sh installs it)"
    (($#)) || die "steer needs at least one Q=ADDR"
    for r in "$@"; do
        [[ $r =~ ^([0-9]+)=([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "not Q=A.B.C.D: $r"
        q=${BASH_REMATCH[1]}
        a=$(printf '0x%02x%02x%02x%02x' "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" \
            "${BASH_REMATCH[4]}" "${BASH_REMATCH[5]}")
        rules+="RULE($a,$q) "
    done
    dir=$(mktemp -d)
    clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu "-DRULES=$rules" \
        -c "$(dirname "$0")/queue-steer.bpf.c" -o "$dir/steer.o"
    # The pick honours the recorded queue only where no XPS map decides first.
    local t
    for t in /sys/class/net/hws0/queues/tx-*; do
        ip netns exec "hws-$id" sh -c "echo 0 > $t/xps_cpus; echo 0 > $t/xps_rxqs" 2>/dev/null || true
    done
    ip netns exec "hws-$id" tc qdisc replace dev hws0 clsact
    ip netns exec "hws-$id" tc filter replace dev hws0 egress prio 1 handle 1 bpf obj "$dir/steer.o" \
        sec egress da
    rm -rf "$dir"
}

cmd_down() { # ID
    local id=$1
    valid_id "$id" || die "ID must be 1..254, got '$id'"
    # Deleting a namespace destroys the veth end inside it, and with it the other end.
    ip netns del "hwc-$id" 2>/dev/null || true
    ip netns del "hws-$id" 2>/dev/null || true
    ip link del "hwh$id" 2>/dev/null || true
    rm -f "$STATE/$id"
    echo "netns.sh: removed set $id" >&2
}

cmd_down_owner() { # TAG
    local f
    for f in "$STATE"/*; do
        [[ -e $f ]] || continue
        read -r _ owner <"$f" || true
        [[ $owner == "$1" ]] && cmd_down "${f##*/}"
    done
    return 0
}

# scripts/test.sh tags its sets run-PID-TIME: a set whose PID is gone was left by a killed run.
cmd_down_stale() {
    local f owner pid
    for f in "$STATE"/*; do
        [[ -e $f ]] || continue
        read -r _ owner <"$f" || true
        [[ $owner =~ ^run-([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        [[ -d /proc/$pid ]] || cmd_down "${f##*/}"
    done
    return 0
}

cmd_list() {
    local f
    for f in "$STATE"/*; do
        [[ -e $f ]] && echo "${f##*/} $(cat "$f")"
    done
    return 0
}

case ${1:-} in
up) cmd_up pair "${2:-}" ;;
up-host) cmd_up host "${2:-}" ;;
down) [[ -n ${2:-} ]] || usage; cmd_down "$2" ;;
down-owner) [[ -n ${2:-} ]] || usage; cmd_down_owner "$2" ;;
down-stale) cmd_down_stale ;;
steer) [[ -n ${2:-} ]] || usage; shift; cmd_steer "$@" ;;
list) cmd_list ;;
*) usage ;;
esac
