//! Helpers for the tests: runtimes, plugins and events.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use projector::event::{CONTENT_TYPE_JSON, Position, RecordedEvent};
use projector::pipeline::BatchOptions;
use projector::pipeline::{self, Outcome};
use projector::projection::{Failures, Projection};
use projector::runtime::{Limits, Runtime};
use projector::source::EventSource;
use projector::store::DataDir;

/// A runtime with default limits and no compile cache.
pub fn runtime() -> Runtime {
    Runtime::new(Limits::default(), None).expect("building the runtime")
}

/// Opens the projection of the plugin at `wasm` in `data_dir`.
pub fn open(
    runtime: &Runtime,
    wasm: &str,
    data_dir: &Path,
    failures: impl Into<Failures>,
) -> anyhow::Result<Projection> {
    let plugin = runtime.load(Path::new(wasm))?;
    let manifest = &plugin.manifest;
    let files = DataDir::open(data_dir)?.current_or_new(
        &manifest.name,
        &manifest.version,
        &plugin.sha256,
    )?;
    Projection::open(runtime, plugin, &files.db, failures.into())
}

/// Runs `projections` over `source` to its end and returns the outcomes, which must be clean.
pub async fn run_to_end(
    projections: Vec<Projection>,
    source: Arc<dyn EventSource>,
    max_events: usize,
) -> anyhow::Result<Vec<Outcome>> {
    let options = BatchOptions {
        max_events,
        ..BatchOptions::default()
    };
    let settings = pipeline::Settings::new(options, 8 << 20);
    let outcomes = pipeline::run(projections, source, settings, std::future::pending()).await?;
    for outcome in &outcomes {
        if let Some(error) = &outcome.error {
            anyhow::bail!("projection {} stopped: {error:#}", outcome.name);
        }
    }
    Ok(outcomes)
}

/// An event of type `event_type` at `position` whose data is `data`.
pub fn event(position: u64, event_type: &str, data: &str) -> RecordedEvent {
    RecordedEvent {
        stream_id: format!("test-{position}"),
        stream_revision: 0,
        position: Position::at(position),
        event_id: format!("00000000-0000-0000-0000-{position:012}"),
        event_type: event_type.to_string(),
        content_type: CONTENT_TYPE_JSON.to_string(),
        created_unix_ms: 0,
        data: data.as_bytes().to_vec(),
        metadata: Vec::new(),
    }
}

/// `folder`, created if needed, holding the two example plugins; returns it.
pub fn example_plugins(folder: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    std::fs::copy(
        projector_tests::guests::ORDER_SUMMARY,
        folder.join("order_summary.wasm"),
    )?;
    std::fs::copy(
        projector_tests::guests::PAYMENTS,
        folder.join("payments.wasm"),
    )?;
    Ok(folder.to_path_buf())
}
