//! The event record as the log keeps it, the header of it that the index can give without a
//! payload, and the event a client proposes to append.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::bytes::Bytes;
use uuid::Uuid;

/// The revision a tombstone (`$streamDeleted`) event gets: the real server reserves `i64::MAX`.
pub const TOMBSTONE_REVISION: u64 = i64::MAX as u64;

/// Event type of the record that hard-deletes a stream.
pub const TOMBSTONE_EVENT_TYPE: &str = "$streamDeleted";

/// The stream whose newest event holds the system settings (default ACLs).
pub const SETTINGS_STREAM: &str = "$settings";

/// Event type of a stream-metadata record in a `$$<stream>` stream.
pub const METADATA_EVENT_TYPE: &str = "$metadata";

/// One event in the log. Immutable once written; shared by readers through `Arc`.
///
/// Names are `Arc<str>` so that records built from the index share its one copy of each stream
/// name and event type instead of allocating them per event.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global log position, strictly increasing from 1; reported as both commit and prepare
    /// position so that an append's returned position equals the position read back.
    pub position: u64,
    /// Name of the stream the event belongs to.
    pub stream: Arc<str>,
    /// Revision within the stream, from 0 ([`TOMBSTONE_REVISION`] for a tombstone).
    pub revision: u64,
    /// Client-chosen event id.
    pub id: Uuid,
    /// Event type (`type` metadata on the wire).
    pub event_type: Arc<str>,
    /// Whether the client declared `content-type: application/json`.
    pub is_json: bool,
    /// Write time in 100-ns ticks since the Unix epoch, the unit of the `created` metadata.
    pub created: i64,
    /// User metadata bytes, opaque.
    pub custom_metadata: Bytes,
    /// Payload bytes, opaque.
    pub data: Bytes,
}

/// What the index knows of an event without reading its payload: enough to place it and to
/// decide whether a `$all` filter wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// Global log position.
    pub position: u64,
    /// Name of the stream the event belongs to.
    pub stream: Arc<str>,
    /// Event type.
    pub event_type: Arc<str>,
}

/// An event as a client proposes it, before it has a position and revision.
#[derive(Debug, Clone)]
pub struct ProposedEvent {
    /// Client-chosen event id.
    pub id: Uuid,
    /// Event type.
    pub event_type: String,
    /// Whether the payload is JSON.
    pub is_json: bool,
    /// User metadata bytes.
    pub custom_metadata: Bytes,
    /// Payload bytes.
    pub data: Bytes,
}

/// The current time in the unit of the `created` metadata (100-ns ticks since the Unix epoch).
pub fn now_ticks() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since_epoch.as_nanos() / 100) as i64
}

/// The stream whose metadata a `$$<stream>` stream holds, if `stream` is a metadata stream.
pub fn metadata_target(stream: &str) -> Option<&str> {
    stream.strip_prefix("$$")
}
