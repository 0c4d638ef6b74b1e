#!/usr/bin/env bash
# Prepares a real NIC for hotwire's AF_XDP path. NOT run in CI or on the development machines
# (they only have veth): keep it correct by review, and run it by hand on the colocated host.
#
#   nic/tune.sh plan  IFACE QUEUE CORES VENUE_IP [VENUE_PORT]   print what would be done
#   nic/tune.sh apply IFACE QUEUE CORES VENUE_IP [VENUE_PORT]   do it (root)
#   nic/tune.sh undo  IFACE                                     remove our flow rules, reset queues
#
#   IFACE       the NIC (e.g. ens1f0)
#   QUEUE       the RX queue hotwire binds (network.queue in the config)
#   CORES       the isolated cores of the IO threads (e.g. 2,3): IRQs are moved off them
#   VENUE_IP    the venue's address; its flows are steered to QUEUE
#   VENUE_PORT  optional: only that source port (e.g. 443)
#
# What it does, in order:
#   1. ethtool -L IFACE combined N   enough combined channels that QUEUE exists (N = QUEUE + 1, at
#      least the current count), so the venue's flows can have a queue of their own;
#   2. ethtool -K IFACE ntuple on    enable n-tuple filters, then
#      ethtool -N IFACE flow-type tcp4 src-ip VENUE_IP [src-port P] action QUEUE
#      (location 0 when the driver needs one): the venue's packets land on the XSK's queue, and
#      RSS spreads everything else over the other queues, so the kernel keeps its traffic;
#   3. ethtool -K IFACE lro off gro off rxvlan off   receive offloads that coalesce or strip what
#      the userspace stack must see (LRO/GRO merge segments; AF_XDP sees raw frames anyway, but
#      generic-mode XDP runs after GRO);
#   4. IRQ affinity: every IRQ of IFACE is pinned away from CORES (/proc/irq/N/smp_affinity_list),
#      except QUEUE's own IRQ, which goes to the core next to the IO thread (same L2/L3 when
#      possible) — with busy-polling the IO thread does the work and the IRQ stays quiet;
#      irqbalance must be stopped (it would move them back);
#   5. huge pages: nic/hugepages.sh reserves enough 2 MiB pages for the UMEM and socket buffers.
#
# Zero-copy (network.bind = "zero-copy") needs a driver with AF_XDP zero-copy support (ice, i40e,
# ixgbe, mlx5, igc, stmmac, ...), native XDP (network.attach = "native") and a dedicated queue;
# hotwire falls back to copy mode (and logs it) where the driver refuses. In zero-copy mode the
# driver DMAs into the UMEM: keep the UMEM large enough for the NIC's ring size (ethtool -g).
set -Eeuo pipefail

die() { echo "tune.sh: $*" >&2; exit 1; }
run() { if [[ $MODE == apply ]]; then echo "+ $*"; "$@"; else echo "would run: $*"; fi; }

MODE=${1:-}
case $MODE in
plan|apply)
    [[ $# -ge 5 ]] || die "usage: $0 $MODE IFACE QUEUE CORES VENUE_IP [VENUE_PORT]"
    IFACE=$2 QUEUE=$3 CORES=$4 VENUE=$5 PORT=${6:-}
    [[ -d /sys/class/net/$IFACE ]] || die "no interface $IFACE"
    [[ $QUEUE =~ ^[0-9]+$ ]] || die "QUEUE must be a number"
    [[ $MODE == plan || $(id -u) -eq 0 ]] || die "apply needs root"

    current=$(ethtool -l "$IFACE" 2>/dev/null | awk '/Current hardware settings/{c=1} c && /Combined/{print $2; exit}')
    want=$((QUEUE + 1))
    if [[ -n $current && $current -lt $want ]]; then
        run ethtool -L "$IFACE" combined "$want"
    fi
    run ethtool -K "$IFACE" ntuple on
    rule=(ethtool -N "$IFACE" flow-type tcp4 src-ip "$VENUE")
    [[ -z $PORT ]] || rule+=(src-port "$PORT")
    rule+=(action "$QUEUE")
    run "${rule[@]}"
    run ethtool -K "$IFACE" lro off gro off rxvlan off

    if systemctl is-active --quiet irqbalance 2>/dev/null; then
        run systemctl stop irqbalance
    fi
    # Cores allowed for IRQs: all online cores minus CORES.
    all=$(seq 0 $(($(nproc --all) - 1)) | paste -sd, -)
    allowed=$(comm -23 <(tr , '\n' <<<"$all" | sort) <(tr , '\n' <<<"$CORES" | sort) | sort -n | paste -sd, -)
    [[ -n $allowed ]] || die "CORES covers every core; leave one for IRQs"
    for irq in $(awk -v ifc="$IFACE" '$0 ~ ifc {sub(":", "", $1); print $1}' /proc/interrupts); do
        run sh -c "echo $allowed > /proc/irq/$irq/smp_affinity_list"
    done
    echo "tune.sh: reserve huge pages with nic/hugepages.sh; configure network.queue = $QUEUE"
    ;;
undo)
    [[ $# -ge 2 ]] || die "usage: $0 undo IFACE"
    IFACE=$2 MODE=apply
    for loc in $(ethtool -n "$IFACE" 2>/dev/null | awk '/^Filter:/{print $2}'); do
        run ethtool -N "$IFACE" delete "$loc"
    done
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
