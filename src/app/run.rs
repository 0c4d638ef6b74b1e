//! `hotwire run`: everything the configuration describes, until a signal or `--duration`.
//!
//! One IO thread per `[[thread]]`, pinned to its core, each with its own IoService over the
//! configured selector. The main thread prints a stats line at most once per `stats.interval` and,
//! at the end, a report with latency percentiles per endpoint (and `--json FILE`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::endpoints::{figures, prepare, AppEndpoint, Prepared};
use super::net::NetPlan;
use super::signals;
use super::stats::{human_ns, human_rate, LatencyRecorder, Percentiles};
use crate::config::{Config, ThreadConfig};
use crate::select::AnySelector;
use crate::service::{EndpointId, IoService, Mixed, MixedTarget};

/// `hotwire run` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(default_value = "config/hotwire.toml")]
    pub config: PathBuf,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Also write the final report as JSON to this file (overrides `stats.json`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// At the end, write one latency-percentile plot per endpoint with data (`DIR/<name>.svg`).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

/// The final figures of one endpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndpointReport {
    /// Endpoint name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Data messages received.
    pub messages: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Connections established.
    pub connects: u64,
    /// Established connections lost.
    pub reconnects: u64,
    /// Receive time minus the venue's embedded send time (ns).
    pub latency_ns: Option<Percentiles>,
    /// Ping round trips (ns).
    pub round_trip_ns: Option<Percentiles>,
    /// The whole one-way latency histogram (for plots).
    #[serde(skip)]
    pub latency_hist: Option<LatencyRecorder>,
    /// The whole round-trip histogram (for plots).
    #[serde(skip)]
    pub round_trip_hist: Option<LatencyRecorder>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Seconds the run lasted.
    pub seconds: f64,
    /// Per endpoint, in configuration order.
    pub endpoints: Vec<EndpointReport>,
}

struct ThreadResult {
    reports: Vec<(usize, EndpointReport)>,
}

