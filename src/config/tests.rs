use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

/// Asserts that `text` fails at `line:column` with a message containing `needle`.
fn fails_at(text: &str, line: usize, column: usize, needle: &str) {
    let err = parse(text).expect_err("configuration should be rejected");
    assert!(
        err.message.contains(needle),
        "message {:?} lacks {needle:?}",
        err.message
    );
    assert_eq!((err.line, err.column), (line, column), "{err}");
    assert!(err
        .to_string()
        .starts_with(&format!("test.toml:{line}:{column}: ")));
}

const GOOD: &str = r#"
[network]
path = "kernel"

[[thread]]
name = "md"
core = 0
selector = "direct"

[[endpoint]]
name = "feed"
url = "wss://127.0.0.1:9443/feed?rate=1000"
thread = "md"
send = ['{"op":"subscribe"}']
heartbeat = "5s"
record = "feed.hwr"
lifetime = "24h"
connect_timeout = "3s"
latency = "embedded"
tls = { backend = "openssl", ca = "ca.pem", server_name = "localhost" }
reconnect = { initial = "50ms", max = "5s", jitter = 0.1 }

[stats]
interval = "2s"
json = "report.json"
"#;

#[test]
fn a_full_configuration_validates() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.network, NetworkPath::Kernel);
    assert_eq!(c.threads.len(), 1);
    assert_eq!(c.threads[0].core, Some(0));
    assert_eq!(c.threads[0].selector, SelectorKind::Direct);
    let e = &c.endpoints[0];
    assert_eq!(e.name, "feed");
    assert_eq!(e.thread, "md");
    assert_eq!(e.send, vec![r#"{"op":"subscribe"}"#.to_owned()]);
    assert_eq!(e.heartbeat, Some(Duration::from_secs(5)));
    assert_eq!(e.policy.timer, Some(Duration::from_secs(5)));
    assert_eq!(e.policy.max_lifetime, Some(Duration::from_secs(86400)));
    assert_eq!(e.policy.connect_timeout, Duration::from_secs(3));
    assert_eq!(e.policy.backoff_initial, Duration::from_millis(50));
    assert_eq!(e.policy.backoff_jitter, 0.1);
    assert_eq!(e.tls.backend, "openssl");
    assert!(e.tls.verify);
    assert_eq!(e.tls.ca.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(e.record.as_deref(), Some(Path::new("feed.hwr")));
    assert_eq!(c.stats.interval, Duration::from_secs(2));
}

#[test]
fn defaults_fill_a_minimal_file() {
    let c = parse("[[endpoint]]\nname = \"a\"\nurl = \"ws://localhost:9001/\"\n").unwrap();
    assert_eq!(c.threads[0].name, "main");
    assert_eq!(c.endpoints[0].thread, "main");
    assert!(c.endpoints[0].tls.verify);
    assert_eq!(c.endpoints[0].latency, LatencyMode::EmbeddedTimestamp);
}

#[test]
fn relative_paths_resolve_against_the_file() {
    let c = Config::parse(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\nrecord = \"x.hwr\"\n",
        Path::new("/etc/hotwire/main.toml"),
    )
    .unwrap();
    assert_eq!(
        c.endpoints[0].record.as_deref(),
        Some(Path::new("/etc/hotwire/x.hwr"))
    );
}

#[test]
fn unknown_top_level_key() {
    fails_at(
        "[netwrk]\npath = \"kernel\"\n",
        1,
        2,
        "unknown field `netwrk`",
    );
}

#[test]
fn unknown_endpoint_key() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\nheartbeet = \"1s\"\n",
        4,
        1,
        "unknown field `heartbeet`",
    );
}

#[test]
fn syntax_error() {
    fails_at("[[endpoint]\nname = \"a\"\n", 1, 12, "");
}

#[test]
fn wrong_type() {
    fails_at(
        "[[thread]]\nname = \"t\"\ncore = \"one\"\n",
        3,
        8,
        "expected i64",
    );
}

