//! The operations surface under load: API queries per second (a point lookup, and an aggregate
//! over 100,000 rows) while a projection writes, the write throughput that query load costs,
//! and what scraping `/metrics` every second costs a catch-up.
//!
//! Run with `cargo bench -p projector-tests --bench api` (add `-- BASE EXTRA ROUNDS CLIENTS`
//! to change the defaults: 300000 events for the queried table, 150000 more for the catch-up
//! measured, 3 rounds, 2 query clients).
//!
//! One process: devstore (in memory), the pipeline with `order_summary.wasm`, the API on
//! loopback, and the clients (blocking threads speaking HTTP/1.1, one connection per request).
//! The base is projected once and copied for every round, so each round catches up the same
//! EXTRA events from the same table. Each round runs every variant, in an order rotated from
//! round to round: no load, point lookups, aggregates, `/metrics` every second.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use projector::api::{Api, ApiSettings, Served};
use projector::pipeline::{self, BatchOptions, Settings, Tail};
use projector::runtime::{Limits, Runtime};
use projector::source::{EsdbSource, EventSource};
use projector::store::Reader;
use projector_tests::bench;
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Load {
    None,
    Point,
    Aggregate,
    Scrape,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let base = args.first().copied().unwrap_or(300_000) as usize;
    let extra = args.get(1).copied().unwrap_or(150_000) as usize;
    let rounds = args.get(2).copied().unwrap_or(3) as usize;
    let clients = args.get(3).copied().unwrap_or(2) as usize;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(bench(base, extra, rounds, clients))
}

