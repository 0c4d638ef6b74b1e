#!/usr/bin/env python3
"""A strategy process behind the hotwire gateway, in Python, with the `iceoryx2` package.

The appliance (`hotwire run` with `publish = true` on its endpoints) publishes every message it
receives on the iceoryx2 service `hotwire/<endpoint>/in` and sends what is published on
`hotwire/<endpoint>/send`. This program:

- reads the feed endpoint's messages (`--feed`, a WebSocket feed of the embedded venue);
- sends one FIX NewOrderSingle on the order endpoint (`--orders`) for every Nth message
  (`--every`), as business fields only: the appliance's FIX session adds the header and trailer;
- matches each ExecutionReport (on `hotwire/<orders>/in`, kind 3) to its order by ClOrdID;
- prints tick-to-trade percentiles from the venue's clock at both ends: the feed message's send
  time (`"ts":<ns>` in the message) to the order's arrival at the venue (the venue returns it in
  the ExecutionReport as `58=recv_ns=<ns>`).

`--check-feed` is the test mode: it reads `--count` messages and checks that `seq` is contiguous
from 1 and that every payload is exactly the message the venue sent (the venue's format, rebuilt
from the message's own seq and timestamp). `--pause-after K --pause S` stops reading for S
seconds after K messages (a slow consumer). The last line of output is a JSON summary.

The iceoryx2 package must be exactly the version of hotwire's Rust crate (0.10.0): a mismatch
fails every open. The shared-memory prefix comes from HOTWIRE_GATEWAY_PREFIX, as in the appliance.
"""

import argparse
import ctypes
import json
import os
import re
import sys
import time

import iceoryx2 as iox2

KIND_TEXT, KIND_BINARY, KIND_FIX, KIND_HTTP_BODY = 1, 2, 3, 4
SOH = b"\x01"
TS = re.compile(rb'"ts":(\d+)')


