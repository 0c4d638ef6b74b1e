//! Deliberate loss and reordering as a wrapper device, the way smoltcp's `FaultInjector` wraps a
//! device: for tests on hosts whose kernel has no `netem` (this one: `CONFIG_NET_SCH_NETEM` is not
//! set). Both directions; with no [`Impairment`] set, every call goes straight through.
//!
//! A lost packet is read (receive) or written (transmit) and discarded. A reordered one is copied
//! aside into a buffer allocated once, and delivered after the packet behind it: on receive at the
//! next call after that packet, or at once when nothing is behind it; on transmit before the next
//! packet written after it, or at [`Impaired::settle`] (once per stack poll, before the device
//! flushes).

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;

/// Deliberate loss and reordering of packets in both directions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Probability that a packet is dropped (0.01 = 1 %).
    pub loss: f64,
    /// Probability that a packet is delivered after the one behind it.
    pub reorder: f64,
    /// Seed of the generator (runs are reproducible).
    pub seed: u64,
}

/// A packet set aside: its bytes and whether it is due.
#[derive(Debug)]
struct Held {
    buf: Vec<u8>,
    len: Option<usize>,
    due: bool,
}

impl Held {
    fn new(capacity: usize) -> Held {
        Held {
            buf: vec![0; capacity],
            len: None,
            due: false,
        }
    }

    fn keep(&mut self, packet: &[u8]) -> bool {
        if packet.len() > self.buf.len() {
            return false;
        }
        self.buf[..packet.len()].copy_from_slice(packet);
        self.len = Some(packet.len());
        self.due = false;
        true
    }
}

/// The generator and what it did.
#[derive(Debug)]
struct Gen {
    cfg: Impairment,
    rng: u64,
    dropped: u64,
    reordered: u64,
}

impl Gen {
    fn roll(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct State {
    gen: Gen,
    rx: Held,
    tx: Held,
    /// Where a lost packet is written.
    scratch: Vec<u8>,
}

/// A device that loses and reorders the packets of the device it wraps.
#[derive(Debug)]
pub struct Impaired<D> {
    inner: D,
    state: Option<State>,
}

impl<D: Device> Impaired<D> {
    /// Wraps `inner`, unimpaired.
    pub fn new(inner: D) -> Impaired<D> {
        Impaired { inner, state: None }
    }

    /// Sets the impairment (`None`: none). Held packets are as large as the wrapped device's
    /// largest (allocated now, once).
    pub fn set(&mut self, cfg: Option<Impairment>) {
        let max = self.inner.capabilities().max_transmission_unit;
        self.state = cfg.map(|cfg| State {
            gen: Gen {
                cfg,
                rng: cfg.seed | 1,
                dropped: 0,
                reordered: 0,
            },
            rx: Held::new(max),
            tx: Held::new(max),
            scratch: vec![0; max],
        });
    }

    /// `(dropped, reordered)` packets so far.
    pub fn counts(&self) -> (u64, u64) {
        self.state
            .as_ref()
            .map_or((0, 0), |s| (s.gen.dropped, s.gen.reordered))
    }

    /// The wrapped device.
    pub fn get_ref(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, mutably.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Sends a transmitted packet still held back (nothing was written behind it this poll).
    pub fn settle(&mut self, now: Instant) {
        if let Some(s) = self.state.as_mut() {
            s.tx.due = s.tx.len.is_some();
            release_tx(&mut self.inner, &mut s.tx, now);
        }
    }
}

/// Writes the held TX packet into a token of `inner` once it is due.
fn release_tx<D: Device>(inner: &mut D, held: &mut Held, now: Instant) {
    let (true, Some(len)) = (held.due, held.len) else {
        return;
    };
    if let Some(token) = inner.transmit(now) {
        token.consume(len, |buf| buf.copy_from_slice(&held.buf[..len]));
        held.len = None;
        held.due = false;
    }
}

/// A received packet: the wrapped device's, or one held back.
#[derive(Debug)]
pub enum ImpairedRx<'a, R> {
    /// Straight from the wrapped device.
    Inner(R),
    /// Released after the packet that overtook it.
    Held(&'a [u8]),
}

impl<R: RxToken> RxToken for ImpairedRx<'_, R> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        match self {
            ImpairedRx::Inner(t) => t.consume(f),
            ImpairedRx::Held(p) => f(p),
        }
    }
}

/// A packet to transmit, which the impairment may drop or hold back.
#[derive(Debug)]
pub struct ImpairedTx<'a, T> {
    inner: T,
    state: Option<(&'a mut Gen, &'a mut Held, &'a mut Vec<u8>)>,
}

