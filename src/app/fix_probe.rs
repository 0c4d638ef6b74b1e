//! `hotwire fix HOST:PORT`: a FIX order-entry probe on the production stack (hotwire's TCP, TLS,
//! codec and session; no other FIX code).
//!
//! Logs on, sends `--orders` NewOrderSingle limit orders (at most `--window` outstanding), waits for
//! an ExecutionReport for each, logs out cleanly, and prints the counts and the order → execution
//! report round-trip percentiles. Any failure prints one line on stderr and exits non-zero.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::net::BaseStream;
use crate::fix::client::clock;
use crate::fix::codec::{Decimal, MsgType};
use crate::fix::orders::{ExecReport, NewOrder, Side};
use crate::fix::session::{FileStore, MemoryStore, MessageStore, SessionState};
use crate::fix::{FixEvent, FixSession, SessionConfig, Version};
use crate::select::Selectable;
use crate::stream::{wait_fd, Stream};

/// Arguments of `hotwire fix`.
#[derive(clap::Args, Debug)]
pub struct FixArgs {
    /// The acceptor, `HOST:PORT` (IPv6 literals in brackets).
    pub addr: String,
    /// SenderCompID(49): who we are.
    #[arg(long)]
    pub sender: String,
    /// TargetCompID(56): the acceptor's CompID.
    #[arg(long)]
    pub target: String,
    /// BeginString: FIX.4.2, FIX.4.4 or FIXT.1.1 (FIX 5.0 SP2 applications).
    #[arg(long, default_value = "FIX.4.4")]
    pub begin_string: String,
    /// How many orders to send (at most 10,000,000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub orders: u64,
    /// Orders outstanding at most (1: one at a time, the cleanest round-trip figure).
    #[arg(long, default_value_t = 1)]
    pub window: u64,
    /// Symbol(55) of the orders.
    #[arg(long, default_value = "HWIR")]
    pub symbol: String,
    /// Limit price of the orders.
    #[arg(long, default_value = "101.25")]
    pub price: String,
    /// Connect with TLS.
    #[arg(long)]
    pub tls: bool,
    /// A PEM file of CA certificates to trust (instead of the built-in roots).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The TLS implementation: `rustls` or `openssl`.
    #[arg(long, value_name = "BACKEND")]
    pub tls_backend: Option<String>,
    /// Keep sequence numbers and sent messages in this directory (the next run continues them).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Send ResetSeqNumFlag=Y on Logon: both sequences restart at 1.
    #[arg(long)]
    pub reset: bool,
    /// HeartBtInt in seconds.
    #[arg(long, default_value_t = 30)]
    pub heartbeat: u64,
    /// Username(553) on Logon.
    #[arg(long)]
    pub username: Option<String>,
    /// Password(554) on Logon.
    #[arg(long)]
    pub password: Option<Password>,
    /// Give up when logon, the orders or the logout take longer than this many seconds each.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
    /// The network path (kernel TCP, or `--xdp IFACE --local-ip A.B.C.D/NN`).
    #[command(flatten)]
    pub net: super::probe_net::ProbeNet,
}

/// A password from the command line; `Debug` never shows it.
#[derive(Clone)]
pub struct Password(pub String);

