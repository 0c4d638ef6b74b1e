#!/usr/bin/env bash
# Prepares a real NIC for hotwire's AF_XDP threads: one queue, one flow rule and one isolated core
# per thread. NOT run in CI or on the development machines (they only have veth, where
# scripts/netns.sh steer plays the flow rules' part): keep it correct by review, and run it by hand
# on the colocated host. `plan` only prints; it is safe anywhere.
#
#   nic/tune.sh plan  CONFIG   print what would be done for CONFIG's AF_XDP threads
#   nic/tune.sh apply CONFIG   do it (root)
#   nic/tune.sh undo  IFACE    remove every flow rule of IFACE
#
# The threads come from `hotwire check CONFIG --nic-plan` (HOTWIRE=path/to/hotwire, default the
# one on PATH): one line per thread with its interface, steering mode, core, queue, address and
# port slice. What it does, in order:
#   1. ethtool -L IFACE combined N     enough channels that every thread's queue exists;
#   2. ethtool -K IFACE ntuple on, then one rule per thread (n-tuple rules match IP flows; ARP
#      lands wherever RSS puts it, which is why several threads leave ARP to the kernel):
#        dedicated-ip: ethtool -N IFACE flow-type tcp4 dst-ip IP action QUEUE
#        shared-ip:    the thread's port slice as aligned power-of-two blocks,
#                      ethtool -N IFACE flow-type tcp4 dst-ip IP dst-port BASE m IGNORED action QUEUE
#                      (ethtool's `m` marks the bits to ignore: a block of 2^k ports ignores the
#                      low k bits); a slice that is not a power of two takes several rules;
#   3. dedicated-ip with several threads: each thread's address on IFACE as a /32, so the kernel
#      answers ARP for it (the steering program still takes every packet to it);
#   4. ethtool -K IFACE lro off gro off rxvlan off   receive offloads that coalesce or strip what
#      the userspace stack must see;
#   5. IRQs: irqbalance stopped; every IRQ of IFACE pinned away from the threads' cores, except each
#      thread queue's own IRQ, which goes to its thread's core (with busy-polling it stays quiet,
#      and its cache lines stay with the thread that reads the queue);
#   6. huge pages: nic/hugepages.sh reserves enough 2 MiB pages for the UMEMs and socket buffers.
#
# Zero-copy (network.bind = "zero-copy") needs a driver with AF_XDP zero-copy support (ice, i40e,
# ixgbe, mlx5, igc, stmmac, ...), native XDP (network.attach = "native") and a dedicated queue per
# thread; hotwire falls back to copy mode (and logs it) where the driver refuses. In zero-copy mode
# the driver DMAs into the UMEM: keep each UMEM large enough for the NIC's ring size (ethtool -g).
set -Eeuo pipefail

die() { echo "tune.sh: $*" >&2; exit 1; }
run() { if [[ $MODE == apply ]]; then echo "+ $*"; "$@"; else echo "would run: $*"; fi; }

# Aligned power-of-two blocks covering FIRST..LAST: "BASE IGNORED" lines (IGNORED = size - 1).
port_blocks() { # FIRST LAST
    local lo=$1 hi=$2 size
    while ((lo <= hi)); do
        size=1
        while (((lo % (size * 2)) == 0 && lo + size * 2 - 1 <= hi)); do
            size=$((size * 2))
        done
        printf '%d 0x%x\n' "$lo" $((size - 1))
        lo=$((lo + size))
    done
}

