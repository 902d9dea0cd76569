//! What the index knows about one stream: where its revisions are in the log, its settings from
//! `$$<stream>`, and whether it was deleted.

use serde_json::{Map, Value};

/// The `$tb` (truncate before) value that marks a soft-deleted stream.
pub const SOFT_DELETED_TRUNCATE_BEFORE: u64 = i64::MAX as u64;

/// One stream's entry in the index.
#[derive(Debug, Default)]
pub struct StreamEntry {
    /// Log position of each revision: `revisions[r]` is revision `r`.
    revisions: Vec<u64>,
    /// The settings from the stream's latest `$metadata`, boxed because most streams have none
    /// and the index holds an entry per stream.
    settings: Option<Box<Settings>>,
    /// Log position of the `$streamDeleted` tombstone, once written: the stream can never be
    /// used again.
    tombstone: Option<u64>,
}

/// A stream's settings, from its latest `$metadata` event.
#[derive(Debug, Default)]
struct Settings {
    /// The whole metadata object, kept so deletes can rewrite it.
    metadata: Map<String, Value>,
    /// Revisions below this are hidden (`$tb`); [`SOFT_DELETED_TRUNCATE_BEFORE`] = soft-deleted.
    truncate_before: u64,
    /// Only the newest `$maxCount` revisions are visible.
    max_count: Option<u64>,
    /// Only revisions written in the last `$maxAge` seconds are visible.
    max_age: Option<u64>,
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

impl StreamEntry {
    /// The stream's state.
    pub fn state(&self) -> StreamState {
        let last = self.last_revision();
        if self.tombstone.is_some() {
            StreamState::Tombstoned
        } else if self.truncate_before() == SOFT_DELETED_TRUNCATE_BEFORE {
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

    /// Log positions of all revisions, oldest first.
    pub fn revisions(&self) -> &[u64] {
        &self.revisions
    }

    /// The `$maxAge` setting in seconds, if any.
    pub fn max_age(&self) -> Option<u64> {
        self.settings.as_ref().and_then(|settings| settings.max_age)
    }

    /// Oldest revision that `$tb` and `$maxCount` leave visible (`Index::first_visible` adds
    /// `$maxAge`, which needs the events' times).
    pub fn first_kept(&self) -> u64 {
        let len = self.revisions.len() as u64;
        let max_count = self
            .settings
            .as_ref()
            .and_then(|settings| settings.max_count);
        let by_count = max_count.map_or(0, |max| len.saturating_sub(max));
        self.truncate_before().max(by_count)
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

    /// The latest metadata object, if one was set.
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.settings.as_ref().map(|settings| &settings.metadata)
    }

    /// Records the next revision's position.
    pub fn push_revision(&mut self, position: u64) {
        self.revisions.push(position);
    }

    /// Records the tombstone's position.
    pub fn set_tombstone(&mut self, position: u64) {
        self.tombstone = Some(position);
    }

    /// Takes in a new `$metadata` payload. Invalid JSON counts as "no metadata", as a stream
    /// without settings is the safest reading of it.
    pub fn set_metadata(&mut self, data: &[u8]) {
        let metadata = match serde_json::from_slice::<Value>(data) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let truncate_before = metadata.get("$tb").and_then(Value::as_u64).unwrap_or(0);
        let max_count = metadata.get("$maxCount").and_then(Value::as_u64);
        let max_age = metadata.get("$maxAge").and_then(Value::as_u64);
        self.settings = Some(Box::new(Settings {
            metadata,
            truncate_before,
            max_count,
            max_age,
        }));
    }

    /// Revisions below this are hidden; [`SOFT_DELETED_TRUNCATE_BEFORE`] when soft-deleted.
    fn truncate_before(&self) -> u64 {
        self.settings
            .as_ref()
            .map_or(0, |settings| settings.truncate_before)
    }
}
