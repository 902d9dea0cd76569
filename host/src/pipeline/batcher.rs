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
    /// Most bytes of events in one batch (see [`event_bytes`]): a batch is copied into the
    /// plugin's memory whole, so a batch of large events must be cut before it could exhaust
    /// it. An event larger than this goes alone.
    pub max_bytes: usize,
    /// How long a batch lingers for more events after its first one even when the projection
    /// is idle. Zero (the default) sends at once: lowest latency, and batches still fill up
    /// whenever the projection is busy.
    pub max_wait: Duration,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions {
            max_events: 500,
            max_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_wait: Duration::ZERO,
        }
    }
}

/// Default bound on a batch's bytes: a quarter of the default plugin memory (64 MiB), since the
/// plugin holds the batch as it arrives and as it decodes it.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 16 << 20;

/// What an event weighs in a batch: its payloads and names, and a little for the rest.
pub fn event_bytes(event: &RecordedEvent) -> usize {
    event.data.len()
        + event.metadata.len()
        + event.stream_id.len()
        + event.event_type.len()
        + event.event_id.len()
        + event.content_type.len()
        + 64
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
    let mut batch_bytes = 0usize;
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
                    let bytes = event_bytes(&event);
                    // Full by bytes: what is pending goes first (its checkpoint stops before
                    // this event, which starts the next batch).
                    if !batch.events.is_empty() && batch_bytes + bytes > options.max_bytes {
                        if !flush(&mut batch, sender).await {
                            return Ended::ReceiverGone;
                        }
                        batch_bytes = 0;
                        due = None;
                    }
                    batch_bytes += bytes;
                    batch.checkpoint = batch.checkpoint.max(Some(event.position));
                    batch.events.push(event);
                    let at = Instant::now() + options.max_wait;
                    due = Some(due.map_or(at, |due| due.min(at)));
                    if batch.events.len() >= options.max_events || batch_bytes >= options.max_bytes {
                        if !flush(&mut batch, sender).await {
                            return Ended::ReceiverGone;
                        }
                        batch_bytes = 0;
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
                    batch_bytes = 0;
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
        let options = BatchOptions {
            max_events,
            max_wait: Duration::from_secs(60),
            ..BatchOptions::default()
        };
        collect_with(items, options).await
    }

    async fn collect_with(items: Vec<SourceItem>, options: BatchOptions) -> Vec<Batch> {
        let subscription: Subscription = Box::pin(futures::stream::iter(items.into_iter().map(Ok)));
        let (sender, mut receiver) = mpsc::channel(100);
        let ended = batches(subscription, options, &sender).await;
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

    /// Large events cut batches by bytes before their count does, each batch's checkpoint
    /// stopping at its own last event; an event over the bound goes alone.
    #[tokio::test]
    async fn cuts_batches_by_bytes() {
        let sized = |position: u64, bytes: usize| {
            let mut event = event(position);
            event.data = vec![b'x'; bytes];
            SourceItem::Event(event)
        };
        let items = vec![
            sized(1, 400),
            sized(2, 400),
            sized(3, 400),
            sized(4, 5000),
            sized(5, 10),
        ];
        let options = BatchOptions {
            max_events: 100,
            max_bytes: 1000,
            max_wait: Duration::from_secs(60),
        };
        let batches = collect_with(items, options).await;
        let cut: Vec<Vec<u64>> = batches
            .iter()
            .map(|b| b.events.iter().map(|e| e.position.commit).collect())
            .collect();
        assert_eq!(cut, vec![vec![1, 2], vec![3], vec![4], vec![5]]);
        assert_eq!(batches[0].checkpoint, Some(Position::at(2)));
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
            ..BatchOptions::default()
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
