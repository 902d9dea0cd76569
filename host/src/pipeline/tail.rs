//! The log's tail: one live subscription per process, from the head at start-up on, that
//! remembers the events appended since (their position, time, stream and type, never their
//! payload). It answers what a projection's position alone cannot:
//!
//! - how many events its filter selects lie past its position (lag in events), and how long
//!   the oldest of them has waited (lag in seconds);
//! - whether a position has been reached with nothing left for it to project (a query's
//!   `min_position`), which a projection whose filter skips the last events never shows by its
//!   own position.
//!
//! The window is bounded ([`WINDOW`] events); a position before it is answered by an estimate,
//! flagged as such. Events are counted whether or not any projection wants them, so the same
//! window serves every filter.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use super::feed::Backoff;
use crate::event::{EventFilter, Position};
use crate::source::{EventSource, SourceItem};

/// Events the tail remembers; at about 80 bytes each, a few MiB.
pub const WINDOW: usize = 65_536;

/// Bytes of stream names and event types the tail keeps at most: names are the event store's
/// to choose, so the window is bounded in bytes too.
const WINDOW_NAME_BYTES: usize = 16 << 20;

/// How long the head query at start-up may take before the tail starts without it.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// One event seen.
#[derive(Debug)]
struct Seen {
    commit: u64,
    created_unix_ms: i64,
    stream_id: Box<str>,
    event_type: Box<str>,
}

/// What the tail knows.
#[derive(Debug, Default)]
struct Known {
    /// Every event after this position is in `seen` (or was dropped off its front, which moves
    /// this forward); `None` until the head is known.
    complete_after: Option<u64>,
    /// The furthest position known to be in the log: the head at start, then the last event or
    /// checkpoint the subscription yielded.
    reached: Option<u64>,
    /// When the last event of the log was written, when the tail has seen it.
    head_created_unix_ms: Option<i64>,
    seen: VecDeque<Seen>,
    /// Bytes of the names in `seen`.
    name_bytes: usize,
    /// Why the subscription is down, if it is.
    error: Option<String>,
}

/// How far a projection is behind the log.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Behind {
    /// Events its filter selects past its position.
    pub events: Option<u64>,
    /// Whether `events` is a count (the position is inside the window) or an estimate.
    pub exact: bool,
    /// When the oldest of those events was written (Unix ms), when it is in the window.
    pub oldest_waiting_unix_ms: Option<i64>,
}

/// The log's tail; cheap to clone. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Tail {
    known: Arc<Mutex<Known>>,
    /// The task following the log, to end it before the source goes away.
    follower: Arc<Mutex<Option<tokio::task::AbortHandle>>>,
}

impl Tail {
    /// Starts following `source` from its head; the task ends when the source does (a file)
    /// and reconnects with `backoff` when it breaks.
    pub fn start(source: Arc<dyn EventSource>, backoff: Backoff) -> Tail {
        let tail = Tail::default();
        let follower = tail.clone();
        let task = tokio::spawn(async move { follower.follow(source, backoff).await });
        *tail.follower.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        tail
    }

    /// Stops following the log: before the source shuts down, so its subscription does not end
    /// in an error.
    pub fn stop(&self) {
        if let Some(task) = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }

    async fn follow(self, source: Arc<dyn EventSource>, backoff: Backoff) {
        let mut failures = 0u32;
        loop {
            match tokio::time::timeout(HEAD_TIMEOUT, source.head()).await {
                Ok(Ok(head)) => {
                    let head = head.map_or(0, |h| h.commit);
                    let mut known = self.lock();
                    known.complete_after = Some(head);
                    known.reached = Some(head);
                    break;
                }
                Ok(Err(error)) => self.lock().error = Some(format!("{error:#}")),
                Err(_) => {
                    self.lock().error = Some("the source did not say where its head is".into())
                }
            }
            tokio::time::sleep(backoff.delay(failures)).await;
            failures = failures.saturating_add(1);
        }
        let mut failures = 0u32;
        loop {
            let after = self.lock().reached.map(Position::at);
            let mut subscription = source.subscribe(after, &EventFilter::default());
            let mut heard = false;
            while let Some(item) = subscription.next().await {
                match item {
                    Ok(item) => {
                        heard = true;
                        self.take(item);
                    }
                    Err(error) => {
                        self.lock().error = Some(format!("{error:#}"));
                        break;
                    }
                }
            }
            if source.is_finite() {
                return;
            }
            if heard {
                failures = 0;
            }
            tokio::time::sleep(backoff.delay(failures)).await;
            failures = failures.saturating_add(1);
        }
    }