async fn bench(base: usize, extra: usize, rounds: usize, clients: usize) -> anyhow::Result<()> {
    let (server, store) = bench::devstore().await?;
    let events = bench::order_events(base + extra)?;
    let base_last = bench::load(&store, &events[..base], "0").await?;
    let runtime = Runtime::new(Limits::default(), None)?;

    // The queried table: the base projected once.
    let prepared = tempfile::tempdir()?;
    let base_dir = prepared.path().join("base");
    let running = start(&runtime, &base_dir, Arc::clone(&store), false).await?;
    running.wait_until(base_last).await;
    running.stop().await?;
    let reader = Reader::open(&base_dir)?;
    let rows = reader
        .query("SELECT count(*) FROM order_summary.orders")?
        .rows[0][0]
        .clone();
    let ids: Vec<String> = reader
        .query("SELECT order_id FROM order_summary.orders ORDER BY random() LIMIT 1000")?
        .rows
        .into_iter()
        .map(|row| match &row[0] {
            projector::value::Value::Text(id) => id.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    eprintln!("base: {base} events, {rows:?} orders");
    let last = bench::load(&store, &events[base..], "1").await?;

    // The queries alone, on the base table with nothing writing: what the load costs them.
    let mut idle = Vec::new();
    for load in [Load::Point, Load::Aggregate] {
        let dir = tempfile::tempdir()?;
        copy_dir(&base_dir, &dir.path().join("data"))?;
        let (api, stop_api) =
            serve(&runtime, &dir.path().join("data"), None, Default::default()).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = spawn_clients(load, clients, api.local_addr, &ids, &stop, &done);
        let window = Duration::from_secs(5);
        tokio::time::sleep(window).await;
        let queries = done.load(Ordering::Relaxed) as f64 / window.as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for thread in threads {
            thread.join().expect("client")?;
        }
        let _ = stop_api.send(());
        api.stopped().await;
        println!("{load:?} with nothing writing: {queries:.1} requests/s on {rows:?} orders");
        idle.push((load, queries));
    }

    let variants = [Load::None, Load::Point, Load::Aggregate, Load::Scrape];
    let mut results: Vec<(Load, f64, f64)> = Vec::new();
    for round in 0..rounds {
        for offset in 0..variants.len() {
            let load = variants[(round + offset) % variants.len()];
            let dir = tempfile::tempdir()?;
            copy_dir(&base_dir, &dir.path().join("data"))?;
            let running =
                start(&runtime, &dir.path().join("data"), Arc::clone(&store), true).await?;
            let api = running.api.expect("served");
            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicU64::new(0));
            let threads = spawn_clients(load, clients, api, &ids, &stop, &done);
            let started = Instant::now();
            running.wait_until(last).await;
            let took = started.elapsed().as_secs_f64();
            let queries = done.load(Ordering::Relaxed) as f64 / took;
            stop.store(true, Ordering::Relaxed);
            for thread in threads {
                thread.join().expect("client")?;
            }
            running.stop().await?;
            if round == 0 && offset == 0 {
                let rows = Reader::open(&dir.path().join("data"))?
                    .query("SELECT count(*) FROM order_summary.orders")?
                    .rows[0][0]
                    .clone();
                eprintln!("after the catch-up: {rows:?} orders");
            }
            let written = extra as f64 / took;
            println!(
                "round {} {load:?}: catch-up {written:>8.0} events/s, {queries:>7.1} requests/s",
                round + 1
            );
            results.push((load, written, queries));
        }
    }
    let median = |load: Load, pick: fn(&(Load, f64, f64)) -> f64| {
        let mut values: Vec<f64> = results.iter().filter(|r| r.0 == load).map(pick).collect();
        values.sort_by(|a, b| a.total_cmp(b));
        values[values.len() / 2]
    };
    let quiet = median(Load::None, |r| r.1);
    println!(
        "\nmedians over {rounds} rounds, {extra} events caught up on top of {rows:?} orders, {clients} query clients:"
    );
    for load in variants {
        let written = median(load, |r| r.1);
        println!(
            "{load:?}: catch-up {written:.0} events/s ({:.2} of no load), {:.1} requests/s",
            written / quiet,
            median(load, |r| r.2)
        );
    }
    server.shutdown().await?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The query clients of `load`, counting answered requests in `done` until `stop`.
fn spawn_clients(
    load: Load,
    clients: usize,
    api: SocketAddr,
    ids: &[String],
    stop: &Arc<AtomicBool>,
    done: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<anyhow::Result<()>>> {
    let paths: Vec<String> = match load {
        Load::None => return Vec::new(),
        Load::Point => ids
            .iter()
            .map(|id| {
                format!("/api/query?sql=SELECT%20*%20FROM%20order_summary.orders%20WHERE%20order_id%20%3D%20%27{id}%27")
            })
            .collect(),
        Load::Aggregate => vec![
            "/api/query?sql=SELECT%20status%2C%20count(*)%20AS%20n%2C%20sum(total_cents)%20AS%20cents%20FROM%20order_summary.orders%20GROUP%20BY%20status".to_string(),
        ],
        Load::Scrape => vec!["/metrics".to_string()],
    };
    let (clients, pause) = match load {
        Load::Scrape => (1, Duration::from_secs(1)),
        _ => (clients, Duration::ZERO),
    };
    (0..clients)
        .map(|client| {
            let (paths, stop, done) = (paths.clone(), Arc::clone(stop), Arc::clone(done));
            std::thread::spawn(move || {
                let mut next = client;
                while !stop.load(Ordering::Relaxed) {
                    let path = &paths[next % paths.len()];
                    next += clients;
                    let status = get(api, path)?;
                    anyhow::ensure!(status == 200, "{path}: HTTP {status}");
                    done.fetch_add(1, Ordering::Relaxed);
                    if !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                }
                Ok(())
            })
        })
        .collect()
}

/// One GET: its status code, the body read to the end.
fn get(api: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = std::net::TcpStream::connect(api)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response[..response.len().min(16)]).into_owned();
    Ok(head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// order-summary running on `data`, and the API over it when `with_api`.
struct Running {
    run: bench::Running,
    api: Option<SocketAddr>,
    served: Option<(Api, oneshot::Sender<()>)>,
}

async fn start(
    runtime: &Runtime,
    data: &Path,
    store: Arc<EsdbSource>,
    with_api: bool,
) -> anyhow::Result<Running> {
    let projection = bench::order_summary(runtime, data)?;
    let settings = Settings::new(
        BatchOptions::default(),
        Limits::default().thread_stack_bytes,
    );
    let served = if with_api {
        let source: Arc<dyn EventSource> = store.clone();
        let board = (settings.status.clone(), settings.metrics.clone());
        Some(serve(runtime, data, Some(source), board).await?)
    } else {
        None
    };
    Ok(Running {
        run: bench::Running::start(projection, store, settings),
        api: served.as_ref().map(|(api, _)| api.local_addr),
        served,
    })
}

/// The API over `data`, with the status board and metrics of a pipeline (or fresh ones).
async fn serve(
    runtime: &Runtime,
    data: &Path,
    source: Option<Arc<dyn EventSource>>,
    (status, metrics): (pipeline::Status, projector::metrics::Metrics),
) -> anyhow::Result<(Api, oneshot::Sender<()>)> {
    let (stop, stopping) = oneshot::channel::<()>();
    let api = Api::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Served {
            data_dir: data.to_path_buf(),
            status,
            tail: source
                .as_ref()
                .map(|source| Tail::start(Arc::clone(source), Default::default())),
            metrics,
            operator: None,
            runtime: Some(runtime.clone()),
            source,
            alerts: None,
        },
        ApiSettings::default(),
        async move {
            let _ = stopping.await;
        },
    )
    .await?;
    Ok((api, stop))
}

impl Running {
    async fn wait_until(&self, position: i64) {
        self.run.wait_until(position).await;
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.run.stop().await?;
        if let Some((api, stop)) = self.served {
            let _ = stop.send(());
            api.stopped().await;
        }
        Ok(())
    }
}