class HotwireHeader(ctypes.Structure):
    """The gateway's user header: repr(C), 24 bytes, alignment 8, iceoryx2 type name
    "HotwireHeader" (the Rust side derives the same name)."""

    _fields_ = [
        ("recv_ns", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
        ("endpoint", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
    ]

    @staticmethod
    def type_name():
        return "HotwireHeader"


assert ctypes.sizeof(HotwireHeader) == 24 and ctypes.alignment(HotwireHeader) == 8


def node(name):
    """A node with the gateway's prefix and without signal handlers (Ctrl-C stays Python's)."""
    cfg = iox2.config.default()
    prefix = os.environ.get("HOTWIRE_GATEWAY_PREFIX")
    if prefix:
        cfg.global_cfg.prefix = iox2.FileName.new(prefix)
    return (
        iox2.NodeBuilder.new()
        .name(iox2.NodeName.new(name))
        .config(cfg)
        .signal_handling_mode(iox2.SignalHandlingMode.Disabled)
        .create(iox2.ServiceType.Ipc)
    )


def open_service(n, name, timeout=30.0):
    """Opens a gateway service, waiting for the appliance to create it. No QoS setter is called,
    so the appliance's settings (queue depth `publish_buffer`, overflow policy) hold."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return (
                n.service_builder(iox2.ServiceName.new(name))
                .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                .user_header(HotwireHeader)
                .open()
            )
        except iox2.PublishSubscribeOpenError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def subscribe(n, name):
    """A subscriber with the deepest queue the service allows (the endpoint's `publish_buffer`)."""
    svc = open_service(n, name)
    return svc.subscriber_builder().buffer_size(svc.static_config.subscriber_max_buffer_size).create()


def take(sub):
    """The next sample as (header fields, payload bytes), or None. The payload is copied out and
    the sample released at once, so borrowed samples never pile up."""
    s = sub.receive()
    if s is None:
        return None
    h = s.user_header().contents
    head = (h.recv_ns, h.seq, h.endpoint, h.kind)
    body = ctypes.string_at(s.payload_ptr, s.payload().len())
    s.delete()
    return head, body


def publish(pub, kind, body):
    """Publishes `body` with `kind`. Python loans do not initialise the header: set every field."""
    s = pub.loan_slice_uninit(len(body))
    h = s.user_header().contents
    h.recv_ns, h.seq, h.endpoint, h.kind = time.time_ns(), 0, 0, kind
    ctypes.memmove(s.payload_ptr, body, len(body))
    s.assume_init().send()


def idle():
    """Nothing to read: yield the core for a moment instead of spinning (strategies and the
    appliance share the machine's cores)."""
    time.sleep(0.0002)


class Gaps:
    """Counts the gaps in a service's `seq`: the messages this subscriber did not get (its queue
    overflowed: with the default `publish_overflow = "drop_oldest"` the oldest were dropped, and
    this is the only place such drops show) and prints each gap to stderr."""

    def __init__(self, name):
        self.name, self.expected, self.gaps, self.missed, self.resets = name, None, 0, 0, 0

    def see(self, seq):
        if self.expected is not None and seq == 1:
            self.resets += 1  # a new appliance: its seq starts again from 1
        elif self.expected is not None and seq != self.expected:
            self.gaps += 1
            self.missed += max(0, seq - self.expected)
            print("%s: gap: seq %d after %d (%d messages dropped for this subscriber)" % (
                self.name, seq, self.expected - 1, seq - self.expected), file=sys.stderr)
        self.expected = seq + 1


def venue_message(seq, ts, size):
    """The embedded venue's feed message `seq` sent at `ts` (hotwire venue's format)."""
    px = 100.0 + (seq % 1000) * 0.25
    text = '{"seq":%d,"ts":%d,"sym":"HWX","px":%.2f,"qty":%d,"pad":"' % (seq, ts, px, 1 + seq % 9)
    text += "x" * max(0, size - 2 - len(text))
    return (text + '"}').encode()


def field(msg, tag):
    """The value of `tag` in a FIX message, or None."""
    key = SOH + tag + b"="
    at = msg.find(key)
    if at < 0:
        return None
    start = at + len(key)
    end = msg.find(SOH, start)
    return msg[start:end]


def percentiles(values):
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * len(v)))]
    return {"p50_ns": pick(0.50), "p99_ns": pick(0.99), "p999_ns": pick(0.999), "max_ns": v[-1]}


def check_feed(args):
    n = node("check-feed")
    sub = subscribe(n, f"hotwire/{args.feed}/in")
    print("ready", flush=True)
    gaps = Gaps(args.feed)
    bad, got, lat, first = 0, 0, [], None
    # --follow counts from the first message: the feed may take a while to come up.
    deadline = time.monotonic() + args.timeout
    while (args.follow or got < args.count) and time.monotonic() < deadline:
        if args.pause_after and got == args.pause_after:
            time.sleep(args.pause)
            args.pause_after = 0
        item = take(sub)
        if item is None:
            idle()
            continue
        (recv_ns, seq, _, kind), body = item
        got += 1
        if first is None:
            first = seq
            if args.follow:
                deadline = time.monotonic() + args.follow
        gaps.see(seq)
        m = TS.search(body)
        if kind != KIND_TEXT or m is None or body != venue_message(seq, int(m.group(1)), args.size):
            bad += 1
        elif got > 10:
            lat.append(time.time_ns() - recv_ns)
    summary = {"messages": got, "gaps": gaps.gaps, "missed": gaps.missed, "bad": bad,
               "first_seq": first, "last_seq": (gaps.expected or 1) - 1, "resets": gaps.resets}
    summary.update({"appliance_to_here_" + k: v for k, v in percentiles(lat).items()})
    print(json.dumps(summary), flush=True)
    if args.follow:
        return 0 if bad == 0 and got > 0 else 1
    if args.pause:
        # A slow consumer: its queue overflowed while it slept, so gaps are expected.
        return 0 if bad == 0 and got > 0 else 1
    return 0 if got == args.count and gaps.gaps == 0 and bad == 0 else 1


