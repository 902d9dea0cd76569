//! Conversions between protocol messages and store types: stream names, UUIDs, recorded events.

use std::collections::HashMap;

use tonic::Status;

use super::status;
use crate::limits::MAX_STREAM_NAME_BYTES;
use crate::proto::shared::{self, StreamIdentifier};
use crate::proto::streams::read_req::options::{UuidOption, uuid_option};
use crate::proto::streams::read_resp::{self, ReadEvent, read_event};
use crate::store::RecordedEvent;

/// How UUIDs go out on reads: clients ask for strings; the default is the structured form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UuidFormat {
    /// Two big-endian i64 halves.
    Structured,
    /// Lower-case hyphenated.
    String,
}

impl UuidFormat {
    /// The format a read request asks for.
    pub fn from_option(option: Option<&UuidOption>) -> UuidFormat {
        match option.and_then(|option| option.content.as_ref()) {
            Some(uuid_option::Content::String(())) => UuidFormat::String,
            Some(uuid_option::Content::Structured(())) | None => UuidFormat::Structured,
        }
    }

    /// `id` on the wire in this format.
    pub fn encode(self, id: uuid::Uuid) -> shared::Uuid {
        let value = match self {
            UuidFormat::String => shared::uuid::Value::String(id.hyphenated().to_string()),
            UuidFormat::Structured => {
                let bits = id.as_u128();
                shared::uuid::Value::Structured(shared::uuid::Structured {
                    most_significant_bits: (bits >> 64) as u64 as i64,
                    least_significant_bits: bits as u64 as i64,
                })
            }
        };
        shared::Uuid { value: Some(value) }
    }
}

/// Decodes a UUID sent in either form; `field` names it in the error.
pub fn decode_uuid(uuid: Option<&shared::Uuid>, field: &str) -> Result<uuid::Uuid, Status> {
    match uuid.and_then(|uuid| uuid.value.as_ref()) {
        Some(shared::uuid::Value::Structured(halves)) => {
            let high = (halves.most_significant_bits as u64 as u128) << 64;
            let low = halves.least_significant_bits as u64 as u128;
            Ok(uuid::Uuid::from_u128(high | low))
        }
        Some(shared::uuid::Value::String(text)) => text
            .parse()
            .map_err(|_| status::invalid_argument(format!("'{text}' is not a valid UUID"))),
        None => Err(status::required_argument(field)),
    }
}

/// The stream name of a request; required, UTF-8 and at most [`MAX_STREAM_NAME_BYTES`] long
/// (not counting the `$$` of a metadata stream, so that every stream's metadata is reachable).
pub fn stream_name(identifier: Option<&StreamIdentifier>) -> Result<String, Status> {
    let identifier = identifier.ok_or_else(|| status::required_argument("stream_identifier"))?;
    let bytes: &[u8] = &identifier.stream_name;
    let named = bytes.strip_prefix(b"$$").unwrap_or(bytes);
    if named.len() > MAX_STREAM_NAME_BYTES {
        return Err(status::invalid_argument(format!(
            "Stream name is {} bytes long, over devstore's limit of {MAX_STREAM_NAME_BYTES} \
             bytes; use a shorter stream name",
            named.len()
        )));
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| status::invalid_argument("Stream name is not valid UTF-8"))
}

/// A stream identifier message for `stream`.
pub fn stream_identifier(stream: &str) -> StreamIdentifier {
    StreamIdentifier {
        stream_name: stream.to_owned().into(),
    }
}

/// The system metadata every read event carries: `type`, `content-type` and `created`.
pub fn event_metadata(event: &RecordedEvent) -> HashMap<String, String> {
    let mut metadata = HashMap::with_capacity(3);
    metadata.insert("type".to_owned(), event.event_type.to_string());
    let content_type = if event.is_json {
        "application/json"
    } else {
        "application/octet-stream"
    };
    metadata.insert("content-type".to_owned(), content_type.to_owned());
    metadata.insert("created".to_owned(), event.created.to_string());
    metadata
}

/// A read or subscription response carrying `event` (no link resolution).
pub fn event_response(event: &RecordedEvent, format: UuidFormat) -> read_resp::Content {
    let metadata = event_metadata(event);
    let recorded = read_event::RecordedEvent {
        id: Some(format.encode(event.id)),
        stream_identifier: Some(stream_identifier(&event.stream)),
        stream_revision: event.revision,
        prepare_position: event.position,
        commit_position: event.position,
        metadata,
        custom_metadata: event.custom_metadata.clone(),
        data: event.data.clone(),
    };
    read_resp::Content::Event(ReadEvent {
        event: Some(recorded),
        link: None,
        position: Some(read_event::Position::CommitPosition(event.position)),
    })
}
