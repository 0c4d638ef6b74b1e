//! The IoService over real sockets: isolation, reconnect with backoff, DNS failures, lifetimes,
//! many endpoints on one thread, on every selector: mio, direct, and io_uring (its own streams
//! through multishot receives, and kernel sockets through readiness).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotwire::select::{DirectSelector, MioSelector, Selector};
use hotwire::service::IntoIoService;
use hotwire::service::{
    ConnectAddr, Dial, Disconnect, Endpoint, EndpointState, Error, Event, Flow, IoService,
    KernelDial, Policy,
};
use hotwire::stream::{would_block, TcpOptions, TcpStream};

/// An echo server on a thread: accepts any number of connections, echoes everything, until
/// `stop` is set (then it closes all of them and its listener).
struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    fn start(addr: &str) -> EchoServer {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut conns: Vec<std::net::TcpStream> = Vec::new();
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                while let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true).unwrap();
                    conns.push(s);
                }
                conns.retain_mut(|c| loop {
                    match c.read(&mut buf) {
                        Ok(0) => return false,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                return false;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                        Err(_) => return false,
                    }
                });
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        EchoServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Shared test context: what every endpoint saw.
#[derive(Default)]
struct Seen {
    connected: HashMap<String, u32>,
    disconnects: HashMap<String, Vec<String>>,
    echoed: HashMap<String, usize>,
}

/// Sends "ping\n" on connect and counts echoed bytes, over the streams its dialer opens.
struct Pinger<D = KernelDial> {
    name: String,
    host: String,
    port: u16,
    policy: Policy,
    dial: D,
}

impl Pinger {
    fn new(name: &str, host: &str, port: u16) -> Pinger {
        Pinger::with(KernelDial::default(), name, host, port)
    }
}

impl<D: Dial> Pinger<D> {
    fn with(dial: D, name: &str, host: &str, port: u16) -> Pinger<D> {
        Pinger {
            dial,
            name: name.into(),
            host: host.into(),
            port,
            policy: Policy {
                backoff_initial: Duration::from_millis(20),
                backoff_max: Duration::from_millis(200),
                connect_timeout: Duration::from_secs(2),
                ..Policy::default()
            },
        }
    }
}

impl<D: Dial> Endpoint<Seen> for Pinger<D> {
    type Target = D::Stream;

    fn address(&self) -> ConnectAddr {
        ConnectAddr::new(self.host.clone(), self.port)
    }

    fn create_target(&mut self, addr: SocketAddr, _: &mut Seen) -> Result<D::Stream, Error> {
        Ok(self.dial.dial(addr)?)
    }

