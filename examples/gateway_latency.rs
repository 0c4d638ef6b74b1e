//! The gateway's shared-memory path alone, timed step by step: where appliance → strategy time
//! goes once the message is decoded (`scripts/bench-gateway-ipc.sh` runs it in several setups).
//!
//! The publisher (this process's main thread, as the appliance's IO thread) opens
//! `hotwire/lat/in` with the gateway's settings and, every `--interval-ns`, stamps
//! `CLOCK_MONOTONIC` (t0, in the header's `recv_ns`: where the appliance reads the clock), loans a
//! sample (t1), writes header and payload (t2) and sends it (t3). A strategy thread of its own
//! iceoryx2 node (`ipc::Service`, as `examples/strategy.rs`) polls `receive()` and stamps the
//! sample's arrival (t4), spinning or yielding its core when idle. Both are pinned (`--pub-core`,
//! `--sub-core`; the same core shares it). Output, one line, nanoseconds:
//! `gateway_latency … loan_p50=… write_p50=… send_p50=… deliver_p50=… total_p50=… total_p99=…`
//! where deliver is t3 → t4 (the subscriber's poll finding the sample) and total is t0 → t4.
//!
//! `--service ipc` publishes on iceoryx2's plain `ipc::Service` instead of the gateway's variant
//! (`hotwire::gateway::service::GatewayIpc`), to compare their loans (one `Rc` allocation each).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use iceoryx2::prelude::*;
use iceoryx2::service::Service;

use hotwire::gateway::service::GatewayIpc;
use hotwire::gateway::HotwireHeader;

#[derive(Parser, Debug, Clone)]
#[command(about = "The gateway's shared-memory path, timed step by step")]
struct Args {
    /// Messages to publish (the first 1,000 are warm-up, not recorded).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Payload bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Time between two messages (the publisher spins in between).
    #[arg(long, default_value_t = 10_000)]
    interval_ns: u64,
    /// The publisher's core.
    #[arg(long, default_value_t = 0)]
    pub_core: usize,
    /// The subscriber's core.
    #[arg(long, default_value_t = 1)]
    sub_core: usize,
    /// The subscriber yields its core when it found nothing (instead of spinning).
    #[arg(long)]
    yield_when_idle: bool,
    /// `gateway` (the gateway's service variant) or `ipc` (iceoryx2's `ipc::Service`).
    #[arg(long, default_value = "gateway")]
    service: String,
}

const WARM_UP: u64 = 1_000;
const NAME: &str = "hotwire/lat/in";

fn config() -> Config {
    let mut config = Config::default();
    let prefix = format!("hwlat{}_", std::process::id());
    config.global.prefix = FileName::new(prefix.as_bytes()).expect("a valid prefix");
    config
}