#[test]
fn missing_url() {
    fails_at("[[endpoint]]\nname = \"a\"\n", 1, 1, "missing field `url`");
}

#[test]
fn bad_scheme() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"wx://h:1/\"\n",
        3,
        7,
        "unsupported URL scheme \"wx\"",
    );
}

#[test]
fn not_a_url() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"localhost\"\n",
        3,
        7,
        "is not a URL",
    );
}

#[test]
fn unknown_thread() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\nthread = \"md\"\n",
        4,
        10,
        "no thread named \"md\"",
    );
}

#[test]
fn core_out_of_range() {
    fails_at(
        "[[thread]]\nname = \"t\"\ncore = 4096\n",
        3,
        8,
        "core 4096 does not exist or is offline (online cores: ",
    );
}

#[test]
fn duplicate_endpoint() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n[[endpoint]]\nname = \"a\"\nurl = \"ws://h:2/\"\n",
        5,
        8,
        "defined twice",
    );
}

#[test]
fn bad_duration_unit() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\nheartbeat = \"5 parsecs\"\n",
        4,
        13,
        "unknown unit",
    );
}

#[test]
fn duration_without_unit() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\nlifetime = \"86400\"\n",
        4,
        12,
        "has no unit",
    );
}

#[test]
fn bad_tls_backend() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"wss://h:1/\"\ntls = { backend = \"gnutls\" }\n",
        4,
        19,
        "unknown TLS backend",
    );
}

#[test]
fn jitter_out_of_range() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n[endpoint.reconnect]\njitter = 1.5\n",
        5,
        10,
        "outside 0.0..=1.0",
    );
}

#[test]
fn stats_faster_than_once_a_second() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n[stats]\ninterval = \"100ms\"\n",
        5,
        12,
        "at most once a second",
    );
}

#[test]
fn unknown_network_path() {
    fails_at(
        "[network]\npath = \"dpdk\"\n[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n",
        2,
        8,
        "unknown path \"dpdk\"",
    );
}

#[test]
fn no_endpoints() {
    fails_at("[[thread]]\nname = \"t\"\n", 1, 1, "no [[endpoint]]");
}

#[test]
fn unknown_selector() {
    fails_at(
        "[[thread]]\nname = \"t\"\nselector = \"poll\"\n",
        3,
        12,
        "unknown selector",
    );
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
    assert_eq!(
        parse_duration("23h30m"),
        Ok(Duration::from_secs(23 * 3600 + 1800))
    );
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("").is_err());
    assert!(parse_duration("5s3").is_err());
    assert!(parse_duration("1e400h").is_err());
    assert!(parse_duration("s").is_err());
}

const XDP: &str = r#"
[network]
path = "xdp"
interface = "hwc0"
queue = 1
local_ip = "10.77.0.3/24"
gateway = "10.77.0.1"
steering = "shared-ip"
ports = "40000-40999"
attach = "generic"
bind = "zero-copy"
umem_frames = 8192
frame_size = 2048
mtu = 1700
multi_buffer = false
ack_delay_us = 0
huge_pages = false
fallback = false

[[endpoint]]
name = "feed"
url = "ws://10.77.0.2:9001/feed"
"#;

#[test]
fn the_xdp_network_validates() {
    let c = parse(XDP).unwrap();
    let NetworkPath::Xdp(x) = &c.network else {
        panic!("expected the XDP path, got {:?}", c.network)
    };
    assert_eq!(x.interface, "hwc0");
    assert_eq!(x.queue, 1);
    assert_eq!(x.local_ip, std::net::Ipv4Addr::new(10, 77, 0, 3));
    assert_eq!(x.prefix_len, 24);
    assert_eq!(x.gateway, Some(std::net::Ipv4Addr::new(10, 77, 0, 1)));
    assert_eq!(x.steering, Steering::SharedIp);
    assert_eq!(x.ports, (40000, 40999));
    assert!(!x.native && x.zero_copy && !x.huge_pages && !x.fallback);
    assert_eq!((x.umem_frames, x.frame_size), (8192, 2048));
    assert_eq!(x.mtu, Some(1700));
    assert!(!x.multi_buffer);
    assert_eq!(x.ack_delay_us, 0);
}