    fn poll(&mut self, target: &mut D::Stream, seen: &mut Seen) -> Result<Flow, Disconnect> {
        let mut buf = [0u8; 1024];
        loop {
            match target.read(&mut buf) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                Ok(n) => *seen.echoed.entry(self.name.clone()).or_default() += n,
                Err(e) if would_block(&e) => return Ok(Flow::Continue),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn on_event(&mut self, event: &Event<'_>, seen: &mut Seen) {
        match event {
            Event::Connected { .. } => {
                *seen.connected.entry(self.name.clone()).or_default() += 1;
            }
            Event::Disconnected { reason, .. } => seen
                .disconnects
                .entry(self.name.clone())
                .or_default()
                .push(reason.to_string()),
            _ => {}
        }
    }

    fn on_timer(
        &mut self,
        target: &mut D::Stream,
        _: Instant,
        _: &mut Seen,
    ) -> Result<Flow, Disconnect> {
        // Five bytes always fit an idle connection's send buffer (kernel or ring).
        let n = target.write(b"ping\n")?;
        assert_eq!(n, 5, "a short write of a ping");
        target
            .flush()
            .or_else(|e| if would_block(&e) { Ok(()) } else { Err(e) })?;
        Ok(Flow::Continue)
    }

    fn policy(&self) -> Policy {
        Policy {
            timer: Some(Duration::from_millis(10)),
            ..self.policy.clone()
        }
    }
}

fn run_until<S: Selector, E: Endpoint<Seen>>(
    service: &mut IoService<S, E, Seen>,
    seen: &mut Seen,
    timeout: Duration,
    mut done: impl FnMut(&IoService<S, E, Seen>, &Seen) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        service.poll(seen).expect("the service itself never fails");
        if done(service, seen) {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_failing_endpoint_does_not_disturb_the_others() {
    a_failing_endpoint_on(MioSelector::new().unwrap(), KernelDial::default());
}

fn a_failing_endpoint_on<S: Selector, D: Dial + Clone>(selector: S, dial: D) {
    let server = EchoServer::start("127.0.0.1:0");
    let mut service = selector.into_io_service_with_context();
    let good = service.register(Pinger::with(
        dial.clone(),
        "good",
        "127.0.0.1",
        server.addr.port(),
    ));
    let bad = service.register(Pinger::with(dial, "bad", "127.0.0.1", closed_port()));
    let mut seen = Seen::default();
    let ok = run_until(&mut service, &mut seen, Duration::from_secs(10), |_, s| {
        s.echoed.get("good").copied().unwrap_or(0) >= 50 * 5
            && s.disconnects.get("bad").map_or(0, Vec::len) >= 3
    });
    assert!(
        ok,
        "good echoed {:?}, bad failures {:?}",
        seen.echoed.get("good"),
        seen.disconnects.get("bad")
    );
    assert_eq!(service.state(good), EndpointState::Established);
    assert_eq!(
        seen.connected.get("good"),
        Some(&1),
        "the good endpoint never reconnected"
    );
    assert!(!seen.disconnects.contains_key("good"));
    assert!(
        seen.disconnects["bad"][0].contains("refused"),
        "{:?}",
        seen.disconnects["bad"]
    );
    assert!(service.stats(bad).attempts >= 3);
}

#[test]
fn endpoints_reconnect_with_backoff_after_the_server_restarts() {
    reconnect_after_restart_on(DirectSelector::new(), KernelDial::default());
}

fn reconnect_after_restart_on<S: Selector, D: Dial + Clone>(selector: S, dial: D) {
    let mut server = EchoServer::start("127.0.0.1:0");
    let addr = server.addr;
    let mut service = selector.into_io_service_with_context();
    let ids: Vec<_> = (0..3)
        .map(|i| {
            service.register(Pinger::with(
                dial.clone(),
                &format!("e{i}"),
                "127.0.0.1",
                addr.port(),
            ))
        })
        .collect();
    let mut seen = Seen::default();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |svc, _| ids
            .iter()
            .all(|&id| svc.state(id) == EndpointState::Established)
    ));
    server.stop();
    // Everyone notices, then keeps failing (refused) while the server is down.
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |_, s| (0..3).all(|i| s.disconnects.get(&format!("e{i}")).map_or(0, Vec::len) >= 3)
    ));
    let before: HashMap<_, _> = seen.echoed.clone();
    let _server = EchoServer::start(&addr.to_string());
    assert!(
        run_until(&mut service, &mut seen, Duration::from_secs(10), |_, s| (0
            ..3)
            .all(|i| {
                let name = format!("e{i}");
                s.connected.get(&name) == Some(&2)
                    && s.echoed.get(&name).copied().unwrap_or(0)
                        > before.get(&name).copied().unwrap_or(0) + 50
            })),
        "data did not resume: {:?}",
        seen.echoed
    );
}

#[test]
fn an_unknown_host_is_reported_and_retried() {
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    let id = service.register(Pinger::new("nowhere", "no-such-host.invalid", 80));
    let mut seen = Seen::default();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(20),
        |_, s| s.disconnects.get("nowhere").map_or(0, Vec::len) >= 2
    ));
    assert!(
        seen.disconnects["nowhere"][0].starts_with("DNS"),
        "{:?}",
        seen.disconnects
    );
    assert_ne!(service.state(id), EndpointState::Established);
}

