//! Groups a subscription's items into batches.
//!
//! One batch becomes one plugin call and one SQLite transaction, so batching is what makes
//! the pipeline fast: a transaction per event costs about five times as much. But waiting for
//! a batch to fill is what makes live events late. So batches are cut by demand ("natural
//! batching"): a batch goes as soon as the projection can take it, holding whatever arrived
//! meanwhile, and grows up to `max_events` only while the projection is busy with the previous
//! one. Idle, a live event is applied at once; behind, during catch-up, batches are full.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::event::{Position, RecordedEvent};
use crate::source::{SourceError, SourceItem, Subscription};

/// How batches are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most events in one batch.
    pub max_events: usize,
    /// How long a batch lingers for more events after its first one even when the projection
    /// is idle. Zero (the default) sends at once: lowest latency, and batches still fill up
    /// whenever the projection is busy.
    pub max_wait: Duration,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions {
            max_events: 500,
            max_wait: Duration::ZERO,
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
/// or the receiver goes away. `sender`'s capacity is the number of batches that may wait for
/// the projection; 1 keeps batches as large as the projection's pace allows.
pub async fn batches(
    mut subscription: Subscription,
    options: BatchOptions,
    sender: &mpsc::Sender<anyhow::Result<Batch>>,
) -> Ended {
    let mut batch = Batch::default();
    // When the pending batch may go; it goes then if the projection can take it.
    let mut due: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let pending = !is_empty(&batch);
        let sendable = pending && due.is_some_and(|at| at <= now);
        tokio::select! {
            // Reading first: while events are ready they join the batch.
            biased;
            next = subscription.next() => match next {
                Some(Ok(SourceItem::Event(event))) => {
                    batch.checkpoint = batch.checkpoint.max(Some(event.position));
                    batch.events.push(event);
                    let at = Instant::now() + options.max_wait;
                    due = Some(due.map_or(at, |due| due.min(at)));
                    if batch.events.len() >= options.max_events {
                        if !flush(&mut batch, sender).await {
                            return Ended::ReceiverGone;
                        }
                        due = None;
                    }
                }
                Some(Ok(SourceItem::Checkpoint(position))) => {
                    batch.checkpoint = batch.checkpoint.max(Some(position));
                    due.get_or_insert(Instant::now() + CHECKPOINT_WAIT.max(options.max_wait));
                }
                Some(Ok(SourceItem::CaughtUp)) => {
                    batch.caught_up = true;
                    due = Some(Instant::now());
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
            },
            permit = sender.reserve(), if sendable => match permit {
                Ok(permit) => {
                    permit.send(Ok(std::mem::take(&mut batch)));
                    due = None;
                }
                Err(_) => return Ended::ReceiverGone,
            },
            () = tokio::time::sleep_until(due.unwrap_or(now)), if pending && !sendable => {}
            // A projection that stopped must not keep its subscription open until shutdown.
            () = sender.closed() => return Ended::ReceiverGone,
        }
    }
}

fn is_empty(batch: &Batch) -> bool {
    batch.events.is_empty() && batch.checkpoint.is_none() && !batch.caught_up
}

/// Sends the pending batch, if it holds anything; false when the receiver is gone.
async fn flush(batch: &mut Batch, sender: &mpsc::Sender<anyhow::Result<Batch>>) -> bool {
    if is_empty(batch) {
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

    /// A batcher fed by hand, sending into a channel of `capacity` batches.
    fn fed(
        options: BatchOptions,
        capacity: usize,
    ) -> (
        mpsc::Sender<Result<SourceItem, SourceError>>,
        mpsc::Receiver<anyhow::Result<Batch>>,
    ) {
        let (item_sender, item_receiver) = mpsc::channel(1000);
        let subscription: Subscription = Box::pin(tokio_stream_from(item_receiver));
        let (sender, receiver) = mpsc::channel(capacity);
        tokio::spawn(async move { batches(subscription, options, &sender).await });
        (item_sender, receiver)
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_projection_gets_a_lone_event_at_once() {
        let (items, mut receiver) = fed(BatchOptions::default(), 1);
        let started = Instant::now();
        items.send(Ok(SourceItem::Event(event(1)))).await.unwrap();
        let batch = receiver.recv().await.unwrap().unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn max_wait_lingers_for_more_events() {
        let options = BatchOptions {
            max_events: 100,
            max_wait: Duration::from_millis(20),
        };
        let (items, mut receiver) = fed(options, 1);
        let started = Instant::now();
        items.send(Ok(SourceItem::Event(event(1)))).await.unwrap();
        items.send(Ok(SourceItem::Event(event(2)))).await.unwrap();
        let batch = receiver.recv().await.unwrap().unwrap();
        assert_eq!(batch.events.len(), 2);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn batches_grow_while_the_projection_is_busy() {
        let (items, mut receiver) = fed(BatchOptions::default(), 1);
        items.send(Ok(SourceItem::Event(event(1)))).await.unwrap();
        // The first batch waits in the channel, unread: the projection is busy.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for position in 2..=11 {
            items
                .send(Ok(SourceItem::Event(event(position))))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(receiver.recv().await.unwrap().unwrap().events.len(), 1);
        let second = receiver.recv().await.unwrap().unwrap();
        assert_eq!(second.events.len(), 10);
        assert_eq!(second.checkpoint, Some(Position::at(11)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_checkpoint_waits_before_it_is_stored() {
        let (items, mut receiver) = fed(BatchOptions::default(), 1);
        let started = Instant::now();
        items
            .send(Ok(SourceItem::Checkpoint(Position::at(5))))
            .await
            .unwrap();
        let batch = receiver.recv().await.unwrap().unwrap();
        assert!(batch.events.is_empty());
        assert_eq!(batch.checkpoint, Some(Position::at(5)));
        assert!(started.elapsed() >= CHECKPOINT_WAIT);
    }

    #[tokio::test]
    async fn a_failure_ends_after_what_came_before_is_sent() {
        let subscription: Subscription = Box::pin(futures::stream::iter([
            Ok(SourceItem::Event(event(1))),
            Err(SourceError::Interrupted(anyhow::anyhow!("gone"))),
        ]));
        let (sender, mut receiver) = mpsc::channel(10);
        let ended = batches(subscription, BatchOptions::default(), &sender).await;
        assert!(matches!(ended, Ended::Failed(SourceError::Interrupted(_))));
        assert_eq!(receiver.recv().await.unwrap().unwrap().events.len(), 1);
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut receiver: mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Send {
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