    /// Takes in one item of the subscription.
    fn take(&self, item: SourceItem) {
        let mut known = self.lock();
        known.error = None;
        match item {
            SourceItem::Event(event) => {
                let commit = event.position.commit;
                if known.reached.is_some_and(|r| commit <= r) {
                    return;
                }
                known.reached = Some(commit);
                known.head_created_unix_ms = Some(event.created_unix_ms);
                known.name_bytes += event.stream_id.len() + event.event_type.len();
                known.seen.push_back(Seen {
                    commit,
                    created_unix_ms: event.created_unix_ms,
                    stream_id: event.stream_id.into_boxed_str(),
                    event_type: event.event_type.into_boxed_str(),
                });
                while known.seen.len() > WINDOW || known.name_bytes > WINDOW_NAME_BYTES {
                    let Some(dropped) = known.seen.pop_front() else {
                        break;
                    };
                    known.name_bytes -= dropped.stream_id.len() + dropped.event_type.len();
                    known.complete_after = Some(dropped.commit);
                }
            }
            SourceItem::Checkpoint(position) => {
                if known.reached.is_none_or(|r| position.commit > r) {
                    known.reached = Some(position.commit);
                }
            }
            SourceItem::CaughtUp => {}
        }
    }

    /// The furthest position known to be in the log.
    pub fn head(&self) -> Option<u64> {
        self.lock().reached
    }

    /// When the last event of the log was written, if the tail has seen it.
    pub fn head_created_unix_ms(&self) -> Option<i64> {
        self.lock().head_created_unix_ms
    }

    /// Why the tail's subscription is down, if it is.
    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    /// How far a projection at `position` with `filter` is behind. `per_position` (events the
    /// projection met per unit of position, from its own progress) turns the stretch before
    /// the window into an estimate; without it, that stretch is unknown.
    pub fn behind(
        &self,
        position: Option<u64>,
        filter: &EventFilter,
        per_position: Option<f64>,
    ) -> Behind {
        let known = self.lock();
        let Some(complete_after) = known.complete_after else {
            return Behind::default();
        };
        let position = position.unwrap_or(0);
        let from = known.seen.partition_point(|s| s.commit <= position);
        let mut waiting = known
            .seen
            .range(from..)
            .filter(|s| filter.matches(&s.stream_id, &s.event_type));
        let oldest = waiting.next();
        let counted = u64::from(oldest.is_some()) + waiting.count() as u64;
        if position >= complete_after {
            return Behind {
                events: Some(counted),
                exact: true,
                oldest_waiting_unix_ms: oldest.map(|s| s.created_unix_ms),
            };
        }
        let before_window = (complete_after - position) as f64;
        Behind {
            events: per_position.map(|rate| counted + (before_window * rate).round() as u64),
            exact: false,
            oldest_waiting_unix_ms: None,
        }
    }