#[test]
fn auto_disconnect_fires_on_time_and_reconnects_at_once() {
    auto_disconnect_on(MioSelector::new().unwrap(), KernelDial::default());
}

fn auto_disconnect_on<S: Selector, D: Dial>(selector: S, dial: D) {
    let server = EchoServer::start("127.0.0.1:0");
    let mut service = selector.into_io_service_with_context();
    let mut pinger = Pinger::with(dial, "short", "localhost", server.addr.port());
    pinger.policy.max_lifetime = Some(Duration::from_millis(300));
    service.register(pinger);
    let mut seen = Seen::default();
    let start = Instant::now();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |_, s| s.connected.get("short").copied().unwrap_or(0) >= 3
    ));
    let elapsed = start.elapsed();
    // Two lifetimes must have passed, and reconnects are immediate (no backoff pile-up).
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        seen.disconnects["short"]
            .iter()
            .all(|r| r.contains("lifetime")),
        "{:?}",
        seen.disconnects
    );
}

#[test]
fn fifty_endpoints_on_one_thread_all_connect() {
    fifty_endpoints_on(MioSelector::new().unwrap(), KernelDial::default());
}

fn fifty_endpoints_on<S: Selector, D: Dial + Clone>(selector: S, dial: D) {
    let server = EchoServer::start("127.0.0.1:0");
    let mut service = selector.into_io_service_with_context();
    let ids: Vec<_> = (0..50)
        .map(|i| {
            service.register(Pinger::with(
                dial.clone(),
                &format!("n{i}"),
                "127.0.0.1",
                server.addr.port(),
            ))
        })
        .collect();
    let mut seen = Seen::default();
    let start = Instant::now();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |svc, _| ids
            .iter()
            .all(|&id| svc.state(id) == EndpointState::Established)
    ));
    // All connects run in parallel: far less than 50 sequential handshakes' worth of waiting.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |_, s| (0..50).all(|i| s.echoed.get(&format!("n{i}")).copied().unwrap_or(0) >= 25)
    ));
}

#[test]
fn a_connect_that_never_completes_times_out() {
    connect_timeout_on(MioSelector::new().unwrap(), KernelDial::default());
}

fn connect_timeout_on<S: Selector, D: Dial>(selector: S, dial: D) {
    // A listener whose backlog is full drops further SYNs: the connect hangs.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let port = sock.local_addr().unwrap().as_socket().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        fillers.push(std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_millis(200),
        ));
    }
    let mut service = selector.into_io_service_with_context();
    let mut pinger = Pinger::with(dial, "stuck", "127.0.0.1", port);
    pinger.policy.connect_timeout = Duration::from_millis(300);
    service.register(pinger);
    let mut seen = Seen::default();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |_, s| s.disconnects.contains_key("stuck")
    ));
    let reason = &seen.disconnects["stuck"][0];
    assert!(
        reason.contains("timed out"),
        "expected a connect timeout, got {reason}"
    );
}

/// A second kind of endpoint: connects, sends nothing, and reads whatever arrives.
struct Listener {
    port: u16,
}

impl Endpoint<Seen> for Listener {
    type Target = TcpStream;
    fn address(&self) -> ConnectAddr {
        ConnectAddr::new("127.0.0.1", self.port)
    }
    fn create_target(&mut self, addr: SocketAddr, _: &mut Seen) -> Result<TcpStream, Error> {
        Ok(TcpStream::connect(addr, &TcpOptions::default())?)
    }
    fn poll(&mut self, target: &mut TcpStream, _: &mut Seen) -> Result<Flow, Disconnect> {
        let mut buf = [0u8; 64];
        match target.read(&mut buf) {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(_) => Ok(Flow::Continue),
            Err(e) if would_block(&e) => Ok(Flow::Continue),
            Err(e) => Err(e.into()),
        }
    }
    fn on_event(&mut self, event: &Event<'_>, seen: &mut Seen) {
        if let Event::Connected { .. } = event {
            *seen.connected.entry("listener".into()).or_default() += 1;
        }
    }
}

