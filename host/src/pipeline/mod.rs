//! Connects a source to projections: per projection, an async task that subscribes from the
//! stored checkpoint and cuts batches (`feed`), and a dedicated thread that applies them.
//!
//! Plugins run synchronously on their own threads (with an explicit stack for the wasm stack
//! plus host frames), so a slow plugin never stalls the async runtime, and a bounded channel
//! between task and thread gives backpressure: the source reads no faster than the plugin
//! projects.

mod batcher;
mod feed;
mod status;
mod tail;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use tokio::sync::{mpsc, watch};

pub use batcher::{Batch, BatchOptions, Ended, batches};
pub use feed::Backoff;
pub use status::{ProjectionStatus, Rebuild, Status};
pub use tail::{Behind, Tail};

use crate::alert::Alerts;
use crate::event::Position;
use crate::metrics::Metrics;
use crate::projection::{Projection, RetryReport};
use crate::runtime::Plugin;
use crate::source::EventSource;
use crate::store::Selection;

/// Batches queued between a projection's source task and its thread: one, so that while the
/// projection works on a batch the next one grows instead of queueing up small (see batcher).
const QUEUED_BATCHES: usize = 1;

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
    /// Who hears of stops and dead letters; `None` for runs no operator watches (tests,
    /// `projector test`), where the outcome is the report.
    pub alerts: Option<Alerts>,
    /// What the runs count (`/metrics`).
    pub metrics: Metrics,
}

impl Settings {
    /// Default backoff and a fresh status board.
    pub fn new(batching: BatchOptions, thread_stack_bytes: usize) -> Settings {
        Settings {
            batching,
            thread_stack_bytes,
            backoff: Backoff::default(),
            status: Status::default(),
            alerts: None,
            metrics: Metrics::new(),
        }
    }
}

/// Identifies one run of a projection (a projection may have two: the one serving queries and
/// a rebuild beside it).
pub type RunId = u64;

/// Whether a run's database is the one queries read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Its database is current; it reports on the projection's status entry.
    Serving,
    /// It rebuilds a database beside the serving one (a new version, or a rollback catching
    /// up); it reports on the entry's `rebuild`.
    Rebuilding,
}

impl Role {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Serving => "serving",
            Role::Rebuilding => "rebuilding",
        }
    }
}

/// What the starter of a run may ask of it; obeyed between two batches.
pub enum Control {
    /// Run this module (same name and version, new code) from the next batch on.
    Swap(Box<Plugin>),
    /// The run's database is now current: report as the serving run.
    Promote,
    /// Retry these dead letters on the current plugin between two batches; the report goes
    /// to `reply` when someone waits for it.
    RetryDeadLetters {
        selection: Selection,
        reply: Option<tokio::sync::oneshot::Sender<Result<RetryReport, String>>>,
    },
    /// Apply nothing after the batch in flight until [`Control::Resume`]; the subscription
    /// stays open (the source waits, held back by the full queue).
    Pause,
    /// Apply batches again after a [`Control::Pause`].
    Resume,
    /// Finish the batch in flight and end.
    Stop,
}

/// What a run tells its starter.
#[derive(Debug)]
pub enum Notice {
    /// It has delivered everything the source held when it subscribed.
    CaughtUp { run: RunId },
    /// A [`Control::Swap`] to module `sha256` was done, or failed (the old code keeps running).
    Swapped {
        run: RunId,
        sha256: String,
        result: Result<(), String>,
    },
    /// The run ended: the source ended, it was stopped, or it faulted.
    Finished { run: RunId, outcome: Outcome },
}

/// A projection running on its own thread, fed by its own subscription.
pub struct Run {
    /// Which run this is.
    pub id: RunId,
    /// Where its controls go.
    control: mpsc::UnboundedSender<Control>,
    /// Turns true (or closes, if the thread died) once the run has closed its database.
    released: watch::Receiver<bool>,
}

impl Run {
    /// Asks the run for `control`; a run that has ended ignores it.
    pub fn send(&self, control: Control) {
        let _ = self.control.send(control);
    }

    /// Tells when the run's thread has closed its database (it has ended): only then may
    /// another run open the same file, or the file be deleted.
    pub fn release(&self) -> Release {
        Release(self.released.clone())
    }
}

/// Whether a run has closed its database; see [`Run::release`].
#[derive(Clone, Debug)]
pub struct Release(watch::Receiver<bool>);

impl Release {
    /// Whether it has (or its thread is gone).
    pub fn is_done(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Waits until it has.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|closed| *closed).await;
    }
}

