//! `Streams/BatchAppend`: many appends multiplexed on one bidirectional call.
//!
//! Each append is a correlation id whose options arrive with its first chunk and whose events
//! may span several chunks until `is_final`. Failures are reported per correlation id in the
//! response body as `google.rpc.Status`, with the real server's codes and detail messages.

use std::collections::HashMap;

use prost::Message;
use tonic::Streaming;

use super::append::{event_size, proposed_event, write};
use super::convert::{decode_uuid, stream_name};
use super::sink::{Sink, Stop};
use crate::limits::MAX_APPEND_SIZE;
use crate::proto::google::rpc;
use crate::proto::shared::{self, StreamIdentifier};
use crate::proto::streams::batch_append_req::options::ExpectedStreamPosition as RequestExpected;
use crate::proto::streams::batch_append_resp::{
    self, ExpectedStreamPosition as ResponseExpected, success,
};
use crate::proto::streams::{BatchAppendReq, BatchAppendResp};
use crate::store::{AppendSuccess, ExpectedRevision, ProposedEvent, Store, WriteError};

/// One append whose chunks are still arriving.
struct PendingAppend {
    stream: String,
    expected: ExpectedRevision,
    events: Vec<ProposedEvent>,
    size: usize,
}

/// Serves one batch-append call until the client closes its side.
pub async fn run(
    store: Store,
    mut requests: Streaming<BatchAppendReq>,
    mut sink: Sink<BatchAppendResp>,
) -> Result<(), Stop> {
    let mut pending: HashMap<uuid::Uuid, PendingAppend> = HashMap::new();
    loop {
        let request = match sink.wait(requests.message()).await? {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(_) => return Err(Stop::ClientGone),
        };
        let correlation = request.correlation_id.clone();
        let key = match decode_uuid(correlation.as_ref(), "correlation_id") {
            Ok(key) => key,
            Err(error) => {
                sink.fail(error).await;
                return Err(Stop::ClientGone);
            }
        };
        let identifier = request
            .options
            .as_ref()
            .and_then(|options| options.stream_identifier.clone());
        let response = match chunk(&mut pending, key, request) {
            Err(error) => Some(failure(error, identifier)),
            Ok(None) => None,
            Ok(Some(append)) => {
                let identifier = Some(StreamIdentifier {
                    stream_name: append.stream.clone().into(),
                });
                let expected = append.expected;
                match write(&store, append.stream.clone(), expected, append.events).await {
                    Ok(result) => Some(outcome(result, &append.stream, expected, identifier)),
                    Err(error) => Some(failure(bad_request(error.message()), identifier)),
                }
            }
        };
        if let Some(mut response) = response {
            response.correlation_id = correlation;
            sink.send(response).await?;
        }
    }
}

/// Adds one chunk; returns the complete append once its final chunk arrived.
fn chunk(
    pending: &mut HashMap<uuid::Uuid, PendingAppend>,
    key: uuid::Uuid,
    request: BatchAppendReq,
) -> Result<Option<PendingAppend>, rpc::Status> {
    if let std::collections::hash_map::Entry::Vacant(vacant) = pending.entry(key) {
        let options = request.options.as_ref();
        let Some(identifier) = options.and_then(|options| options.stream_identifier.as_ref())
        else {
            return Err(bad_request("Required field StreamIdentifier not set."));
        };
        let stream = stream_name(Some(identifier)).map_err(|error| bad_request(error.message()))?;
        let expected = match options.and_then(|options| options.expected_stream_position) {
            Some(RequestExpected::StreamPosition(revision)) => ExpectedRevision::Exact(revision),
            Some(RequestExpected::NoStream(())) => ExpectedRevision::NoStream,
            Some(RequestExpected::Any(())) => ExpectedRevision::Any,
            Some(RequestExpected::StreamExists(())) => ExpectedRevision::StreamExists,
            None => {
                return Err(bad_request(
                    "Required field ExpectedStreamPosition not set.",
                ));
            }
        };
        let size = stream.len();
        vacant.insert(PendingAppend {
            stream,
            expected,
            events: Vec::new(),
            size,
        });
    }
    let append = pending.get_mut(&key).expect("inserted above or earlier");
    for message in request.proposed_messages {
        let event = proposed_event(
            message.id.as_ref(),
            &message.metadata,
            message.custom_metadata,
            message.data,
        );
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                pending.remove(&key);
                return Err(bad_request(error.message()));
            }
        };
        append.size += event_size(&event);
        append.events.push(event);
    }
    if append.size > MAX_APPEND_SIZE {
        pending.remove(&key);
        let details = shared::MaximumAppendSizeExceeded {
            max_append_size: MAX_APPEND_SIZE as u32,
        };
        return Err(rpc_status(
            tonic::Code::InvalidArgument,
            "MaximumAppendSizeExceeded",
            "MaximumAppendSizeExceeded",
            &details,
        ));
    }
    Ok(if request.is_final {
        pending.remove(&key)
    } else {
        None
    })
}

