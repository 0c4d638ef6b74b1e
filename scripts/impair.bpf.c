// SPDX-License-Identifier: GPL-2.0
// Peer-side impairment for the veth tests (scripts/impair.sh): loss and reordering without netem.
//
// This kernel has no netem, fq or etf, so a packet cannot simply be held back for a while. What it
// has is HTB and cls_bpf, and that is enough:
//   - loss: the program returns TC_ACT_SHOT for a random LOSS / 2^32 of the IPv4 packets. On
//     egress it runs as the HTB root's classifier, where a drop is silent: the sending socket is
//     told the packet left (as on a wire, and as netem does). A drop in clsact egress or a qdisc
//     tail drop would instead be reported to TCP as local congestion, and TCP would just resend
//     the same segment without any receiver ever seeing a gap. On ingress it runs in clsact.
//   - reordering (egress only): for a random REORDER / 2^32 of the packets the program starts a
//     "slow run": that packet and the next one are classified into the HTB slow class, which is
//     rate-limited with a bucket smaller than one frame, so the second packet of the run waits for
//     tokens (about 0.6 ms) while the packets behind it in the default class overtake it. The
//     run's packets are marked with DSCP CS1 (TOS 0x20, IP checksum adjusted) so that a capture
//     can tell a held-back packet from a retransmission.
// Only IPv4 is touched: ARP gets through, so neighbour resolution is not what a test measures.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#ifndef LOSS
#define LOSS 0
#endif
#ifndef REORDER
#define REORDER 0
#endif
#ifndef FAST_CLASS
#define FAST_CLASS 0x10010 /* HTB class 1:10 */
#endif
#ifndef SLOW_CLASS
#define SLOW_CLASS 0x10020 /* HTB class 1:20 */
#endif
#define RUN 2

#ifndef MARK_TOS
#define MARK_TOS 0x20 /* DSCP CS1 */
#endif
#define IP_OFF 14 /* the IPv4 header, after an untagged Ethernet header */

static __u32 (*get_prandom_u32)(void) = (void *)BPF_FUNC_get_prandom_u32;
static long (*skb_load_bytes)(const void *skb, __u32 off, void *to, __u32 len) =
	(void *)BPF_FUNC_skb_load_bytes;
static long (*skb_store_bytes)(void *skb, __u32 off, const void *from, __u32 len, __u64 flags) =
	(void *)BPF_FUNC_skb_store_bytes;
static long (*l3_csum_replace)(void *skb, __u32 off, __u64 from, __u64 to, __u64 size) =
	(void *)BPF_FUNC_l3_csum_replace;

/* Packets still to send down the slow class in the current run (shared by all CPUs; a lost
 * update only shortens or lengthens one run). */
__u32 slow_left = 0;

static __attribute__((always_inline)) int is_ipv4(const struct __sk_buff *skb)
{
	return skb->protocol == __builtin_bswap16(ETH_P_IP);
}

/* Sets the TOS byte of the IPv4 header to MARK_TOS and fixes the header checksum. The word is kept
 * in network order as loaded, which is what l3_csum_replace expects for a 2-byte change. */
static __attribute__((always_inline)) void mark(struct __sk_buff *skb)
{
	__u16 old, new;
	if (skb_load_bytes(skb, IP_OFF, &old, 2) < 0)
		return;
	new = old;
	((__u8 *)&new)[1] = MARK_TOS;
	if (new == old)
		return;
	if (skb_store_bytes(skb, IP_OFF, &new, 2, 0) < 0)
		return;
	l3_csum_replace(skb, IP_OFF + 10, old, new, 2);
}

__attribute__((section("egress"), used)) int impair_egress(struct __sk_buff *skb)
{
	skb->tc_classid = FAST_CLASS;
	if (!is_ipv4(skb))
		return TC_ACT_OK;
	__u32 r = get_prandom_u32();
	if (r < (__u32)LOSS)
		return TC_ACT_SHOT;
	if ((__u64)r < (__u64)LOSS + (__u64)REORDER && slow_left == 0)
		slow_left = RUN;
	if (slow_left > 0) {
		slow_left -= 1;
		skb->tc_classid = SLOW_CLASS;
		mark(skb);
	}
	return TC_ACT_OK;
}

__attribute__((section("ingress"), used)) int impair_ingress(struct __sk_buff *skb)
{
	if (!is_ipv4(skb))
		return TC_ACT_OK;
	return get_prandom_u32() < (__u32)LOSS ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
