// SPDX-License-Identifier: GPL-2.0
// The veth analogue of an n-tuple rule (scripts/netns.sh steer): on the peer's egress, each IPv4
// packet to one of the configured addresses leaves on the TX queue of that address's AF_XDP
// thread, which on a veth is the client end's RX queue of the same number.
//
// A NIC steers a flow to a queue with `ethtool -N ... dst-ip A action Q`. A veth has no such rule,
// and these kernels have neither act_skbedit nor a way for a BPF program to make the TX queue pick
// keep a queue_mapping it writes. What the pick does honour is a *recorded receive queue*: a
// packet without an XPS map goes out on the queue it was received on (skb_tx_hash), and at this
// hook queue_mapping holds that record (queue + 1). So the program records the wanted queue; the
// socket then caches it (sk_tx_queue), and every packet of the flow, SYN-ACK included, takes it.
// The peer end must have no XPS map (netns.sh clears them). ARP and other addresses are untouched.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

// RULES is a list of RULE(address as a host-order integer, queue) from the command line, e.g.
// -DRULES='RULE(0x0a4d0103,0) RULE(0x0a4d0104,1)'.
#ifndef RULES
#define RULES
#endif

static long (*skb_load_bytes)(const void *skb, __u32 off, void *to, __u32 len) =
	(void *)BPF_FUNC_skb_load_bytes;

__attribute__((section("egress"), used)) int steer(struct __sk_buff *skb)
{
	__u32 dst;

	if (skb->protocol != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	/* The IPv4 destination, after an untagged Ethernet header. */
	if (skb_load_bytes(skb, 14 + 16, &dst, 4) < 0)
		return TC_ACT_OK;
	dst = __builtin_bswap32(dst);
#define RULE(addr, queue)                          \
	if (dst == (addr)) {                       \
		skb->queue_mapping = (queue) + 1;  \
		return TC_ACT_OK;                  \
	}
	RULES
#undef RULE
	return TC_ACT_OK;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