/// Runs `hotwire run`.
pub fn run(args: &RunArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hotwire run: {e}");
            return ExitCode::from(2);
        }
    };
    let duration = match args
        .duration
        .map(|d| super::seconds_arg("--duration", d))
        .transpose()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hotwire run: {e}");
            return ExitCode::from(2);
        }
    };
    match run_config(&config, duration, true) {
        Ok(report) => {
            print_report(&report);
            let json = args.json.clone().or_else(|| config.stats.json.clone());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report).unwrap_or_default();
                if let Err(e) = std::fs::write(&path, text + "\n") {
                    eprintln!("hotwire run: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if let Some(dir) = &args.plot {
                if let Err(e) = write_plots(&report, dir) {
                    eprintln!("hotwire run: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hotwire run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `config` until SIGINT/SIGTERM or `duration`, printing the live stats line when `live`.
pub fn run_config(config: &Config, duration: Option<Duration>, live: bool) -> io::Result<Report> {
    signals::install();
    let metrics_listener = metrics_bind(config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let host = crate::cpu::HostCpus::read();
    // Each IO thread says whether it started (pinned, network up, endpoints built) before the run
    // goes on: a thread that cannot pin is a startup error, not a silent slow thread.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut counters = Vec::new();
    #[cfg(feature = "metrics")]
    let mut sources = Vec::new();
    let mut threads = Vec::new();
    let running: Vec<&ThreadConfig> = config
        .threads
        .iter()
        .filter(|t| config.endpoints.iter().any(|e| e.thread == t.name))
        .collect();
    let plan = NetPlan::prepare(&config.network, &running)?;
    for thread in &config.threads {
        let mut feeds = Vec::new();
        for (index, e) in config.endpoints.iter().enumerate() {
            if e.thread == thread.name {
                let prepared = prepare(index, e)?;
                counters.push((e.name.clone(), prepared.counters.clone()));
                #[cfg(feature = "metrics")]
                sources.push(super::metrics::Source::new(e, prepared.counters.clone()));
                feeds.push(prepared);
            }
        }
        if feeds.is_empty() {
            continue;
        }
        if let Some(core) = thread.core {
            if !host.isolated.contains(&core) {
                log::warn!(
                    "thread {:?}: core {core} is not isolated; expect scheduler jitter",
                    thread.name
                );
            }
        }
        let (t, stop, started) = (thread.clone(), stop.clone(), started_tx.clone());
        // Each AF_XDP thread opens its own socket on its own queue under the shared program.
        let plan = plan.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("hw-{}", thread.name))
                .spawn(move || io_thread(&t, &plan, feeds, &stop, &started))?,
        );
    }
    drop(started_tx);
    let mut startup_error = None;
    for _ in 0..threads.len() {
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                startup_error.get_or_insert(e);
            }
            // A thread that ended without a word panicked or returned early: join says which.
            Err(_) => break,
        }
    }
    if let Some(e) = startup_error {
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        return Err(io::Error::other(e));
    }

    let start = Instant::now();
    #[cfg(feature = "metrics")]
    let _metrics = match metrics_listener {
        Some(l) => Some(super::metrics::MetricsServer::spawn(
            l,
            super::metrics::registry(sources, start),
        )?),
        None => None,
    };
    #[cfg(not(feature = "metrics"))]
    drop(metrics_listener);
    let mut last = start;
    let mut last_counts: Vec<(u64, u64)> = vec![(0, 0); counters.len()];
    while !signals::terminated() && duration.is_none_or(|d| start.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(20));
        if threads.iter().all(|t| t.is_finished()) {
            break;
        }
        if live && last.elapsed() >= config.stats.interval {
            let secs = last.elapsed().as_secs_f64();
            last = Instant::now();
            let mut line = String::new();
            for ((name, c), prev) in counters.iter().zip(last_counts.iter_mut()) {
                let (m, b) = (
                    c.messages.load(Ordering::Relaxed),
                    c.bytes.load(Ordering::Relaxed),
                );
                line.push_str(&format!(
                    "{name} {} {} msg/s {}B/s rc={} | ",
                    if c.is_up() { "up" } else { "down" },
                    human_rate((m - prev.0) as f64 / secs),
                    human_rate((b - prev.1) as f64 / secs),
                    c.reconnects.load(Ordering::Relaxed)
                ));
                *prev = (m, b);
            }
            println!(
                "[{:>6.1}s] {}",
                start.elapsed().as_secs_f64(),
                line.trim_end_matches(" | ")
            );
            let _ = io::stdout().flush();
        }
    }
    // Rates are over the running time, not the shutdown drain.
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut reports = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(r)) => reports.extend(r.reports),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("an IO thread panicked")),
        }
    }
    reports.sort_by_key(|(i, _)| *i);
    Ok(Report {
        seconds,
        endpoints: reports.into_iter().map(|(_, r)| r).collect(),
    })
}

/// `--plot DIR`: one SVG per endpoint with samples.
#[cfg(feature = "plot")]
fn write_plots(report: &Report, dir: &std::path::Path) -> io::Result<()> {
    for e in &report.endpoints {
        let mut series = Vec::new();
        if let Some(h) = &e.latency_hist {
            series.push(("one-way latency", h));
        }
        if let Some(h) = &e.round_trip_hist {
            series.push(("round trip", h));
        }
        if let Some(path) = super::plot::write_plot(dir, &e.name, &series)? {
            println!("plot: {}", path.display());
        }
    }
    Ok(())
}

/// Without the `plot` feature `--plot` is an error, not silently ignored.
#[cfg(not(feature = "plot"))]
fn write_plots(_: &Report, _: &std::path::Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--plot needs hotwire built with the `plot` cargo feature",
    ))
}

/// Binds `[metrics] listen`, if configured, before any IO thread starts.
#[cfg(feature = "metrics")]
fn metrics_bind(config: &Config) -> io::Result<Option<std::net::TcpListener>> {
    config
        .metrics
        .as_ref()
        .map(|m| super::metrics::bind(m.listen))
        .transpose()
}

/// Without the `metrics` feature a `[metrics]` section is an error, not silently ignored.
#[cfg(not(feature = "metrics"))]
fn metrics_bind(config: &Config) -> io::Result<Option<std::net::TcpListener>> {
    match config.metrics {
        Some(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "[metrics] needs hotwire built with the `metrics` cargo feature",
        )),
        None => Ok(None),
    }
}

