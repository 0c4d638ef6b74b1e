use super::*;

/// A configuration with a prefix of its own, so parallel tests never share a service.
pub(super) fn isolated(tag: &str) -> Config {
    let mut config = Config::default();
    let prefix = format!("hwu{}{tag}_", std::process::id());
    config.global.prefix = FileName::new(prefix.as_bytes()).unwrap();
    config
}

/// Removes what a test's prefix left in /dev/shm (iceoryx2's per-prefix node counter stays when
/// a strategy's `ipc::Service` node is the last to go; a test's prefix is never used again).
fn remove_leftovers(tag: &str) {
    let prefix = format!("hwu{}{tag}_", std::process::id());
    for e in std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn node(config: &Config) -> Node<ipc::Service> {
    NodeBuilder::new()
        .config(config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .unwrap()
}

#[test]
fn the_header_is_24_bytes_aligned_8_named_hotwire_header() {
    assert_eq!(std::mem::size_of::<HotwireHeader>(), 24);
    assert_eq!(std::mem::align_of::<HotwireHeader>(), 8);
    // SAFETY: `type_name` only returns the derive's string.
    assert_eq!(unsafe { HotwireHeader::type_name() }, "HotwireHeader");
    let h = HotwireHeader {
        recv_ns: 1,
        seq: 2,
        endpoint: 3,
        kind: 4,
    };
    let base = std::ptr::addr_of!(h) as usize;
    assert_eq!(std::ptr::addr_of!(h.seq) as usize - base, 8);
    assert_eq!(std::ptr::addr_of!(h.endpoint) as usize - base, 16);
    assert_eq!(std::ptr::addr_of!(h.kind) as usize - base, 20);
    for k in [Kind::Text, Kind::Binary, Kind::Fix, Kind::HttpBody] {
        assert_eq!(Kind::from_u32(k as u32), Some(k));
    }
    assert_eq!(Kind::from_u32(0), None);
    assert_eq!(Kind::from_u32(5), None);
}

fn options(overflow: PublishOverflow) -> PublishOptions {
    PublishOptions {
        max_message: 4096,
        buffer: 1024,
        overflow,
    }
}

fn open_in(
    strategy: &Node<ipc::Service>,
    name: &str,
) -> Subscriber<ipc::Service, [u8], HotwireHeader> {
    let inbound = strategy
        .service_builder(&name.try_into().unwrap())
        .publish_subscribe::<[u8]>()
        .user_header::<HotwireHeader>()
        .open()
        .unwrap();
    assert_eq!(inbound.static_config().subscriber_max_buffer_size(), 1024);
    inbound
        .subscriber_builder()
        .buffer_size(1024)
        .create()
        .unwrap()
}

fn send_to(
    strategy: &Node<ipc::Service>,
    name: &str,
) -> Publisher<ipc::Service, [u8], HotwireHeader> {
    let send = strategy
        .service_builder(&name.try_into().unwrap())
        .publish_subscribe::<[u8]>()
        .user_header::<HotwireHeader>()
        .open()
        .unwrap();
    send.publisher_builder()
        .initial_max_slice_len(8192)
        .backpressure_strategy(BackpressureStrategy::DiscardData)
        .create()
        .unwrap()
}

fn publish(p: &Publisher<ipc::Service, [u8], HotwireHeader>, kind: u32, body: &[u8]) {
    let mut s = p.loan_slice_uninit(body.len()).unwrap();
    s.user_header_mut().kind = kind;
    s.write_from_slice(body).send().unwrap();
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

#[test]
fn publishes_in_order_and_takes_what_strategies_send() {
    let config = isolated("a");
    let counters = Arc::new(GatewayCounters::default());
    let opts = options(PublishOverflow::DropNewest);
    let mut gw = Gateway::open_with(&config, "feed", 7, &opts, true, counters.clone()).unwrap();
    let strategy = node(&config);
    let sub = open_in(&strategy, "hotwire/feed/in");
    let big = vec![b'x'; 4096];
    gw.publish(Kind::Text, 11, b"hello");
    gw.publish(Kind::Binary, 12, &big);
    gw.publish(Kind::Fix, 13, b"");
    let mut got = Vec::new();
    while let Some(s) = sub.receive().unwrap() {
        got.push((*s.user_header(), s.payload().to_vec()));
    }
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].0,
        HotwireHeader {
            recv_ns: 11,
            seq: 1,
            endpoint: 7,
            kind: 1
        }
    );
    assert_eq!(got[0].1, b"hello");
    assert_eq!((got[1].0.seq, got[1].0.kind), (2, 2));
    assert_eq!(got[1].1, big);
    assert_eq!((got[2].0.seq, got[2].0.kind, got[2].1.len()), (3, 3, 0));
    assert_eq!(load(&counters.published), 3);

    // drop_newest: a full queue drops the new samples for that subscriber only, each counted
    // exactly once; nothing blocks.
    for _ in 0..1024 + 10 {
        gw.publish(Kind::Text, 0, b"m");
    }
    assert_eq!(load(&counters.subscriber_drops), 10);
    assert_eq!(load(&counters.published), 3 + 1024 + 10);
    assert_eq!(gw.seq(), 3 + 1024 + 10);
    let first = sub.receive().unwrap().unwrap().user_header().seq;
    assert_eq!(first, 4, "the oldest stayed");

    let publisher = send_to(&strategy, "hotwire/feed/send");
    for (kind, body) in [(1u32, &b"one"[..]), (9, b"bad"), (3, b"35=D\x01")] {
        publish(&publisher, kind, body);
    }
    let mut seen = Vec::new();
    let n = gw
        .drain(|kind, bytes| -> Result<_, ()> {
            seen.push((kind, bytes.to_vec()));
            Ok(if kind.is_some() {
                Ok(())
            } else {
                Err(Refusal::WrongKind { kind, takes: "any" })
            })
        })
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        seen,
        [
            (Some(Kind::Text), b"one".to_vec()),
            (None, b"bad".to_vec()),
            (Some(Kind::Fix), b"35=D\x01".to_vec())
        ]
    );
    assert_eq!(load(&counters.sent), 2);
    assert_eq!(load(&counters.refused), 1);
    assert_eq!(gw.drain(|_, _| -> Result<_, ()> { Ok(Ok(())) }).unwrap(), 0);
    drop((gw, sub, publisher, strategy));
    remove_leftovers("a");
}