#[test]
fn xdp_defaults() {
    let c = parse(
        "[network]\npath = \"xdp\"\ninterface = \"eth1\"\nlocal_ip = \"192.0.2.9/28\"\n\
         [[endpoint]]\nname = \"a\"\nurl = \"ws://192.0.2.1/\"\n",
    )
    .unwrap();
    let NetworkPath::Xdp(x) = c.network else {
        panic!("expected the XDP path")
    };
    assert_eq!(
        (x.queue, x.steering, x.ports),
        (0, Steering::DedicatedIp, (32768, 60999))
    );
    assert!(x.native && !x.zero_copy && x.huge_pages && x.fallback);
    assert_eq!((x.umem_frames, x.frame_size, x.gateway), (4096, 4096, None));
    assert_eq!(x.mtu, None, "the interface's MTU");
    assert!(x.multi_buffer, "jumbo MTUs span frames");
    assert_eq!(x.ack_delay_us, 1000);
}

#[test]
fn malformed_xdp_settings_are_located() {
    let ep = "\n[[endpoint]]\nname = \"a\"\nurl = \"ws://10.0.0.1/\"\n";
    let with = |net: &str| format!("[network]\n{net}{ep}");
    fails_at(
        &with("path = \"xdp\"\nlocal_ip = \"10.0.0.2/24\"\n"),
        2,
        8,
        "needs network.interface",
    );
    fails_at(
        &with("path = \"xdp\"\ninterface = \"eth1\"\n"),
        2,
        8,
        "needs network.local_ip",
    );
    fails_at(
        &with("path = \"xdp\"\ninterface = \"eth1\"\nlocal_ip = \"10.0.0.2\"\n"),
        4,
        12,
        "is not A.B.C.D/NN",
    );
    fails_at(
        &with("path = \"xdp\"\ninterface = \"eth1\"\nlocal_ip = \"10.0.0.2/40\"\n"),
        4,
        12,
        "prefix length",
    );
    let base = "path = \"xdp\"\ninterface = \"eth1\"\nlocal_ip = \"10.0.0.2/24\"\n";
    fails_at(
        &with(&format!("{base}gateway = \"x\"\n")),
        5,
        11,
        "network.gateway",
    );
    fails_at(&with(&format!("{base}queue = -1\n")), 5, 9, "network.queue");
    fails_at(
        &with(&format!("{base}steering = \"all\"\n")),
        5,
        12,
        "dedicated-ip or shared-ip",
    );
    fails_at(
        &with(&format!("{base}steering = \"shared-ip\"\n")),
        5,
        12,
        "needs network.ports",
    );
    fails_at(
        &with(&format!("{base}ports = \"90-80\"\n")),
        5,
        9,
        "FIRST <= LAST",
    );
    fails_at(
        &with(&format!("{base}ports = \"4000\"\n")),
        5,
        9,
        "FIRST-LAST",
    );
    fails_at(
        &with(&format!("{base}attach = \"hw\"\n")),
        5,
        10,
        "native or generic",
    );
    fails_at(
        &with(&format!("{base}bind = \"zc\"\n")),
        5,
        8,
        "copy or zero-copy",
    );
    fails_at(
        &with(&format!("{base}umem_frames = 1000\n")),
        5,
        15,
        "power of two",
    );
    fails_at(
        &with(&format!("{base}frame_size = 1024\n")),
        5,
        14,
        "2048 or 4096",
    );
    fails_at(&with(&format!("{base}fallback = \"no\"\n")), 5, 12, "bool");
    fails_at(
        &with(&format!("{base}multi_buffer = false\nmtu = 9000\n")),
        6,
        7,
        "expected 576..=3826",
    );
    fails_at(
        &with(&format!(
            "{base}frame_size = 2048\nmulti_buffer = false\nmtu = 1800\n"
        )),
        7,
        7,
        "expected 576..=1778",
    );
    // With multi-buffer (the default) a packet spans up to 16 frames.
    fails_at(
        &with(&format!("{base}mtu = 65536\n")),
        5,
        7,
        "expected 576..=61426: 16 4096-byte frames",
    );
    fails_at(
        &with(&format!("{base}frame_size = 2048\nmtu = 30000\n")),
        6,
        7,
        "expected 576..=28658",
    );
    fails_at(&with(&format!("{base}multi_buffer = 1\n")), 5, 16, "bool");
    fails_at(&with(&format!("{base}mtu = 500\n")), 5, 7, "576..=");
    fails_at(
        &with(&format!("{base}ack_delay_us = 600000\n")),
        5,
        16,
        "0..=500000",
    );
    fails_at(
        &with(&format!("{base}ack_delay_us = -1\n")),
        5,
        16,
        "0..=500000",
    );
    fails_at(
        &with(&format!("{base}jumbo = true\n")),
        5,
        1,
        "unknown field",
    );
    fails_at(
        &with("path = \"dpdk\"\n"),
        2,
        8,
        "expected \"kernel\" or \"xdp\"",
    );
    fails_at(
        &with("path = \"kernel\"\ninterface = \"eth1\"\n"),
        2,
        8,
        "path = \"xdp\"",
    );
}

