//! TCP echo, sink and ping-pong over the AF_XDP stack or kernel TCP: the client the XDP tests and
//! `scripts/bench-xdp.sh` run inside the client namespace, and the kernel-side server they run in
//! the server namespace.
//!
//! ```text
//! xdp_echo serve ADDR:PORT                      servers (kernel TCP, a thread per connection):
//!                                               PORT echo, printing "rx BYTES SHA256" per
//!                                               connection at its EOF; PORT+1 sink; PORT+2 source
//!                [--spin]                       echo threads busy-poll their sockets (no wake-ups)
//! xdp_echo echo   --server A:P --bytes N [--connections C]   send N pseudo-random bytes on each of
//!                                               C connections, read them back, compare byte for byte
//! xdp_echo pingpong --server A:P --count K [--size 64]       round trips; prints p50/p99/p99.9
//! xdp_echo bulk  --server A:P --bytes N         send N bytes and read the echo; prints MB/s
//! xdp_echo send  --server A:P --bytes N         one way out: N bytes to the sink (P+1), timed
//!                                               until the sink confirms it has them all
//! xdp_echo recv  --server A:P --bytes N         one way in: N bytes from the source (P+2), each
//!                                               compared with the known block; prints MB/s
//!   common: [--xdp IFACE --local-ip A.B.C.D/NN [--gateway IP] [--queue N] [--attach native|generic]
//!            [--shared-ports FIRST-LAST] [--impair LOSS,REORDER] [--ack-delay-us US] [--mtu BYTES]
//!            [--no-multi-buffer] [--no-huge-pages] [--frame-size BYTES] [--frames N]]
//!          [--core N] [--timeout SECS]
//! xdp_echo hold --xdp ... [--seconds S]        brings the stack up, prints "ready", polls it for S
//!                                               seconds (answers ARP and ping on its address)
//! ```
//!
//! Prints one result line on stdout; exits non-zero with a reason on stderr on any mismatch.
//! Arguments are parsed with clap (`xdp_echo --help`). Built as the example `xdp_echo` (so
//! `cargo test` builds it for tests/xdp*.rs, and `scripts/bench-xdp.sh` runs
//! `cargo build --example xdp_echo`), it lives here beside the tests that use it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hotwire::stream::{Either, Stream, TcpOptions, TcpStream};
use hotwire::xdp::{self, AttachMode, SteerMode, XdpConfig, XdpStack, XdpStream};
use sha2::{Digest, Sha256};

type Conn = Either<TcpStream, XdpStream>;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// The kernel-side servers (echo, sink, source).
    Serve,
    /// Send pseudo-random bytes on each connection, read them back, compare.
    Echo,
    /// Round trips of `--size` bytes; p50/p99/p99.9.
    Pingpong,
    /// Send and read the echo; MB/s.
    Bulk,
    /// One way out to the sink; MB/s.
    Send,
    /// One way in from the source; MB/s.
    Recv,
    /// Bring the stack up, print "ready", poll it for `--seconds`.
    Hold,
}

/// The XDP test and benchmark harness (see the module documentation).
#[derive(Debug, Parser)]
#[command(name = "xdp_echo")]
struct Cli {
    /// What to run.
    #[arg(value_enum)]
    mode: Mode,
    /// The server: where `serve` listens (default 0.0.0.0:7000), where the others connect.
    #[arg(long, value_name = "ADDR:PORT")]
    server: Option<SocketAddr>,
    /// Bytes per connection (echo, bulk, send, recv).
    #[arg(long, default_value_t = 1 << 20)]
    bytes: u64,
    /// Connections (echo).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Round trips (pingpong).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Bytes per round trip (pingpong).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds to hold the stack up (hold).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Pin to this core.
    #[arg(long)]
    core: Option<usize>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Echo threads busy-poll their sockets (serve).
    #[arg(long)]
    spin: bool,
    /// Run over the AF_XDP stack on this interface instead of kernel TCP.
    #[arg(long, value_name = "IFACE", requires = "local_ip")]
    xdp: Option<String>,
    /// The stack's address.
    #[arg(long, value_name = "A.B.C.D/NN", value_parser = xdp::parse_cidr)]
    local_ip: Option<(Ipv4Addr, u8)>,
    /// The next hop off-link.
    #[arg(long)]
    gateway: Option<Ipv4Addr>,
    /// The queue to bind.
    #[arg(long, default_value_t = 0)]
    queue: u32,
    /// Native or generic XDP.
    #[arg(long, value_enum, default_value_t = Attach::Native)]
    attach: Attach,
    /// Shared-IP mode with this reserved port range.
    #[arg(long, value_name = "FIRST-LAST", value_parser = parse_ports)]
    shared_ports: Option<(u16, u16)>,
    /// Deliberate loss and reordering in the stack's device.
    #[arg(long, value_name = "LOSS,REORDER", value_parser = parse_impairment)]
    impair: Option<xdp::Impairment>,
    /// Delayed ACK in microseconds (0: ACK at once).
    #[arg(long, value_name = "US")]
    ack_delay_us: Option<u64>,
    /// The stack's IP MTU.
    #[arg(long, value_name = "BYTES")]
    mtu: Option<usize>,
    /// Never let a packet span UMEM frames.
    #[arg(long)]
    no_multi_buffer: bool,
    /// `echo`: once everything is sent, half-close (`Stream::shutdown_write`: a FIN) and finish
    /// only when the whole echo and then the server's own EOF have come back.
    #[arg(long)]
    half_close: bool,
    /// Keep the UMEM and buffers on 4 KiB pages.
    #[arg(long)]
    no_huge_pages: bool,
    /// Bytes per UMEM frame.
    #[arg(long, value_name = "BYTES")]
    frame_size: Option<u32>,
    /// UMEM frames.
    #[arg(long, value_name = "N")]
    frames: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Attach {
    Native,
    Generic,
}

fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let (f, l) = s.split_once('-').ok_or("expected FIRST-LAST")?;
    Ok((
        f.parse().map_err(|e| format!("{f:?}: {e}"))?,
        l.parse().map_err(|e| format!("{l:?}: {e}"))?,
    ))
}