MODE=${1:-}
case $MODE in
plan|apply)
    [[ $# -ge 2 ]] || die "usage: $0 $MODE CONFIG"
    CONFIG=$2
    [[ $MODE == plan || $(id -u) -eq 0 ]] || die "apply needs root"
    HOTWIRE=${HOTWIRE:-hotwire}
    mapfile -t PLAN < <("$HOTWIRE" check "$CONFIG" --nic-plan)
    ((${#PLAN[@]})) || die "$CONFIG has no AF_XDP thread (network.path = \"xdp\" and [[thread]] queue = N)"
    declare -A F
    IFACE='' cores=() queues=()
    for line in "${PLAN[@]}"; do
        F=()
        for kv in $line; do F[${kv%%=*}]=${kv#*=}; done
        [[ -z $IFACE || $IFACE == "${F[interface]}" ]] || die "threads on several interfaces"
        IFACE=${F[interface]} MODE_STEER=${F[mode]}
        queues+=("${F[queue]}")
        [[ ${F[core]} == - ]] || cores+=("${F[core]}")
    done
    [[ -d /sys/class/net/$IFACE ]] || die "no interface $IFACE"

    max=0
    for q in "${queues[@]}"; do ((q > max)) && max=$q; done
    current=$(ethtool -l "$IFACE" 2>/dev/null | awk '/Current hardware settings/{c=1} c && /Combined/{print $2; exit}')
    if [[ $current =~ ^[0-9]+$ ]] && ((current <= max)); then
        run ethtool -L "$IFACE" combined $((max + 1))
    fi
    run ethtool -K "$IFACE" ntuple on
    for line in "${PLAN[@]}"; do
        F=()
        for kv in $line; do F[${kv%%=*}]=${kv#*=}; done
        echo "# thread ${F[thread]}: queue ${F[queue]}, core ${F[core]}, ${F[ip]} ports ${F[ports]}"
        if [[ $MODE_STEER == dedicated-ip ]]; then
            run ethtool -N "$IFACE" flow-type tcp4 dst-ip "${F[ip]}" action "${F[queue]}"
            if ((${#PLAN[@]} > 1)) && ! ip -4 -o addr show dev "$IFACE" | grep -q " ${F[ip]}/"; then
                run ip addr add "${F[ip]}/32" dev "$IFACE"
            fi
        else
            while read -r base ignored; do
                run ethtool -N "$IFACE" flow-type tcp4 dst-ip "${F[ip]}" dst-port "$base" \
                    m "$ignored" action "${F[queue]}"
            done < <(port_blocks "${F[ports]%-*}" "${F[ports]#*-}")
        fi
    done
    run ethtool -K "$IFACE" lro off gro off rxvlan off

    if systemctl is-active --quiet irqbalance 2>/dev/null; then
        run systemctl stop irqbalance
    fi
    # IRQs may use every online core but the threads'.
    online=$(cat /sys/devices/system/cpu/online)
    all=$(tr , '\n' <<<"$online" | awk -F- '{ if (NF == 2) for (i = $1; i <= $2; i++) print i; else print $1 }')
    allowed=$(comm -23 <(sort <<<"$all") <(printf '%s\n' "${cores[@]:-}" | sort) | sort -n | paste -sd, -)
    [[ -n $allowed ]] || die "the threads' cores are every core; leave one for IRQs"
    # Queue IRQs are named after the interface and the queue (e.g. ice-ens1f0-TxRx-3).
    while read -r irq name; do
        target=$allowed
        for line in "${PLAN[@]}"; do
            F=()
            for kv in $line; do F[${kv%%=*}]=${kv#*=}; done
            if [[ ${F[core]} != - && $name =~ [^0-9]${F[queue]}$ ]]; then
                target=${F[core]}
            fi
        done
        run sh -c "echo $target > /proc/irq/$irq/smp_affinity_list"
    done < <(awk -v ifc="$IFACE" '$0 ~ ifc {sub(":", "", $1); print $1, $NF}' /proc/interrupts)
    echo "tune.sh: reserve huge pages with nic/hugepages.sh"
    ;;
undo)
    [[ $# -ge 2 ]] || die "usage: $0 undo IFACE"
    IFACE=$2 MODE=apply
    for loc in $(ethtool -n "$IFACE" 2>/dev/null | awk '/^Filter:/{print $2}'); do
        run ethtool -N "$IFACE" delete "$loc"
    done
    ;;
*)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