impl<T: TxToken> TxToken for ImpairedTx<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let Some((gen, held, scratch)) = self.state else {
            return self.inner.consume(len, f);
        };
        // smoltcp never writes more than the MTU the held buffers are sized for.
        let n = len.min(scratch.len());
        if gen.roll() < gen.cfg.loss {
            gen.dropped += 1;
            // Written, never sent: the wrapped device's token is dropped unused.
            return f(&mut scratch[..n]);
        }
        if held.len.is_none() && gen.roll() < gen.cfg.reorder {
            gen.reordered += 1;
            let r = f(&mut held.buf[..n]);
            held.len = Some(n);
            held.due = false;
            return r;
        }
        // This packet overtakes the held one, which goes next.
        held.due = held.len.is_some();
        self.inner.consume(len, f)
    }
}

impl<D: Device> Device for Impaired<D> {
    type RxToken<'a>
        = ImpairedRx<'a, D::RxToken<'a>>
    where
        D: 'a;
    type TxToken<'a>
        = ImpairedTx<'a, D::TxToken<'a>>
    where
        D: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let Impaired { inner, state } = self;
        let Some(s) = state.as_mut() else {
            let (rx, tx) = inner.receive(now)?;
            return Some((
                ImpairedRx::Inner(rx),
                ImpairedTx {
                    inner: tx,
                    state: None,
                },
            ));
        };
        release_tx(inner, &mut s.tx, now);
        let State {
            gen,
            rx: rx_held,
            tx: tx_held,
            scratch,
        } = s;
        if rx_held.due {
            // The packet that overtook it has been read: the held one is next.
            let len = rx_held.len.take()?;
            rx_held.due = false;
            let tx = inner.transmit(now)?;
            return Some((
                ImpairedRx::Held(&rx_held.buf[..len]),
                ImpairedTx {
                    inner: tx,
                    state: Some((gen, tx_held, scratch)),
                },
            ));
        }
        loop {
            let lose = gen.roll() < gen.cfg.loss;
            let hold = !lose && rx_held.len.is_none() && gen.roll() < gen.cfg.reorder;
            if !lose && !hold {
                break;
            }
            let Some((rx, _)) = inner.receive(now) else {
                // Nothing behind a held packet: let it go at the next call rather than stall.
                rx_held.due = rx_held.len.is_some();
                return None;
            };
            if lose {
                gen.dropped += 1;
                rx.consume(|_| ());
            } else {
                gen.reordered += 1;
                rx.consume(|p| rx_held.keep(p));
            }
        }
        let Some((rx, tx)) = inner.receive(now) else {
            rx_held.due = rx_held.len.is_some();
            return None;
        };
        // A held packet goes after this one.
        rx_held.due = rx_held.len.is_some();
        Some((
            ImpairedRx::Inner(rx),
            ImpairedTx {
                inner: tx,
                state: Some((gen, tx_held, scratch)),
            },
        ))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let Impaired { inner, state } = self;
        let Some(s) = state.as_mut() else {
            return Some(ImpairedTx {
                inner: inner.transmit(now)?,
                state: None,
            });
        };
        release_tx(inner, &mut s.tx, now);
        Some(ImpairedTx {
            inner: inner.transmit(now)?,
            state: Some((&mut s.gen, &mut s.tx, &mut s.scratch)),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{Loopback, Medium};

    /// Sends `n` numbered packets through an impaired loopback and reads what arrives.
    fn run(cfg: Option<Impairment>, n: u8) -> (Vec<u8>, (u64, u64)) {
        let mut dev = Impaired::new(Loopback::new(Medium::Ethernet));
        dev.set(cfg);
        let now = Instant::from_millis(0);
        let mut got = Vec::new();
        for i in 0..n {
            dev.transmit(now).unwrap().consume(1, |b| b[0] = i);
        }
        dev.settle(now);
        // A held packet with nothing behind it comes at the call after a `None`.
        let mut idle = 0;
        while idle < 2 {
            match dev.receive(now) {
                Some((rx, _)) => {
                    idle = 0;
                    rx.consume(|p| got.push(p[0]));
                }
                None => idle += 1,
            }
        }
        (got, dev.counts())
    }

    #[test]
    fn unimpaired_everything_passes_in_order() {
        assert_eq!(run(None, 50).0, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn loss_and_reordering_both_ways_lose_nothing_else() {
        let cfg = Impairment {
            loss: 0.1,
            reorder: 0.2,
            seed: 7,
        };
        let (got, (dropped, reordered)) = run(Some(cfg), 200);
        assert!(dropped > 10 && reordered > 10, "{dropped} {reordered}");
        assert_eq!(got.len() as u64, 200 - dropped);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "no packet twice");
        assert_ne!(got, sorted, "some packets came out of order");
        // A reordered packet is overtaken by one packet per direction, after any losses.
        for w in got.windows(2) {
            assert!(u16::from(w[1]) + 8 > u16::from(w[0]), "{got:?}");
        }
    }
}
