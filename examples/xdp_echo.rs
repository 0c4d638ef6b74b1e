//! TCP echo, sink and ping-pong over the AF_XDP stack or kernel TCP: the client the XDP tests and
//! `scripts/bench-xdp.sh` run inside the client namespace, and the kernel-side server they run in
//! the server namespace.
//!
//! ```text
//! xdp_echo serve ADDR:PORT                      echo server (kernel TCP, a thread per connection);
//!                                               prints "rx BYTES SHA256" per connection at its EOF
//! xdp_echo echo   --server A:P --bytes N [--connections C]   send N pseudo-random bytes on each of
//!                                               C connections, read them back, compare byte for byte
//! xdp_echo pingpong --server A:P --count K [--size 64]       round trips; prints p50/p99/p99.9
//! xdp_echo bulk  --server A:P --bytes N         one-way send, echo drained; prints MB/s
//!   common: [--xdp IFACE --local-ip A.B.C.D/NN [--gateway IP] [--queue N] [--attach native|generic]
//!            [--shared-ports FIRST-LAST] [--impair LOSS,REORDER] [--ack-delay-us US]]
//!          [--core N] [--timeout SECS]
//! xdp_echo hold --xdp ... [--seconds S]        brings the stack up, prints "ready", polls it for S
//!                                               seconds (answers ARP and ping on its address)
//! ```
//!
//! Prints one result line on stdout; exits non-zero with a reason on stderr on any mismatch.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use hotwire::stream::{Either, Stream, TcpOptions, TcpStream};
use hotwire::xdp::{self, AttachMode, SteerMode, XdpConfig, XdpStack, XdpStream};
use sha2::{Digest, Sha256};

type Conn = Either<TcpStream, XdpStream>;

