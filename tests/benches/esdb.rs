//! The EventStoreDB path end to end: catch-up throughput from devstore over gRPC (the official
//! `eventstore` client) into the `order-summary` wasm plugin and SQLite, then the latency from
//! an append to the row being committed, with events appended live at a steady rate.
//!
//! Run with `cargo bench -p projector-tests --bench esdb` (add `-- EVENTS ROUNDS LIVE_SECONDS
//! RATE` to change the defaults of 1000000 events, 3 catch-up rounds, 20 s, 1000 events/s).
//! devstore, the client, the pipeline and the plugin share one process and the machine's cores.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::pipeline::BatchOptions;
use projector::pipeline::{self, Settings, Status};
use projector::projection::{ErrorPolicy, Projection};
use projector::runtime::{Limits, Runtime};
use projector::source::EsdbSource;
use projector::store::DataDir;
use projector_tests::guests;
use projector_tests::latency::Probe;
use projector_tests::shop::{self, Payload};
use tokio::sync::oneshot;

/// Events per append call while loading the store.
const CHUNK: usize = 1000;

fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let count = args.first().copied().unwrap_or(1_000_000) as usize;
    let rounds = args.get(1).copied().unwrap_or(3);
    let live_seconds = args.get(2).copied().unwrap_or(20);
    let rate = args.get(3).copied().unwrap_or(1000);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(bench(count, rounds, live_seconds, rate))
}

async fn bench(count: usize, rounds: u64, live_seconds: u64, rate: u64) -> anyhow::Result<()> {
    let server = devstore::Server::start(devstore::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..devstore::Config::default()
    })
    .await?;
    let connection = format!("{}&discoveryInterval=0", server.connection_string());
    let store = Arc::new(EsdbSource::connect(&connection).await?);
    let last = load(&store, count).await?;
    let runtime = Runtime::new(Limits::default(), None)?;

    let mut rates = Vec::new();
    for round in 1..=rounds {
        let dir = tempfile::tempdir()?;
        let running = start(&runtime, &dir.path().join("data"), Arc::clone(&store))?;
        let started = Instant::now();
        running.wait_until(last).await;
        let rate = count as f64 / started.elapsed().as_secs_f64();
        println!("catch-up round {round}: {rate:>9.0} events/s");
        rates.push(rate);
        running.stop().await?;
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "catch-up median: {:.0} events/s over {count} events",
        rates[rates.len() / 2]
    );

    let dir = tempfile::tempdir()?;
    let running = start(&runtime, &dir.path().join("data"), Arc::clone(&store))?;
    running.wait_until(last).await;
    let mut latencies = live(&store, &running.status, live_seconds, rate).await?;
    running.stop().await?;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "live at {rate} events/s for {live_seconds} s: {} events, append-to-committed p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
    );
    server.shutdown().await?;
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Appends `count` order events in chunks and returns the position of the last.
async fn load(store: &EsdbSource, count: usize) -> anyhow::Result<i64> {
    let started = Instant::now();
    let generated = shop::generate_with(count * 2 + 100, 21, false);
    let events: Vec<(String, serde_json::Value)> = generated
        .into_iter()
        .filter(|e| e.stream.starts_with("order-"))
        .take(count)
        .map(|e| match e.data {
            Payload::Json(data) => (e.event_type, data),
            Payload::Garbage(_) => unreachable!("generated without malformed events"),
        })
        .collect();
    anyhow::ensure!(events.len() == count, "generated too few order events");
    let mut last = 0;
    for (index, chunk) in events.chunks(CHUNK).enumerate() {
        last = store
            .append(&format!("order-bulk-{index}"), chunk)
            .await?
            .commit as i64;
        if index % 100 == 99 {
            eprintln!("loaded {} of {count} events", (index + 1) * CHUNK);
        }
    }
    eprintln!(
        "loaded {count} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(last)
}

/// A pipeline running order-summary in the background.
struct Running {
    status: Status,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<pipeline::Outcome>>>,
}

fn start(runtime: &Runtime, data: &Path, store: Arc<EsdbSource>) -> anyhow::Result<Running> {
    let plugin = runtime.load(Path::new(guests::ORDER_SUMMARY))?;
    let files = DataDir::open(data)?.current_or_new(
        &plugin.manifest.name,
        &plugin.manifest.version,
        &plugin.sha256,
    )?;
    let projection = Projection::open(runtime, plugin, &files.db, ErrorPolicy::DeadLetter.into())?;
    let settings = Settings::new(
        BatchOptions::default(),
        Limits::default().thread_stack_bytes,
    );
    let status = settings.status.clone();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(pipeline::run(
        vec![projection],
        store,
        settings,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Running { status, stop, task })
}

impl Running {
    fn committed(&self) -> i64 {
        self.status
            .projections()
            .values()
            .next()
            .and_then(|s| s.checkpoint)
            .map_or(0, |p| p.commit as i64)
    }

    async fn wait_until(&self, position: i64) {
        while self.committed() < position {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        for outcome in self.task.await?? {
            anyhow::ensure!(outcome.error.is_none(), "{:?}", outcome.error);
        }
        Ok(())
    }
}

/// Appends one new order per tick at `rate` for `seconds` and measures, for each, the time
/// from just before the append to the commit of its position.
async fn live(
    store: &EsdbSource,
    status: &Status,
    seconds: u64,
    rate: u64,
) -> anyhow::Result<Vec<Duration>> {
    let probe = Probe::start(status, "order_summary");
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for index in 0..seconds * rate {
        ticks.tick().await;
        let order = format!("live-{index}");
        let data = serde_json::json!({
            "orderId": order, "customerId": format!("c{}", index % 40),
            "timestamp": "2026-11-27T00:00:00Z",
            "items": [{"sku": "SKU-1", "quantity": 1, "unitPriceCents": 100}],
        });
        let appended = Instant::now();
        let position = store
            .append(&format!("order-{order}"), &[("OrderCreated".into(), data)])
            .await?
            .commit as i64;
        probe.appended(position, appended);
    }
    Ok(probe.finish())
}