#[test]
fn http_and_fix_endpoints_carry_their_settings() {
    let c = parse(
        r#"
[[endpoint]]
name = "rest"
url = "https://127.0.0.1:9444/"
interval = "50ms"
pipeline = 4
requests = [
  { target = "/api/time" },
  { method = "POST", target = "/api/order", body = '{"qty":1}', headers = [["X-Key", "k"]] },
]

[[endpoint]]
name = "orders"
url = "fix://127.0.0.1:9876"
interval = "1s"
fix = { sender = "HW", target = "VENUE", begin_string = "FIX.4.2", store = "fix", order_rate = 50.0, price = 101.25 }
"#,
    )
    .unwrap();
    let EndpointKind::Http(h) = &c.endpoints[0].kind else {
        panic!("{:?}", c.endpoints[0].kind)
    };
    assert_eq!(h.pipeline, 4);
    assert_eq!(h.interval, Some(Duration::from_millis(50)));
    assert_eq!(h.requests[0].method, "GET");
    assert_eq!(h.requests[1].body, r#"{"qty":1}"#);
    assert_eq!(
        h.requests[1].headers,
        vec![("X-Key".to_owned(), "k".to_owned())]
    );
    let EndpointKind::Fix(f) = &c.endpoints[1].kind else {
        panic!("{:?}", c.endpoints[1].kind)
    };
    assert_eq!((f.sender.as_str(), f.target.as_str()), ("HW", "VENUE"));
    assert_eq!(f.begin_string, "FIX.4.2");
    assert_eq!(f.order_rate, Some(50.0));
    assert_eq!(f.price, 101.25);
    assert_eq!(f.quantity, 1.0);
    assert_eq!(f.store.as_deref(), Some(Path::new("fix")));
    assert_eq!(c.endpoints[0].kind, c.endpoints[0].kind.clone());
}

#[test]
fn keys_of_another_protocol_are_refused() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\npipeline = 2\n",
        4,
        12,
        "`pipeline` applies to http endpoints only",
    );
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"http://h:1/\"\nfix = { sender = \"a\", target = \"b\" }\n",
        4,
        7,
        "`fix` applies to fix endpoints only",
    );
}

#[test]
fn a_fix_endpoint_needs_its_table() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"fix://h:1\"\n",
        3,
        7,
        "needs a `fix` table",
    );
}

#[test]
fn bad_http_method_and_target() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"http://h:1/\"\nrequests = [{ method = \"FETCH\", target = \"/\" }]\n",
        4,
        24,
        "unknown HTTP method",
    );
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"http://h:1/\"\nrequests = [{ target = \"api\" }]\n",
        4,
        24,
        "starts with `/`",
    );
}