fn parse_impairment(s: &str) -> Result<xdp::Impairment, String> {
    let (l, r) = s.split_once(',').ok_or("expected LOSS,REORDER")?;
    Ok(xdp::Impairment {
        loss: l.parse().map_err(|e| format!("{l:?}: {e}"))?,
        reorder: r.parse().map_err(|e| format!("{r:?}: {e}"))?,
        seed: 0x5eed,
    })
}

struct Args {
    mode: Mode,
    server: Option<SocketAddr>,
    bytes: u64,
    connections: usize,
    count: usize,
    size: usize,
    seconds: u64,
    xdp: Option<XdpConfig>,
    core: Option<usize>,
    timeout: Duration,
    spin: bool,
    half_close: bool,
}

fn parse() -> Args {
    let c = Cli::parse();
    let xdp = c.xdp.zip(c.local_ip).map(|(iface, (ip, len))| {
        let mut cfg = XdpConfig::new(iface, ip, len);
        cfg.gateway = c.gateway;
        cfg.queue = c.queue;
        cfg.attach = match c.attach {
            Attach::Native => AttachMode::Native,
            Attach::Generic => AttachMode::Generic,
        };
        cfg.impair = c.impair;
        if let Some(us) = c.ack_delay_us {
            cfg.ack_delay = (us > 0).then(|| Duration::from_micros(us));
        }
        if c.mtu.is_some() {
            cfg.mtu = c.mtu;
        }
        cfg.multi_buffer = !c.no_multi_buffer;
        cfg.huge_pages = !c.no_huge_pages;
        if let Some(f) = c.frame_size {
            cfg.frame_size = f;
        }
        if let Some(f) = c.frames {
            cfg.frames = f;
        }
        if let Some((first, last)) = c.shared_ports {
            cfg.steer = SteerMode::SharedIp { first, last };
        }
        cfg
    });
    Args {
        mode: c.mode,
        server: c.server,
        bytes: c.bytes,
        connections: c.connections,
        count: c.count,
        size: c.size,
        seconds: c.seconds,
        xdp,
        core: c.core,
        timeout: Duration::from_secs_f64(c.timeout),
        spin: c.spin,
        half_close: c.half_close,
    }
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
    /// Our FIN is out (`--half-close`).
    shut: bool,
    /// The server's EOF came back after the whole echo (`--half-close`).
    eof: bool,
    tx_hash: Sha256,
    rx_hash: Sha256,
}

