//! Hot reload under live load, through the supervisor `projector run` uses, against in-process
//! devstore with events appended by the official client:
//!
//! 1. the plain catch-up rate of tally 2.0.0 on an empty data directory, under live load;
//! 2. the same module rebuilt as a shadow beside tally 1.0.0, which keeps serving under the same
//!    load: the rebuild's rate against (1), and the serving version's append-to-commit latency
//!    during the rebuild against before it;
//! 3. same-version swaps under live load: the projection's pause (the old module's last commit
//!    to the new module's first) and the time from the rename to the new module running, with
//!    the compile cache cold (bytes never seen) and warm (bytes compiled before).
//!
//! Run with `cargo bench -p projector-tests --bench reload` (add `-- EVENTS RATE SWAPS ROUNDS`
//! to change the defaults of 500000 events, 1000 events/s, 20 swaps, 3 catch-up rounds).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use projector::pipeline::{BatchOptions, ProjectionStatus, Settings, Status};
use projector::reload::WatchOptions;
use projector::runtime::{Limits, Runtime};
use projector::source::{EsdbSource, EventSource};
use projector::store::DataDir;
use projector::supervisor;
use projector_tests::guests;
use projector_tests::latency::{Probe, quantile_ms};
use projector_tests::modules::{deploy, rebuilt, sha256};
use tokio::sync::oneshot;

/// Events per append call while loading the store.
const CHUNK: usize = 1000;

fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(500_000);
    let rate = args.get(1).copied().unwrap_or(1000);
    let swaps = args.get(2).copied().unwrap_or(20) as usize;
    let rounds = args.get(3).copied().unwrap_or(3);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(bench(events, rate, swaps, rounds))
}

