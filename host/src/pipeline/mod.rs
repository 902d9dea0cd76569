//! Connects a source to projections: per projection, an async task that subscribes from the
//! stored checkpoint and cuts batches (`feed`), and a dedicated thread that applies them.
//!
//! Plugins run synchronously on their own threads (with an explicit stack for the wasm stack
//! plus host frames), so a slow plugin never stalls the async runtime, and a bounded channel
//! between task and thread gives backpressure: the source reads no faster than the plugin
//! projects.

mod feed;
mod status;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{mpsc, oneshot, watch};

pub use feed::Backoff;
pub use status::{ProjectionStatus, Status};

use crate::event::Position;
use crate::projection::Projection;
use crate::source::{Batch, BatchOptions, EventSource};

/// Batches queued between a projection's source task and its thread: one, so that while the
/// projection works on a batch the next one grows instead of queueing up small (see batcher).
const QUEUED_BATCHES: usize = 1;

/// How often a busy projection logs its progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// How a projection's run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The projection's name.
    pub name: String,
    /// Its stored position at the end.
    pub checkpoint: Option<Position>,
    /// Events projected in this run.
    pub projected: u64,
    /// Events dead-lettered or skipped in this run.
    pub failed: u64,
    /// Whether it reached the end of what the source had when it started.
    pub caught_up: bool,
    /// Why it stopped, if it faulted.
    pub error: Option<anyhow::Error>,
}

/// How a pipeline runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How batches are cut.
    pub batching: BatchOptions,
    /// The stack of each projection thread (wasm stack plus host frames).
    pub thread_stack_bytes: usize,
    /// How reconnects to a broken source are spaced.
    pub backoff: Backoff,
    /// Where the projections report their state while running.
    pub status: Status,
}

impl Settings {
    /// Default backoff and a fresh status board.
    pub fn new(batching: BatchOptions, thread_stack_bytes: usize) -> Settings {
        Settings {
            batching,
            thread_stack_bytes,
            backoff: Backoff::default(),
            status: Status::default(),
        }
    }
}

/// Runs `projections` over `source` until the source ends (a finite source) or `shutdown`
/// resolves; a projection that faults stops alone. On shutdown each projection finishes and
/// commits the batch in flight.
pub async fn run(
    projections: Vec<Projection>,
    source: Arc<dyn EventSource>,
    options: BatchOptions,
    thread_stack_bytes: usize,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Vec<Outcome>> {
    let settings = Settings::new(options, thread_stack_bytes);
    run_with(projections, source, settings, shutdown).await
}

/// [`run`] with every setting spelled out.
pub async fn run_with(
    projections: Vec<Projection>,
    source: Arc<dyn EventSource>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Vec<Outcome>> {
    let (stop_sender, stop_receiver) = watch::channel(false);
    let stopping = Arc::new(AtomicBool::new(false));
    let mut finished = Vec::new();
    for projection in projections {
        let name = projection.name().to_string();
        let (batch_sender, batch_receiver) = mpsc::channel(QUEUED_BATCHES);
        let checkpoint = projection.checkpoint().map(|c| c.position);
        settings.status.update(&name, |s| s.checkpoint = checkpoint);
        let (committed_sender, committed) = watch::channel(checkpoint);
        let feed = feed::Feed {
            name: name.clone(),
            source: Arc::clone(&source),
            filter: projection.plugin().manifest.filter.clone(),
            batching: settings.batching,
            backoff: settings.backoff,
            committed,
            status: settings.status.clone(),
        };
        let mut stop = stop_receiver.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = feed.run(batch_sender) => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
        let (done_sender, done_receiver) = oneshot::channel();
        let stopping = Arc::clone(&stopping);
        let worker = Worker {
            receiver: batch_receiver,
            committed: committed_sender,
            status: settings.status.clone(),
        };
        std::thread::Builder::new()
            .name(format!("projection-{name}"))
            .stack_size(settings.thread_stack_bytes)
            .spawn(move || {
                let outcome = worker.project(projection, &stopping);
                let _ = done_sender.send(outcome);
            })
            .with_context(|| format!("starting the thread of projection {name}"))?;
        finished.push(done_receiver);
    }
    let all_done = futures::future::join_all(finished);
    tokio::pin!(all_done);
    tokio::select! {
        outcomes = &mut all_done => return collect(outcomes),
        () = shutdown => {}
    }
    tracing::info!("shutting down: finishing the batches in flight");
    stopping.store(true, Ordering::SeqCst);
    let _ = stop_sender.send(true);
    collect(all_done.await)
}

fn collect(
    outcomes: Vec<Result<Outcome, oneshot::error::RecvError>>,
) -> anyhow::Result<Vec<Outcome>> {
    outcomes
        .into_iter()
        .map(|o| o.context("a projection thread ended without reporting"))
        .collect()
}

/// What a projection's thread works with besides the projection.
struct Worker {
    receiver: mpsc::Receiver<anyhow::Result<Batch>>,
    /// Tells the feed what is committed, so a resubscription starts there.
    committed: watch::Sender<Option<Position>>,
    status: Status,
}

impl Worker {
    /// The body of a projection's thread: apply batches until the channel closes, a stop is
    /// requested, or the projection faults.
    fn project(mut self, mut projection: Projection, stopping: &AtomicBool) -> Outcome {
        let name = projection.name().to_string();
        let mut outcome = Outcome {
            name: name.clone(),
            checkpoint: None,
            projected: 0,
            failed: 0,
            caught_up: false,
            error: None,
        };
        let mut last_progress = Instant::now();
        let mut since_progress = 0u64;
        while !stopping.load(Ordering::SeqCst) {
            let Some(batch) = self.receiver.blocking_recv() else {
                break;
            };
            let result = batch.context("reading from the source").and_then(|batch| {
                let report = projection.apply(&batch)?;
                Ok((batch.caught_up, report))
            });
            match result {
                Ok((caught_up, report)) => {
                    outcome.projected += report.projected as u64;
                    outcome.failed += report.failed as u64;
                    since_progress += (report.projected + report.failed) as u64;
                    if caught_up && !outcome.caught_up {
                        tracing::info!(projection = name, position = ?report.checkpoint.map(|p| p.to_string()), "caught up");
                    }
                    outcome.caught_up |= caught_up;
                    self.committed.send_replace(report.checkpoint);
                    self.status.update(&name, |s| {
                        s.checkpoint = report.checkpoint;
                        s.caught_up = outcome.caught_up;
                        s.projected = outcome.projected;
                        s.failed = outcome.failed;
                    });
                }
                Err(error) => {
                    tracing::error!(
                        projection = name,
                        error = format!("{error:#}"),
                        "projection stopped"
                    );
                    self.status
                        .update(&name, |s| s.error = Some(format!("{error:#}")));
                    outcome.error = Some(error);
                    break;
                }
            }
            if last_progress.elapsed() >= PROGRESS_INTERVAL {
                let rate = since_progress as f64 / last_progress.elapsed().as_secs_f64();
                let position = projection.checkpoint().map(|c| c.position.to_string());
                tracing::info!(
                    projection = name,
                    position,
                    events_per_second = rate.round(),
                    "progress"
                );
                last_progress = Instant::now();
                since_progress = 0;
            }
        }
        outcome.checkpoint = projection.checkpoint().map(|c| c.position);
        outcome
    }
}