#[test]
fn bad_fix_begin_string() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"fix://h:1\"\nfix = { sender = \"a\", target = \"b\", begin_string = \"FIX.5.0\" }\n",
        4,
        52,
        "unsupported begin_string",
    );
}

#[test]
fn fix_order_values_are_bounded() {
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"fix://h:1\"\nfix = { sender = \"a\", target = \"b\", order_rate = 1e-20 }\n",
        4,
        50,
        "order_rate must be within",
    );
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"fix://h:1\"\nfix = { sender = \"a\", target = \"b\", price = 1e-7 }\n",
        4,
        45,
        "price must be within",
    );
}

const XDP_NET: &str =
    "[network]\npath = \"xdp\"\ninterface = \"eth1\"\nlocal_ip = \"10.0.0.2/24\"\n";

fn xdp_threads(network_extra: &str, threads: &str) -> String {
    format!(
        "{XDP_NET}{network_extra}\n{threads}\n[[endpoint]]\nname = \"a\"\nurl = \"ws://10.0.0.1:1/\"\n\
         thread = \"a\"\n[[endpoint]]\nname = \"b\"\nurl = \"ws://10.0.0.1:1/\"\nthread = \"b\"\n"
    )
}

#[test]
fn one_af_xdp_queue_per_thread() {
    let text = xdp_threads(
        "",
        "[[thread]]\nname = \"a\"\ncore = 0\nqueue = 0\n\
         [[thread]]\nname = \"b\"\ncore = 1\nqueue = 1\nlocal_ip = \"10.0.0.3/24\"\n\
         [[thread]]\nname = \"idle\"\n",
    );
    let c = parse(&text).unwrap();
    let xdp: Vec<_> = c.threads.iter().map(|t| t.xdp).collect();
    let ip = |d| std::net::Ipv4Addr::new(10, 0, 0, d);
    assert_eq!(
        xdp[0],
        Some(ThreadXdp {
            queue: 0,
            local_ip: ip(2),
            prefix_len: 24,
            ports: (32768, 60999)
        })
    );
    assert_eq!(xdp[1].map(|x| (x.queue, x.local_ip)), Some((1, ip(3))));
    assert_eq!(xdp[2], None);
}

#[test]
fn without_thread_queues_the_first_busy_thread_takes_the_network_queue() {
    let text = xdp_threads(
        "queue = 3\n",
        "[[thread]]\nname = \"idle\"\n[[thread]]\nname = \"a\"\n[[thread]]\nname = \"b\"\n",
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.threads[0].xdp, None, "no endpoints: no socket");
    assert_eq!(c.threads[1].xdp.map(|x| x.queue), Some(3));
    assert_eq!(c.threads[2].xdp, None, "kernel TCP");
}

#[test]
fn shared_ip_threads_split_the_port_range() {
    let text = xdp_threads(
        "steering = \"shared-ip\"\nports = \"40000-40999\"\n",
        "[[thread]]\nname = \"a\"\nqueue = 0\n[[thread]]\nname = \"b\"\nqueue = 1\n",
    );
    let c = parse(&text).unwrap();
    let a = c.threads[0].xdp.unwrap();
    let b = c.threads[1].xdp.unwrap();
    assert_eq!((a.ports, b.ports), ((40000, 40499), (40500, 40999)));
    assert_eq!(a.local_ip, b.local_ip);
}