/// The response to a completed write.
fn outcome(
    result: Result<AppendSuccess, WriteError>,
    stream: &str,
    expected: ExpectedRevision,
    identifier: Option<StreamIdentifier>,
) -> BatchAppendResp {
    let success = match result {
        Ok(success) => success,
        Err(WriteError::WrongExpectedVersion { current }) => {
            let details = shared::WrongExpectedVersion {
                current_stream_revision_option: Some(match current {
                    Some(revision) => {
                        shared::wrong_expected_version::CurrentStreamRevisionOption::CurrentStreamRevision(
                            revision,
                        )
                    }
                    None => shared::wrong_expected_version::CurrentStreamRevisionOption::CurrentNoStream(()),
                }),
                expected_stream_position_option: Some(match expected {
                    ExpectedRevision::Exact(revision) => {
                        shared::wrong_expected_version::ExpectedStreamPositionOption::ExpectedStreamPosition(
                            revision,
                        )
                    }
                    ExpectedRevision::Any => {
                        shared::wrong_expected_version::ExpectedStreamPositionOption::ExpectedAny(())
                    }
                    ExpectedRevision::StreamExists => {
                        shared::wrong_expected_version::ExpectedStreamPositionOption::ExpectedStreamExists(())
                    }
                    ExpectedRevision::NoStream => {
                        shared::wrong_expected_version::ExpectedStreamPositionOption::ExpectedNoStream(())
                    }
                }),
            };
            let status = rpc_status(
                tonic::Code::AlreadyExists,
                "WrongExpectedVersion",
                "WrongExpectedVersion",
                &details,
            );
            return failure(status, identifier);
        }
        Err(WriteError::StreamDeleted) => {
            let details = shared::StreamDeleted {
                stream_identifier: Some(StreamIdentifier {
                    stream_name: stream.to_owned().into(),
                }),
            };
            return failure(
                rpc_status(
                    tonic::Code::NotFound,
                    "StreamDeleted",
                    "StreamDeleted",
                    &details,
                ),
                identifier,
            );
        }
        Err(WriteError::Storage(error)) => {
            let status = rpc::Status {
                code: tonic::Code::Internal as i32,
                message: format!("{error:#}"),
                details: None,
            };
            return failure(status, identifier);
        }
    };
    let expected_stream_position = Some(match expected {
        ExpectedRevision::Exact(revision) => ResponseExpected::StreamPosition(revision),
        ExpectedRevision::NoStream => ResponseExpected::NoStream(()),
        ExpectedRevision::Any => ResponseExpected::Any(()),
        ExpectedRevision::StreamExists => ResponseExpected::StreamExists(()),
    });
    let success = batch_append_resp::Success {
        current_revision_option: Some(match success.current_revision {
            Some(revision) => success::CurrentRevisionOption::CurrentRevision(revision),
            None => success::CurrentRevisionOption::NoStream(()),
        }),
        position_option: Some(match success.position {
            Some(position) => success::PositionOption::Position(shared::AllStreamPosition {
                commit_position: position,
                prepare_position: position,
            }),
            None => success::PositionOption::NoPosition(()),
        }),
    };
    BatchAppendResp {
        correlation_id: None,
        stream_identifier: identifier,
        expected_stream_position,
        result: Some(batch_append_resp::Result::Success(success)),
    }
}

fn failure(status: rpc::Status, identifier: Option<StreamIdentifier>) -> BatchAppendResp {
    BatchAppendResp {
        correlation_id: None,
        // The Rust client unwraps the stream identifier of every response.
        stream_identifier: Some(identifier.unwrap_or_default()),
        expected_stream_position: None,
        result: Some(batch_append_resp::Result::Error(status)),
    }
}

fn bad_request(message: &str) -> rpc::Status {
    let details = shared::BadRequest {
        message: message.to_owned(),
    };
    rpc_status(
        tonic::Code::InvalidArgument,
        "BadRequest",
        "BadRequest",
        &details,
    )
}

/// A `google.rpc.Status` with its details packed as `Any`, as the real server builds them.
fn rpc_status(
    code: tonic::Code,
    message: &str,
    detail_type: &str,
    details: &impl Message,
) -> rpc::Status {
    rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: Some(prost_types::Any {
            type_url: format!("type.googleapis.com/event_store.client.{detail_type}"),
            value: details.encode_to_vec(),
        }),
    }
}
