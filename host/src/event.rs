//! The events that flow from a source to a projection, and their place in the log.
//!
//! These types know nothing about wasm, SQLite or EventStoreDB: each of those modules converts
//! to and from them at its own edge.

use std::fmt;

/// A place in the global event log (`$all`), as EventStoreDB defines it.
///
/// A real EventStoreDB node reports a commit and a prepare position; they are equal for every
/// event written outside an explicit transaction. Both are kept so a subscription can resume
/// exactly where it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Where the event's transaction was committed; positions order events.
    pub commit: u64,
    /// Where the event itself was written.
    pub prepare: u64,
}

impl Position {
    /// A position whose commit and prepare parts are equal, as for every non-transactional write.
    pub const fn at(offset: u64) -> Position {
        Position {
            commit: offset,
            prepare: offset,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.commit == self.prepare {
            write!(f, "{}", self.commit)
        } else {
            write!(f, "{}/{}", self.commit, self.prepare)
        }
    }
}

/// One event as recorded in the store.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// The stream the event belongs to.
    pub stream_id: String,
    /// The event's 0-based sequence number within its stream.
    pub stream_revision: u64,
    /// The event's place in the global log.
    pub position: Position,
    /// The event's UUID, in canonical lower-case hyphenated form.
    pub event_id: String,
    /// The event's type, e.g. `OrderCreated`.
    pub event_type: String,
    /// `application/json` or `application/octet-stream`.
    pub content_type: String,
    /// When the event was written, in milliseconds since the Unix epoch.
    pub created_unix_ms: i64,
    /// The payload.
    pub data: Vec<u8>,
    /// The user metadata.
    pub metadata: Vec<u8>,
}

/// Content type of JSON payloads.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of binary payloads.
pub const CONTENT_TYPE_BINARY: &str = "application/octet-stream";

/// Which events a projection wants: what the plugin's manifest asks for.
///
/// An empty list means "no restriction" on that axis; when both are given an event must match
/// both. System events (types starting with `$`) are never delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Exact event types to deliver.
    pub event_types: Vec<String>,
    /// Stream-id prefixes to deliver.
    pub stream_prefixes: Vec<String>,
}

impl EventFilter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, stream_id: &str, event_type: &str) -> bool {
        if event_type.starts_with('$') || stream_id.starts_with('$') {
            return false;
        }
        let type_ok =
            self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type);
        let stream_ok = self.stream_prefixes.is_empty()
            || self
                .stream_prefixes
                .iter()
                .any(|p| stream_id.starts_with(p.as_str()));
        type_ok && stream_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_needs_both_axes_and_skips_system_events() {
        let filter = EventFilter {
            event_types: vec!["OrderCreated".into()],
            stream_prefixes: vec!["order-".into()],
        };
        assert!(filter.matches("order-1", "OrderCreated"));
        assert!(!filter.matches("order-1", "OrderShipped"));
        assert!(!filter.matches("payment-1", "OrderCreated"));
        assert!(!EventFilter::default().matches("$users", "$UserCreated"));
        assert!(EventFilter::default().matches("anything", "Any"));
    }

    #[test]
    fn position_display_collapses_equal_parts() {
        assert_eq!(Position::at(7).to_string(), "7");
        assert_eq!(
            Position {
                commit: 9,
                prepare: 8
            }
            .to_string(),
            "9/8"
        );
    }
}