#[test]
fn drop_oldest_keeps_the_freshest_and_the_subscriber_sees_the_gap() {
    let config = isolated("o");
    let counters = Arc::new(GatewayCounters::default());
    let opts = options(PublishOverflow::DropOldest);
    let mut gw = Gateway::open_with(&config, "feed", 0, &opts, true, counters.clone()).unwrap();
    let strategy = node(&config);
    let sub = open_in(&strategy, "hotwire/feed/in");
    for _ in 0..1024 + 10 {
        gw.publish(Kind::Text, 0, b"m");
    }
    assert_eq!(load(&counters.published), 1024 + 10);
    assert_eq!(load(&counters.dropped), 0);
    let mut seqs = Vec::new();
    while let Some(s) = sub.receive().unwrap() {
        seqs.push(s.user_header().seq);
    }
    assert_eq!(seqs.len(), 1024);
    assert_eq!(seqs[0], 11, "the 10 oldest made room");
    assert_eq!(*seqs.last().unwrap(), 1034);
    assert_eq!(
        load(&counters.subscriber_drops),
        10,
        "each eviction counted"
    );
    // A second subscriber: each full queue counts its own losses.
    let late = open_in(&strategy, "hotwire/feed/in");
    for _ in 0..1024 + 5 {
        gw.publish(Kind::Text, 0, b"m");
    }
    assert_eq!(load(&counters.subscriber_drops), 10 + 5 + 5);
    let mut n = 0;
    while sub.receive().unwrap().is_some() {
        n += 1;
    }
    while late.receive().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2 * 1024);
    drop((gw, sub, late, strategy));
    remove_leftovers("o");
}

#[test]
fn oversized_messages_are_counted_and_the_feed_goes_on() {
    let config = isolated("s");
    let counters = Arc::new(GatewayCounters::default());
    let opts = options(PublishOverflow::DropOldest);
    let mut gw = Gateway::open_with(&config, "feed", 0, &opts, true, counters.clone()).unwrap();
    let strategy = node(&config);
    let sub = open_in(&strategy, "hotwire/feed/in");
    gw.publish(Kind::Binary, 0, b"before");
    gw.publish(Kind::Binary, 0, &vec![0u8; 4097]);
    gw.publish(Kind::Binary, 0, b"after");
    assert_eq!(load(&counters.oversized), 1);
    assert_eq!(load(&counters.dropped), 1);
    assert_eq!(load(&counters.published), 2);
    let got: Vec<_> = std::iter::from_fn(|| sub.receive().unwrap())
        .map(|s| (s.user_header().seq, s.payload().to_vec()))
        .collect();
    assert_eq!(got, [(1, b"before".to_vec()), (3, b"after".to_vec())]);

    // From a strategy: refused before the session sees it.
    let publisher = send_to(&strategy, "hotwire/feed/send");
    publish(&publisher, 2, &vec![0u8; 5000]);
    publish(&publisher, 2, b"ok");
    let mut seen = Vec::new();
    gw.drain(|_, b| -> Result<_, ()> {
        seen.push(b.to_vec());
        Ok(Ok(()))
    })
    .unwrap();
    assert_eq!(seen, [b"ok".to_vec()]);
    assert_eq!(load(&counters.oversized), 2);
    assert_eq!(load(&counters.refused), 1);
    assert_eq!(load(&counters.sent), 1);
    drop((gw, sub, publisher, strategy));
    remove_leftovers("s");
}

