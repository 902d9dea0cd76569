//! The body of a projection's thread: apply the batches its feed sends, and obey the controls of
//! whoever started it (swap the module, start serving, stop), always between two batches.
//!
//! Controls are read before batches, so a swap or a stop waits for at most the batch in flight;
//! an idle projection obeys at once (its thread waits on both channels).

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::batcher::Batch;
use super::feed::Backoff;
use super::status::Status;
use super::{Control, Notice, Outcome, Role, RunId};
use crate::alert::Alerts;
use crate::event::Position;
use crate::metrics::{BatchMetrics, Metrics, RunMetrics};
use crate::projection::{BatchReport, Projection};

/// How often a busy projection logs its progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// What a projection's thread works with besides the projection.
pub(super) struct Worker {
    pub run: RunId,
    pub role: Role,
    pub receiver: mpsc::Receiver<anyhow::Result<Batch>>,
    pub control: mpsc::UnboundedReceiver<Control>,
    pub notices: mpsc::UnboundedSender<Notice>,
    /// Tells the feed what is committed, so a resubscription starts there.
    pub committed: watch::Sender<Option<Position>>,
    /// Tells the feed the last event committed, which its check against a replaced store
    /// compares with the log's end.
    pub last_event: watch::Sender<Option<Position>>,
    pub status: Status,
    /// Who hears of this run's stop and dead letters.
    pub alerts: Option<Alerts>,
    /// What this run's batches add to.
    pub metrics: RunMetrics,
    /// Where stops are counted, and a promoted run's new handles come from.
    pub all_metrics: Metrics,
    /// Whether it starts paused (an operator's pause, kept across restarts).
    pub paused: bool,
    /// Set once the projection (its database) is closed.
    pub released: watch::Sender<bool>,
}

/// What the thread waits for next.
enum Next {
    Control(Option<Control>),
    Batch(Option<anyhow::Result<Batch>>),
    /// The batch that met a fault of the database, due for another attempt.
    Retry,
}

/// A batch waiting to be applied again after a fault of the database.
struct Retry {
    batch: Batch,
    /// Attempts made so far.
    attempts: u32,
    /// When the next one is due.
    due: Instant,
    /// The fault the last attempt met.
    fault: String,
}

/// How retries of a batch that met a fault of the database are spaced: about 1 s, 2 s, 4 s,
/// then 10 s each (jittered like the feed's reconnects), long enough for a lock or a burst of
/// I/O errors to clear, short enough not to stall a projection on a fault that will not.
const RETRY_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(10),
};

/// A swap whose first batch of new code has not committed yet.
struct PendingSwap {
    /// When the old code's last batch committed.
    last_old_commit: Instant,
}

/// Retries the `selection` of dead letters on the current plugin; the report goes to `reply`
/// when someone waits for it.
fn retry_dead_letters(
    projection: &mut Projection,
    name: &str,
    selection: &crate::store::Selection,
    reply: Option<tokio::sync::oneshot::Sender<Result<crate::projection::RetryReport, String>>>,
) {
    let result = projection
        .retry_dead_letters(selection)
        .map_err(|error| format!("{error:#}"));
    if let Err(error) = &result {
        tracing::warn!(
            projection = name,
            error,
            "retrying dead letters failed; they are as they were"
        );
    }
    if let Some(reply) = reply {
        let _ = reply.send(result);
    }
}

