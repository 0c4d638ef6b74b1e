//! The venue's chaos mode (`hotwire venue --chaos SEED`): every connection, whatever its protocol,
//! meets faults at random times, for the soak test (`scripts/soak.sh`).
//!
//! Each connection draws its own fault schedule from the seed and its connection number (so a run
//! is repeatable up to thread scheduling): the time to the next fault is exponential with mean
//! `--chaos-every`, and the fault is one of
//!
//! - **kill**: a normal close (FIN) in the middle of the stream, without a protocol goodbye;
//! - **reset**: `SO_LINGER` 0 then close, so the peer gets an RST;
//! - **stall**: the connection neither reads nor writes for 0.2–3 s (longer than some heartbeats);
//! - **garbage**: 1–64 random bytes written under any TLS layer, then a close;
//! - **slow read**: for 1–5 s the connection waits 20 ms before each read.
//!
//! After `--chaos-for` the faults stop, so clients can recover and the run ends calm.

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The kinds of fault, in the order of [`ChaosCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Kill,
    Reset,
    Stall,
    Garbage,
    SlowRead,
}

const FAULTS: [Fault; 5] = [
    Fault::Kill,
    Fault::Reset,
    Fault::Stall,
    Fault::Garbage,
    Fault::SlowRead,
];

/// What the connection's loop does after a [`ConnChaos::strike`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Carry on.
    Continue,
    /// Return without any goodbye: the socket was closed (or is to be dropped) by the fault.
    Close,
}

/// Faults injected so far, by kind.
#[derive(Debug, Default)]
pub struct ChaosCounts {
    /// Connections closed with a FIN mid-stream.
    pub kills: AtomicU64,
    /// Connections reset (RST).
    pub resets: AtomicU64,
    /// Stalls.
    pub stalls: AtomicU64,
    /// Garbage writes.
    pub garbage: AtomicU64,
    /// Slow-read periods.
    pub slow_reads: AtomicU64,
}

impl ChaosCounts {
    fn counter(&self, fault: Fault) -> &AtomicU64 {
        match fault {
            Fault::Kill => &self.kills,
            Fault::Reset => &self.resets,
            Fault::Stall => &self.stalls,
            Fault::Garbage => &self.garbage,
            Fault::SlowRead => &self.slow_reads,
        }
    }

    /// All faults together.
    pub fn total(&self) -> u64 {
        FAULTS
            .iter()
            .map(|f| self.counter(*f).load(Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Display for ChaosCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "faults={} kills={} resets={} stalls={} garbage={} slow_reads={}",
            self.total(),
            get(&self.kills),
            get(&self.resets),
            get(&self.stalls),
            get(&self.garbage),
            get(&self.slow_reads)
        )
    }
}

/// The venue-wide chaos settings and counters.
#[derive(Debug)]
pub(crate) struct Chaos {
    seed: u64,
    mean: Duration,
    until: Option<Instant>,
    connections: AtomicU64,
    pub(crate) counts: ChaosCounts,
}

impl Chaos {
    /// Faults every `mean` per connection on average, for `duration` from now (forever: `None`).
    pub(crate) fn new(seed: u64, mean: Duration, duration: Option<Duration>) -> Chaos {
        Chaos {
            seed,
            mean: mean.max(Duration::from_millis(10)),
            until: duration.map(|d| Instant::now() + d),
            connections: AtomicU64::new(0),
            counts: ChaosCounts::default(),
        }
    }
}

/// One connection's fault schedule; does nothing when the venue has no chaos.
#[derive(Debug)]
pub(crate) struct ConnChaos {
    chaos: Option<Arc<Chaos>>,
    rng: u64,
    next: Instant,
    slow_until: Option<Instant>,
}

/// splitmix64: small, seedable, good enough to pick faults.
fn next_u64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in `[lo, hi)` milliseconds.
fn millis(state: &mut u64, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + next_u64(state) % (hi - lo).max(1))
}

impl ConnChaos {
    /// The schedule of a new connection.
    pub(crate) fn new(chaos: Option<&Arc<Chaos>>) -> ConnChaos {
        let mut rng = 0;
        if let Some(c) = chaos {
            let n = c.connections.fetch_add(1, Ordering::Relaxed);
            rng = c.seed ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d);
        }
        let mut me = ConnChaos {
            chaos: chaos.cloned(),
            rng,
            next: Instant::now(),
            slow_until: None,
        };
        me.schedule();
        me
    }

    fn schedule(&mut self) {
        if let Some(c) = &self.chaos {
            // Exponential inter-arrival time: -ln(u) * mean, u in (0, 1].
            let u = ((next_u64(&mut self.rng) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            self.next = Instant::now() + c.mean.mul_f64(-u.ln()).min(c.mean * 10);
        }
    }

    /// Called once per turn of a connection's loop, with the socket under any TLS: injects the
    /// fault that is due, if any.
    pub(crate) fn strike(&mut self, tcp: &TcpStream) -> Verdict {
        let Some(chaos) = self.chaos.clone() else {
            return Verdict::Continue;
        };
        let now = Instant::now();
        if let Some(t) = self.slow_until {
            if now < t {
                std::thread::sleep(Duration::from_millis(20));
            } else {
                self.slow_until = None;
            }
        }
        if now < self.next || chaos.until.is_some_and(|u| now >= u) {
            return Verdict::Continue;
        }
        let fault = FAULTS[(next_u64(&mut self.rng) % FAULTS.len() as u64) as usize];
        chaos.counts.counter(fault).fetch_add(1, Ordering::Relaxed);
        log::info!("venue chaos: {fault:?} on {:?}", tcp.peer_addr().ok());
        self.schedule();
        match fault {
            Fault::Kill => {
                let _ = tcp.shutdown(std::net::Shutdown::Both);
                Verdict::Close
            }
            Fault::Reset => {
                // Closing with a zero linger time discards what is queued and sends an RST.
                let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
                Verdict::Close
            }
            Fault::Stall => {
                std::thread::sleep(millis(&mut self.rng, 200, 3000));
                Verdict::Continue
            }
            Fault::Garbage => {
                let mut bytes = [0u8; 64];
                let n = 1 + (next_u64(&mut self.rng) % 64) as usize;
                for b in &mut bytes[..n] {
                    *b = next_u64(&mut self.rng) as u8;
                }
                let _ = std::io::Write::write_all(&mut &*tcp, &bytes[..n]);
                let _ = tcp.shutdown(std::net::Shutdown::Both);
                Verdict::Close
            }
            Fault::SlowRead => {
                self.slow_until = Some(now + millis(&mut self.rng, 1000, 5000));
                Verdict::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn no_chaos_never_strikes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut c = ConnChaos::new(None);
        for _ in 0..1000 {
            assert_eq!(c.strike(&client), Verdict::Continue);
        }
    }

    #[test]
    fn every_kind_of_fault_is_drawn_and_counted() {
        let chaos = Arc::new(Chaos::new(7, Duration::from_millis(10), None));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while FAULTS
            .iter()
            .any(|f| chaos.counts.counter(*f).load(Ordering::Relaxed) == 0)
        {
            assert!(Instant::now() < deadline, "{}", chaos.counts);
            let mut client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            let mut c = ConnChaos::new(Some(&chaos));
            while c.strike(&server) == Verdict::Continue {
                assert!(Instant::now() < deadline, "{}", chaos.counts);
            }
            drop(server);
            // The client sees the end of the connection: EOF (perhaps after garbage) or an RST.
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut sink = Vec::new();
            match client.read_to_end(&mut sink) {
                Ok(_) => assert!(sink.len() <= 64),
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            }
        }
        assert!(chaos.counts.total() >= 5);
    }

    #[test]
    fn chaos_stops_after_its_duration() {
        let chaos = Arc::new(Chaos::new(
            1,
            Duration::from_millis(10),
            Some(Duration::ZERO),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut c = ConnChaos::new(Some(&chaos));
        let end = Instant::now() + Duration::from_millis(200);
        while Instant::now() < end {
            assert_eq!(c.strike(&server), Verdict::Continue);
        }
        assert_eq!(chaos.counts.total(), 0);
    }
}