#[test]
fn per_thread_xdp_mistakes_are_located() {
    let two = |b: &str| {
        xdp_threads(
            "",
            &format!("[[thread]]\nname = \"a\"\nqueue = 0\n[[thread]]\nname = \"b\"\n{b}"),
        )
    };
    // Lines: 4 of [network], a blank line, then the threads.
    fails_at(
        &two("queue = 0\n"),
        11,
        9,
        "queue 0 is already thread \"a\"'s",
    );
    fails_at(&two("queue = 1\n"), 11, 9, "needs its own `local_ip`");
    fails_at(
        &two("queue = 1\nlocal_ip = \"10.0.0.2/24\"\n"),
        12,
        12,
        "local_ip 10.0.0.2 is already thread \"a\"'s",
    );
    fails_at(&two("queue = 4096\n"), 11, 9, "queue 4096 is not 0..4095");
    fails_at(
        &two("local_ip = \"10.0.0.3/24\"\n"),
        11,
        12,
        "`local_ip` needs `queue`",
    );
    fails_at(
        &two("queue = 1\nlocal_ip = \"10.0.0.3\"\n"),
        12,
        12,
        "is not A.B.C.D/NN",
    );
    fails_at(
        &xdp_threads(
            "queue = 1\n",
            "[[thread]]\nname = \"a\"\nqueue = 0\n[[thread]]\nname = \"b\"\n",
        ),
        5,
        9,
        "leave network.queue out",
    );
    fails_at(
        "[[thread]]\nname = \"a\"\nqueue = 0\n[[endpoint]]\nname = \"e\"\nurl = \"ws://h:1/\"\n",
        3,
        9,
        "applies to network.path = \"xdp\" only",
    );
}
mod conn;
mod publish;
mod ws;
const ONE_ENDPOINT: &str = "[[endpoint]]\nname = \"a\"\nurl = \"ws://localhost:9001/\"\n";

#[test]
fn metrics_listen_address() {
    assert_eq!(parse(ONE_ENDPOINT).unwrap().metrics, None);
    let c = parse(&format!(
        "{ONE_ENDPOINT}[metrics]\nlisten = \"127.0.0.1:9464\"\n"
    ))
    .unwrap();
    assert_eq!(c.metrics.unwrap().listen, "127.0.0.1:9464".parse().unwrap());
    let c = parse(&format!("{ONE_ENDPOINT}[metrics]\nlisten = \"[::1]:0\"\n")).unwrap();
    assert_eq!(c.metrics.unwrap().listen, "[::1]:0".parse().unwrap());
}

#[test]
fn metrics_listen_without_port() {
    fails_at(
        &format!("{ONE_ENDPOINT}[metrics]\nlisten = \"127.0.0.1\"\n"),
        5,
        10,
        "metrics.listen \"127.0.0.1\" is not an address and port",
    );
}

#[test]
fn metrics_unknown_key() {
    fails_at(
        &format!("{ONE_ENDPOINT}[metrics]\nlisten = \"127.0.0.1:1\"\npath = \"/m\"\n"),
        6,
        1,
        "unknown field `path`",
    );
}

#[test]
fn metrics_listen_is_required() {
    fails_at(
        &format!("{ONE_ENDPOINT}[metrics]\n"),
        4,
        1,
        "missing field `listen`",
    );
}

#[test]
fn silent_peer_deadlines() {
    let ep = |extra: &str, url: &str| {
        let text = format!("[[endpoint]]\nname = \"a\"\nurl = \"{url}\"\n{extra}");
        parse(&text).map(|c| c.endpoints.into_iter().next().expect("one endpoint"))
    };
    let ms = Duration::from_millis;
    // The pong deadline defaults to three heartbeats; no heartbeat, no deadline.
    let e = ep("heartbeat = \"250ms\"\n", "ws://h:1/").unwrap();
    assert_eq!((e.pong_timeout, e.stale_after), (Some(ms(750)), None));
    assert_eq!(ep("", "ws://h:1/").unwrap().pong_timeout, None);
    let e = ep(
        "heartbeat = \"1s\"\npong_timeout = \"2s\"\nstale_after = \"5s\"\n",
        "ws://h:1/",
    )
    .unwrap();
    assert_eq!(e.pong_timeout, Some(ms(2000)));
    assert_eq!(e.stale_after, Some(ms(5000)));
    let timeout = |e: EndpointConfig| match e.kind {
        EndpointKind::Http(h) => h.request_timeout,
        other => panic!("{other:?}"),
    };
    assert_eq!(timeout(ep("", "http://h:1/").unwrap()), ms(10_000));
    let e = ep("request_timeout = \"1500ms\"\n", "http://h:1/").unwrap();
    assert_eq!(timeout(e), ms(1500));
    // Each key where it makes sense, positive, with a heartbeat to time.
    let (head, ws) = ("[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\n", 4);
    fails_at(
        &format!("{head}pong_timeout = \"1s\"\n"),
        ws,
        16,
        "pong_timeout needs a heartbeat",
    );
    fails_at(
        &format!("{head}heartbeat = \"1s\"\npong_timeout = \"0s\"\n"),
        ws + 1,
        16,
        "must be longer than 0",
    );
    fails_at(
        &format!("{head}request_timeout = \"1s\"\n"),
        ws,
        19,
        "applies to http endpoints only",
    );
    fails_at(
        "[[endpoint]]\nname = \"a\"\nurl = \"http://h:1/\"\nstale_after = \"1s\"\n",
        4,
        15,
        "applies to WebSocket endpoints only",
    );
}

