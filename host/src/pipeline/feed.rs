//! A projection's source task: subscribe from the committed position, cut batches, and when
//! the source breaks, wait (capped, jittered exponential backoff) and subscribe again from
//! the position the projection has committed by then.
//!
//! Resuming from the committed position rather than from the last event received is what makes
//! a reconnect exactly-once without trusting anything in flight: events the projection receives
//! twice are at or before its checkpoint and it skips them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::batcher::{Batch, BatchOptions, Ended, batches};
use super::status::Status;
use crate::event::{EventFilter, Position};
use crate::source::{EventSource, SourceError};

/// How reconnect attempts are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The pause after the first failure.
    pub initial: Duration,
    /// The longest pause; reached by doubling.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The pause before attempt `failures + 1`: doubling from `initial` up to `max`, with
    /// "equal jitter" (a random point in the upper half) so that projections that lost the
    /// same server do not come back in lockstep.
    pub fn delay(&self, failures: u32) -> Duration {
        let exponential = self
            .initial
            .saturating_mul(1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX));
        let capped = exponential.min(self.max);
        capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
    }
}

/// Everything a feed task needs.
pub(super) struct Feed {
    pub name: String,
    pub source: Arc<dyn EventSource>,
    pub filter: EventFilter,
    pub batching: BatchOptions,
    pub backoff: Backoff,
    pub committed: watch::Receiver<Option<Position>>,
    /// The last event the projection has committed (see `Checkpoint::last_event`), published
    /// by its thread after every batch.
    pub last_event: watch::Receiver<Option<Position>>,
    pub status: Status,
    pub metrics: crate::metrics::Metrics,
}

impl Feed {
    /// Runs until the source ends, fails for good (the error goes to the projection), or the
    /// projection stops listening.
    pub async fn run(self, sender: mpsc::Sender<anyhow::Result<Batch>>) {
        let described = self.source.describe();
        let mut failures = 0u32;
        let received = self.metrics.received(&described);
        loop {
            // Before every subscription, the first and each after a break: a store reset or
            // replaced while it was away must stop the projection, not be subscribed to after
            // a position it no longer has.
            match self.check_not_ahead().await {
                Ok(()) => {}
                Err(Checked::Ahead(error)) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
                Err(Checked::Unknown(cause)) => {
                    self.status.source_failed(&self.name, &described, &cause);
                    let pause = self.backoff.delay(failures);
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = sender.closed() => return,
                    }
                }
            }
            let after = *self.committed.borrow();
            tracing::debug!(projection = self.name, after = ?after.map(|p| p.to_string()), "subscribing");
            let heard = Arc::new(AtomicBool::new(false));
            let subscription = {
                let heard = Arc::clone(&heard);
                let status = self.status.clone();
                let name = self.name.clone();
                let described = described.clone();
                let received = received.clone();
                self.source
                    .subscribe(after, &self.filter)
                    .inspect(move |item| {
                        if let Ok(crate::source::SourceItem::Event(_)) = item {
                            received.inc();
                        }
                        if item.is_ok() && !heard.swap(true, Ordering::Relaxed) {
                            status.source_back(&name, &described);
                        }
                    })
                    .boxed()
            };
            match batches(subscription, self.batching, &sender).await {
                Ended::Finished | Ended::ReceiverGone => return,
                Ended::Failed(SourceError::Fatal(error)) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
                Ended::Failed(SourceError::Interrupted(cause)) => {
                    if heard.load(Ordering::Relaxed) {
                        failures = 0;
                    }
                    self.status.source_failed(&self.name, &described, &cause);
                    self.metrics.reconnected(&described);
                    let pause = self.backoff.delay(failures);
                    failures = failures.saturating_add(1);
                    tracing::debug!(
                        projection = self.name,
                        cause = format!("{cause:#}"),
                        pause_ms = pause.as_millis() as u64,
                        "resubscribing after a pause"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = sender.closed() => return,
                    }
                }
            }
        }
    }
    /// Fails when the log now ends before the last event the projection was given: the store
    /// was reset or replaced (or the data directory belongs to another one), and subscribing
    /// after the stored position would silently skip every event written until the log grows
    /// past it. The last *event* is compared, not the stored position, which may be a server's
    /// checkpoint (some KurrentDB versions send them at the log's end, past its last event).
    /// A source that cannot tell its end is not subscribed to blindly: the caller waits and
    /// asks again.
    async fn check_not_ahead(&self) -> Result<(), Checked> {
        let Some(last_event) = *self.last_event.borrow() else {
            return Ok(());
        };
        let head = self.source.head().await.map_err(Checked::Unknown)?;
        if head.is_none_or(|head| last_event.commit > head.commit) {
            return Err(Checked::Ahead(anyhow::format_err!(
                "projection {} was given an event at position {last_event}, past the end of {} \
                 ({}): the event store was reset or replaced, or this data directory was built \
                 from another one. Nothing was skipped; point [source] at the store the \
                 projection was built from, or move its database away to rebuild it from the \
                 start",
                self.name,
                self.source.describe(),
                head.map_or("an empty log".to_string(), |h| format!(
                    "its last event is at {h}"
                ))
            )));
        }
        Ok(())
    }
}

/// Why [`Feed::check_not_ahead`] did not pass.
enum Checked {
    /// The log ends before the projection's last event: stop.
    Ahead(anyhow::Error),
    /// The log's end is unknown now (the source is away): wait and ask again.
    Unknown(anyhow::Error),
}

/// Spawns `feed` and watches it: a feed task that panics must stop its projection with the
/// panic as the reason, not end its batches as if the source had finished.
pub(super) fn spawn(feed: Feed, sender: mpsc::Sender<anyhow::Result<Batch>>) {
    let name = feed.name.clone();
    // Held until the feed has ended, so the projection hears of a panic before the channel
    // closes.
    let watcher = sender.clone();
    let task = tokio::spawn(feed.run(sender));
    tokio::spawn(async move {
        if let Err(error) = task.await
            && error.is_panic()
        {
            let payload = error.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            let _ = watcher
                .send(Err(anyhow::format_err!(
                    "the source task of projection {name} panicked ({message}); the projection \
                     stopped, and a restart resumes from its checkpoint"
                )))
                .await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for _ in 0..100 {
            let first = backoff.delay(0);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let third = backoff.delay(2);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third));
            let late = backoff.delay(40);
            assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&late));
        }
    }
}
