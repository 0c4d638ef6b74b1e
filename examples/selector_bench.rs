//! The selectors side by side in one run: mio (epoll), direct (busy-poll), io_uring (waiting and
//! busy-polling) and io_uring with SQPOLL, each driving one IoService endpoint.
//!
//! ```text
//! selector_bench serve ADDR                       the peer: echo or blast, per connection
//! selector_bench client ADDR [--rounds N] [--bytes N] [--core N] [--sqpoll-core N] [--label NAME]
//! selector_bench local [--rounds N] [--bytes N]   both on loopback (the peer in a child process)
//! ```
//!
//! Per selector it measures the round-trip time of a 64-byte message (p50 / p99 / p99.9), the
//! process CPU time per round trip (user + system, every thread of the client process, the SQPOLL
//! kernel thread included), and the receive throughput of a bulk transfer of `--bytes`, then prints
//! one table with ratios to mio. `scripts/bench-selectors.sh` runs it on loopback and on a veth pair.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hotwire::select::uring::{SqPoll, UringConfig, UringRing};
use hotwire::select::{DirectSelector, MioSelector, Selector, UringSelector};
use hotwire::service::IntoIoService;
use hotwire::service::{
    ConnectAddr, Dial, Disconnect, Endpoint, Error, Flow, KernelDial, Policy, UringDial,
};
use hotwire::stream::{would_block, TcpOptions};

const MSG: usize = 64;

