#!/usr/bin/env bash
# Loss and reordering on one end of a veth, for tests that want a lossy path (root needed).
#
#   scripts/impair.sh on NETNS DEV [LOSS_PCT=1] [REORDER_PCT=1]
#   scripts/impair.sh stats NETNS DEV    one line: "dropped_in N slow N throttled N"
#   scripts/impair.sh off NETNS DEV
#
# The tests' kernel has no netem (nor fq, etf or gact), so this builds the equivalent from what it
# has, HTB and clsact with a BPF classifier (scripts/impair.bpf.c, compiled here with clang):
#   - LOSS_PCT of the IPv4 packets DEV sends, and of those it receives, are dropped silently (the
#     sender is not told, as with netem);
#   - REORDER_PCT of the packets DEV sends start a two-packet run through a rate-limited HTB class
#     with a tiny bucket, so the run's second packet is held back about a millisecond while the
#     packets behind it overtake it.
# The packets of a slow run leave with TOS 0x20, so a capture on DEV (tcpdump sees what leaves
# after the qdisc) tells held-back packets from retransmissions. Removing the namespace removes all
# of this as well. In `stats`, dropped_in is the packets dropped coming into DEV, "slow" the packets
# sent through the slow class and "throttled" how often that class ran out of tokens.
set -Eeuo pipefail

die() {
    echo "impair.sh: $*" >&2
    exit 1
}

# P percent as a threshold on a random u32 (P/100 * 2^32), rejecting what is not 0..100.
threshold() {
    awk -v p="$1" 'BEGIN {
        if (p !~ /^[0-9]+(\.[0-9]+)?$/ || p > 100) exit 1
        t = int(p / 100 * 4294967296); if (t > 4294967295) t = 4294967295
        printf "%.0f\n", t
    }' || die "not a percentage: $1"
}

nstc() {
    ip netns exec "$NS" tc "$@"
}

on() {
    local loss reorder dir
    loss=$(threshold "${1:-1}")
    reorder=$(threshold "${2:-1}")
    command -v clang >/dev/null || die "clang is needed (scripts/peers.sh installs it)"
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' RETURN
    clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
        -DLOSS="$loss" -DREORDER="$reorder" -DFAST_CLASS=0x10010 -DSLOW_CLASS=0x10020 -DMARK_TOS=0x20 \
        -c "$(dirname "$0")/impair.bpf.c" -o "$dir/impair.o"
    off 2>/dev/null || true
    # 1:10 carries everything at any speed; 1:20 is the slow class: 20 Mbit/s with a bucket smaller
    # than one full frame, so back-to-back packets in it wait about 0.6 ms each.
    nstc qdisc add dev "$DEV" root handle 1: htb default 10 r2q 100000
    nstc class add dev "$DEV" parent 1: classid 1:10 htb rate 100gbit
    nstc class add dev "$DEV" parent 1: classid 1:20 htb rate 20mbit burst 100 cburst 100 2>/dev/null
    nstc qdisc add dev "$DEV" parent 1:20 handle 20: pfifo limit 64
    # The egress program is HTB's classifier (a drop there is silent); "classid" binds the filter
    # so that the class the program writes into tc_classid is taken.
    nstc filter add dev "$DEV" parent 1: prio 1 bpf obj "$dir/impair.o" sec egress da classid 1:10
    nstc qdisc add dev "$DEV" clsact
    nstc filter add dev "$DEV" ingress prio 1 bpf obj "$dir/impair.o" sec ingress da
}

off() {
    nstc qdisc del dev "$DEV" clsact 2>/dev/null || true
    nstc qdisc del dev "$DEV" root 2>/dev/null || true
}

stats() {
    local in slow throttled
    # clsact's drops are the ingress losses. (HTB's drop counter undercounts what its classifier
    # drops for TCP, so egress losses are best counted in a capture: see tests/xdp.rs.)
    in=$(nstc -s qdisc show dev "$DEV" | awk '$1 == "qdisc" {c = ($2 == "clsact"); if (c) f = 1; next}
        c && /dropped/ { gsub(/[(),]/, " "); for (i = 1; i <= NF; i++) if ($i == "dropped") n += $(i + 1) }
        END { if (f) print n + 0 }')
    read -r slow throttled < <(nstc -s class show dev "$DEV" classid 1:20 | awk '/Sent/ {
        gsub(/[(),]/, " "); for (i = 1; i <= NF; i++) { if ($i == "pkt") s = $(i - 1); if ($i == "overlimits") o = $(i + 1) }
        print s, o; exit }')
    [[ -n $in && -n $slow ]] || die "no impairment on $DEV in $NS"
    echo "dropped_in $in slow $slow throttled $throttled"
}

(($# >= 3)) || {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
CMD=$1 NS=$2 DEV=$3
shift 3
case $CMD in
on) on "$@" ;;
off) off ;;
stats) stats ;;
*) die "unknown command $CMD" ;;
esac
