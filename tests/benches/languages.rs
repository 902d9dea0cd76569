//! The `order_summary` plugin in each language (Rust, Python, JavaScript) through the same
//! pipeline as `pipeline.rs` (in-memory source, batcher, projection thread, wasm, SQLite), side
//! by side: the languages alternate within each round, so machine noise hits them alike. Also
//! each component's size, compile time (no cache) and cached load time.
//!
//!     plugins/python/build.sh order_summary && plugins/js/build.sh order-summary
//!     cargo bench -p projector-tests --bench languages [-- EVENTS ROUNDS]
//!
//! Defaults: 100000 events, 5 rounds; medians are printed. A build that is missing is skipped
//! with a line saying how to make it. docs/BENCHMARKS.md records the figures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use projector::runtime::{Limits, Runtime};
use projector_tests::{bench, guests};

const BATCH: usize = 500;
/// Cached loads timed per language; the median is reported.
const LOADS: usize = 7;

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let count = args.first().copied().unwrap_or(100_000);
    let rounds = args.get(1).copied().unwrap_or(5);
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut builds = vec![("Rust", PathBuf::from(guests::ORDER_SUMMARY))];
    for (language, path, how) in [
        (
            "Python",
            "python/target/order_summary.wasm",
            "plugins/python/build.sh order_summary",
        ),
        (
            "JavaScript",
            "js/target/order-summary.wasm",
            "plugins/js/build.sh order-summary",
        ),
    ] {
        let path = plugins.join(path);
        if path.is_file() {
            builds.push((language, path));
        } else {
            println!("{language}: no {} (run `{how}`); skipped", path.display());
        }
    }
    // Clean events only: every path then does the same work, one call per batch.
    let events = projector_tests::bench::recorded_order_events(count)?;
    println!(
        "{} order events, batches of {BATCH}, {rounds} rounds",
        events.len()
    );

    println!("| language | component | compile (no cache) | cached load (median of {LOADS}) |");
    println!("| --- | --- | --- | --- |");
    for (language, path) in &builds {
        let size = std::fs::metadata(path)?.len();
        let (compile, cached) = load_times(path)?;
        println!(
            "| {language} | {:.2} MB | {:.2} s | {:.1} ms |",
            size as f64 / 1e6,
            compile,
            cached * 1e3
        );
    }

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cache = tempfile::tempdir()?;
    let runtime = Runtime::new(Limits::default(), Some(cache.path()))?;
    let mut rates = vec![Vec::new(); builds.len()];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, (language, path)) in builds.iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let projection = bench::projection_of(&runtime, path, dir.path())?;
            let rate = tokio.block_on(bench::pipeline_rate(projection, &events, BATCH))?;
            line += &format!("  {language} {rate:.0}");
            rates[i].push(rate);
        }
        println!("{line} events/s");
    }
    let rust = median(&mut rates[0].clone());
    for (i, (language, _)) in builds.iter().enumerate() {
        let rate = median(&mut rates[i]);
        println!(
            "median: {language} {rate:.0} events/s ({:.2} of Rust's)",
            rate / rust
        );
    }
    Ok(())
}

/// Seconds to load `wasm` with no cache (compiling it), and the median of [`LOADS`] loads
/// from a warm cache (hashing, checking and mapping the artifact, instantiating, `describe`).
fn load_times(wasm: &Path) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    Runtime::new(Limits::default(), None)?.load(wasm)?;
    let compile = started.elapsed().as_secs_f64();
    let cache = tempfile::tempdir()?;
    Runtime::new(Limits::default(), Some(cache.path()))?.load(wasm)?;
    let mut cached = Vec::new();
    for _ in 0..LOADS {
        // A fresh runtime each time: nothing kept in memory, as in a new process.
        let runtime = Runtime::new(Limits::default(), Some(cache.path()))?;
        let started = Instant::now();
        runtime.load(wasm)?;
        cached.push(started.elapsed().as_secs_f64());
    }
    Ok((compile, median(&mut cached)))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
