//! The EventStoreDB path end to end: catch-up throughput from devstore over gRPC (the official
//! `eventstore` client) into the `order-summary` wasm plugin and SQLite, then the latency from
//! an append to the row being committed, with events appended live at a steady rate.
//!
//! Run with `cargo bench -p projector-tests --bench esdb` (add `-- EVENTS ROUNDS LIVE_SECONDS
//! RATE` to change the defaults of 1000000 events, 3 catch-up rounds, 20 s, 1000 events/s).
//! devstore, the client, the pipeline and the plugin share one process and the machine's cores.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::pipeline::{BatchOptions, Settings, Status};
use projector::runtime::{Limits, Runtime};
use projector::source::EsdbSource;
use projector_tests::bench::{self, Running};
use projector_tests::latency::Probe;

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
    let (server, store) = bench::devstore().await?;
    let last = bench::load(&store, &bench::order_events(count)?, "0").await?;
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

/// order-summary over `store` in the background, on a fresh data directory `data`.
fn start(runtime: &Runtime, data: &Path, store: Arc<EsdbSource>) -> anyhow::Result<Running> {
    let projection = bench::order_summary(runtime, data)?;
    let settings = Settings::new(
        BatchOptions::default(),
        Limits::default().thread_stack_bytes,
    );
    Ok(Running::start(projection, store, settings))
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