#[test]
fn what_waited_while_the_session_was_down_is_refused_and_http_takes_nothing() {
    let config = isolated("w");
    let counters = Arc::new(GatewayCounters::default());
    let opts = options(PublishOverflow::DropOldest);
    let mut gw = Gateway::open_with(&config, "fix", 0, &opts, true, counters.clone()).unwrap();
    let strategy = node(&config);
    let publisher = send_to(&strategy, "hotwire/fix/send");
    for _ in 0..300 {
        publish(&publisher, 3, b"35=D\x01");
    }
    // The first logon within ORDER_HOLD of the start: what waited goes out.
    assert_eq!(gw.session_up(), 0);
    assert_eq!(
        gw.drain(|_, _| -> Result<_, ()> { Ok(Ok(())) }).unwrap(),
        256
    );
    assert_eq!(
        gw.drain(|_, _| -> Result<_, ()> { Ok(Ok(())) }).unwrap(),
        44
    );
    assert_eq!(load(&counters.sent), 300);
    // An outage longer than ORDER_HOLD: what waited through it is refused at the next logon.
    gw.session_down();
    for _ in 0..300 {
        publish(&publisher, 3, b"35=D\x01");
    }
    std::thread::sleep(ORDER_HOLD + std::time::Duration::from_millis(50));
    assert_eq!(gw.session_up(), 300);
    assert_eq!(load(&counters.refused), 300);
    assert_eq!(load(&counters.sent), 300);
    assert_eq!(gw.drain(|_, _| -> Result<_, ()> { Ok(Ok(())) }).unwrap(), 0);

    let http = Gateway::open_with(&config, "rest", 1, &opts, false, counters.clone()).unwrap();
    let send: ServiceName = "hotwire/rest/send".try_into().unwrap();
    let exists = ipc::Service::does_exist(&send, &config, MessagingPattern::PublishSubscribe);
    assert!(
        !exists.unwrap(),
        "no .../send for an endpoint that takes no orders"
    );
    drop((gw, http, publisher, strategy));
    remove_leftovers("w");
}

#[test]
fn publish_is_an_endpoint_key() {
    let text = "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\npublish = true\n\n\
                [[endpoint]]\nname = \"b\"\nurl = \"ws://h:1/\"\n";
    let c = crate::config::Config::parse(text, std::path::Path::new("g.toml")).unwrap();
    assert!(c.endpoints[0].publish);
    assert!(!c.endpoints[1].publish);
    let bad = "[[endpoint]]\nname = \"a\"\nurl = \"ws://h:1/\"\npublish = \"yes\"\n";
    let e = crate::config::Config::parse(bad, std::path::Path::new("g.toml")).unwrap_err();
    assert!(e.to_string().contains("g.toml:4"), "{e}");
}

#[test]
fn service_names_and_the_prefix() {
    assert_eq!(service_name("feed", "in"), "hotwire/feed/in");
    assert!(name_of("hotwire/feed/in").is_ok());
    assert!(matches!(name_of(""), Err(GatewayError::ServiceName { .. })));
}

#[test]
fn an_endpoint_name_that_makes_no_service_name_is_a_located_error() {
    let long = "x".repeat(300);
    let text = format!("[[endpoint]]\nname = \"{long}\"\nurl = \"ws://h:1/\"\npublish = true\n");
    let e = crate::config::Config::parse(&text, std::path::Path::new("g.toml")).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("g.toml:2:8"), "{e}");
    assert!(e.contains("not a valid iceoryx2 service name"), "{e}");
    // Without publish the name is not a service name: no such limit.
    let text = text.replace("publish = true\n", "");
    assert!(crate::config::Config::parse(&text, std::path::Path::new("g.toml")).is_ok());
}

/// The files of a test's prefix in /dev/shm.
fn shm_of(tag: &str) -> Vec<String> {
    let prefix = format!("hwu{}{tag}_", std::process::id());
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn the_last_node_of_the_prefix_takes_the_node_counter_out_of_dev_shm() {
    let config = isolated("n");
    // `<prefix><hash of the root path>_node.0_10_0.global_mgmt`
    let has_counter = || {
        shm_of("n")
            .iter()
            .any(|n| n.ends_with("_node.0_10_0.global_mgmt"))
    };
    let opts = options(PublishOverflow::DropOldest);
    let open = || {
        let counters = Arc::new(GatewayCounters::default());
        Gateway::open_with(&config, "feed", 0, &opts, true, counters).unwrap()
    };
    // Alone: a clean stop leaves nothing.
    let gw = open();
    assert!(has_counter(), "{:?}", shm_of("n"));
    drop(gw);
    assert_eq!(shm_of("n"), Vec::<String>::new());
    // A strategy's node alive: the counter stays for it, and the gateway's restart uses it.
    let strategy = node(&config);
    let gw = open();
    let sub = open_in(&strategy, "hotwire/feed/in");
    drop(gw);
    assert!(has_counter(), "{:?}", shm_of("n"));
    let mut gw = open();
    gw.publish(Kind::Text, 0, b"again");
    assert_eq!(sub.receive().unwrap().unwrap().payload(), b"again");
    // Two gateways (two endpoints): the first to go leaves it for the second.
    drop((sub, strategy));
    let counters = Arc::new(GatewayCounters::default());
    let other = Gateway::open_with(&config, "orders", 1, &opts, true, counters).unwrap();
    drop(gw);
    assert!(has_counter(), "{:?}", shm_of("n"));
    drop(other);
    assert_eq!(shm_of("n"), Vec::<String>::new());
}
