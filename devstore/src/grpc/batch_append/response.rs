//! The responses of a `BatchAppend` call: per-append results, with failures as
//! `google.rpc.Status` carrying the real server's detail messages.

use prost::Message;

use crate::proto::google::rpc;
use crate::proto::shared::{self, StreamIdentifier};
use crate::proto::streams::BatchAppendResp;
use crate::proto::streams::batch_append_resp::{
    self, ExpectedStreamPosition as ResponseExpected, success,
};
use crate::store::{AppendSuccess, ExpectedRevision, WriteError};

/// The response to a completed write.
pub fn outcome(
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

pub fn failure(status: rpc::Status, identifier: Option<StreamIdentifier>) -> BatchAppendResp {
    BatchAppendResp {
        correlation_id: None,
        // The Rust client unwraps the stream identifier of every response.
        stream_identifier: Some(identifier.unwrap_or_default()),
        expected_stream_position: None,
        result: Some(batch_append_resp::Result::Error(status)),
    }
}

/// The caller may not write the stream; the real server's status, which the Python client
/// reports as `AccessDeniedError`.
pub fn access_denied() -> rpc::Status {
    rpc_status(
        tonic::Code::PermissionDenied,
        "AccessDenied",
        "AccessDenied",
        &shared::AccessDenied {},
    )
}

pub fn bad_request(message: &str) -> rpc::Status {
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
pub fn rpc_status(
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