fn io_thread(
    thread: &ThreadConfig,
    plan: &NetPlan,
    prepared: Vec<Prepared>,
    stop: &AtomicBool,
    started: &std::sync::mpsc::Sender<Result<(), String>>,
) -> io::Result<ThreadResult> {
    let setup = || -> io::Result<_> {
        if let Some(core) = thread.core {
            crate::cpu::pin_current(core)
                .map_err(|e| io::Error::new(e.kind(), format!("thread {:?}: {e}", thread.name)))?;
        }
        let affinity = crate::cpu::current_affinity()?;
        log::info!(
            "thread {:?}: runs on cpu {} (affinity read back)",
            thread.name,
            crate::cpu::format_cpu_list(&affinity)
        );
        let net = plan.open(thread)?;
        log::info!("thread {:?}: network path {}", thread.name, net.name());
        let (selector, timeout) = net.selector(thread.selector)?;
        let mut service: IoService<AnySelector, AppEndpoint> =
            IoService::new(selector).with_poll_timeout(timeout);
        let mut ids: Vec<(usize, String, String, EndpointId)> = Vec::new();
        for p in prepared {
            let (index, name, url) = (p.index, p.config.name.clone(), p.config.url.clone());
            ids.push((index, name, url, service.register(p.build(&net)?)));
        }
        Ok((service, ids, net))
    };
    let (mut service, ids, net) = match setup() {
        Ok(s) => {
            let _ = started.send(Ok(()));
            s
        }
        Err(e) => {
            let _ = started.send(Err(e.to_string()));
            return Err(e);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        service.poll(&mut ())?;
    }
    // Orderly shutdown: no more reconnects; WebSocket close frames and FIX Logouts, then a short
    // drain for the replies (HTTP connections just close).
    for (_, _, _, id) in &ids {
        service.policy_mut(*id).reconnect = false;
        match service.connection_mut(*id) {
            Some((MixedTarget::A(ws), Mixed::A(feed))) => feed.shut_down(ws),
            #[cfg(feature = "fix")]
            Some((_, Mixed::B(Mixed::B(fix)))) => fix.handler_mut().shut_down(),
            _ => {}
        }
    }
    let drain_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < drain_until
        && ids
            .iter()
            .any(|(_, _, _, id)| service.state(*id) == crate::service::EndpointState::Established)
    {
        service.poll(&mut ())?;
    }
    if let (Some(summary), Some(x)) = (net.xdp_summary(), &thread.xdp) {
        log::info!(
            "thread {:?}: AF_XDP queue {}: {summary}",
            thread.name,
            x.queue
        );
    }
    let reports = ids
        .into_iter()
        .map(|(index, name, url, id)| {
            let f = figures(service.endpoint(id));
            let c = f.counters;
            (
                index,
                EndpointReport {
                    name,
                    url,
                    messages: c.messages.load(Ordering::Relaxed),
                    bytes: c.bytes.load(Ordering::Relaxed),
                    connects: service.stats(id).connects,
                    reconnects: c.reconnects.load(Ordering::Relaxed),
                    latency_ns: f.latency.and_then(|l| l.percentiles()),
                    round_trip_ns: f.round_trip.and_then(|l| l.percentiles()),
                    latency_hist: f.latency.cloned(),
                    round_trip_hist: f.round_trip.cloned(),
                },
            )
        })
        .collect();
    Ok(ThreadResult { reports })
}

fn percentile_line(p: &Option<Percentiles>) -> String {
    match p {
        None => "-".to_owned(),
        Some(p) => format!(
            "p50 {} p90 {} p99 {} p99.9 {} max {} (n={})",
            human_ns(p.p50),
            human_ns(p.p90),
            human_ns(p.p99),
            human_ns(p.p999),
            human_ns(p.max),
            p.count
        ),
    }
}

/// Prints the final report.
pub fn print_report(report: &Report) {
    println!("== hotwire report ({:.1}s)", report.seconds);
    for e in &report.endpoints {
        println!(
            "{}  {}\n  messages {}  bytes {}  rate {} msg/s  connects {}  reconnects {}\n  latency    {}\n  round trip {}",
            e.name,
            e.url,
            e.messages,
            e.bytes,
            human_rate(e.messages as f64 / report.seconds.max(1e-9)),
            e.connects,
            e.reconnects,
            percentile_line(&e.latency_ns),
            percentile_line(&e.round_trip_ns),
        );
    }
}
