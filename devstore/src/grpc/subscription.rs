//! `Streams/Read` in subscription mode: confirmation, catch-up, `caught_up`, then live events.
//!
//! There is no separate live path: a subscription always reads the store after its cursor, and
//! when there is nothing left it waits for the store's head position to move. It marks the head
//! as seen *before* each read, so an append that lands between the read and the wait still wakes
//! it, and because it only ever reads after its own cursor, it can neither skip nor repeat an
//! event. A slow client just keeps reading from the store ("catching up") at its own pace, and a
//! scan whose filter matches nothing yields under a [`ScanBudget`] rather than hold its thread
//! (it considers headers, and loads only the events that pass).
//!
//! Access is checked again before each page is read: an ACL or `$settings` change that takes
//! the caller's read access away ends the subscription with access denied, as the real server
//! drops its subscriptions when their stream's metadata or the settings change.

use prost_types::Timestamp;

use super::access::{self, ALL_STREAM, Caller, Operation};
use super::convert::UuidFormat;
use super::filter::{EventFilter, passes};
use super::read::{PAGE, events, send, send_events, stream_page};
use super::read_request::StartAt;
use super::scan_budget::ScanBudget;
use super::sink::{Sink, Stop};
use super::status;
use crate::proto::streams::ReadResp;
use crate::proto::streams::read_resp::{
    self, CaughtUp, Checkpoint, Content, SubscriptionConfirmation,
};
use crate::store::{Direction, Store, StreamState};

/// A subscription to `$all`.
pub struct AllSubscription {
    pub start: StartAt,
    pub filter: Option<EventFilter>,
    pub uuid_format: UuidFormat,
    /// Must keep read access to `$all`.
    pub caller: Caller,
}

/// A subscription to one stream.
pub struct StreamSubscription {
    pub stream: String,
    pub start: StartAt,
    pub uuid_format: UuidFormat,
    /// Must keep read access to `stream`.
    pub caller: Caller,
}

impl AllSubscription {
    /// Runs until the client leaves or the server stops; never ends successfully.
    pub async fn run(self, store: Store, mut sink: Sink<ReadResp>) -> Result<(), Stop> {
        let mut head = store.watch_head();
        confirm(&mut sink).await?;
        // Events after `cursor` are still to be considered (sent if they pass the filter).
        let mut cursor = match self.start {
            StartAt::Beginning => 0,
            StartAt::Exactly(position) => position,
            StartAt::End => *head.borrow_and_update(),
        };
        let mut checkpoints = self
            .filter
            .as_ref()
            .map(|filter| Checkpoints::new(filter.checkpoint_interval));
        let mut caught_up = false;
        let mut budget = ScanBudget::default();
        loop {
            head.borrow_and_update();
            if let Err(denied) = access::check(&store, &self.caller, ALL_STREAM, Operation::Read) {
                return Err(sink.fail(denied).await);
            }
            let headers = store.all_headers(cursor + 1, Direction::Forwards, PAGE);
            let Some(last) = headers.last() else {
                if !caught_up {
                    caught_up = true;
                    let existing = cursor.min(store.head());
                    if let Some(checkpoints) = &mut checkpoints {
                        // Always a checkpoint when catch-up ends, so that a filtered subscriber
                        // that matched nothing still learns how far it got.
                        checkpoints.send(&mut sink, existing).await?;
                    }
                    let position = (existing > 0).then_some(read_resp::Position {
                        commit_position: existing,
                        prepare_position: existing,
                    });
                    let caught_up = CaughtUp {
                        timestamp: Some(now()),
                        stream_revision: None,
                        position,
                    };
                    send(&mut sink, Content::CaughtUp(caught_up)).await?;
                }
                let _ = sink.wait(head.changed()).await?;
                continue;
            };
            cursor = last.position;
            let mut wanted = Vec::new();
            for header in &headers {
                budget.spend_one().await;
                match passes(self.filter.as_ref(), header) {
                    Ok(true) => wanted.push(header.position),
                    Ok(false) => {}
                    Err(error) => return Err(sink.fail(error).await),
                }
            }
            let page = events(&store, &sink, &wanted).await?;
            // Checkpoints count every considered event, so walk the headers again and send
            // each loaded event at its place among them.
            let mut page = page.iter().peekable();
            for header in &headers {
                if let Some(event) = page.next_if(|event| event.position == header.position) {
                    send_events(&mut sink, std::slice::from_ref(event), self.uuid_format).await?;
                }
                if let Some(checkpoints) = &mut checkpoints {
                    checkpoints.considered(&mut sink, header.position).await?;
                }
            }
        }
    }
}