async fn bench(events: u64, rate: u64, swaps: usize, rounds: u64) -> anyhow::Result<()> {
    let (server, store) = projector_tests::bench::devstore().await?;
    let last = load(&store, events).await?;
    let v1 = std::fs::read(guests::TALLY_V1)?;
    let v2 = std::fs::read(guests::TALLY_V2)?;

    // 1. Plain catch-up of 2.0.0 under live load.
    let mut plain = Vec::new();
    for round in 1..=rounds {
        let dir = tempfile::tempdir()?;
        let host = Host::start(dir.path(), &store, &[("tally.wasm", &v2)]).await?;
        let live = Live::start(Arc::clone(&store), rate, None);
        // Timed from the projection's start, like the rebuild below (compiling is not in it).
        host.wait(|_| true).await;
        let started = Instant::now();
        host.wait(|s| s.checkpoint.is_some_and(|p| p.commit as i64 >= last))
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        let projected = host.tally().map_or(0, |s| s.projected + s.failed);
        let events_per_second = projected as f64 / elapsed;
        println!("plain catch-up round {round}: {events_per_second:>8.0} events/s");
        plain.push(events_per_second);
        live.stop().await?;
        host.stop().await?;
    }

    // 2. The same module as a shadow beside 1.0.0, which keeps serving.
    let mut shadow = Vec::new();
    let (mut before, mut during) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let dir = tempfile::tempdir()?;
        let host = Host::start(dir.path(), &store, &[("tally.wasm", &v1)]).await?;
        host.wait(|s| s.checkpoint.is_some_and(|p| p.commit as i64 >= last))
            .await;
        let probe = Arc::new(Probe::start(&host.status, "tally"));
        let live = Live::start(Arc::clone(&store), rate, Some(Arc::clone(&probe)));
        tokio::time::sleep(Duration::from_secs(10)).await;
        before.extend(probe.take());
        deploy(&host.plugins, "tally.wasm", &v2)?;
        host.wait(|s| s.rebuild.is_some()).await;
        let started = Instant::now();
        host.wait(|s| s.version.as_deref() == Some("2.0.0")).await;
        let elapsed = started.elapsed().as_secs_f64();
        during.extend(probe.take());
        let projected = host.tally().map_or(0, |s| s.projected + s.failed);
        let events_per_second = projected as f64 / elapsed;
        println!("shadow rebuild round {round}: {events_per_second:>8.0} events/s");
        shadow.push(events_per_second);
        live.stop().await?;
        host.stop().await?;
    }
    let (plain, shadow) = (median(&mut plain), median(&mut shadow));
    println!(
        "rebuild in the shadow: median {shadow:.0} events/s against {plain:.0} plain ({:.0}%)",
        100.0 * shadow / plain
    );
    println!(
        "serving version, append-to-commit at {rate} events/s: p50 {:.2} / p99 {:.2} ms without a \
         rebuild ({} events), p50 {:.2} / p99 {:.2} ms during one ({} events)",
        quantile_ms(&mut before, 0.5),
        quantile_ms(&mut before, 0.99),
        before.len(),
        quantile_ms(&mut during, 0.5),
        quantile_ms(&mut during, 0.99),
        during.len(),
    );

    // 3. Same-version swaps under live load.
    let dir = tempfile::tempdir()?;
    let host = Host::start(dir.path(), &store, &[("tally.wasm", &v2)]).await?;
    host.wait(|s| s.checkpoint.is_some_and(|p| p.commit as i64 >= last))
        .await;
    let live = Live::start(Arc::clone(&store), rate, None);
    let builds: Vec<Vec<u8>> = (0..5).map(|i| rebuilt(&v2, &format!("cold {i}"))).collect();
    let (mut cold, mut warm, mut pauses) = (Vec::new(), Vec::new(), Vec::new());
    for build in &builds {
        let (running, pause) = host.swap(build).await?;
        cold.push(running);
        pauses.push(pause);
    }
    for index in 0..swaps {
        // Alternating between two builds already compiled: the cache is warm.
        let (running, pause) = host.swap(&builds[3 + index % 2]).await?;
        warm.push(running);
        pauses.push(pause);
    }
    live.stop().await?;
    host.stop().await?;
    println!(
        "rename to running ({} ms debounce included): cache cold median {:.1} ms ({} swaps), warm median {:.1} ms / p99 {:.1} ms ({} swaps)",
        WatchOptions::default().debounce.as_millis(),
        quantile_ms(&mut cold, 0.5),
        cold.len(),
        quantile_ms(&mut warm, 0.5),
        quantile_ms(&mut warm, 0.99),
        warm.len()
    );
    println!(
        "pause at a swap under {rate} events/s (last commit of the old module to the first of the new): median {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} swaps",
        quantile_ms(&mut pauses, 0.5),
        quantile_ms(&mut pauses, 0.99),
        quantile_ms(&mut pauses, 1.0),
        pauses.len()
    );
    server.shutdown().await?;
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// Appends `count` tally events (types A, B, C) in chunks; returns the last position.
async fn load(store: &EsdbSource, count: u64) -> anyhow::Result<i64> {
    let started = Instant::now();
    let mut last = 0;
    let mut index = 0u64;
    while index < count {
        let chunk: Vec<(String, serde_json::Value)> = (index..(index + CHUNK as u64).min(count))
            .map(|i| {
                let event_type = ["A", "B", "C"][(i % 3) as usize].to_string();
                (event_type, serde_json::json!({ "n": i }))
            })
            .collect();
        index += chunk.len() as u64;
        last = store
            .append(&format!("tally-bulk-{}", index / CHUNK as u64), &chunk)
            .await?
            .commit as i64;
    }
    eprintln!(
        "loaded {count} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(last)
}

/// A supervisor running the plugins of `<dir>/plugins` into `<dir>/data`, as `projector run`
/// does.
struct Host {
    status: Status,
    plugins: PathBuf,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<projector::pipeline::Outcome>>>,
}

impl Host {
    async fn start(
        dir: &Path,
        store: &Arc<EsdbSource>,
        plugins: &[(&str, &[u8])],
    ) -> anyhow::Result<Host> {
        let plugins_dir = dir.join("plugins");
        std::fs::create_dir_all(&plugins_dir)?;
        for (name, wasm) in plugins {
            deploy(&plugins_dir, name, wasm)?;
        }
        let data = DataDir::open(&dir.join("data"))?;
        let limits = Limits::default();
        let runtime = Runtime::new(limits.clone(), Some(&data.compile_cache()))?;
        let settings = Settings::new(BatchOptions::default(), limits.thread_stack_bytes);
        let status = settings.status.clone();
        let options = supervisor::Options {
            plugins_dir: plugins_dir.clone(),
            watch: WatchOptions::default(),
            keep_versions: 2,
            failures: Default::default(),
            retry_dead_letters: true,
        };
        let (stop, stopped) = oneshot::channel();
        let source: Arc<dyn EventSource> = Arc::clone(store) as Arc<dyn EventSource>;
        let task = tokio::spawn(supervisor::run(
            data,
            runtime,
            source,
            settings,
            options,
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Host {
            status,
            plugins: plugins_dir,
            stop,
            task,
        })
    }

    fn tally(&self) -> Option<ProjectionStatus> {
        self.status.projections().remove("tally")
    }

    /// Waits until tally's status satisfies `ready`.
    async fn wait(&self, ready: impl Fn(&ProjectionStatus) -> bool) {
        while !self.tally().is_some_and(|s| ready(&s)) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Deploys `wasm` over tally (same version, other bytes); returns the time from the rename
    /// to the new module running, and the projection's pause at the swap.
    async fn swap(&self, wasm: &[u8]) -> anyhow::Result<(Duration, Duration)> {
        let sha = sha256(wasm);
        let previous = self.tally().and_then(|s| s.last_swap_pause);
        let renamed = Instant::now();
        deploy(&self.plugins, "tally.wasm", wasm)?;
        self.wait(|s| s.sha256.as_deref() == Some(sha.as_str()))
            .await;
        let running = renamed.elapsed();
        self.wait(|s| s.last_swap_pause.is_some() && s.last_swap_pause != previous)
            .await;
        let pause = self
            .tally()
            .and_then(|s| s.last_swap_pause)
            .expect("a pause");
        // Let the projection settle before the next swap.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok((running, pause))
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        for outcome in self.task.await?? {
            anyhow::ensure!(outcome.error.is_none(), "{:?}", outcome.error);
        }
        Ok(())
    }
}

/// Events appended at a steady rate until stopped, each noted on a probe if there is one.
struct Live {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Live {
    fn start(store: Arc<EsdbSource>, rate: u64, probe: Option<Arc<Probe>>) -> Live {
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut index = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    ticks.tick().await;
                    let event_type = ["A", "B", "C"][(index % 3) as usize].to_string();
                    let appended = Instant::now();
                    let position = store
                        .append(
                            &format!("tally-live-{}", index % 50),
                            &[(event_type, serde_json::json!({ "n": index }))],
                        )
                        .await?
                        .commit as i64;
                    if let Some(probe) = &probe {
                        probe.appended(position, appended);
                    }
                    index += 1;
                }
                anyhow::Ok(())
            })
        };
        Live { stop, task }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await?
    }
}
