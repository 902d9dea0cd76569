//! The in-memory index over the log: every event by position, and every stream's revisions.
//!
//! The index is rebuilt by replaying the log at start-up ([`Index::apply`] is the only way in),
//! so everything it knows about deletion and truncation is derived from events that are in the
//! log: `$metadata` events in `$$<stream>` streams and `$streamDeleted` tombstones.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::event::{
    METADATA_EVENT_TYPE, RecordedEvent, TOMBSTONE_EVENT_TYPE, metadata_target, now_ticks,
};

/// `created` ticks (100 ns) in a second.
const TICKS_PER_SECOND: u64 = 10_000_000;

/// The `$tb` (truncate before) value that marks a soft-deleted stream.
pub const SOFT_DELETED_TRUNCATE_BEFORE: u64 = i64::MAX as u64;

/// All events in log order plus a per-stream view.
#[derive(Debug, Default)]
pub struct Index {
    /// `events[p - 1]` is the event at log position `p`.
    events: Vec<Arc<RecordedEvent>>,
    /// Every stream that has events or metadata, by name.
    streams: HashMap<Arc<str>, StreamEntry>,
}

/// What the index knows about one stream.
#[derive(Debug, Default)]
pub struct StreamEntry {
    /// Log position of each revision: `revisions[r]` is revision `r`.
    revisions: Vec<u64>,
    /// Latest metadata object from `$$<stream>`, kept so deletes can rewrite it.
    metadata: Map<String, Value>,
    /// Revisions below this are hidden (`$tb`); [`SOFT_DELETED_TRUNCATE_BEFORE`] = soft-deleted.
    truncate_before: u64,
    /// Only the newest `$maxCount` revisions are visible.
    max_count: Option<u64>,
    /// Only revisions written in the last `$maxAge` seconds are visible.
    max_age: Option<u64>,
    /// Log position of the `$streamDeleted` tombstone, once written: the stream can never be
    /// used again.
    tombstone: Option<u64>,
}

/// A stream's state as expected-revision checks and reads see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// No event was ever written.
    Missing,
    /// Has events; `last` is the newest revision.
    Live { last: u64 },
    /// Soft-deleted; `last` is the newest revision before the delete, if any.
    SoftDeleted { last: Option<u64> },
    /// Hard-deleted.
    Tombstoned,
}

impl Index {
    /// Position of the newest event, 0 when the log is empty.
    pub fn head(&self) -> u64 {
        self.events.len() as u64
    }

    /// The event at `position`, if any.
    pub fn event(&self, position: u64) -> Option<&Arc<RecordedEvent>> {
        let slot = usize::try_from(position.checked_sub(1)?).ok()?;
        self.events.get(slot)
    }

    /// The shared name of a stream the index already knows, so records don't duplicate it.
    pub fn stream_name(&self, stream: &str) -> Arc<str> {
        match self.streams.get_key_value(stream) {
            Some((name, _)) => name.clone(),
            None => Arc::from(stream),
        }
    }

    /// What the index knows about `stream`.
    pub fn stream(&self, stream: &str) -> Option<&StreamEntry> {
        self.streams.get(stream)
    }

    /// The oldest revision of `entry` that reads and subscriptions show now: past its `$tb`, its
    /// newest `$maxCount`, and written within its `$maxAge` seconds (events are written in
    /// time order, so the expired ones are a prefix).
    pub fn first_visible(&self, entry: &StreamEntry) -> u64 {
        let kept = entry.first_kept();
        let Some(max_age) = entry.max_age else {
            return kept;
        };
        let window = i64::try_from(max_age.saturating_mul(TICKS_PER_SECOND)).unwrap_or(i64::MAX);
        let cutoff = now_ticks().saturating_sub(window);
        let expired = entry.revisions.partition_point(|&position| {
            self.event(position)
                .is_some_and(|event| event.created < cutoff)
        });
        kept.max(expired as u64)
    }

    /// The state of `stream`, [`StreamState::Missing`] if it is unknown.
    pub fn stream_state(&self, stream: &str) -> StreamState {
        self.stream(stream)
            .map_or(StreamState::Missing, StreamEntry::state)
    }

