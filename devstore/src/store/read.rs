//! The read side of the log: pages of events copied out of the index, for every caller
//! outside the store.
//!
//! Callers never hold the index lock: each method takes it once, copies what was asked for and
//! lets go, so a slow client never blocks a writer. Keeping every read behind these methods is
//! also what lets the index decide where payloads live.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Store;
use super::event::RecordedEvent;
use super::index::StreamState;

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

impl Store {
    /// Position of the newest event, 0 when the log is empty.
    pub fn head(&self) -> u64 {
        self.read().head()
    }

    /// The state of `stream`.
    pub fn stream_state(&self, stream: &str) -> StreamState {
        self.read().stream_state(stream)
    }

    /// The newest revision of `stream` ever written, hidden or not.
    pub fn last_revision(&self, stream: &str) -> Option<u64> {
        self.read()
            .stream(stream)
            .and_then(|entry| entry.last_revision())
    }

    /// The latest metadata object of `stream` (the `$metadata` event of `$$<stream>`), empty
    /// when it has none; `$all`'s is the one in `$$$all`.
    pub fn metadata(&self, stream: &str) -> Map<String, Value> {
        self.read()
            .stream(stream)
            .map(|entry| entry.metadata().clone())
            .unwrap_or_default()
    }

    /// Up to `limit` events of `$all`: forwards those at or after `from`, backwards those
    /// before it.
    pub fn all_page(
        &self,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Vec<Arc<RecordedEvent>> {
        let index = self.read();
        match direction {
            Direction::Forwards => index.all_forward(from, limit),
            Direction::Backwards => index.all_backward(from, limit),
        }
    }

    /// Up to `limit` visible events of `stream`: forwards those at or after revision `from`,
    /// backwards those at or before it. None when the stream is unknown.
    pub fn stream_page(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Option<StreamPage> {
        let index = self.read();
        let entry = index.stream(stream)?;
        let first_visible = index.first_visible(entry);
        let positions = match direction {
            Direction::Forwards => entry.forward(from, first_visible, limit),
            Direction::Backwards => entry.backward(from, first_visible, limit),
        };
        let events = positions
            .into_iter()
            .filter_map(|position| index.event(position).cloned())
            .collect();
        let tombstone = entry
            .tombstone_position()
            .and_then(|position| index.event(position).cloned());
        Some(StreamPage {
            events,
            state: entry.state(),
            first_visible,
            tombstone,
        })
    }
}
