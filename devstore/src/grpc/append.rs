//! `Streams/Append`: options first, then proposed events; one atomic write per call.

use std::collections::HashMap;

use prost::bytes::Bytes;
use tonic::{Status, Streaming};

use super::access::{self, Caller, Operation};
use super::convert::{decode_uuid, stream_name};
use super::status;
use crate::limits::MAX_APPEND_SIZE;
use crate::proto::shared;
use crate::proto::streams::append_req::{self, options::ExpectedStreamRevision};
use crate::proto::streams::append_resp::{self, success, wrong_expected_version as wev};
use crate::proto::streams::{AppendReq, AppendResp};
use crate::store::{AppendSuccess, ExpectedRevision, ProposedEvent, Store, WriteError};

/// Handles one append call from `caller`.
pub async fn append(
    store: &Store,
    caller: &Caller,
    mut request: Streaming<AppendReq>,
) -> Result<AppendResp, Status> {
    let options = match request.message().await?.and_then(|message| message.content) {
        Some(append_req::Content::Options(options)) => options,
        _ => {
            return Err(status::invalid_argument(
                "The first message of an append must be its options",
            ));
        }
    };
    let stream = stream_name(options.stream_identifier.as_ref())?;
    let expected = match options.expected_stream_revision {
        Some(ExpectedStreamRevision::Revision(revision)) => ExpectedRevision::Exact(revision),
        Some(ExpectedStreamRevision::NoStream(())) => ExpectedRevision::NoStream,
        Some(ExpectedStreamRevision::Any(())) => ExpectedRevision::Any,
        Some(ExpectedStreamRevision::StreamExists(())) => ExpectedRevision::StreamExists,
        None => return Err(status::required_argument("expected_stream_revision")),
    };
    // Checked before the events are read, as the real server does; `$$<stream>` needs `$mw`.
    access::check(store, caller, &stream, Operation::Write)?;
    let mut events = Vec::new();
    let mut size = stream.len();
    while let Some(message) = request.message().await? {
        let Some(append_req::Content::ProposedMessage(message)) = message.content else {
            return Err(status::invalid_argument(
                "Only proposed messages may follow the options",
            ));
        };
        let event = proposed_event(
            message.id.as_ref(),
            &message.metadata,
            message.custom_metadata,
            message.data,
        )?;
        size += event_size(&event);
        if size > MAX_APPEND_SIZE {
            return Err(status::maximum_append_size_exceeded(MAX_APPEND_SIZE));
        }
        events.push(event);
    }
    let result = write(store, stream.clone(), expected, events).await?;
    let result = match result {
        Ok(success) => append_resp::Result::Success(success_message(success)),
        Err(WriteError::WrongExpectedVersion { current }) => {
            append_resp::Result::WrongExpectedVersion(wrong_expected_version(expected, current))
        }
        Err(WriteError::StreamDeleted) => return Err(status::stream_deleted(&stream)),
        Err(WriteError::Storage(error)) => return Err(status::storage_failure(&error)),
    };
    Ok(AppendResp {
        result: Some(result),
    })
}

/// Runs a store append off the async threads (it may wait on SQLite).
pub async fn write(
    store: &Store,
    stream: String,
    expected: ExpectedRevision,
    events: Vec<ProposedEvent>,
) -> Result<Result<AppendSuccess, WriteError>, Status> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.append(&stream, expected, events))
        .await
        .map_err(|error| Status::internal(format!("append task failed: {error}")))
}

/// Validates one proposed message (shared by `Append` and `BatchAppend`).
pub fn proposed_event(
    id: Option<&shared::Uuid>,
    metadata: &HashMap<String, String>,
    custom_metadata: Bytes,
    data: Bytes,
) -> Result<ProposedEvent, Status> {
    let event_type = metadata
        .get("type")
        .ok_or_else(|| status::required_metadata_missing("type"))?;
    let content_type = metadata
        .get("content-type")
        .ok_or_else(|| status::required_metadata_missing("content-type"))?;
    Ok(ProposedEvent {
        id: decode_uuid(id, "id")?,
        event_type: event_type.clone(),
        is_json: content_type == "application/json",
        custom_metadata,
        data,
    })
}

/// What an event counts against the append size limit: payload, metadata and type. The stream
/// name counts once per append on top of its events.
pub fn event_size(event: &ProposedEvent) -> usize {
    event.data.len() + event.custom_metadata.len() + event.event_type.len()
}

fn success_message(success: AppendSuccess) -> append_resp::Success {
    append_resp::Success {
        current_revision_option: Some(match success.current_revision {
            Some(revision) => success::CurrentRevisionOption::CurrentRevision(revision),
            None => success::CurrentRevisionOption::NoStream(()),
        }),
        position_option: Some(match success.position {
            Some(position) => success::PositionOption::Position(append_resp::Position {
                commit_position: position,
                prepare_position: position,
            }),
            None => success::PositionOption::NoPosition(()),
        }),
    }
}

/// The wrong-expected-version result with both the current and the legacy (20.6.0) fields set,
/// as the real server does; the Rust client unwraps the current ones.
fn wrong_expected_version(
    expected: ExpectedRevision,
    current: Option<u64>,
) -> append_resp::WrongExpectedVersion {
    let (current_option, current_legacy) = match current {
        Some(revision) => (
            wev::CurrentRevisionOption::CurrentRevision(revision),
            wev::CurrentRevisionOption2060::CurrentRevision2060(revision),
        ),
        None => (
            wev::CurrentRevisionOption::CurrentNoStream(()),
            wev::CurrentRevisionOption2060::NoStream2060(()),
        ),
    };
    let (expected_option, expected_legacy) = match expected {
        ExpectedRevision::Exact(revision) => (
            wev::ExpectedRevisionOption::ExpectedRevision(revision),
            wev::ExpectedRevisionOption2060::ExpectedRevision2060(revision),
        ),
        ExpectedRevision::Any => (
            wev::ExpectedRevisionOption::ExpectedAny(()),
            wev::ExpectedRevisionOption2060::Any2060(()),
        ),
        ExpectedRevision::StreamExists => (
            wev::ExpectedRevisionOption::ExpectedStreamExists(()),
            wev::ExpectedRevisionOption2060::StreamExists2060(()),
        ),
        ExpectedRevision::NoStream => (
            wev::ExpectedRevisionOption::ExpectedNoStream(()),
            wev::ExpectedRevisionOption2060::ExpectedRevision2060(u64::MAX),
        ),
    };
    append_resp::WrongExpectedVersion {
        current_revision_option: Some(current_option),
        current_revision_option_20_6_0: Some(current_legacy),
        expected_revision_option: Some(expected_option),
        expected_revision_option_20_6_0: Some(expected_legacy),
    }
}