impl StreamSubscription {
    /// Runs until the client leaves, the server stops or the stream is tombstoned.
    pub async fn run(self, store: Store, mut sink: Sink<ReadResp>) -> Result<(), Stop> {
        let mut head = store.watch_head();
        confirm(&mut sink).await?;
        // The next revision to send.
        let mut next = match self.start {
            StartAt::Beginning => 0,
            StartAt::Exactly(revision) => revision.saturating_add(1),
            StartAt::End => {
                head.borrow_and_update();
                store.last_revision(&self.stream).map_or(0, |last| last + 1)
            }
        };
        let mut caught_up = false;
        loop {
            head.borrow_and_update();
            if let Err(denied) = access::check(&store, &self.caller, &self.stream, Operation::Read)
            {
                return Err(sink.fail(denied).await);
            }
            let page =
                stream_page(&store, &sink, &self.stream, next, Direction::Forwards, PAGE).await?;
            let (page, tombstone) = match page {
                None => (Vec::new(), None),
                Some(page) => {
                    let tombstone = page
                        .tombstone
                        .filter(|_| page.state == StreamState::Tombstoned);
                    (page.events, tombstone)
                }
            };
            if let Some(last) = page.last() {
                next = last.revision + 1;
                send_events(&mut sink, &page, self.uuid_format).await?;
                continue;
            }
            if let Some(tombstone) = tombstone {
                send_events(&mut sink, &[tombstone], self.uuid_format).await?;
                return Err(sink.fail(status::stream_deleted(&self.stream)).await);
            }
            if !caught_up {
                caught_up = true;
                let stream_revision = next.checked_sub(1).map(|revision| revision as i64);
                let caught_up = CaughtUp {
                    timestamp: Some(now()),
                    stream_revision,
                    position: None,
                };
                send(&mut sink, Content::CaughtUp(caught_up)).await?;
            }
            let _ = sink.wait(head.changed()).await?;
        }
    }
}

/// Counts considered events of a filtered subscription and emits a checkpoint every
/// `interval` of them, never twice for the same position and never going backwards.
struct Checkpoints {
    interval: u64,
    considered: u64,
    last_sent: u64,
}

impl Checkpoints {
    fn new(interval: u64) -> Checkpoints {
        Checkpoints {
            interval,
            considered: 0,
            last_sent: 0,
        }
    }

    async fn considered(&mut self, sink: &mut Sink<ReadResp>, position: u64) -> Result<(), Stop> {
        self.considered += 1;
        if self.considered >= self.interval {
            self.considered = 0;
            self.send(sink, position).await?;
        }
        Ok(())
    }

    async fn send(&mut self, sink: &mut Sink<ReadResp>, position: u64) -> Result<(), Stop> {
        if position == 0 || position <= self.last_sent {
            return Ok(());
        }
        self.last_sent = position;
        let checkpoint = Checkpoint {
            commit_position: position,
            prepare_position: position,
            timestamp: Some(now()),
        };
        send(sink, Content::Checkpoint(checkpoint)).await
    }
}

/// The first message of every subscription.
async fn confirm(sink: &mut Sink<ReadResp>) -> Result<(), Stop> {
    let subscription_id = uuid::Uuid::new_v4().to_string();
    send(
        sink,
        Content::Confirmation(SubscriptionConfirmation { subscription_id }),
    )
    .await
}

fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}
