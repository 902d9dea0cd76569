//! A source reading events from a JSON Lines file: the fixture format of `projector test`.
//!
//! One JSON object per line: `stream` and `type` (required), `data` (any JSON value) or
//! `data_base64` (binary), and optional `metadata`, `id` (UUID) and `created` (RFC 3339).
//! An event's position is its line number, so positions increase in file order and an error
//! can point at the line. Blank lines and lines starting with `#` are skipped.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use serde::Deserialize;

use super::{EventSource, MemorySource, Subscription};
use crate::event::{CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON, EventFilter, Position, RecordedEvent};

/// Events read from a JSONL file.
#[derive(Clone, Debug)]
pub struct JsonlSource {
    events: MemorySource,
}

impl JsonlSource {
    /// Reads and parses the whole file; any malformed line is an error naming its line.
    pub fn open(path: &Path) -> anyhow::Result<JsonlSource> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading events file {}", path.display()))?;
        let events = parse_jsonl(&text)
            .with_context(|| format!("parsing events file {}", path.display()))?;
        Ok(JsonlSource {
            events: MemorySource::new(&path.display().to_string(), events),
        })
    }

    /// The parsed events.
    pub fn events(&self) -> &[RecordedEvent] {
        self.events.events()
    }
}

impl EventSource for JsonlSource {
    fn describe(&self) -> String {
        self.events.describe()
    }

    fn head(&self) -> futures::future::BoxFuture<'_, anyhow::Result<Option<Position>>> {
        self.events.head()
    }

    fn is_finite(&self) -> bool {
        true
    }

    fn subscribe(&self, after: Option<Position>, filter: &EventFilter) -> Subscription {
        self.events.subscribe(after, filter)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    stream: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default, deserialize_with = "present")]
    data: Option<serde_json::Value>,
    data_base64: Option<String>,
    #[serde(default, deserialize_with = "present")]
    metadata: Option<serde_json::Value>,
    id: Option<uuid::Uuid>,
    created: Option<String>,
}

/// A key that is present holds a value, even `null`: `"data": null` is the JSON body `null`,
/// not a missing body (serde reads a bare `Option` as `None` for both).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// Parses JSONL text into events, reporting the first bad line with its number.
pub fn parse_jsonl(text: &str) -> anyhow::Result<Vec<RecordedEvent>> {
    let mut revisions: HashMap<String, u64> = HashMap::new();
    let mut events = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index as u64 + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let event = parse_line(trimmed, line_number, &mut revisions)
            .with_context(|| format!("line {line_number}"))?;
        events.push(event);
    }
    Ok(events)
}

fn parse_line(
    text: &str,
    line_number: u64,
    revisions: &mut HashMap<String, u64>,
) -> anyhow::Result<RecordedEvent> {
    let line: Line = serde_json::from_str(text)?;
    if line.stream.is_empty() || line.event_type.is_empty() {
        bail!("`stream` and `type` must not be empty");
    }
    let (data, content_type) = match (line.data, line.data_base64) {
        (Some(_), Some(_)) => bail!("give either `data` or `data_base64`, not both"),
        (Some(value), None) => (serde_json::to_vec(&value)?, CONTENT_TYPE_JSON),
        (None, Some(encoded)) => (
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .context("`data_base64` is not valid base64")?,
            CONTENT_TYPE_BINARY,
        ),
        (None, None) => (b"{}".to_vec(), CONTENT_TYPE_JSON),
    };
    let metadata = match line.metadata {
        Some(value) => serde_json::to_vec(&value)?,
        None => Vec::new(),
    };
    let created_unix_ms = match line.created {
        Some(created) => {
            let parsed = time::OffsetDateTime::parse(
                &created,
                &time::format_description::well_known::Rfc3339,
            )
            .with_context(|| format!("`created` {created:?} is not an RFC 3339 time"))?;
            (parsed.unix_timestamp_nanos() / 1_000_000) as i64
        }
        None => 0,
    };
    // Without an id, derive one from the line number so the same file always yields the same ids.
    let event_id = line
        .id
        .unwrap_or_else(|| uuid::Uuid::from_u64_pair(0x7072_6f6a_6563_746f, line_number));
    let revision = revisions.entry(line.stream.clone()).or_insert(0);
    let stream_revision = *revision;
    *revision += 1;
    Ok(RecordedEvent {
        stream_id: line.stream,
        stream_revision,
        position: Position::at(line_number),
        event_id: event_id.to_string(),
        event_type: line.event_type,
        content_type: content_type.to_string(),
        created_unix_ms,
        data,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positions_revisions_and_payloads() {
        let text = r#"
# a comment
{"stream": "order-1", "type": "OrderCreated", "data": {"a": 1}, "created": "2026-01-01T00:00:01Z"}
{"stream": "order-1", "type": "OrderShipped", "data_base64": "AAE="}
{"stream": "order-2", "type": "OrderCreated", "metadata": {"m": true}}
"#;
        let events = parse_jsonl(text).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].position, Position::at(3));
        assert_eq!(events[0].created_unix_ms, 1_767_225_601_000);
        assert_eq!(events[0].data, br#"{"a":1}"#);
        assert_eq!(
            (events[1].stream_revision, events[1].content_type.as_str()),
            (1, CONTENT_TYPE_BINARY)
        );
        assert_eq!(events[1].data, vec![0, 1]);
        assert_eq!(
            (events[2].stream_revision, events[2].metadata.as_slice()),
            (0, br#"{"m":true}"#.as_slice())
        );
        assert_ne!(events[0].event_id, events[2].event_id);
    }

    /// `"data": null` is the body `null`; only a missing `data` means `{}`.
    #[test]
    fn a_null_body_is_kept() {
        let text = r#"{"stream": "s", "type": "T", "data": null, "metadata": null}"#;
        let events = parse_jsonl(text).unwrap();
        assert_eq!(
            (events[0].data.as_slice(), events[0].metadata.as_slice()),
            (b"null".as_slice(), b"null".as_slice())
        );
        assert_eq!(events[0].content_type, CONTENT_TYPE_JSON);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let text = "{\"stream\": \"s\", \"type\": \"T\"}\n{\"stream\": \"s\", \"typo\": \"T\"}\n";
        let error = format!("{:#}", parse_jsonl(text).unwrap_err());
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(error.contains("typo"), "{error}");
    }
}