#[test]
fn different_endpoint_kinds_share_one_service() {
    use hotwire::service::Mixed;
    let server = EchoServer::start("127.0.0.1:0");
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    let a = service.register(Mixed::A(Pinger::new(
        "pinger",
        "127.0.0.1",
        server.addr.port(),
    )));
    let b = service.register(Mixed::B(Listener {
        port: server.addr.port(),
    }));
    let mut seen = Seen::default();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |svc, s| svc.state(a) == EndpointState::Established
            && svc.state(b) == EndpointState::Established
            && s.echoed.get("pinger").copied().unwrap_or(0) >= 50
    ));
    assert_eq!(seen.connected.get("listener"), Some(&1));
}

/// An endpoint that always has more work: it never drains and asks to be polled again.
struct Spinner {
    port: u16,
    polls: u64,
}

impl Endpoint<Seen> for Spinner {
    type Target = TcpStream;
    fn address(&self) -> ConnectAddr {
        ConnectAddr::new("127.0.0.1", self.port)
    }
    fn create_target(&mut self, addr: SocketAddr, _: &mut Seen) -> Result<TcpStream, Error> {
        Ok(TcpStream::connect(addr, &TcpOptions::default())?)
    }
    fn poll(&mut self, _: &mut TcpStream, _: &mut Seen) -> Result<Flow, Disconnect> {
        self.polls += 1;
        Ok(Flow::More)
    }
}

#[test]
fn an_endpoint_with_more_work_is_polled_again_without_starving_the_others() {
    use hotwire::service::Mixed;
    let server = EchoServer::start("127.0.0.1:0");
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    service.register(Mixed::A(Pinger::new(
        "pinger",
        "127.0.0.1",
        server.addr.port(),
    )));
    let spinner = service.register(Mixed::B(Spinner {
        port: server.addr.port(),
        polls: 0,
    }));
    let mut seen = Seen::default();
    // The pinger's timer keeps firing and its echoes keep arriving while the spinner, which never
    // becomes readable, is polled on every round because it asked for more.
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |_, s| s.echoed.get("pinger").copied().unwrap_or(0) >= 100
    ));
    let Mixed::B(spinner) = service.endpoint(spinner) else {
        unreachable!()
    };
    assert!(spinner.polls > 100, "polled {} times", spinner.polls);
}

/// An endpoint that closes on purpose on its first poll.
struct Closer {
    port: u16,
    policy: Policy,
    reasons: Vec<String>,
}

impl Endpoint<Seen> for Closer {
    type Target = TcpStream;
    fn address(&self) -> ConnectAddr {
        ConnectAddr::new("127.0.0.1", self.port)
    }
    fn create_target(&mut self, addr: SocketAddr, _: &mut Seen) -> Result<TcpStream, Error> {
        Ok(TcpStream::connect(addr, &TcpOptions::default())?)
    }
    fn poll(&mut self, _: &mut TcpStream, _: &mut Seen) -> Result<Flow, Disconnect> {
        Ok(Flow::Close)
    }
    fn on_event(&mut self, event: &Event<'_>, _: &mut Seen) {
        if let Event::Disconnected { reason, retry_in } = event {
            assert!(matches!(reason, Disconnect::Requested), "{reason}");
            assert!(reason.is_clean());
            self.reasons.push(format!("{reason}, retry {retry_in:?}"));
        }
    }
    fn policy(&self) -> Policy {
        self.policy.clone()
    }
}

