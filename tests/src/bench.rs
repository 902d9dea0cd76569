//! What the benchmarks share: devstore in memory with a client of it, the shop's order events
//! loaded into it, and order-summary projecting in the background until asked to stop.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::event::RecordedEvent;
use projector::pipeline::{self, BatchOptions, Settings, Status};
use projector::projection::{ErrorPolicy, Projection};
use projector::runtime::Runtime;
use projector::source::{EsdbSource, EventSource, MemorySource};
use projector::store::DataDir;
use tokio::sync::oneshot;

use crate::guests;
use crate::shop::{self, Payload};

/// Events per append call while loading the store.
const CHUNK: usize = 1000;

/// devstore in memory on a free loopback port, and a source connected to it.
pub async fn devstore() -> anyhow::Result<(devstore::Server, Arc<EsdbSource>)> {
    let server = devstore::Server::start(devstore::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..devstore::Config::default()
    })
    .await?;
    // A fresh client waits one discovery interval (500 ms by default) before its first call.
    let connection = format!("{}&discoveryInterval=0", server.connection_string());
    let store = Arc::new(EsdbSource::connect(&connection).await?);
    Ok((server, store))
}

/// The first `count` order events of the shop generator (seed 21, nothing malformed).
pub fn order_events(count: usize) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let events: Vec<(String, serde_json::Value)> = shop::generate_with(count * 2 + 100, 21, false)
        .into_iter()
        .filter(|e| e.stream.starts_with("order-"))
        .take(count)
        .map(|e| match e.data {
            Payload::Json(data) => (e.event_type, data),
            Payload::Garbage(_) => unreachable!("generated without malformed events"),
        })
        .collect();
    anyhow::ensure!(events.len() == count, "generated too few order events");
    Ok(events)
}

/// Appends `events` in chunks of 1,000 to streams named `order-bulk-<part>-<n>`, saying how far
/// it is now and then; the position of the last.
pub async fn load(
    store: &EsdbSource,
    events: &[(String, serde_json::Value)],
    part: &str,
) -> anyhow::Result<i64> {
    let started = Instant::now();
    let mut last = 0;
    for (index, chunk) in events.chunks(CHUNK).enumerate() {
        last = store
            .append(&format!("order-bulk-{part}-{index}"), chunk)
            .await?
            .commit as i64;
        if index % 100 == 99 {
            eprintln!("loaded {} of {} events", (index + 1) * CHUNK, events.len());
        }
    }
    eprintln!(
        "loaded {} events in {:.1} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(last)
}

/// order-summary on the data directory `data` (its current version, or a new one).
pub fn order_summary(runtime: &Runtime, data: &Path) -> anyhow::Result<Projection> {
    projection_of(runtime, Path::new(guests::ORDER_SUMMARY), data)
}

/// The plugin at `wasm`, loaded and opened in a fresh database under `data`.
pub fn projection_of(runtime: &Runtime, wasm: &Path, data: &Path) -> anyhow::Result<Projection> {
    let plugin = runtime.load(wasm)?;
    let files = DataDir::open(data)?.current_or_new(
        &plugin.manifest.name,
        &plugin.manifest.version,
        &plugin.sha256,
    )?;
    Projection::open(runtime, plugin, &files.db, ErrorPolicy::DeadLetter.into())
}

/// Up to `count` well-formed order events of the shop generator (seed 3) as a source yields
/// them: the in-memory pipeline benchmarks' input, so every path and every language does the
/// same work.
pub fn recorded_order_events(count: usize) -> anyhow::Result<Vec<RecordedEvent>> {
    let all = projector::source::parse_jsonl(&shop::to_jsonl(&shop::generate_with(
        count * 4 / 3,
        3,
        false,
    )))?;
    Ok(all
        .into_iter()
        .filter(|e| e.stream_id.starts_with("order-"))
        .take(count)
        .collect())
}

/// Runs `projection` over `events` from memory through the whole pipeline (source task,
/// batcher, channel, projection thread, wasm, SQLite) in batches of at most `batch`, and
/// returns the events per second it projected; fails if any event failed.
pub async fn pipeline_rate(
    projection: Projection,
    events: &[RecordedEvent],
    batch: usize,
) -> anyhow::Result<f64> {
    let source = Arc::new(MemorySource::new("memory", events.to_vec()));
    let options = BatchOptions {
        max_events: batch,
        ..BatchOptions::default()
    };
    let started = Instant::now();
    let settings = Settings::new(options, 8 << 20);
    let outcomes =
        pipeline::run(vec![projection], source, settings, std::future::pending()).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let outcome = &outcomes[0];
    anyhow::ensure!(
        outcome.error.is_none(),
        "the run failed: {:?}",
        outcome.error
    );
    anyhow::ensure!(outcome.failed == 0, "{} events failed", outcome.failed);
    Ok(outcome.projected as f64 / elapsed)
}

/// One projection running in the background.
pub struct Running {
    /// Its status board.
    pub status: Status,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<pipeline::Outcome>>>,
}

impl Running {
    /// Runs `projection` over `source` with `settings` until stopped.
    pub fn start(
        projection: Projection,
        source: Arc<dyn EventSource>,
        settings: Settings,
    ) -> Running {
        let status = settings.status.clone();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(pipeline::run(
            vec![projection],
            source,
            settings,
            async move {
                let _ = stopped.await;
            },
        ));
        Running { status, stop, task }
    }

    /// Its committed position (0 before the first commit).
    pub fn committed(&self) -> i64 {
        self.status
            .projections()
            .values()
            .next()
            .and_then(|s| s.checkpoint)
            .map_or(0, |p| p.commit as i64)
    }

    /// Waits until it has committed `position`.
    pub async fn wait_until(&self, position: i64) {
        while self.committed() < position {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops it after the batch in flight; an error if it had stopped on one.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        for outcome in self.task.await?? {
            anyhow::ensure!(outcome.error.is_none(), "{:?}", outcome.error);
        }
        Ok(())
    }
}
