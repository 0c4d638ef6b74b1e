use super::*;

/// A configuration with a prefix of its own, so parallel tests never share a service.
pub(super) fn isolated(tag: &str) -> Config {
    let mut config = Config::default();
    let prefix = format!("hwu{}{tag}_", std::process::id());
    config.global.prefix = FileName::new(prefix.as_bytes()).unwrap();
    config
}

/// Removes what a test's prefix left in /dev/shm (iceoryx2's per-prefix node counter stays by
/// design; a test's prefix is never used again).
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

#[test]
fn publishes_in_order_and_takes_what_strategies_send() {
    let config = isolated("a");
    let counters = Arc::new(GatewayCounters::default());
    let mut gw = Gateway::open_with(&config, "feed", 7, counters.clone()).unwrap();
    let strategy = node(&config);
    let inbound = strategy
        .service_builder(&"hotwire/feed/in".try_into().unwrap())
        .publish_subscribe::<[u8]>()
        .user_header::<HotwireHeader>()
        .open()
        .unwrap();
    assert_eq!(
        inbound.static_config().subscriber_max_buffer_size(),
        SUBSCRIBER_BUFFER
    );
    let sub = inbound
        .subscriber_builder()
        .buffer_size(SUBSCRIBER_BUFFER)
        .create()
        .unwrap();
    let big = vec![b'x'; 3 * INITIAL_MAX_MESSAGE];
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
    assert_eq!(counters.published.load(Ordering::Relaxed), 3);

    // A full queue drops for that subscriber only, counted; nothing blocks.
    for _ in 0..SUBSCRIBER_BUFFER + 10 {
        gw.publish(Kind::Text, 0, b"m");
    }
    assert_eq!(counters.subscriber_drops.load(Ordering::Relaxed), 10);
    assert_eq!(gw.seq(), 3 + SUBSCRIBER_BUFFER as u64 + 10);

    let send = strategy
        .service_builder(&"hotwire/feed/send".try_into().unwrap())
        .publish_subscribe::<[u8]>()
        .user_header::<HotwireHeader>()
        .open()
        .unwrap();
    let publisher = send
        .publisher_builder()
        .initial_max_slice_len(64)
        .create()
        .unwrap();
    for (kind, body) in [(1u32, &b"one"[..]), (9, b"bad"), (3, b"35=D\x01")] {
        let mut s = publisher.loan_slice_uninit(body.len()).unwrap();
        s.user_header_mut().kind = kind;
        s.write_from_slice(body).send().unwrap();
    }
    let mut seen = Vec::new();
    let n = gw
        .drain(|kind, bytes| -> Result<bool, ()> {
            seen.push((kind, bytes.to_vec()));
            Ok(kind.is_some())
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
    assert_eq!(counters.sent.load(Ordering::Relaxed), 2);
    assert_eq!(counters.refused.load(Ordering::Relaxed), 1);
    assert_eq!(
        gw.drain(|_, _| -> Result<bool, ()> { Ok(true) }).unwrap(),
        0
    );
    drop((gw, sub, publisher, inbound, send, strategy));
    remove_leftovers("a");
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