/// Starts `projection` in `role`: a feed task subscribing after its checkpoint and a thread
/// applying the batches (none until resumed when `paused`). What happens to it is sent to
/// `notices`, ending with [`Notice::Finished`].
pub fn start(
    projection: Projection,
    role: Role,
    source: Arc<dyn EventSource>,
    settings: &Settings,
    notices: mpsc::UnboundedSender<Notice>,
    paused: bool,
) -> anyhow::Result<Run> {
    static NEXT_RUN: AtomicU64 = AtomicU64::new(1);
    let id = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
    let name = projection.name().to_string();
    let (batch_sender, batch_receiver) = mpsc::channel(QUEUED_BATCHES);
    let checkpoint = projection.checkpoint().map(|c| c.position);
    if role == Role::Serving {
        let manifest = &projection.plugin().manifest;
        let (version, sha256) = (manifest.version.clone(), projection.plugin().sha256.clone());
        let filter = manifest.filter.clone();
        settings.status.update(&name, |s| {
            *s = ProjectionStatus {
                serving_run: Some(id),
                checkpoint,
                version: Some(version),
                sha256: Some(sha256),
                rebuild: s.rebuild.take(),
                reloads: std::mem::take(&mut s.reloads),
                last_swap_pause: s.last_swap_pause,
                paused,
                filter,
                run_progress: Some((checkpoint.map_or(0, |p| p.commit), 0)),
                ..ProjectionStatus::default()
            }
        });
    }
    let (committed_sender, committed) = watch::channel(checkpoint);
    let (last_event_sender, last_event) =
        watch::channel(projection.checkpoint().and_then(|c| c.last_event));
    let feed = feed::Feed {
        name: name.clone(),
        source,
        filter: projection.plugin().manifest.filter.clone(),
        batching: settings.batching,
        backoff: settings.backoff,
        committed,
        last_event,
        status: settings.status.clone(),
        metrics: settings.metrics.clone(),
    };
    // The feed ends when the thread stops listening (it drops its receiver).
    feed::spawn(feed, batch_sender);
    let (control, control_receiver) = mpsc::unbounded_channel();
    let (released_sender, released) = watch::channel(false);
    let panic_notices = notices.clone();
    let worker = worker::Worker {
        run: id,
        role,
        receiver: batch_receiver,
        control: control_receiver,
        notices,
        committed: committed_sender,
        last_event: last_event_sender,
        status: settings.status.clone(),
        alerts: settings.alerts.clone(),
        metrics: settings.metrics.run(&name, role.as_str()),
        all_metrics: settings.metrics.clone(),
        paused,
        released: released_sender,
    };
    let thread_name = name.clone();
    std::thread::Builder::new()
        .name(format!("projection-{name}"))
        .stack_size(settings.thread_stack_bytes)
        .spawn(move || {
            // A panic here is a host bug; the run still ends visibly instead of leaving whoever
            // waits for its end waiting forever.
            let body = std::panic::AssertUnwindSafe(|| worker.project(projection));
            if std::panic::catch_unwind(body).is_err() {
                tracing::error!(projection = thread_name, "the projection's thread panicked");
                let outcome = Outcome {
                    name: thread_name,
                    checkpoint: None,
                    projected: 0,
                    failed: 0,
                    caught_up: false,
                    error: Some(anyhow::format_err!(
                        "the projection's thread panicked (a host bug; see the log)"
                    )),
                };
                let _ = panic_notices.send(Notice::Finished { run: id, outcome });
            }
        })
        .with_context(|| format!("starting the thread of projection {name}"))?;
    Ok(Run {
        id,
        control,
        released,
    })
}

/// Runs a fixed set of `projections` over `source` until the source ends (a finite source) or
/// `shutdown` resolves; a projection that faults stops alone. On shutdown each projection
/// finishes and commits the batch in flight. (`projector run` and `dev` use the supervisor,
/// which starts and replaces runs as plugins change; this is for one-off runs and tests.)
pub async fn run(
    projections: Vec<Projection>,
    source: Arc<dyn EventSource>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Vec<Outcome>> {
    let (notices, mut noticed) = mpsc::unbounded_channel();
    let mut runs = Vec::new();
    for projection in projections {
        let run = start(
            projection,
            Role::Serving,
            Arc::clone(&source),
            &settings,
            notices.clone(),
            false,
        )?;
        runs.push(run);
    }
    drop(notices);
    // In the order the projections were given.
    let mut outcomes: Vec<Option<Outcome>> = runs.iter().map(|_| None).collect();
    tokio::pin!(shutdown);
    let mut stopping = false;
    while outcomes.iter().any(Option::is_none) {
        tokio::select! {
            notice = noticed.recv() => match notice {
                Some(Notice::Finished { run, outcome }) => {
                    if let Some(index) = runs.iter().position(|r| r.id == run) {
                        outcomes[index] = Some(outcome);
                    }
                }
                Some(_) => {}
                None => anyhow::bail!("a projection thread ended without reporting"),
            },
            () = &mut shutdown, if !stopping => {
                tracing::info!("shutting down: finishing the batches in flight");
                stopping = true;
                for run in &runs {
                    run.send(Control::Stop);
                }
            }
        }
    }
    Ok(outcomes.into_iter().flatten().collect())
}
