//! Groups a subscription's items into batches: up to `max_events` events, or whatever arrived
//! within `max_wait` of a batch's first event, whichever comes first.
//!
//! One batch becomes one plugin call and one SQLite transaction, so batching is what makes
//! the pipeline fast: a transaction per event costs about five times as much.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{SourceError, SourceItem, Subscription};
use crate::event::{Position, RecordedEvent};

/// How batches are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most events in one batch.
    pub max_events: usize,
    /// Longest a batch waits for more events after its first one, so live events are visible
    /// within this bound.
    pub max_wait: Duration,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions {
            max_events: 500,
            max_wait: Duration::from_millis(20),
        }
    }
}

/// Events to project together, and how far the log has been read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// The events, in log order; may be empty when only `checkpoint` moved.
    pub events: Vec<RecordedEvent>,
    /// The position to store once the batch commits: at or after its last event.
    pub checkpoint: Option<Position>,
    /// The source has delivered everything written before it started.
    pub caught_up: bool,
}

/// Longest a batch that holds only a checkpoint waits before it is committed: storing how far
/// the log was read is worth a transaction now and then, not once per server message.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(1);

/// Why [`batches`] returned.
#[derive(Debug)]
pub enum Ended {
    /// The subscription ended (a finite source) and everything was sent.
    Finished,
    /// The receiver went away: nobody wants more batches.
    ReceiverGone,
    /// The subscription failed; every item before the failure was sent.
    Failed(SourceError),
}

/// Reads `subscription` and sends its batches to `sender` until the subscription ends, fails,
/// or the receiver goes away.
pub async fn batches(
    mut subscription: Subscription,
    options: BatchOptions,
    sender: &mpsc::Sender<anyhow::Result<Batch>>,
) -> Ended {
    let mut batch = Batch::default();
    let mut deadline: Option<Instant> = None;
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, subscription.next()).await {
                Ok(next) => next,
                Err(_elapsed) => {
                    if !flush(&mut batch, sender).await {
                        return Ended::ReceiverGone;
                    }
                    deadline = None;
                    continue;
                }
            },
            None => subscription.next().await,
        };
        match next {
            Some(Ok(SourceItem::Event(event))) => {
                batch.checkpoint = batch.checkpoint.max(Some(event.position));
                batch.events.push(event);
                // An event is visible within `max_wait`, even if a checkpoint started the batch.
                let due = Instant::now() + options.max_wait;
                deadline = Some(deadline.map_or(due, |at| at.min(due)));
                if batch.events.len() >= options.max_events {
                    if !flush(&mut batch, sender).await {
                        return Ended::ReceiverGone;
                    }
                    deadline = None;
                }
            }
            Some(Ok(SourceItem::Checkpoint(position))) => {
                batch.checkpoint = batch.checkpoint.max(Some(position));
                if deadline.is_none() {
                    deadline = Some(Instant::now() + CHECKPOINT_WAIT.max(options.max_wait));
                }
            }
            Some(Ok(SourceItem::CaughtUp)) => {
                batch.caught_up = true;
                if !flush(&mut batch, sender).await {
                    return Ended::ReceiverGone;
                }
                deadline = None;
            }
            Some(Err(error)) => {
                if !flush(&mut batch, sender).await {
                    return Ended::ReceiverGone;
                }
                return Ended::Failed(error);
            }
            None => {
                if !flush(&mut batch, sender).await {
                    return Ended::ReceiverGone;
                }
                return Ended::Finished;
            }
        }
    }
}

/// Sends the pending batch, if it holds anything; false when the receiver is gone.
async fn flush(batch: &mut Batch, sender: &mpsc::Sender<anyhow::Result<Batch>>) -> bool {
    if batch.events.is_empty() && batch.checkpoint.is_none() && !batch.caught_up {
        return true;
    }
    let full = std::mem::take(batch);
    sender.send(Ok(full)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            stream_id: "s".into(),
            stream_revision: position,
            position: Position::at(position),
            event_id: String::new(),
            event_type: "T".into(),
            content_type: String::new(),
            created_unix_ms: 0,
            data: vec![],
            metadata: vec![],
        }
    }

    async fn collect(items: Vec<SourceItem>, max_events: usize) -> Vec<Batch> {
        let subscription: Subscription = Box::pin(futures::stream::iter(items.into_iter().map(Ok)));
        let (sender, mut receiver) = mpsc::channel(100);
        let ended = batches(
            subscription,
            BatchOptions {
                max_events,
                max_wait: Duration::from_secs(60),
            },
            &sender,
        )
        .await;
        assert!(matches!(ended, Ended::Finished), "{ended:?}");
        drop(sender);
        let mut out = Vec::new();
        while let Some(batch) = receiver.recv().await {
            out.push(batch.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn cuts_full_batches_and_flushes_on_caught_up() {
        let mut items: Vec<SourceItem> = (1..=5).map(|p| SourceItem::Event(event(p))).collect();
        items.push(SourceItem::Checkpoint(Position::at(9)));
        items.push(SourceItem::CaughtUp);
        let batches = collect(items, 2).await;
        let sizes: Vec<usize> = batches.iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        let last = batches.last().unwrap();
        assert_eq!(last.checkpoint, Some(Position::at(9)));
        assert!(last.caught_up);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_event_is_flushed_after_max_wait() {
        let (item_sender, item_receiver) = mpsc::channel::<Result<SourceItem, SourceError>>(10);
        let subscription: Subscription = Box::pin(tokio_stream_from(item_receiver));
        let (sender, mut receiver) = mpsc::channel(10);
        let options = BatchOptions {
            max_events: 100,
            max_wait: Duration::from_millis(20),
        };
        tokio::spawn(async move { batches(subscription, options, &sender).await });
        item_sender
            .send(Ok(SourceItem::Event(event(1))))
            .await
            .unwrap();
        let batch = receiver.recv().await.unwrap().unwrap();
        assert_eq!(batch.events.len(), 1);
        drop(item_sender);
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut receiver: mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Send {
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