fn echo(net: &Net, a: &Args, addr: SocketAddr, deadline: Instant) -> Result<String, String> {
    let mut conns = connect_all(net, addr, a.connections, deadline)?;
    let mut state: Vec<EchoState> = (0..conns.len())
        .map(|_| EchoState {
            sent: 0,
            received: 0,
            shut: false,
            eof: false,
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
            if a.half_close && s.sent >= a.bytes && !s.shut {
                match c.shutdown_write() {
                    Ok(()) => s.shut = true,
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(format!("connection {i}: shutdown_write: {e}")),
                }
            }
            while !s.eof {
                match c.read(&mut inp) {
                    Ok(0) if s.shut && s.received >= a.bytes => s.eof = true,
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
            done &= s.received >= a.bytes && (!a.half_close || s.eof);
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
        "ok connections={} bytes={} sha256={tx} secs={secs:.3}{}",
        a.connections,
        a.bytes,
        if a.half_close { " half_closed" } else { "" }
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

/// The block the source sends over and over (and the receiver compares against).
fn source_block() -> Vec<u8> {
    let mut block = vec![0u8; SOURCE_BLOCK];
    pattern(7, 0, &mut block);
    block
}

const SOURCE_BLOCK: usize = 64 * 1024;

fn port_plus(addr: SocketAddr, k: u16) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port() + k)
}

/// Writes all of `buf`, polling the network while the stream would block.
fn write_all_polling(
    net: &Net,
    c: &mut Conn,
    mut buf: &[u8],
    deadline: Instant,
) -> Result<(), String> {
    while !buf.is_empty() {
        match c.write(buf) {
            Ok(k) => buf = &buf[k..],
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(format!("write: {e}")),
        }
        let _ = c.flush();
        net.tick().map_err(|e| e.to_string())?;
        if Instant::now() >= deadline {
            return Err("timed out writing".into());
        }
    }
    Ok(())
}

/// One way out: the length, then the bytes; done when the sink's 8-byte count comes back.
fn send(net: &Net, a: &Args, addr: SocketAddr, deadline: Instant) -> Result<String, String> {
    let mut c = connect_all(net, port_plus(addr, 1), 1, deadline)?.remove(0);
    let block = source_block();
    let start = Instant::now();
    write_all_polling(net, &mut c, &a.bytes.to_be_bytes(), deadline)?;
    let mut sent = 0u64;
    let mut reply = [0u8; 8];
    let mut got = 0;
    while got < reply.len() {
        if sent < a.bytes {
            let n = (a.bytes - sent).min(block.len() as u64) as usize;
            match c.write(&block[..n]) {
                Ok(k) => sent += k as u64,
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(format!("write: {e}")),
            }
            let _ = c.flush();
        }
        net.tick().map_err(|e| e.to_string())?;
        match c.read(&mut reply[got..]) {
            Ok(0) => return Err(format!("EOF after {sent} bytes")),
            Ok(n) => got += n,
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out: sent {sent}"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let confirmed = u64::from_be_bytes(reply);
    if confirmed != a.bytes {
        return Err(format!("the sink counted {confirmed} of {} bytes", a.bytes));
    }
    Ok(format!(
        "send bytes={} secs={secs:.3} MB_per_s={:.1}",
        a.bytes,
        a.bytes as f64 / secs / 1e6
    ))
}

/// One way in: asks the source for the bytes and checks each against the block.
fn recv(net: &Net, a: &Args, addr: SocketAddr, deadline: Instant) -> Result<String, String> {
    let mut c = connect_all(net, port_plus(addr, 2), 1, deadline)?.remove(0);
    let block = source_block();
    let mut inp = vec![0u8; 256 * 1024];
    let start = Instant::now();
    write_all_polling(net, &mut c, &a.bytes.to_be_bytes(), deadline)?;
    let mut got = 0u64;
    while got < a.bytes {
        net.tick().map_err(|e| e.to_string())?;
        loop {
            match c.read(&mut inp) {
                Ok(0) => return Err(format!("EOF after {got} bytes")),
                Ok(n) => {
                    let mut at = 0;
                    while at < n {
                        let off = ((got + at as u64) % SOURCE_BLOCK as u64) as usize;
                        let k = (SOURCE_BLOCK - off).min(n - at);
                        if inp[at..at + k] != block[off..off + k] {
                            return Err(format!("wrong bytes near offset {}", got + at as u64));
                        }
                        at += k;
                    }
                    got += n as u64;
                }
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out: received {got}"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if got != a.bytes {
        return Err(format!("received {got} bytes, asked for {}", a.bytes));
    }
    Ok(format!(
        "recv bytes={} secs={secs:.3} MB_per_s={:.1}",
        a.bytes,
        a.bytes as f64 / secs / 1e6
    ))
}

/// How long a spinning server thread waits for a silent peer before it gives up (a peer that
/// vanished without a FIN must not keep a core busy for the rest of a benchmark).
const SPIN_IDLE: Duration = Duration::from_secs(5);

/// `read` that spins while a non-blocking socket would block (for at most [`SPIN_IDLE`]).
fn read_spinning(conn: &mut std::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut idle_since: Option<Instant> = None;
    loop {
        match conn.read(buf) {
            Err(e) if would_block(&e) => {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SPIN_IDLE {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                std::hint::spin_loop();
            }
            other => return other,
        }
    }
}

/// Reads the 8-byte length that opens a sink or source connection.
fn read_len(conn: &mut std::net::TcpStream) -> Option<u64> {
    let mut len = [0u8; 8];
    let mut got = 0;
    while got < len.len() {
        match read_spinning(conn, &mut len[got..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got += n,
        }
    }
    Some(u64::from_be_bytes(len))
}

/// Sink: an 8-byte length, that many bytes, then the count back.
fn sink(mut conn: std::net::TcpStream) {
    let Some(want) = read_len(&mut conn) else {
        return;
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    while total < want {
        let n = (want - total).min(buf.len() as u64) as usize;
        match read_spinning(&mut conn, &mut buf[..n]) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    let _ = write_all_spinning(&mut conn, &total.to_be_bytes());
}

/// Source: an 8-byte length, then that many bytes of the block, repeated.
fn source(mut conn: std::net::TcpStream) {
    let Some(mut left) = read_len(&mut conn) else {
        return;
    };
    let block = source_block();
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        if write_all_spinning(&mut conn, &block[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
    // Wait for the reader to close, so every byte is delivered before our FIN.
    let _ = read_spinning(&mut conn, &mut [0u8; 8]);
}

fn serve(addr: &str, spin: bool) -> Result<String, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    let echo_at = listener.local_addr().map_err(|e| e.to_string())?;
    for (k, handler) in [(1u16, sink as fn(std::net::TcpStream)), (2, source)] {
        let at = port_plus(echo_at, k);
        let l = TcpListener::bind(at).map_err(|e| format!("bind {at}: {e}"))?;
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let _ = conn.set_nodelay(true);
                if spin && conn.set_nonblocking(true).is_err() {
                    continue;
                }
                std::thread::spawn(move || handler(conn));
            }
        });
    }
    println!(
        "listening {}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let _ = io::stdout().flush();
    for conn in listener.incoming() {
        let mut conn = conn.map_err(|e| e.to_string())?;
        let _ = conn.set_nodelay(true);
        if spin && conn.set_nonblocking(true).is_err() {
            continue;
        }
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut hash = Sha256::new();
            let mut total = 0u64;
            loop {
                match read_spinning(&mut conn, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        hash.update(&buf[..n]);
                        total += n as u64;
                        if write_all_spinning(&mut conn, &buf[..n]).is_err() {
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

/// `write_all` that also works on a non-blocking socket (spins while it would block, for at most
/// [`SPIN_IDLE`] without progress).
fn write_all_spinning(conn: &mut std::net::TcpStream, mut buf: &[u8]) -> io::Result<()> {
    let mut idle_since: Option<Instant> = None;
    while !buf.is_empty() {
        match conn.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                idle_since = None;
            }
            Err(e) if would_block(&e) => {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SPIN_IDLE {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                std::hint::spin_loop();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run() -> Result<String, String> {
    let a = parse();
    if a.mode == Mode::Serve {
        let addr = a
            .server
            .map_or_else(|| "0.0.0.0:7000".to_owned(), |s| s.to_string());
        return serve(&addr, a.spin);
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
    if a.mode == Mode::Hold {
        return hold(&net, Duration::from_secs(a.seconds));
    }
    let addr = a.server.ok_or("--server A:P is required")?;
    let result = match a.mode {
        Mode::Echo => echo(&net, &a, addr, deadline),
        Mode::Pingpong => pingpong(&net, &a, addr, deadline),
        Mode::Bulk => bulk(&net, &a, addr, deadline),
        Mode::Send => send(&net, &a, addr, deadline),
        Mode::Recv => recv(&net, &a, addr, deadline),
        Mode::Serve | Mode::Hold => unreachable!("handled above"),
    };
    if let Some(s) = &net.stack {
        // The connections were dropped (closed): let their FIN exchanges finish, so the server's
        // threads see an orderly end instead of a peer that vanished.
        let until = Instant::now() + Duration::from_millis(500);
        while s.socket_count() > 0 && Instant::now() < until {
            let _ = s.poll();
        }
        let c = s.counters();
        eprintln!(
            "xdp_echo: rx {} tx {} kicks {} starved {} bad checksums {} impaired drops {} reorders {} \
             multi-frame rx {} tx {} broken {}",
            c.rx_frames,
            c.tx_frames,
            c.tx_kicks,
            c.tx_starved,
            c.rx_bad_checksum,
            c.impaired_drops,
            c.impaired_reorders,
            c.rx_multi_frame,
            c.tx_multi_frame,
            c.rx_broken
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