fn serve(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening {}", listener.local_addr()?);
    for conn in listener.incoming() {
        let mut s = conn?;
        std::thread::spawn(move || {
            let _ = s.set_nodelay(true);
            let mut cmd = [0u8; 9];
            if s.read_exact(&mut cmd).is_err() {
                return;
            }
            let mut buf = vec![0u8; 256 * 1024];
            if cmd[0] == b'B' {
                let mut left = u64::from_le_bytes(cmd[1..9].try_into().unwrap()) as usize;
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = i as u8;
                }
                while left > 0 {
                    let n = left.min(buf.len());
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
                return;
            }
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    Ok(())
}

/// What one endpoint measures.
struct Probe<D> {
    addr: SocketAddr,
    dial: D,
    blast: Option<u64>,
    rounds: usize,
    done: usize,
    got: usize,
    sent_at: Instant,
    hist: Histogram<u64>,
    received: u64,
    finished: bool,
    buf: Vec<u8>,
}

impl<D: Dial> Probe<D> {
    fn new(addr: SocketAddr, dial: D, rounds: usize, blast: Option<u64>) -> Probe<D> {
        Probe {
            addr,
            dial,
            blast,
            rounds,
            done: 0,
            got: 0,
            sent_at: Instant::now(),
            hist: Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap(),
            received: 0,
            finished: false,
            buf: vec![0u8; 64 * 1024],
        }
    }
}

fn send_all<S: Write>(s: &mut S, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match s.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if would_block(&e) => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    loop {
        match s.flush() {
            Ok(()) => return Ok(()),
            Err(e) if would_block(&e) => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
}

impl<D: Dial> Endpoint for Probe<D> {
    type Target = D::Stream;
    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.addr.ip().to_string(), self.addr.port())
    }
    fn create_target(&mut self, addr: SocketAddr, _: &mut ()) -> Result<D::Stream, Error> {
        Ok(self.dial.dial(addr)?)
    }
    fn poll(&mut self, s: &mut D::Stream, _: &mut ()) -> Result<Flow, Disconnect> {
        if self.done == 0 && self.got == 0 && self.received == 0 && !self.finished {
            // First poll after connecting: say what we want.
            let mut cmd = [b'E'; 9];
            if let Some(n) = self.blast {
                cmd[0] = b'B';
                cmd[1..9].copy_from_slice(&n.to_le_bytes());
            }
            send_all(s, &cmd)?;
            if self.blast.is_none() {
                self.sent_at = Instant::now();
                send_all(s, &[7u8; MSG])?;
            }
            self.received = 1;
        }
        loop {
            match s.read(&mut self.buf) {
                Ok(0) => {
                    self.finished = true;
                    return Ok(Flow::Close);
                }
                Ok(n) if self.blast.is_some() => self.received += n as u64,
                Ok(n) => {
                    self.got += n;
                    if self.got >= MSG {
                        let rtt = self.sent_at.elapsed().as_nanos() as u64;
                        if self.done >= self.rounds / 10 {
                            self.hist.saturating_record(rtt);
                        }
                        self.done += 1;
                        self.got = 0;
                        if self.done == self.rounds {
                            self.finished = true;
                            return Ok(Flow::Close);
                        }
                        self.sent_at = Instant::now();
                        send_all(s, &[7u8; MSG])?;
                    }
                }
                Err(e) if would_block(&e) => return Ok(Flow::Continue),
                Err(e) => return Err(e.into()),
            }
        }
    }
    fn policy(&self) -> Policy {
        Policy {
            reconnect: false,
            ..Policy::default()
        }
    }
}

fn cpu_ns() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF counts every thread of the process.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Runs one probe to completion; returns its histogram and byte count with the CPU time and wall
/// time spent.
fn run<S: Selector, D: Dial>(
    selector: S,
    timeout: Duration,
    probe: Probe<D>,
) -> (Histogram<u64>, u64, u64, Duration) {
    let mut service = selector.into_io_service().with_poll_timeout(timeout);
    let id = service.register(probe);
    let (cpu0, t0) = (cpu_ns(), Instant::now());
    let deadline = t0 + Duration::from_secs(120);
    while !service.endpoint(id).finished && Instant::now() < deadline {
        service.poll(&mut ()).unwrap();
    }
    let (cpu, wall) = (cpu_ns() - cpu0, t0.elapsed());
    let probe = service.endpoint(id);
    assert!(probe.finished, "the run did not finish in 120 s");
    (probe.hist.clone(), probe.received, cpu, wall)
}

#[derive(Clone, Copy)]
enum Kind {
    Mio,
    Direct,
    Uring,
    UringBusy,
    UringSqpoll,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mio => "mio (epoll wait)",
            Kind::Direct => "direct (busy)",
            Kind::Uring => "io_uring (wait)",
            Kind::UringBusy => "io_uring (busy)",
            Kind::UringSqpoll => "io_uring sqpoll",
        }
    }
}

struct Row {
    kind: Kind,
    p50: u64,
    p99: u64,
    p999: u64,
    cpu_per_rtt: u64,
    mb_s: f64,
    cpu_per_mib: u64,
}

fn uring(kind: Kind, sqpoll_core: Option<u32>) -> (UringSelector, UringDial) {
    let config = UringConfig {
        sqpoll: matches!(kind, Kind::UringSqpoll).then_some(SqPoll {
            cpu: sqpoll_core,
            idle_ms: 1000,
        }),
        ..UringConfig::default()
    };
    let ring = UringRing::new(&config).expect("io_uring");
    let dial = UringDial {
        ring: ring.clone(),
        options: TcpOptions::default(),
    };
    (UringSelector::new(ring), dial)
}

fn measure(
    kind: Kind,
    addr: SocketAddr,
    rounds: usize,
    bytes: u64,
    sqpoll_core: Option<u32>,
) -> Row {
    let wait = Duration::from_millis(1);
    let ((rtt, rtt_cpu), (bulk, bulk_cpu, bulk_wall)) = match kind {
        Kind::Mio | Kind::Direct => {
            let one = |probe| match kind {
                Kind::Mio => run(MioSelector::new().unwrap(), wait, probe),
                _ => run(DirectSelector::new(), Duration::ZERO, probe),
            };
            let (h, _, c, _) = one(Probe::new(addr, KernelDial::default(), rounds, None));
            let (_, b, bc, bw) = one(Probe::new(addr, KernelDial::default(), 0, Some(bytes)));
            ((h, c), (b, bc, bw))
        }
        _ => {
            let timeout = if matches!(kind, Kind::Uring) {
                wait
            } else {
                Duration::ZERO
            };
            let (sel, dial) = uring(kind, sqpoll_core);
            let (h, _, c, _) = run(sel, timeout, Probe::new(addr, dial, rounds, None));
            let (sel, dial) = uring(kind, sqpoll_core);
            let (_, b, bc, bw) = run(sel, timeout, Probe::new(addr, dial, 0, Some(bytes)));
            ((h, c), (b, bc, bw))
        }
    };
    assert!(!rtt.is_empty(), "no round trip measured");
    let mib = (bulk.saturating_sub(1)) as f64 / (1024.0 * 1024.0);
    Row {
        kind,
        p50: rtt.value_at_quantile(0.5),
        p99: rtt.value_at_quantile(0.99),
        p999: rtt.value_at_quantile(0.999),
        cpu_per_rtt: rtt_cpu / rounds.max(1) as u64,
        mb_s: mib / bulk_wall.as_secs_f64(),
        cpu_per_mib: (bulk_cpu as f64 / mib.max(1e-9)) as u64,
    }
}

fn client(addr: SocketAddr, rounds: usize, bytes: u64, sqpoll_core: Option<u32>, label: &str) {
    let kinds = [
        Kind::Mio,
        Kind::Direct,
        Kind::Uring,
        Kind::UringBusy,
        Kind::UringSqpoll,
    ];
    let rows: Vec<Row> = kinds
        .iter()
        .map(|&k| measure(k, addr, rounds, bytes, sqpoll_core))
        .collect();
    let base = &rows[0];
    println!(
        "\n== selectors, {label}: {rounds} round trips of {MSG} B (first 10% not recorded), \
         {} MiB bulk receive",
        bytes >> 20
    );
    println!(
        "{:<18} {:>8} {:>8} {:>9} {:>8} {:>8} {:>11} {:>9} {:>8} {:>11}",
        "selector",
        "p50 ns",
        "p99 ns",
        "p99.9 ns",
        "p50/mio",
        "p99/mio",
        "cpu/rtt ns",
        "MiB/s",
        "rx/mio",
        "cpu ns/MiB"
    );
    for r in &rows {
        println!(
            "{:<18} {:>8} {:>8} {:>9} {:>8.2} {:>8.2} {:>11} {:>9.0} {:>8.2} {:>11}",
            r.kind.name(),
            r.p50,
            r.p99,
            r.p999,
            r.p50 as f64 / base.p50 as f64,
            r.p99 as f64 / base.p99 as f64,
            r.cpu_per_rtt,
            r.mb_s,
            r.mb_s / base.mb_s,
            r.cpu_per_mib
        );
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: cannot parse {v:?}"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = arg(&args, "--rounds", 20_000usize);
    let bytes = arg(&args, "--bytes", 256u64 << 20);
    if let Some(core) = args
        .iter()
        .position(|a| a == "--core")
        .map(|_| arg(&args, "--core", 0usize))
    {
        hotwire::cpu::pin_current(core).expect("pin");
    }
    let sqpoll_core = args
        .iter()
        .position(|a| a == "--sqpoll-core")
        .map(|_| arg(&args, "--sqpoll-core", 0u32));
    match args.first().map(String::as_str) {
        Some("serve") => serve(args.get(1).expect("serve ADDR")).unwrap(),
        Some("client") => {
            let addr = args.get(1).expect("client ADDR").parse().expect("ADDR");
            let label = arg(&args, "--label", String::from("remote"));
            client(addr, rounds, bytes, sqpoll_core, &label);
        }
        Some("local") => {
            let exe = std::env::current_exe().unwrap();
            let mut child = std::process::Command::new(exe)
                .args(["serve", "127.0.0.1:0"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            let mut out = io::BufReader::new(child.stdout.take().unwrap());
            io::BufRead::read_line(&mut out, &mut line).unwrap();
            let addr = line
                .trim()
                .trim_start_matches("listening ")
                .parse()
                .unwrap();
            client(addr, rounds, bytes, sqpoll_core, "loopback");
            let _ = child.kill();
            let _ = child.wait();
        }
        _ => eprintln!(
            "usage: selector_bench serve ADDR | client ADDR | local [--rounds N] [--bytes N]"
        ),
    }
}