    /// Up to `limit` events with position ≥ `from`, oldest first.
    pub fn all_forward(&self, from: u64, limit: usize) -> Vec<Arc<RecordedEvent>> {
        let start = usize::try_from(from.max(1) - 1).unwrap_or(usize::MAX);
        let start = start.min(self.events.len());
        let end = start.saturating_add(limit).min(self.events.len());
        self.events[start..end].to_vec()
    }

    /// Up to `limit` events with position < `before`, newest first.
    pub fn all_backward(&self, before: u64, limit: usize) -> Vec<Arc<RecordedEvent>> {
        let end = usize::try_from(before.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(self.events.len());
        let start = end.saturating_sub(limit);
        self.events[start..end].iter().rev().cloned().collect()
    }

    /// Adds the next event of the log; positions must arrive in order without gaps.
    pub fn apply(&mut self, event: RecordedEvent) -> Arc<RecordedEvent> {
        debug_assert_eq!(
            event.position,
            self.head() + 1,
            "log positions must be contiguous"
        );
        let event = Arc::new(event);
        let entry = self.streams.entry(event.stream.clone()).or_default();
        if event.event_type == TOMBSTONE_EVENT_TYPE {
            entry.tombstone = Some(event.position);
        } else {
            entry.revisions.push(event.position);
        }
        if event.event_type == METADATA_EVENT_TYPE
            && let Some(target) = metadata_target(&event.stream)
        {
            let target = self.stream_name(target);
            self.streams
                .entry(target)
                .or_default()
                .set_metadata(&event.data);
        }
        self.events.push(event.clone());
        event
    }
}

impl StreamEntry {
    /// The stream's state.
    pub fn state(&self) -> StreamState {
        let last = self.last_revision();
        if self.tombstone.is_some() {
            StreamState::Tombstoned
        } else if self.truncate_before == SOFT_DELETED_TRUNCATE_BEFORE {
            StreamState::SoftDeleted { last }
        } else {
            last.map_or(StreamState::Missing, |last| StreamState::Live { last })
        }
    }

    /// Log position of the tombstone, if the stream was hard-deleted.
    pub fn tombstone_position(&self) -> Option<u64> {
        self.tombstone
    }

    /// Newest revision ever written, hidden or not.
    pub fn last_revision(&self) -> Option<u64> {
        (self.revisions.len() as u64).checked_sub(1)
    }

    /// Oldest revision that `$tb` and `$maxCount` leave visible (`Index::first_visible` adds
    /// `$maxAge`, which needs the events' times).
    fn first_kept(&self) -> u64 {
        let len = self.revisions.len() as u64;
        let by_count = self.max_count.map_or(0, |max| len.saturating_sub(max));
        self.truncate_before.max(by_count)
    }

    /// Log positions of up to `limit` revisions ≥ `from` and ≥ `first_visible`, oldest first.
    pub fn forward(&self, from: u64, first_visible: u64, limit: usize) -> Vec<u64> {
        let start = from.max(first_visible);
        let start = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .min(self.revisions.len());
        let end = start.saturating_add(limit).min(self.revisions.len());
        self.revisions[start..end].to_vec()
    }

    /// Log positions of up to `limit` revisions ≤ `from` and ≥ `first_visible`, newest first.
    pub fn backward(&self, from: u64, first_visible: u64, limit: usize) -> Vec<u64> {
        let first = usize::try_from(first_visible).unwrap_or(usize::MAX);
        let end = usize::try_from(from.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(self.revisions.len());
        if end <= first {
            return Vec::new();
        }
        let start = end.saturating_sub(limit).max(first);
        self.revisions[start..end].iter().rev().copied().collect()
    }

    /// The latest metadata object (empty if none was set).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// Takes in a new `$metadata` payload. Invalid JSON counts as "no metadata", as a stream
    /// without settings is the safest reading of it.
    fn set_metadata(&mut self, data: &[u8]) {
        self.metadata = match serde_json::from_slice::<Value>(data) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        self.truncate_before = self
            .metadata
            .get("$tb")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        self.max_count = self.metadata.get("$maxCount").and_then(Value::as_u64);
        self.max_age = self.metadata.get("$maxAge").and_then(Value::as_u64);
    }
}
