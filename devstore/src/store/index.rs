//! The in-memory index over the log: for every position, which stream and event type it holds
//! and when it was written; for every stream, the positions of its revisions and its settings.
//!
//! It holds no payloads, so its size does not grow with them: per event a 16-byte [`Header`]
//! plus the 8-byte position in its stream's revision list, about 24 bytes, with names interned
//! once per distinct stream or event type. That is everything appends (expected-revision
//! checks), stream reads (`$tb`, `$maxCount`, `$maxAge`) and `$all` filters (stream name, event
//! type) need; the payloads are in [`super::recent::Recent`] or in SQLite.
//!
//! The index is rebuilt by replaying the log at start-up ([`Index::apply`] is the only way in),
//! so everything it knows about deletion and truncation is derived from events that are in the
//! log: `$metadata` events in `$$<stream>` streams and `$streamDeleted` tombstones.

use std::sync::Arc;

use super::event::{
    EventHeader, METADATA_EVENT_TYPE, SETTINGS_STREAM, TOMBSTONE_EVENT_TYPE, metadata_target,
    now_ticks,
};
use super::names::{NameId, Names};
use super::stream::{StreamEntry, StreamState};

/// `created` ticks (100 ns) in a second.
const TICKS_PER_SECOND: u64 = 10_000_000;

/// Every position and every stream, without payloads.
#[derive(Debug, Default)]
pub struct Index {
    /// `headers[p - 1]` describes the event at log position `p`.
    headers: Vec<Header>,
    /// Every stream that has events or metadata; ids are shared with `streams`.
    stream_names: Names,
    /// `streams[id]` is the stream named `stream_names.name(id)`.
    streams: Vec<StreamEntry>,
    /// Every event type in the log.
    event_types: Names,
    /// The payload of the newest event of `$settings` (the system settings access checks
    /// read), kept in memory as `$metadata` payloads are.
    settings: Option<Arc<[u8]>>,
}

/// What the index keeps per event.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// The stream's id in `Index::stream_names`.
    stream: NameId,
    /// The event type's id in `Index::event_types`.
    event_type: NameId,
    /// Write time in 100-ns ticks since the Unix epoch, for `$maxAge`.
    created: i64,
}

/// An event as the index takes it in: what it keeps, plus the payload of a `$metadata` event,
/// from which it learns the target stream's settings.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// Global log position; must be the next one.
    pub position: u64,
    /// Stream name.
    pub stream: &'a str,
    /// Event type.
    pub event_type: &'a str,
    /// Write time in ticks.
    pub created: i64,
    /// The payload; only read for `$metadata` events and `$settings` events, so a scan may
    /// pass it empty for others.
    pub data: &'a [u8],
}

impl Index {
    /// The payload of the newest `$settings` event, if any.
    pub fn settings(&self) -> Option<Arc<[u8]>> {
        self.settings.clone()
    }

    /// Position of the newest event, 0 when the log is empty.
    pub fn head(&self) -> u64 {
        self.headers.len() as u64
    }

    /// The header of the event at `position`, if any.
    pub fn header(&self, position: u64) -> Option<EventHeader> {
        let header = self.slot(position)?;
        Some(EventHeader {
            position,
            stream: self.stream_names.name(header.stream).clone(),
            event_type: self.event_types.name(header.event_type).clone(),
        })
    }

    /// The shared name of a stream the index already knows, so records don't duplicate it.
    pub fn stream_name(&self, stream: &str) -> Arc<str> {
        self.stream_names.shared(stream)
    }

    /// The shared name of an event type the index already knows.
    pub fn event_type_name(&self, event_type: &str) -> Arc<str> {
        self.event_types.shared(event_type)
    }

    /// What the index knows about `stream`.
    pub fn stream(&self, stream: &str) -> Option<&StreamEntry> {
        let id = self.stream_names.id(stream)?;
        self.streams.get(id as usize)
    }

    /// The state of `stream`, [`StreamState::Missing`] if it is unknown.
    pub fn stream_state(&self, stream: &str) -> StreamState {
        self.stream(stream)
            .map_or(StreamState::Missing, StreamEntry::state)
    }

    /// The oldest revision of `entry` that reads and subscriptions show now: past its `$tb`, its
    /// newest `$maxCount`, and written within its `$maxAge` seconds (events are written in
    /// time order, so the expired ones are a prefix).
    pub fn first_visible(&self, entry: &StreamEntry) -> u64 {
        let kept = entry.first_kept();
        let Some(max_age) = entry.max_age() else {
            return kept;
        };
        let window = i64::try_from(max_age.saturating_mul(TICKS_PER_SECOND)).unwrap_or(i64::MAX);
        let cutoff = now_ticks().saturating_sub(window);
        let expired = entry.revisions().partition_point(|&position| {
            self.slot(position)
                .is_some_and(|header| header.created < cutoff)
        });
        kept.max(expired as u64)
    }

    /// Positions of up to `limit` events at or after `from`, oldest first.
    pub fn forward(&self, from: u64, limit: usize) -> std::ops::Range<u64> {
        let head = self.head();
        let start = from.max(1).min(head + 1);
        let end = start
            .saturating_add(u64::try_from(limit).unwrap_or(u64::MAX))
            .min(head + 1);
        start..end
    }

    /// Positions of up to `limit` events before `before`, oldest first (the caller walks them
    /// newest first).
    pub fn backward(&self, before: u64, limit: usize) -> std::ops::Range<u64> {
        let end = before.max(1).min(self.head() + 1);
        let start = end
            .saturating_sub(u64::try_from(limit).unwrap_or(u64::MAX))
            .max(1);
        start..end
    }

    /// Adds the next event of the log; positions must arrive in order without gaps.
    pub fn apply(&mut self, event: Applied<'_>) {
        debug_assert_eq!(
            event.position,
            self.head() + 1,
            "log positions must be contiguous"
        );
        let stream = self.stream_id(event.stream);
        let entry = &mut self.streams[stream as usize];
        if event.event_type == TOMBSTONE_EVENT_TYPE {
            entry.set_tombstone(event.position);
        } else {
            entry.push_revision(event.position);
            if event.stream == SETTINGS_STREAM {
                self.settings = Some(Arc::from(event.data));
            }
        }
        if event.event_type == METADATA_EVENT_TYPE
            && let Some(target) = metadata_target(event.stream)
        {
            let target = self.stream_id(target);
            self.streams[target as usize].set_metadata(event.data);
        }
        self.headers.push(Header {
            stream,
            event_type: self.event_types.intern(event.event_type),
            created: event.created,
        });
    }

    /// The id of `stream`, giving it an empty entry if it is new.
    fn stream_id(&mut self, stream: &str) -> NameId {
        let id = self.stream_names.intern(stream);
        if id as usize == self.streams.len() {
            self.streams.push(StreamEntry::default());
        }
        id
    }

    /// The header at `position`, if any.
    fn slot(&self, position: u64) -> Option<&Header> {
        let slot = usize::try_from(position.checked_sub(1)?).ok()?;
        self.headers.get(slot)
    }
}
