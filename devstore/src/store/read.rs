//! The read side of the log: pages of events for every caller outside the store.
//!
//! Callers never hold the index lock: each method takes it once, copies what was asked for and
//! lets go, so a slow client never blocks a writer. What the page needs and memory does not
//! hold (with a data directory: everything older than the newest events) is then read from
//! SQLite in one query, on a blocking thread, with the lock released. Keeping every read behind
//! these methods is what lets the store decide where payloads live.
//!
//! `$all` is read in two steps, headers first ([`Store::all_headers`], from memory) and then the
//! events wanted ([`Store::events`]), so a filtered scan loads only the payloads of the events
//! its filter passes.
//!
//! Pages are not read ahead: on the 2-core machine a catch-up that read the next page from
//! SQLite while sending this one was no faster (docs/BENCHMARKS.md), as the reading, the
//! sending and the client already keep both cores busy.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use super::event::{EventHeader, RecordedEvent};
use super::stream::StreamState;
use super::{Log, Store};

/// Which way a read walks the log or a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forwards,
    /// Newest first.
    Backwards,
}

/// A page of one stream's visible events, with what the stream's state was when it was read.
#[derive(Debug)]
pub struct StreamPage {
    /// Up to the asked-for number of visible events, in the asked-for direction.
    pub events: Vec<Arc<RecordedEvent>>,
    /// The stream's state.
    pub state: StreamState,
    /// The oldest revision reads show now (`$tb`, `$maxCount`, `$maxAge`).
    pub first_visible: u64,
    /// The `$streamDeleted` record, when the stream was tombstoned.
    pub tombstone: Option<Arc<RecordedEvent>>,
}

/// An event a page needs, as the lock-holding step found it.
enum Slot {
    /// Held in memory.
    Held(Arc<RecordedEvent>),
    /// Only in SQLite: to be read after the lock is released.
    Stored(EventHeader),
}

impl Store {
    /// Position of the newest event, 0 when the log is empty.
    pub fn head(&self) -> u64 {
        self.log().index.head()
    }

    /// The state of `stream`.
    pub fn stream_state(&self, stream: &str) -> StreamState {
        self.log().index.stream_state(stream)
    }

    /// The newest revision of `stream` ever written, hidden or not.
    pub fn last_revision(&self, stream: &str) -> Option<u64> {
        self.log()
            .index
            .stream(stream)
            .and_then(|entry| entry.last_revision())
    }

    /// The latest metadata object of `stream` (the `$metadata` event of `$$<stream>`), empty
    /// when it has none; `$all`'s is the one in `$$$all`.
    pub fn metadata(&self, stream: &str) -> Map<String, Value> {
        self.log()
            .index
            .stream(stream)
            .and_then(|entry| entry.metadata().cloned())
            .unwrap_or_default()
    }

    /// The payload of the newest `$settings` event (the system settings), if any; held in
    /// memory, so access checks never wait on SQLite.
    pub fn settings(&self) -> Option<Arc<[u8]>> {
        self.log().index.settings()
    }

    /// The headers of up to `limit` events of `$all`: forwards those at or after `from`,
    /// backwards those before it. Read from memory only; [`Store::events`] loads the events.
    pub fn all_headers(&self, from: u64, direction: Direction, limit: usize) -> Vec<EventHeader> {
        let log = self.log();
        let index = &log.index;
        match direction {
            Direction::Forwards => index
                .forward(from, limit)
                .filter_map(|position| index.header(position))
                .collect(),
            Direction::Backwards => index
                .backward(from, limit)
                .rev()
                .filter_map(|position| index.header(position))
                .collect(),
        }
    }

    /// The events at `positions` (distinct positions from [`Store::all_headers`]), in the same
    /// order.
    pub async fn events(&self, positions: &[u64]) -> anyhow::Result<Vec<Arc<RecordedEvent>>> {
        self.fill(self.slots(positions)).await
    }

