//! The gateway's steady state, counted by a global allocator on the IO thread: after warm-up,
//! taking the strategy's messages from `.../send` and publishing 100,000 messages on `.../in`
//! (sizes from 0 to 1,000 bytes, every kind) make no heap allocation. iceoryx2 0.10 wraps every
//! loan in a reference-counted handle (`ChunkMutSharedState::new`, called by
//! `SampleMutUninit::new` in `iceoryx2/src/sample_mut_uninit.rs`), an `Rc::new` with
//! `ipc::Service`; the gateway's service variant (`hotwire::gateway::service`) recycles those
//! handles, so one allocation per message fails the test. The strategy runs on another thread of
//! the same process (allocations are counted per thread), as a subscriber and a publisher of its
//! own node on iceoryx2's plain `ipc::Service`: the two variants share every file and layout.
#![cfg(feature = "gateway")]

mod alloc_counter;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use alloc_counter::allocs;
use hotwire::gateway::{
    Gateway, GatewayCounters, HotwireHeader, Kind, PublishOptions, PublishOverflow, Refusal,
};
use iceoryx2::prelude::*;

const MESSAGES: u64 = 100_000;

/// `drop_newest`, so what the strategy misses is counted exactly; a 1 KiB maximum.
const OPTIONS: PublishOptions = PublishOptions {
    max_message: 1024,
    buffer: 4096,
    overflow: PublishOverflow::DropNewest,
};

fn prefix() -> String {
    format!("hwa{}_", std::process::id())
}

fn config() -> Config {
    let mut config = Config::default();
    let prefix = prefix();
    config.global.prefix = FileName::new(prefix.as_bytes()).unwrap();
    config
}

/// The strategy: reads everything on `hotwire/alloc/in` and answers every 16th message on
/// `.../send`; returns how many messages it saw.
fn strategy(config: Config, ready: mpsc::Sender<()>, stop: Arc<AtomicBool>) -> u64 {
    let node = NodeBuilder::new()
        .config(&config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .unwrap();
    let open = |name: &str| {
        node.service_builder(&name.try_into().unwrap())
            .publish_subscribe::<[u8]>()
            .user_header::<HotwireHeader>()
            .open()
            .unwrap()
    };
    let sub = open("hotwire/alloc/in")
        .subscriber_builder()
        .buffer_size(OPTIONS.buffer)
        .create()
        .unwrap();
    let publisher = open("hotwire/alloc/send")
        .publisher_builder()
        .initial_max_slice_len(64)
        .create()
        .unwrap();
    ready.send(()).unwrap();
    let mut seen = 0u64;
    let mut read = || {
        while let Some(s) = sub.receive().unwrap() {
            seen += 1;
            if s.user_header().seq % 16 == 0 {
                let mut order = publisher.loan_slice_uninit(8).unwrap();
                order.user_header_mut().kind = Kind::Binary as u32;
                order.write_from_slice(b"order-01").send().unwrap();
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        read();
        std::hint::spin_loop();
    }
    // `stop` may have been set between an empty receive and the last publish: once more, so
    // every message published is either seen or counted as dropped.
    read();
    seen
}

#[test]
fn publishing_and_taking_orders_allocate_nothing() {
    let config = config();
    let counters = Arc::new(GatewayCounters::default());
    let mut gw = Gateway::open_with(&config, "alloc", 0, &OPTIONS, true, counters.clone()).unwrap();
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let peer = {
        let (config, stop) = (config.clone(), stop.clone());
        std::thread::spawn(move || strategy(config, tx, stop))
    };
    rx.recv().unwrap();
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let kinds = [Kind::Text, Kind::Binary, Kind::Fix, Kind::HttpBody];
    let mut taken = 0usize;
    // (allocations publishing, allocations draining)
    let round = |gw: &mut Gateway, i: u64, taken: &mut usize| -> (usize, usize) {
        let len = (i as usize * 37) % (payload.len() + 1);
        let a = allocs();
        gw.publish(kinds[i as usize % 4], i, &payload[..len]);
        let b = allocs();
        if i % 32 == 0 {
            *taken += gw
                .drain(|kind, bytes| -> Result<_, ()> {
                    Ok(if kind == Some(Kind::Binary) && bytes == b"order-01" {
                        Ok(())
                    } else {
                        Err(Refusal::WrongKind {
                            kind,
                            takes: "order-01",
                        })
                    })
                })
                .unwrap();
        }
        (b - a, allocs() - b)
    };
    // Warm-up: the connections are set up and every chunk has been used once.
    for i in 1..=20_000 {
        round(&mut gw, i, &mut taken);
    }
    let (mut publishing, mut draining) = (0, 0);
    for i in 20_001..=20_000 + MESSAGES {
        let (p, d) = round(&mut gw, i, &mut taken);
        publishing += p;
        draining += d;
        if i % 1024 == 0 {
            // Give the strategy's thread time to keep up on a busy machine.
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen = peer.join().unwrap();
    assert_eq!(
        draining, 0,
        "allocations while taking the strategy's messages"
    );
    assert_eq!(
        publishing, 0,
        "allocations while publishing {MESSAGES} messages"
    );
    assert_eq!(gw.seq(), 20_000 + MESSAGES);
    let c = &counters;
    assert_eq!(c.published.load(Ordering::Relaxed), 20_000 + MESSAGES);
    assert_eq!(c.dropped.load(Ordering::Relaxed), 0);
    // Whatever the strategy could not keep up with was dropped for it and counted.
    let drops = c.subscriber_drops.load(Ordering::Relaxed);
    assert_eq!(
        seen + drops,
        20_000 + MESSAGES,
        "seen {seen} dropped {drops}"
    );
    assert!(taken > 0 && c.refused.load(Ordering::Relaxed) == 0);
    assert_eq!(c.sent.load(Ordering::Relaxed), taken as u64);
    drop(gw);
    // The strategy's node went last, so iceoryx2's per-prefix node counter stays; this prefix
    // is never used again.
    for e in std::fs::read_dir("/dev/shm").unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
