// SPDX-License-Identifier: GPL-2.0
/*
 * hotwire steering program — the readable reference of the instructions that
 * src/xdp/steer.rs assembles and loads (the two must match; tests/xdp.rs checks
 * the behaviour: ARP and IPv4 for the stack reach the AF_XDP socket, everything
 * else still reaches the kernel, and the program leaves with its process).
 *
 * Per packet:
 *   ARP whose target protocol address is OUR_IP            -> XSK of the RX queue
 *                                       (dedicated-IP mode; a shared address's ARP stays with
 *                                        the kernel, whose table the stack reads instead)
 *   IPv4 to OUR_IP (dedicated-IP mode)                       -> XSK of the RX queue
 *   IPv4/TCP to OUR_IP, dst port in [PORT_FIRST, PORT_LAST]  -> XSK (shared-IP mode)
 *   anything else, or a queue without a socket               -> XDP_PASS (kernel)
 *
 * hotwire does not compile this file: the constants (OUR_IP, the mode and the
 * port range) are patched into the instructions at load time, so no BPF
 * toolchain is needed at build or run time. To inspect it with the usual tools:
 *   clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu \
 *         -DOUR_IP=0x03004d0a -c nic/steer.c -o /tmp/steer.o && llvm-objdump -d /tmp/steer.o
 * (OUR_IP is the address in network byte order read as a little-endian word:
 *  10.77.0.3 -> 0x03004d0a.)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>

#ifndef OUR_IP
#define OUR_IP 0x03004d0a
#endif
/* Define SHARED_IP for shared-IP mode. */
#ifndef PORT_FIRST
#define PORT_FIRST 40000
#endif
#ifndef PORT_LAST
#define PORT_LAST 40999
#endif

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 64);
} xsks SEC(".maps");

/*
 * For an MTU larger than one UMEM frame holds, hotwire loads the same instructions with
 * BPF_F_XDP_HAS_FRAGS (libbpf: SEC("xdp.frags")): the program reads only the headers, which are
 * in the first buffer of a multi-buffer packet, so it is correct for both, and the flag lets
 * native XDP run on a link whose MTU exceeds a page and hand whole jumbo packets to a
 * multi-buffer (XDP_USE_SG) socket.
 */
SEC("xdp")
int hotwire_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	/* Ethernet + ARP for IPv4 is 42 bytes: a shorter frame is never ours. */
	if (data + 42 > data_end)
		return XDP_PASS;

#ifndef SHARED_IP
	if (eth->h_proto == __constant_htons(ETH_P_ARP)) {
		/* Target protocol address: Ethernet 14 + ARP 24. */
		if (*(__u32 *)(data + 14 + 24) != OUR_IP)
			return XDP_PASS;
		goto redirect;
	}
#endif
	if (eth->h_proto != __constant_htons(ETH_P_IP))
		return XDP_PASS;

	struct iphdr *ip = data + sizeof(*eth);
	if (ip->daddr != OUR_IP)
		return XDP_PASS;
#ifdef SHARED_IP
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	/* A non-first fragment carries no TCP header. */
	if (ip->frag_off & __constant_htons(0x1fff))
		return XDP_PASS;
	struct tcphdr *tcp = (void *)ip + (ip->ihl & 0x0f) * 4;
	if ((void *)tcp + 4 > data_end)
		return XDP_PASS;
	__u16 port = __builtin_bswap16(tcp->dest);
	if (port < PORT_FIRST || port > PORT_LAST)
		return XDP_PASS;
#endif
redirect:
	/* XDP_PASS as the fallback action: no socket on this queue -> kernel. */
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