    /// Whether a projection at `position` with `filter` reflects everything up to `target`:
    /// its position is there, or the tail has reached `target` and nothing its filter selects
    /// lies between. `None` when the tail cannot tell (`position` is before its window).
    pub fn covers(&self, position: Option<u64>, filter: &EventFilter, target: u64) -> Option<bool> {
        let position = position.unwrap_or(0);
        if position >= target {
            return Some(true);
        }
        let known = self.lock();
        let complete_after = known.complete_after?;
        if position < complete_after {
            return None;
        }
        if known.reached.is_none_or(|r| r < target) {
            return Some(false);
        }
        let from = known.seen.partition_point(|s| s.commit <= position);
        let pending = known
            .seen
            .range(from..)
            .take_while(|s| s.commit <= target)
            .any(|s| filter.matches(&s.stream_id, &s.event_type));
        Some(!pending)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RecordedEvent;

    fn event(commit: u64, stream: &str, kind: &str, created: i64) -> SourceItem {
        SourceItem::Event(RecordedEvent {
            stream_id: stream.into(),
            stream_revision: 0,
            position: Position::at(commit),
            event_id: String::new(),
            event_type: kind.into(),
            content_type: String::new(),
            created_unix_ms: created,
            data: Vec::new(),
            metadata: Vec::new(),
        })
    }

    fn tail_from(head: u64) -> Tail {
        let tail = Tail::default();
        tail.lock().complete_after = Some(head);
        tail.lock().reached = Some(head);
        tail
    }

    #[test]
    fn lag_counts_what_the_filter_selects_past_the_position() {
        let tail = tail_from(100);
        tail.take(event(110, "order-1", "OrderCreated", 1_000));
        tail.take(event(120, "payment-1", "PaymentMade", 2_000));
        tail.take(event(130, "order-1", "OrderShipped", 3_000));
        let orders = EventFilter {
            stream_prefixes: vec!["order-".into()],
            ..EventFilter::default()
        };
        let behind = tail.behind(Some(100), &orders, None);
        assert_eq!(behind.events, Some(2));
        assert!(behind.exact);
        assert_eq!(behind.oldest_waiting_unix_ms, Some(1_000));
        let behind = tail.behind(Some(110), &orders, None);
        assert_eq!(
            (behind.events, behind.oldest_waiting_unix_ms),
            (Some(1), Some(3_000))
        );
        assert_eq!(tail.behind(Some(130), &orders, None).events, Some(0));
        // Before the window: an estimate from the projection's own rate, or nothing.
        let behind = tail.behind(Some(50), &orders, Some(0.1));
        assert_eq!((behind.events, behind.exact), (Some(2 + 5), false));
        assert_eq!(tail.behind(Some(50), &orders, None).events, None);
        assert_eq!(tail.head(), Some(130));
        assert_eq!(tail.head_created_unix_ms(), Some(3_000));
    }

    #[test]
    fn a_target_is_covered_when_nothing_selected_lies_before_it() {
        let tail = tail_from(100);
        tail.take(event(110, "order-1", "OrderCreated", 0));
        tail.take(event(120, "payment-1", "PaymentMade", 0));
        let orders = EventFilter {
            stream_prefixes: vec!["order-".into()],
            ..EventFilter::default()
        };
        assert_eq!(tail.covers(Some(100), &orders, 120), Some(false));
        // Its last event is 110; the payment at 120 is not its business.
        assert_eq!(tail.covers(Some(110), &orders, 120), Some(true));
        // Not reached yet: the event at 125 may be an order.
        assert_eq!(tail.covers(Some(110), &orders, 125), Some(false));
        tail.take(SourceItem::Checkpoint(Position::at(140)));
        assert_eq!(tail.covers(Some(110), &orders, 125), Some(true));
        assert_eq!(tail.covers(Some(50), &orders, 125), None);
        assert_eq!(tail.covers(Some(130), &orders, 125), Some(true));
    }

    #[test]
    fn the_window_is_bounded_in_bytes_too() {
        let tail = tail_from(0);
        let long = "s".repeat(1 << 20);
        for i in 1..=20 {
            tail.take(event(i, &long, "T", 0));
        }
        assert!(tail.lock().name_bytes <= WINDOW_NAME_BYTES);
        // 1 MiB and a byte each: 15 fit in 16 MiB.
        assert_eq!(tail.lock().seen.len(), 15);
        assert_eq!(tail.lock().complete_after, Some(5));
    }

    #[test]
    fn the_window_is_bounded() {
        let tail = tail_from(0);
        for i in 1..=(WINDOW as u64 + 10) {
            tail.take(event(i, "s", "T", 0));
        }
        assert_eq!(tail.lock().seen.len(), WINDOW);
        assert_eq!(tail.lock().complete_after, Some(10));
        assert!(!tail.behind(Some(5), &EventFilter::default(), None).exact);
        assert!(tail.behind(Some(10), &EventFilter::default(), None).exact);
    }
}