impl std::str::FromStr for Password {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Password, Self::Err> {
        Ok(Password(s.to_owned()))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Runs the probe; the exit code is 0 on success (see the [module documentation](self)).
pub fn run(args: &FixArgs) -> ExitCode {
    match probe(args) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hotwire fix: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(args: &FixArgs) -> Result<String, String> {
    let version: Version = args.begin_string.parse()?;
    let price = Decimal::parse(args.price.as_bytes())
        .ok_or_else(|| format!("--price {:?} is not a decimal", args.price))?;
    if args.window == 0 {
        return Err("--window must be at least 1".into());
    }
    let (host, _) = args
        .addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{:?} is not HOST:PORT", args.addr))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = args
        .addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", args.addr))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", args.addr))?;
    let tcp = args.net.connect(addr)?;
    let mut config = SessionConfig::new(version, &args.sender, &args.target);
    config.reset_on_logon = args.reset;
    config.heartbeat_interval = Duration::from_secs(args.heartbeat.max(1));
    config.username = args.username.clone();
    config.password = args.password.as_ref().map(|p| p.0.clone());
    let stream = tls_stream(tcp, args, host)?;
    match &args.store {
        Some(dir) => {
            let store = FileStore::open(dir, &args.sender, &args.target)
                .map_err(|e| format!("store {}: {e}", dir.display()))?;
            drive(FixSession::new(stream, config, store, clock()), args, price)
        }
        None => drive(
            FixSession::new(stream, config, MemoryStore::new(), clock()),
            args,
            price,
        ),
    }
}

#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
fn tls_stream(
    tcp: BaseStream,
    args: &FixArgs,
    host: &str,
) -> Result<crate::stream::MaybeTls<BaseStream>, String> {
    use crate::stream::tls::TlsConfig;
    let connector = if args.tls {
        let mut cfg = match &args.ca {
            Some(ca) => TlsConfig::with_ca_file(ca),
            None => TlsConfig::default(),
        };
        if let Some(b) = &args.tls_backend {
            cfg.backend = b.parse()?;
        }
        Some(cfg.build().map_err(|e| format!("TLS setup: {e}"))?)
    } else {
        None
    };
    crate::stream::MaybeTls::new(tcp, connector.as_ref(), host).map_err(|e| format!("TLS: {e}"))
}

#[cfg(not(any(feature = "tls-rustls", feature = "tls-openssl")))]
fn tls_stream(tcp: BaseStream, args: &FixArgs, _host: &str) -> Result<BaseStream, String> {
    if args.tls {
        return Err("--tls needs a build with a TLS feature".into());
    }
    Ok(tcp)
}

/// Counts kept while the orders run.
#[derive(Debug, Default)]
struct Tally {
    reports: u64,
    filled: u64,
    rejected: u64,
    other: u64,
    done: u64,
}

fn drive<S: Stream, M: MessageStore>(
    mut fix: FixSession<S, M>,
    args: &FixArgs,
    price: Decimal,
) -> Result<String, String> {
    let timeout = super::seconds_arg("--timeout", args.timeout)?.max(Duration::from_millis(1));
    let deadline = Instant::now() + timeout;
    while !fix.poll_connect().map_err(|e| format!("logon: {e}"))? {
        if Instant::now() >= deadline {
            return Err(format!("logon: not answered within {timeout:?}"));
        }
        wait_fd(Selectable::raw_fd(&fix), Duration::from_millis(5));
    }
    let first_seq = fix.session().store().next_sender_seq();
    let version = fix.session().config().version;
    let tag = std::process::id();
    let mut sent_at: Vec<Instant> = Vec::with_capacity(args.orders as usize);
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| format!("histogram: {e}"))?;
    let mut tally = Tally::default();
    let mut answered = vec![false; args.orders as usize];
    let started = Instant::now();
    let deadline = Instant::now() + timeout.max(Duration::from_millis(args.orders));
    while tally.done < args.orders {
        let now = clock();
        while (sent_at.len() as u64) < args.orders
            && sent_at.len() as u64 - tally.done < args.window
        {
            let id = format!("HW{tag}-{}", sent_at.len());
            let order = NewOrder {
                cl_ord_id: &id,
                symbol: &args.symbol,
                side: if sent_at.len() % 2 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                },
                qty: Decimal::new(100, 0),
                price: Some(price),
                time_in_force: Some(b'0'),
                account: None,
            };
            sent_at.push(Instant::now());
            fix.send(now, NewOrder::MSG_TYPE, |e| {
                order.encode(e, version, now.utc)
            })
            .map_err(|e| format!("send: {e}"))?;
        }
        let mut failure = None;
        fix.receive_with(now, |ev, _| {
            let received = Instant::now();
            match ev {
                FixEvent::App(msg) if msg.msg_type() == MsgType::ExecutionReport => {
                    tally.reports += 1;
                    let Ok(er) = ExecReport::from_message(&msg) else {
                        return Ok(true);
                    };
                    let index = std::str::from_utf8(er.cl_ord_id)
                        .ok()
                        .and_then(|id| id.strip_prefix(&format!("HW{tag}-")))
                        .and_then(|i| i.parse::<usize>().ok());
                    if let Some(i) = index.filter(|&i| i < sent_at.len() && !answered[i]) {
                        answered[i] = true;
                        tally.done += 1;
                        if er.is_filled() {
                            tally.filled += 1;
                        }
                        if er.ord_status == b'8' {
                            tally.rejected += 1;
                        }
                        let _ = hist.record(received.duration_since(sent_at[i]).as_nanos() as u64);
                    }
                }
                FixEvent::App(msg) => {
                    tally.other += 1;
                    if msg.msg_type() == MsgType::BusinessMessageReject {
                        failure = Some(format!("business reject: {msg:?}"));
                    }
                }
                FixEvent::Rejected { message, .. } => {
                    failure = Some(format!("session reject: {message:?}"));
                }
                FixEvent::LoggedOut(msg) => failure = Some(format!("logged out: {msg:?}")),
                _ => {}
            }
            Ok(true)
        })
        .map_err(|e| format!("receive: {e}"))?;
        if let Some(f) = failure {
            return Err(f);
        }
        fix.on_timer(now).map_err(|e| format!("session: {e}"))?;
        if Instant::now() >= deadline {
            return Err(format!(
                "{} of {} execution reports after {timeout:?}",
                tally.done, args.orders
            ));
        }
        if tally.done < args.orders && !fix.read_pending() {
            wait_fd(Selectable::raw_fd(&fix), Duration::from_millis(1));
        }
    }
    let elapsed = started.elapsed();
    fix.logout(clock(), None)
        .map_err(|e| format!("logout: {e}"))?;
    let deadline = Instant::now() + timeout;
    while fix.session().state() != SessionState::Ended {
        fix.receive_with(clock(), |_, _| Ok(true))
            .map_err(|e| format!("logout: {e}"))?;
        if Instant::now() >= deadline {
            return Err("logout: not answered in time".into());
        }
        wait_fd(Selectable::raw_fd(&fix), Duration::from_millis(5));
    }
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(format!(
        "{} orders (MsgSeqNum {}..), {} execution reports ({} filled, {} rejected), {} other; \
         {:.0} orders/s\nround trip us: p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
        args.orders,
        first_seq,
        tally.reports,
        tally.filled,
        tally.rejected,
        tally.other,
        args.orders as f64 / elapsed.as_secs_f64().max(1e-9),
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0,
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        fix: super::FixArgs,
    }

    #[test]
    fn the_password_is_never_printed() {
        let cli = Cli::try_parse_from([
            "fix",
            "--sender",
            "A",
            "--target",
            "B",
            "--password",
            "hunter2-secret",
            "127.0.0.1:9878",
        ])
        .unwrap();
        assert_eq!(
            cli.fix.password.as_ref().map(|p| p.0.as_str()),
            Some("hunter2-secret")
        );
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