def strategy(args):
    n = node("strategy")
    feed = subscribe(n, f"hotwire/{args.feed}/in")
    replies = subscribe(n, f"hotwire/{args.orders}/in")
    # DiscardData: a full appliance queue drops the order here, never blocks the strategy.
    orders = (
        open_service(n, f"hotwire/{args.orders}/send")
        .publisher_builder()
        .initial_max_slice_len(256)
        .backpressure_strategy(iox2.BackpressureStrategy.DiscardData)
        .create()
    )
    feed_gaps = Gaps(args.feed)
    print("ready", flush=True)
    for i in range(args.bad_orders):
        # Test mode: malformed orders (a header field, no SOH at the end) the appliance refuses.
        publish(orders, KIND_FIX, [b"35=D\x0149=ME\x01", b"35=D\x0111=X"][i % 2])
    pending, t2t, seen, sent, reports, rejects = {}, [], 0, 0, 0, 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and (sent < args.orders_count or pending):
        item = take(feed)
        if item is not None:
            seen += 1
            feed_gaps.see(item[0][1])
            body = item[1]
            if seen % args.every == 0 and sent < args.orders_count:
                m = TS.search(body)
                sent += 1
                cl_ord_id = b"S%d" % sent
                pending[cl_ord_id] = int(m.group(1)) if m else None
                fields = [b"35=D", b"11=" + cl_ord_id, b"55=" + args.symbol.encode(), b"54=1",
                          b"38=1", b"40=2", b"44=" + args.price.encode(), b"21=1",
                          b"60=" + time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()).encode()]
                publish(orders, KIND_FIX, SOH.join(fields) + SOH)
        reply = take(replies)
        if item is None and reply is None:
            idle()
        if reply is not None:
            msg = reply[1]
            if field(msg, b"35") == b"3":
                rejects += 1
                continue
            if field(msg, b"35") != b"8":
                continue
            cl = field(msg, b"11")
            if cl not in pending:
                continue
            reports += 1
            ts = pending.pop(cl)
            text = field(msg, b"58") or b""
            if ts is not None and text.startswith(b"recv_ns="):
                t2t.append(int(text[len(b"recv_ns="):]) - ts)
    summary = {"feed_messages": seen, "orders": sent, "reports": reports, "unanswered": len(pending),
               "rejects": rejects, "feed_gaps": feed_gaps.gaps, "feed_missed": feed_gaps.missed}
    summary.update({"t2t_" + k: v for k, v in percentiles(t2t).items()})
    if t2t:
        p = percentiles(t2t)
        print("tick-to-trade (venue clock) n=%d p50 %.1f us p99 %.1f us p99.9 %.1f us" % (
            len(t2t), p["p50_ns"] / 1e3, p["p99_ns"] / 1e3, p["p999_ns"] / 1e3))
    print(json.dumps(summary), flush=True)
    return 0 if reports == sent and sent == args.orders_count else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feed", default="feed", help="the feed endpoint's name")
    p.add_argument("--orders", default="orders", help="the FIX endpoint's name")
    p.add_argument("--every", type=int, default=100, help="one order per this many feed messages")
    p.add_argument("--orders-count", type=int, default=100, help="stop after this many orders")
    p.add_argument("--symbol", default="HWX")
    p.add_argument("--price", default="101.25")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds")
    p.add_argument("--bad-orders", type=int, default=0,
                   help="test mode: first publish this many malformed orders")
    p.add_argument("--check-feed", action="store_true", help="test mode: check the feed")
    p.add_argument("--count", type=int, default=100_000, help="--check-feed: messages to read")
    p.add_argument("--size", type=int, default=128, help="--check-feed: the venue's message size")
    p.add_argument("--follow", type=float, default=0.0,
                   help="--check-feed: read for this many seconds instead of --count messages")
    p.add_argument("--pause-after", type=int, default=0, help="--check-feed: stop reading after K")
    p.add_argument("--pause", type=float, default=0.0, help="--check-feed: for this many seconds")
    args = p.parse_args()
    return check_feed(args) if args.check_feed else strategy(args)


if __name__ == "__main__":
    sys.exit(main())