fn node<S: Service>(config: &Config) -> Result<Node<S>, Box<dyn std::error::Error>> {
    NodeBuilder::new()
        .config(config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<S>()
        .map_err(|e| format!("node: {e:?}").into())
}

/// ns since `base` (`CLOCK_MONOTONIC`, comparable across the two threads).
fn ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// The strategy: returns (seq, t4) of every sample.
fn subscriber(
    args: Args,
    config: Config,
    base: Instant,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<(u64, u64)>, String> {
    hotwire::cpu::pin_current(args.sub_core).map_err(|e| e.to_string())?;
    let node = node::<ipc::Service>(&config).map_err(|e| e.to_string())?;
    let name: ServiceName = NAME.try_into().map_err(|e| format!("{e:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let service = loop {
        match node
            .service_builder(&name)
            .publish_subscribe::<[u8]>()
            .user_header::<HotwireHeader>()
            .open()
        {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{e:?}")),
        }
    };
    let sub = service
        .subscriber_builder()
        .create()
        .map_err(|e| format!("{e:?}"))?;
    let mut got = Vec::with_capacity(args.messages as usize);
    ready.store(true, Ordering::Release);
    while !stop.load(Ordering::Relaxed) {
        match sub.receive() {
            Ok(Some(s)) => {
                let t4 = ns(base);
                got.push((s.user_header().seq, t4));
            }
            Ok(None) if args.yield_when_idle => std::thread::yield_now(),
            Ok(None) => std::hint::spin_loop(),
            Err(e) => return Err(format!("{e:?}")),
        }
    }
    Ok(got)
}

/// One message's stamps on the publisher: t0, t1, t2, t3.
type Stamps = [u64; 4];

fn publish<S: Service>(
    args: &Args,
    config: &Config,
    base: Instant,
    ready: &AtomicBool,
) -> Result<(Vec<Stamps>, Node<S>), Box<dyn std::error::Error>> {
    let node = node::<S>(config)?;
    let service = node
        .service_builder(&NAME.try_into()?)
        .publish_subscribe::<[u8]>()
        .user_header::<HotwireHeader>()
        .enable_safe_overflow(true)
        .subscriber_max_buffer_size(1024)
        .subscriber_max_borrowed_samples(2)
        .max_subscribers(hotwire::gateway::MAX_SUBSCRIBERS)
        .max_publishers(2)
        .open_or_create()
        .map_err(|e| format!("service: {e:?}"))?;
    let publisher = service
        .publisher_builder()
        .initial_max_slice_len(args.size)
        .allocation_strategy(AllocationStrategy::Static)
        .max_loaned_samples(1)
        .backpressure_strategy(BackpressureStrategy::DiscardData)
        .create()
        .map_err(|e| format!("publisher: {e:?}"))?;
    while !ready.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the subscriber's first receive connect it.
    std::thread::sleep(Duration::from_millis(50));
    let payload = vec![b'x'; args.size];
    let mut stamps = Vec::with_capacity(args.messages as usize);
    let mut next = ns(base);
    for seq in 1..=args.messages {
        while ns(base) < next {
            std::hint::spin_loop();
        }
        next += args.interval_ns;
        let t0 = ns(base);
        let mut sample = publisher
            .loan_slice_uninit(args.size)
            .map_err(|e| format!("loan: {e:?}"))?;
        let t1 = ns(base);
        *sample.user_header_mut() = HotwireHeader {
            recv_ns: t0,
            seq,
            endpoint: 0,
            kind: 2,
        };
        let sample = sample.write_from_slice(&payload);
        let t2 = ns(base);
        sample.send().map_err(|e| format!("send: {e:?}"))?;
        let t3 = ns(base);
        stamps.push([t0, t1, t2, t3]);
    }
    // The subscriber's last polls.
    std::thread::sleep(Duration::from_millis(50));
    Ok((stamps, node))
}

fn p(h: &Histogram<u64>, q: f64) -> u64 {
    h.value_at_quantile(q)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = config();
    let base = Instant::now();
    // The clock itself: two back-to-back reads.
    let mut clock = Histogram::<u64>::new(3)?;
    for _ in 0..10_000 {
        let a = ns(base);
        let b = ns(base);
        clock.record(b - a)?;
    }
    hotwire::cpu::pin_current(args.pub_core)?;
    let ready = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let strategy = {
        let (args, config, ready, stop) =
            (args.clone(), config.clone(), ready.clone(), stop.clone());
        std::thread::spawn(move || subscriber(args, config, base, ready, stop))
    };
    let (stamps, node) = match args.service.as_str() {
        "ipc" => {
            let (s, n) = publish::<ipc::Service>(&args, &config, base, &ready)?;
            (s, Box::new(n) as Box<dyn std::any::Any>)
        }
        _ => {
            let (s, n) = publish::<GatewayIpc>(&args, &config, base, &ready)?;
            (s, Box::new(n) as Box<dyn std::any::Any>)
        }
    };
    stop.store(true, Ordering::Relaxed);
    let got = strategy.join().map_err(|_| "the subscriber panicked")??;
    drop(node);
    // Nothing left in /dev/shm: both nodes are gone.
    hotwire::gateway::service::remove_node_counter_if_alone(&config);
    let mut h: Vec<Histogram<u64>> = (0..5)
        .map(|_| Histogram::new(3))
        .collect::<Result<_, _>>()?;
    let mut received = 0u64;
    for &(seq, t4) in &got {
        received += 1;
        if seq <= WARM_UP {
            continue;
        }
        let [t0, t1, t2, t3] = stamps[(seq - 1) as usize];
        for (i, v) in [t1 - t0, t2 - t1, t3 - t2, t4.saturating_sub(t3), t4 - t0]
            .into_iter()
            .enumerate()
        {
            h[i].record(v)?;
        }
    }
    println!(
        "gateway_latency service={} size={} sub={} pub_core={} sub_core={} n={} received={} \
         clock_p50={} loan_p50={} write_p50={} send_p50={} deliver_p50={} deliver_p99={} \
         total_p50={} total_p99={} total_p999={}",
        args.service,
        args.size,
        if args.yield_when_idle {
            "yield"
        } else {
            "spin"
        },
        args.pub_core,
        args.sub_core,
        h[4].len(),
        received,
        p(&clock, 0.5),
        p(&h[0], 0.5),
        p(&h[1], 0.5),
        p(&h[2], 0.5),
        p(&h[3], 0.5),
        p(&h[3], 0.99),
        p(&h[4], 0.5),
        p(&h[4], 0.99),
        p(&h[4], 0.999),
    );
    Ok(())
}