#[test]
fn the_fix_password_is_never_printed() {
    let text = "[[endpoint]]\nname = \"a\"\nurl = \"fix://h:1\"\nfix = { sender = \"a\", target = \"b\", username = \"u\", password = \"hunter2-secret\" }\n";
    let c = parse(text).unwrap();
    let EndpointKind::Fix(f) = &c.endpoints[0].kind else {
        panic!("{:?}", c.endpoints[0].kind)
    };
    assert_eq!(f.password.as_deref(), Some("hunter2-secret"));
    for shown in [format!("{f:?}"), format!("{f:#?}"), format!("{c:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
    // The raw form (before validation) hides it too.
    let raw: raw::RawConfig = toml::from_str(text).unwrap();
    let shown = format!("{raw:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn fix_schedule_and_latency_settings() {
    let c = parse(
        r#"
[[endpoint]]
name = "week"
url = "fix://h:1"
fix = { sender = "a", target = "b", check_latency = false, max_latency = "30s", schedule = { start_time = "17:00:00", end_time = "16:59", start_day = "Sunday", end_day = "fri", time_zone = "America/New_York" } }

[[endpoint]]
name = "day"
url = "fix://h:2"
fix = { sender = "a", target = "b", schedule = { start_time = "08:00:00", end_time = "17:30:00" } }
"#,
    )
    .unwrap();
    let fix = |i: usize| match &c.endpoints[i].kind {
        EndpointKind::Fix(f) => f.clone(),
        other => panic!("{other:?}"),
    };
    let week = fix(0);
    assert_eq!(
        week.schedule,
        Some(Box::new(FixSchedule {
            start_time: 17 * 3600,
            end_time: 16 * 3600 + 59 * 60,
            days: Some((6, 4)),
            time_zone: "America/New_York".into(),
        }))
    );
    assert_eq!(
        (week.check_latency, week.max_latency),
        (false, Duration::from_secs(30))
    );
    let day = fix(1);
    assert_eq!(
        day.schedule,
        Some(Box::new(FixSchedule {
            start_time: 8 * 3600,
            end_time: 17 * 3600 + 30 * 60,
            days: None,
            time_zone: "UTC".into(),
        }))
    );
    assert_eq!(
        (day.check_latency, day.max_latency),
        (true, Duration::from_secs(120))
    );
}

#[test]
fn bad_fix_schedules_are_located() {
    let with = |table: &str| {
        format!("[[endpoint]]\nname = \"a\"\nurl = \"fix://h:1\"\nfix = {{ sender = \"a\", target = \"b\", {table} }}\n")
    };
    let cases = [
        ("schedule = { start_time = \"24:00:00\", end_time = \"17:00:00\" }", "\"24:00:00\"", "schedule.start_time must be HH:MM:SS"),
        ("schedule = { start_time = \"08:00\", end_time = \"5pm\" }", "\"5pm\"", "schedule.end_time must be HH:MM:SS"),
        ("schedule = { start_time = \"08:00\", end_time = \"09:00\", start_day = \"someday\", end_day = \"friday\" }", "\"someday\"", "must be a day name"),
        ("schedule = { start_time = \"08:00\", end_time = \"09:00\", end_day = \"friday\" }", "\"friday\"", "both start_day and end_day"),
        ("schedule = { start_time = \"08:00\", end_time = \"09:00\", time_zone = \"Mars/Olympus\" }", "\"Mars/Olympus\"", "unknown time zone"),
        ("schedule = { start_time = \"08:00\", end_time = \"09:00\", days = 5 }", "days", "unknown field"),
        ("max_latency = \"soon\"", "\"soon\"", "max_latency"),
        ("max_latency = \"0s\"", "\"0s\"", "max_latency must be above zero"),
    ];
    for (table, at, needle) in cases {
        let text = with(table);
        let line4 = text.lines().nth(3).unwrap();
        let column = line4.find(at).unwrap() + 1;
        fails_at(&text, 4, column, needle);
    }
}

#[test]
fn the_commented_fix_example_of_the_default_config_is_valid() {
    // config/hotwire.toml documents every FIX key in a commented block: uncommented, it parses.
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hotwire.toml"))
            .unwrap();
    let start = text
        .find("# [[endpoint]]\n# name = \"orders\"")
        .expect("the FIX example");
    let block: String = text[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').strip_prefix(' ').unwrap_or(""))
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
    let EndpointKind::Fix(f) = &c.endpoints[0].kind else {
        panic!("{:?}", c.endpoints[0].kind)
    };
    assert_eq!(f.schedule.as_ref().unwrap().days, Some((6, 4)));
    assert_eq!(f.max_latency, Duration::from_secs(120));
}

#[cfg(feature = "io-uring")]
#[test]
fn io_uring_selector_with_sqpoll() {
    let c = parse(
        "[[thread]]\nname = \"t\"\nselector = \"io_uring\"\nsqpoll = true\nsqpoll_core = 0\n\n\
         [[endpoint]]\nname = \"e\"\nurl = \"ws://127.0.0.1:1/\"\n",
    )
    .unwrap();
    assert_eq!(
        c.threads[0].selector,
        SelectorKind::IoUring {
            sqpoll: true,
            sqpoll_core: Some(0)
        }
    );
    let c = parse(
        "[[thread]]\nname = \"t\"\nselector = \"io_uring\"\n\n\
         [[endpoint]]\nname = \"e\"\nurl = \"ws://127.0.0.1:1/\"\n",
    )
    .unwrap();
    assert_eq!(
        c.threads[0].selector,
        SelectorKind::IoUring {
            sqpoll: false,
            sqpoll_core: None
        }
    );
}

#[test]
fn sqpoll_needs_the_io_uring_selector() {
    fails_at(
        "[[thread]]\nname = \"t\"\nselector = \"mio\"\nsqpoll = true\n",
        4,
        10,
        "sqpoll needs selector = \"io_uring\"",
    );
}

#[cfg(feature = "io-uring")]
#[test]
fn sqpoll_core_needs_sqpoll_and_an_online_core() {
    fails_at(
        "[[thread]]\nname = \"t\"\nselector = \"io_uring\"\nsqpoll_core = 0\n",
        4,
        15,
        "sqpoll_core needs sqpoll = true",
    );
    fails_at(
        "[[thread]]\nname = \"t\"\nselector = \"io_uring\"\nsqpoll = true\nsqpoll_core = 4096\n",
        5,
        15,
        "does not exist or is offline",
    );
}

#[cfg(feature = "io-uring")]
#[test]
fn sqpoll_on_a_pinned_thread_needs_its_own_core() {
    fails_at(
        "[[thread]]\nname = \"t\"\ncore = 0\nselector = \"io_uring\"\nsqpoll = true\n",
        5,
        10,
        "set sqpoll_core to another core",
    );
    fails_at(
        "[[thread]]\nname = \"t\"\ncore = 0\nselector = \"io_uring\"\nsqpoll = true\n\
         sqpoll_core = 0\n",
        6,
        15,
        "set sqpoll_core to another core",
    );
}