impl Worker {
    /// Applies batches until the feed ends, a stop is asked for, or the projection faults; the
    /// outcome is sent as [`Notice::Finished`].
    pub fn project(mut self, mut projection: Projection) {
        let name = projection.name().to_string();
        let mut outcome = Outcome {
            name: name.clone(),
            checkpoint: None,
            projected: 0,
            failed: 0,
            caught_up: false,
            error: None,
        };
        let mut progress = (Instant::now(), 0u64);
        let mut last_commit = Instant::now();
        let mut pending_swap: Option<PendingSwap> = None;
        let mut retry: Option<Retry> = None;
        let mut paused = self.paused;
        let mut deferred: Vec<crate::store::Selection> = Vec::new();
        loop {
            let next = match &retry {
                // Paused: only controls, until a resume (a waiting retry is due after it).
                _ if paused => Next::Control(futures::executor::block_on(self.control.recv())),
                // Controls are still obeyed while a retry waits: a stop must not wait it out.
                Some(waiting) => match self.control_until(waiting.due) {
                    Some(control) => Next::Control(control),
                    None => Next::Retry,
                },
                None => futures::executor::block_on(async {
                    tokio::select! {
                        biased;
                        control = self.control.recv() => Next::Control(control),
                        batch = self.receiver.recv() => Next::Batch(batch),
                    }
                }),
            };
            let (batch, attempts) = match next {
                Next::Control(None | Some(Control::Stop)) | Next::Batch(None) => break,
                Next::Control(Some(Control::Pause)) => {
                    if !paused {
                        tracing::info!(projection = name, role = self.role.as_str(), "paused");
                    }
                    paused = true;
                    continue;
                }
                Next::Control(Some(Control::Resume)) => {
                    if paused {
                        tracing::info!(projection = name, role = self.role.as_str(), "resumed");
                    }
                    paused = false;
                    // A swap made while paused is timed from the resume: the operator's pause
                    // is not the swap's.
                    if let Some(swap) = &mut pending_swap {
                        swap.last_old_commit = Instant::now();
                    }
                    // The retries new code asked for while paused are due now.
                    for selection in deferred.drain(..) {
                        retry_dead_letters(&mut projection, &name, &selection, None);
                    }
                    continue;
                }
                // Paused means the plugin applies nothing, dead letters included: a retry
                // someone waits for is refused, one new code asked for waits for the resume.
                Next::Control(Some(Control::RetryDeadLetters { selection, reply })) if paused => {
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(Err(format!(
                                "{name} is paused; resume it to retry its dead letters"
                            )));
                        }
                        None => deferred.push(selection),
                    }
                    continue;
                }
                Next::Control(Some(Control::Swap(plugin))) => {
                    let sha256 = plugin.sha256.clone();
                    let swapped = projection.swap(*plugin);
                    if swapped.is_ok() {
                        pending_swap = Some(PendingSwap {
                            last_old_commit: last_commit,
                        });
                        // A run replaced by a cut-over may still obey a swap asked before it:
                        // the entry is its successor's by then.
                        let run = self.run;
                        self.status.update(&name, |s| {
                            if s.serving_run == Some(run) {
                                s.sha256 = Some(sha256.clone());
                            }
                        });
                    }
                    let _ = self.notices.send(Notice::Swapped {
                        run: self.run,
                        sha256,
                        result: swapped.map_err(|e| format!("{e:#}")),
                    });
                    continue;
                }
                Next::Control(Some(Control::RetryDeadLetters { selection, reply })) => {
                    retry_dead_letters(&mut projection, &name, &selection, reply);
                    continue;
                }
                Next::Control(Some(Control::Promote)) => {
                    self.role = Role::Serving;
                    self.metrics = self.all_metrics.run(&name, Role::Serving.as_str());
                    let version = projection.plugin().manifest.version.clone();
                    let sha256 = projection.plugin().sha256.clone();
                    let checkpoint = projection.checkpoint().map(|c| c.position);
                    let filter = projection.plugin().manifest.filter.clone();
                    let run = self.run;
                    self.status.update(&name, |s| {
                        s.serving_run = Some(run);
                        s.filter = filter;
                        s.run_progress = Some((checkpoint.map_or(0, |p| p.commit), 0));
                        s.rate = Default::default();
                        // A newer rebuild may have started since this one was promoted.
                        if s.rebuild.as_ref().is_some_and(|r| r.run == run) {
                            s.rebuild = None;
                        }
                        s.version = Some(version);
                        s.sha256 = Some(sha256);
                        s.checkpoint = checkpoint;
                        s.caught_up = outcome.caught_up;
                        s.projected = outcome.projected;
                        s.failed = outcome.failed;
                        s.stopped = None;
                        s.error = None;
                    });
                    continue;
                }
                Next::Batch(Some(batch)) => (batch, 0),
                Next::Retry => {
                    let waiting = retry.take().expect("a retry is waiting");
                    tracing::info!(
                        projection = name,
                        attempt = waiting.attempts + 1,
                        fault = waiting.fault,
                        "retrying a batch after a fault of the database"
                    );
                    (Ok(waiting.batch), waiting.attempts)
                }
            };
            let taken = Instant::now();
            let last_created = batch
                .as_ref()
                .ok()
                .and_then(|b| b.events.last())
                .map(|e| e.created_unix_ms);
            let result = match batch {
                Ok(batch) => match projection.apply(&batch.events, batch.checkpoint) {
                    Ok(report) => Ok((batch.caught_up, report)),
                    Err(error) => match projection.transient_fault(&error) {
                        Some(fault) if attempts < projection.failures().transient_retries => {
                            let pause = RETRY_BACKOFF.delay(attempts);
                            tracing::warn!(
                                projection = name,
                                fault,
                                retry_in_ms = pause.as_millis() as u64,
                                "a batch met a fault of the database; it is not the events' \
                                 fault, so it will be retried, not dead-lettered"
                            );
                            retry = Some(Retry {
                                batch,
                                attempts: attempts + 1,
                                due: Instant::now() + pause,
                                fault,
                            });
                            continue;
                        }
                        Some(fault) => Err(anyhow::format_err!(
                            "projection {name} stopped: a batch met a fault of the database \
                             {} times ({attempts} retries); nothing of it was committed or \
                             dead-lettered, and a restart retries it once the fault is \
                             cleared: {fault}",
                            attempts + 1
                        )),
                        None => Err(error),
                    },
                },
                Err(error) => Err(error),
            };
            let (caught_up, report) = match result {
                Ok(done) => done,
                Err(error) => {
                    let reason = match self.role {
                        Role::Serving => format!("{error:#}"),
                        Role::Rebuilding => format!("its rebuild stopped: {error:#}"),
                    };
                    self.all_metrics.stopped(&name, self.role.as_str());
                    // One ERROR line per stop: the alert's when someone listens for them.
                    match &self.alerts {
                        Some(alerts) => alerts.stopped(&name, &reason),
                        None => tracing::error!(
                            projection = name,
                            role = self.role.as_str(),
                            error = reason,
                            "projection stopped"
                        ),
                    }
                    if self.role == Role::Serving {
                        let reason = format!("{error:#}");
                        let run = self.run;
                        self.status.update(&name, |s| {
                            if s.serving_run == Some(run) {
                                s.error = Some(reason.clone());
                                s.stopped = Some(reason);
                            }
                        });
                    }
                    outcome.error = Some(error);
                    break;
                }
            };
            last_commit = Instant::now();
            self.metrics.batch(&BatchMetrics {
                projected: report.projected as u64,
                failed: report.failed as u64,
                dead_lettered: report.dead_lettered(projection.failures().on_error) as u64,
                took: last_commit - taken,
                plugin: report.plugin_time,
                sqlite: report.sqlite_time,
                rows_changed: report.rows_changed,
            });
            if let (Some(alerts), Some(first_error)) = (&self.alerts, &report.first_dead_letter) {
                alerts.dead_letters(&name, report.failed as u64, first_error);
            }
            if report.projected > 0
                && let Some(swap) = pending_swap.take()
            {
                let pause = last_commit - swap.last_old_commit;
                tracing::info!(
                    projection = name,
                    pause_ms = format!("{:.1}", pause.as_secs_f64() * 1e3),
                    "first batch of the swapped module committed"
                );
                let run = self.run;
                self.status.update(&name, |s| {
                    if s.serving_run == Some(run) {
                        s.last_swap_pause = Some(pause);
                    }
                });
            }
            outcome.projected += report.projected as u64;
            outcome.failed += report.failed as u64;
            progress.1 += (report.projected + report.failed) as u64;
            let newly_caught_up = caught_up && !outcome.caught_up;
            outcome.caught_up |= caught_up;
            self.committed.send_replace(report.checkpoint);
            self.last_event
                .send_replace(projection.checkpoint().and_then(|c| c.last_event));
            self.report(&name, &outcome, &report, last_created);
            if newly_caught_up {
                tracing::info!(projection = name, role = self.role.as_str(), position = ?report.checkpoint.map(|p| p.to_string()), "caught up");
                let _ = self.notices.send(Notice::CaughtUp { run: self.run });
            }
            if progress.0.elapsed() >= PROGRESS_INTERVAL {
                let rate = progress.1 as f64 / progress.0.elapsed().as_secs_f64();
                let position = projection.checkpoint().map(|c| c.position.to_string());
                tracing::info!(
                    projection = name,
                    role = self.role.as_str(),
                    position,
                    events_per_second = rate.round(),
                    "progress"
                );
                progress = (Instant::now(), 0);
            }
        }
        outcome.checkpoint = projection.checkpoint().map(|c| c.position);
        // Dropping the projection (its database and instance) before telling anyone the run is
        // over: whoever starts the next run on the same file must find it closed.
        drop(projection);
        self.released.send_replace(true);
        let _ = self.notices.send(Notice::Finished {
            run: self.run,
            outcome,
        });
    }

    /// Waits until `due` for a control; `Some(None)` when whoever started the run is gone.
    fn control_until(&mut self, due: Instant) -> Option<Option<Control>> {
        use tokio::sync::mpsc::error::TryRecvError;
        loop {
            match self.control.try_recv() {
                Ok(control) => return Some(Some(control)),
                Err(TryRecvError::Disconnected) => return Some(None),
                Err(TryRecvError::Empty) => {}
            }
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    /// Publishes a committed batch on the status board: the projection's own entry when it
    /// serves, its rebuild's when it rebuilds beside the serving one.
    fn report(
        &self,
        name: &str,
        outcome: &Outcome,
        report: &BatchReport,
        last_created: Option<i64>,
    ) {
        let checkpoint = report.checkpoint;
        let events = (report.projected + report.failed) as u64;
        self.status.update(name, |s| match self.role {
            // A run that was replaced (its successor promoted) may commit one last batch; the
            // entry is its successor's by then.
            Role::Serving if s.serving_run == Some(self.run) => {
                s.checkpoint = checkpoint;
                s.caught_up = outcome.caught_up;
                s.projected = outcome.projected;
                s.failed = outcome.failed;
                s.rate.add(events);
                if let Some((_, met)) = &mut s.run_progress {
                    *met += events;
                }
                if events > 0 {
                    s.last_event_created_unix_ms = last_created.or(s.last_event_created_unix_ms);
                }
            }
            Role::Serving => {}
            Role::Rebuilding => {
                if let Some(rebuild) = s.rebuild.as_mut().filter(|r| r.run == self.run) {
                    rebuild.position = checkpoint;
                    rebuild.projected = outcome.projected;
                    rebuild.failed = outcome.failed;
                }
            }
        });
    }
}