#[test]
fn a_close_on_purpose_does_not_reconnect_unless_the_policy_asks() {
    let server = EchoServer::start("127.0.0.1:0");
    let fast = Policy {
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        ..Policy::default()
    };
    assert!(fast.reconnect && !fast.reconnect_after_close);
    let mut service = MioSelector::new().unwrap().into_io_service_with_context();
    let once = service.register(Closer {
        port: server.addr.port(),
        policy: fast.clone(),
        reasons: Vec::new(),
    });
    let again = service.register(Closer {
        port: server.addr.port(),
        policy: Policy {
            reconnect_after_close: true,
            ..fast
        },
        reasons: Vec::new(),
    });
    let mut seen = Seen::default();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |svc, _| svc.stats(again).connects >= 3
    ));
    assert_eq!(service.state(once), EndpointState::Stopped);
    assert_eq!(service.stats(once).connects, 1);
    assert_eq!(
        service.endpoint(once).reasons,
        ["closed by the endpoint, retry None"]
    );
}

#[test]
fn a_poll_with_work_left_over_does_not_wait_for_the_timeout() {
    let server = EchoServer::start("127.0.0.1:0");
    let mut service = MioSelector::new()
        .unwrap()
        .into_io_service_with_context()
        .with_poll_timeout(Duration::from_millis(200));
    let id = service.register(Spinner {
        port: server.addr.port(),
        polls: 0,
    });
    let mut seen = Seen::default();
    assert!(run_until(
        &mut service,
        &mut seen,
        Duration::from_secs(10),
        |svc, _| svc.endpoint(id).polls >= 1
    ));
    // The spinner returns Flow::More every time: no round may wait in the selector.
    let start = Instant::now();
    for _ in 0..50 {
        service.poll(&mut seen).unwrap();
    }
    let took = start.elapsed();
    assert!(service.endpoint(id).polls >= 51);
    assert!(
        took < Duration::from_millis(200),
        "50 rounds with a backlog took {took:?} (a 200 ms poll timeout each would be 10 s)"
    );
}

/// The same service tests on the io_uring selector: its own streams (multishot receive into
/// provided buffers, sends through the ring), with and without SQPOLL, and kernel sockets through
/// its readiness mode.
#[cfg(feature = "io-uring")]
mod io_uring {
    use super::*;
    use hotwire::select::uring::{SqPoll, UringConfig, UringRing};
    use hotwire::select::UringSelector;
    use hotwire::service::UringDial;

    fn ring(sqpoll: bool) -> (UringSelector, UringDial) {
        let config = UringConfig {
            sqpoll: sqpoll.then_some(SqPoll {
                cpu: None,
                idle_ms: 100,
            }),
            ..UringConfig::default()
        };
        let ring = UringRing::new(&config).expect("io_uring (Linux 6.0+)");
        let dial = UringDial {
            ring: ring.clone(),
            options: TcpOptions::default(),
        };
        (UringSelector::new(ring), dial)
    }

    #[test]
    fn a_failing_endpoint_does_not_disturb_the_others() {
        let (selector, dial) = ring(false);
        a_failing_endpoint_on(selector, dial);
    }

    #[test]
    fn a_failing_endpoint_does_not_disturb_the_others_with_sqpoll() {
        let (selector, dial) = ring(true);
        a_failing_endpoint_on(selector, dial);
    }

    #[test]
    fn endpoints_reconnect_with_backoff_after_the_server_restarts() {
        let (selector, dial) = ring(false);
        reconnect_after_restart_on(selector, dial);
    }

    #[test]
    fn auto_disconnect_fires_on_time_and_reconnects_at_once() {
        let (selector, dial) = ring(false);
        auto_disconnect_on(selector, dial);
    }

    #[test]
    fn fifty_endpoints_on_one_thread_all_connect() {
        let (selector, dial) = ring(false);
        fifty_endpoints_on(selector, dial);
    }

    #[test]
    fn a_connect_that_never_completes_times_out() {
        let (selector, dial) = ring(false);
        connect_timeout_on(selector, dial);
    }

    #[test]
    fn kernel_sockets_run_on_its_readiness_mode() {
        let (selector, _) = ring(false);
        reconnect_after_restart_on(selector, KernelDial::default());
    }
}