struct Args {
    mode: String,
    server: Option<SocketAddr>,
    bytes: u64,
    connections: usize,
    count: usize,
    size: usize,
    xdp: Option<XdpConfig>,
    core: Option<usize>,
    timeout: Duration,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: xdp_echo serve|echo|pingpong|bulk ...")?;
    let mut a = Args {
        mode,
        server: None,
        bytes: 1 << 20,
        connections: 1,
        count: 10_000,
        size: 64,
        xdp: None,
        core: None,
        timeout: Duration::from_secs(120),
    };
    let (mut iface, mut local, mut gateway, mut queue, mut attach, mut shared, mut impair) =
        (None, None, None, 0, AttachMode::Native, None, None);
    let mut ack_delay = None;
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => a.server = Some(val()?.parse().map_err(|e| format!("--server: {e}"))?),
            "--bytes" => a.bytes = val()?.parse().map_err(|e| format!("--bytes: {e}"))?,
            "--connections" => a.connections = val()?.parse().map_err(|e| format!("{e}"))?,
            "--count" => a.count = val()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--size" => a.size = val()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--core" => a.core = Some(val()?.parse().map_err(|e| format!("--core: {e}"))?),
            "--timeout" => {
                a.timeout = Duration::from_secs_f64(val()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--xdp" => iface = Some(val()?),
            "--local-ip" => local = Some(xdp::parse_cidr(&val()?)?),
            "--gateway" => gateway = Some(val()?.parse().map_err(|e| format!("--gateway: {e}"))?),
            "--queue" => queue = val()?.parse().map_err(|e| format!("--queue: {e}"))?,
            "--attach" => {
                attach = match val()?.as_str() {
                    "native" => AttachMode::Native,
                    "generic" => AttachMode::Generic,
                    o => return Err(format!("--attach {o}: expected native or generic")),
                }
            }
            "--shared-ports" => {
                let v = val()?;
                let (f, l) = v.split_once('-').ok_or("--shared-ports FIRST-LAST")?;
                shared = Some((
                    f.parse().map_err(|e| format!("{e}"))?,
                    l.parse().map_err(|e| format!("{e}"))?,
                ));
            }
            "--impair" => {
                let v = val()?;
                let (l, r) = v.split_once(',').ok_or("--impair LOSS,REORDER")?;
                impair = Some(xdp::Impairment {
                    loss: l.parse().map_err(|e| format!("--impair: {e}"))?,
                    reorder: r.parse().map_err(|e| format!("--impair: {e}"))?,
                    seed: 0x5eed,
                });
            }
            "--ack-delay-us" => {
                let us: u64 = val()?.parse().map_err(|e| format!("--ack-delay-us: {e}"))?;
                ack_delay = Some((us > 0).then(|| Duration::from_micros(us)));
            }
            "--seconds" => a.count = val()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if let Some(iface) = iface {
        let (ip, len) = local.ok_or("--xdp needs --local-ip A.B.C.D/NN")?;
        let mut cfg = XdpConfig::new(iface, ip, len);
        cfg.gateway = gateway;
        cfg.queue = queue;
        cfg.attach = attach;
        cfg.impair = impair;
        if let Some(d) = ack_delay {
            cfg.ack_delay = d;
        }
        if let Some((first, last)) = shared {
            cfg.steer = SteerMode::SharedIp { first, last };
        }
        a.xdp = Some(cfg);
    }
    Ok(a)
}

/// The connections' network: kernel TCP, or the XDP stack (polled once per loop turn).
struct Net {
    stack: Option<XdpStack>,
}

impl Net {
    fn connect(&self, addr: SocketAddr) -> io::Result<Conn> {
        Ok(match &self.stack {
            Some(s) => Either::Right(XdpStream::connect(s, addr)?),
            None => Either::Left(TcpStream::connect(addr, &TcpOptions::default())?),
        })
    }
    fn tick(&self) -> io::Result<()> {
        if let Some(s) = &self.stack {
            s.poll()?;
        }
        Ok(())
    }
}

/// Deterministic bytes of connection `seed` at stream offset `at` (xorshift over 8-byte words).
fn pattern(seed: u64, at: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let pos = at + i as u64;
        let mut x = (pos / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ seed.wrapping_mul(0xd1b5_4a32_d192_ed03);
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 32;
        *b = (x >> ((pos % 8) * 8)) as u8;
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn connect_all(
    net: &Net,
    addr: SocketAddr,
    n: usize,
    deadline: Instant,
) -> Result<Vec<Conn>, String> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        conns.push(
            net.connect(addr)
                .map_err(|e| format!("connection {i}: {e}"))?,
        );
    }
    loop {
        net.tick().map_err(|e| e.to_string())?;
        let mut all = true;
        for (i, c) in conns.iter_mut().enumerate() {
            all &= c
                .poll_connect()
                .map_err(|e| format!("connection {i}: {e}"))?;
        }
        if all {
            return Ok(conns);
        }
        if Instant::now() >= deadline {
            return Err("connect timed out".into());
        }
    }
}

struct EchoState {
    sent: u64,
    received: u64,
    tx_hash: Sha256,
    rx_hash: Sha256,
}

fn echo(net: &Net, a: &Args, addr: SocketAddr, deadline: Instant) -> Result<String, String> {
    let mut conns = connect_all(net, addr, a.connections, deadline)?;
    let mut state: Vec<EchoState> = (0..conns.len())
        .map(|_| EchoState {
            sent: 0,
            received: 0,
            tx_hash: Sha256::new(),
            rx_hash: Sha256::new(),
        })
        .collect();
    let mut out = vec![0u8; 16 * 1024];
    let mut inp = vec![0u8; 64 * 1024];
    let mut want = vec![0u8; 64 * 1024];
    let start = Instant::now();
    loop {
        net.tick().map_err(|e| e.to_string())?;
        let mut done = true;
        for (i, (c, s)) in conns.iter_mut().zip(state.iter_mut()).enumerate() {
            let seed = i as u64 + 1;
            if s.sent < a.bytes {
                let n = (a.bytes - s.sent).min(out.len() as u64) as usize;
                pattern(seed, s.sent, &mut out[..n]);
                match c.write(&out[..n]) {
                    Ok(k) => {
                        s.tx_hash.update(&out[..k]);
                        s.sent += k as u64;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(format!("connection {i}: write: {e}")),
                }
                let _ = c.flush();
            }
            loop {
                match c.read(&mut inp) {
                    Ok(0) => return Err(format!("connection {i}: EOF after {} bytes", s.received)),
                    Ok(n) => {
                        pattern(seed, s.received, &mut want[..n]);
                        if inp[..n] != want[..n] {
                            let at = inp[..n].iter().zip(&want[..n]).position(|(x, y)| x != y);
                            return Err(format!(
                                "connection {i}: byte {} differs",
                                s.received + at.unwrap_or(0) as u64
                            ));
                        }
                        s.rx_hash.update(&inp[..n]);
                        s.received += n as u64;
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(format!("connection {i}: read: {e}")),
                }
            }
            done &= s.received >= a.bytes;
        }
        if done {
            break;
        }
        if Instant::now() >= deadline {
            let got: u64 = state.iter().map(|s| s.received).sum();
            return Err(format!("timed out with {got} bytes echoed"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let first = state.remove(0);
    let tx = hex(&first.tx_hash.finalize());
    let rx = hex(&first.rx_hash.finalize());
    if tx != rx {
        return Err(format!("sha256 of sent {tx} != received {rx}"));
    }
    drop(conns);
    // Let FINs out before the process (and the stack) goes.
    for _ in 0..200 {
        net.tick().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(format!(
        "ok connections={} bytes={} sha256={tx} secs={secs:.3}",
        a.connections, a.bytes
    ))
}

fn pingpong(net: &Net, a: &Args, addr: SocketAddr, deadline: Instant) -> Result<String, String> {
    let mut c = connect_all(net, addr, 1, deadline)?.remove(0);
    let msg = vec![0x5au8; a.size];
    let mut buf = vec![0u8; a.size.max(1)];
    let mut rtts = Vec::with_capacity(a.count);
    let warmup = a.count / 10;
    for round in 0..a.count + warmup {
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < msg.len() {
            match c.write(&msg[sent..]) {
                Ok(n) => sent += n,
                Err(e) if would_block(&e) => net.tick().map_err(|e| e.to_string())?,
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        let _ = c.flush();
        let mut got = 0;
        while got < msg.len() {
            match c.read(&mut buf[got..]) {
                Ok(0) => return Err("EOF".into()),
                Ok(n) => got += n,
                Err(e) if would_block(&e) => {
                    net.tick().map_err(|e| e.to_string())?;
                    if Instant::now() >= deadline {
                        return Err(format!("timed out at round {round}"));
                    }
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        if round >= warmup {
            rtts.push(t0.elapsed().as_nanos() as u64);
        }
    }
    rtts.sort_unstable();
    let q = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)];
    Ok(format!(
        "rtt_ns p50={} p99={} p999={} n={} size={}",
        q(0.50),
        q(0.99),
        q(0.999),
        rtts.len(),
        a.size
    ))
}

fn bulk(net: &Net, a: &Args, addr: SocketAddr, deadline: Instant) -> Result<String, String> {
    let mut c = connect_all(net, addr, 1, deadline)?.remove(0);
    let mut out = vec![0u8; 64 * 1024];
    pattern(1, 0, &mut out);
    let mut inp = vec![0u8; 256 * 1024];
    let (mut sent, mut back) = (0u64, 0u64);
    let start = Instant::now();
    while back < a.bytes {
        net.tick().map_err(|e| e.to_string())?;
        if sent < a.bytes {
            let n = (a.bytes - sent).min(out.len() as u64) as usize;
            match c.write(&out[..n]) {
                Ok(k) => sent += k as u64,
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(format!("write: {e}")),
            }
            let _ = c.flush();
        }
        loop {
            match c.read(&mut inp) {
                Ok(0) => return Err("EOF".into()),
                Ok(n) => back += n as u64,
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out: sent {sent}, echoed {back}"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(format!(
        "bulk bytes={} secs={secs:.3} MB_per_s={:.1}",
        a.bytes,
        a.bytes as f64 / secs / 1e6
    ))
}

fn serve(addr: &str) -> Result<String, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    println!(
        "listening {}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let _ = io::stdout().flush();
    for conn in listener.incoming() {
        let mut conn = conn.map_err(|e| e.to_string())?;
        let _ = conn.set_nodelay(true);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut hash = Sha256::new();
            let mut total = 0u64;
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        hash.update(&buf[..n]);
                        total += n as u64;
                        if conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            // The reader may be gone (a test that read what it needed): not an error here.
            let _ = writeln!(io::stdout().lock(), "rx {total} {}", hex(&hash.finalize()));
        });
    }
    Ok(String::new())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run() -> Result<String, String> {
    let a = parse()?;
    if a.mode == "serve" {
        let addr = a
            .server
            .map_or_else(|| "0.0.0.0:7000".to_owned(), |s| s.to_string());
        return serve(&addr);
    }
    if let Some(core) = a.core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            return Err(format!("cannot pin to core {core}"));
        }
    }
    let stack = match &a.xdp {
        Some(cfg) => Some(XdpStack::open(cfg).map_err(|e| format!("XDP: {e}"))?),
        None => None,
    };
    if let Some(s) = &stack {
        // This loop polls the stack once per turn (Net::tick), as the XDP selector would.
        s.set_selector_driven(true);
    }
    let net = Net { stack };
    let deadline = Instant::now() + a.timeout;
    if a.mode == "hold" {
        return hold(&net, Duration::from_secs(a.count as u64));
    }
    let addr = a.server.ok_or("--server A:P is required")?;
    let result = match a.mode.as_str() {
        "echo" => echo(&net, &a, addr, deadline),
        "pingpong" => pingpong(&net, &a, addr, deadline),
        "bulk" => bulk(&net, &a, addr, deadline),
        other => Err(format!("unknown mode {other}")),
    };
    if let Some(s) = &net.stack {
        let c = s.counters();
        eprintln!(
            "xdp_echo: rx {} tx {} kicks {} impaired drops {} reorders {}",
            c.rx_frames, c.tx_frames, c.tx_kicks, c.impaired_drops, c.impaired_reorders
        );
    }
    result
}

fn hold(net: &Net, for_: Duration) -> Result<String, String> {
    if net.stack.is_none() {
        return Err("hold needs --xdp".into());
    }
    println!("ready");
    let _ = io::stdout().flush();
    let end = Instant::now() + for_;
    while Instant::now() < end {
        net.tick().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok("held".into())
}

fn main() {
    env_logger::init();
    match run() {
        Ok(line) => {
            if !line.is_empty() {
                let _ = writeln!(io::stdout().lock(), "{line}");
            }
        }
        Err(e) => {
            eprintln!("xdp_echo: {e}");
            std::process::exit(1);
        }
    }
}