    /// Up to `limit` visible events of `stream`: forwards those at or after revision `from`,
    /// backwards those at or before it. None when the stream is unknown.
    pub async fn stream_page(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> anyhow::Result<Option<StreamPage>> {
        let (slots, state, first_visible, tombstoned) = {
            let log = self.log();
            let Some(entry) = log.index.stream(stream) else {
                return Ok(None);
            };
            let first_visible = log.index.first_visible(entry);
            let positions = match direction {
                Direction::Forwards => entry.forward(from, first_visible, limit),
                Direction::Backwards => entry.backward(from, first_visible, limit),
            };
            let tombstone = entry.tombstone_position();
            // The tombstone rides along as the last slot.
            let slots: Vec<Slot> = positions
                .into_iter()
                .chain(tombstone)
                .filter_map(|position| log.slot(position))
                .collect();
            (slots, entry.state(), first_visible, tombstone.is_some())
        };
        let mut events = self.fill(slots).await?;
        let tombstone = if tombstoned { events.pop() } else { None };
        Ok(Some(StreamPage {
            events,
            state,
            first_visible,
            tombstone,
        }))
    }

    /// The slots of `positions` that the log holds, taken under one short read lock.
    fn slots(&self, positions: &[u64]) -> Vec<Slot> {
        let log = self.log();
        positions
            .iter()
            .filter_map(|&position| log.slot(position))
            .collect()
    }

    /// The events of `slots`, in order: the held ones as they are, the stored ones read from
    /// SQLite with one query on a blocking thread.
    async fn fill(&self, slots: Vec<Slot>) -> anyhow::Result<Vec<Arc<RecordedEvent>>> {
        let (events, stored) = split(slots);
        let loaded = if stored.is_empty() {
            Vec::new()
        } else {
            self.spawn_load(stored)
                .await
                .context("read task failed")??
        };
        Ok(merge(events, loaded))
    }

    /// The events at `positions` (all at most the head), reading stored ones on the calling
    /// thread: for the write path, which runs on a blocking thread.
    pub(super) fn events_blocking(
        &self,
        positions: &[u64],
    ) -> anyhow::Result<Vec<Arc<RecordedEvent>>> {
        let (events, stored) = split(self.slots(positions));
        let loaded = if stored.is_empty() {
            Vec::new()
        } else {
            self.load_here(stored)?
        };
        Ok(merge(events, loaded))
    }

    /// Reads `stored` from SQLite on a blocking thread.
    fn spawn_load(
        &self,
        stored: Vec<EventHeader>,
    ) -> JoinHandle<anyhow::Result<Vec<RecordedEvent>>> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.load_here(stored))
    }

    /// Reads `stored` (not empty) from SQLite on the calling thread.
    fn load_here(&self, stored: Vec<EventHeader>) -> anyhow::Result<Vec<RecordedEvent>> {
        match &self.shared.readers {
            Some(readers) => readers.load(stored),
            // In memory every event is held, so this is a bug, not a state of the log.
            None => Err(anyhow!(
                "the event at position {} is not held",
                stored[0].position
            )),
        }
    }
}

/// Splits `slots` into the page with holes where stored events go, and those stored events.
fn split(slots: Vec<Slot>) -> (Vec<Option<Arc<RecordedEvent>>>, Vec<EventHeader>) {
    let mut events = Vec::with_capacity(slots.len());
    let mut stored = Vec::new();
    for slot in slots {
        match slot {
            Slot::Held(event) => events.push(Some(event)),
            Slot::Stored(header) => {
                events.push(None);
                stored.push(header);
            }
        }
    }
    (events, stored)
}

/// Fills the holes of `events` with `loaded`, in order.
fn merge(
    events: Vec<Option<Arc<RecordedEvent>>>,
    loaded: Vec<RecordedEvent>,
) -> Vec<Arc<RecordedEvent>> {
    let mut loaded = loaded.into_iter().map(Arc::new);
    events
        .into_iter()
        .filter_map(|event| event.or_else(|| loaded.next()))
        .collect()
}

impl Log {
    /// What a page needs for the event at `position`, if there is one.
    fn slot(&self, position: u64) -> Option<Slot> {
        match self.recent.get(position) {
            Some(event) => Some(Slot::Held(event.clone())),
            None => self.index.header(position).map(Slot::Stored),
        }
    }
}
