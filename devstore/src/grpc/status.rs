//! gRPC error statuses with the real server's codes, messages and `exception` trailers.
//!
//! Clients classify errors by these: the Rust client by the `exception` trailer and the code,
//! the Python client by the message text. So the strings here are the real server's, verbatim.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// The trailer key that names the kind of failure.
const EXCEPTION: &str = "exception";

/// A status with `exception` and extra string trailers.
fn with_trailers(code: Code, message: String, trailers: &[(&'static str, String)]) -> Status {
    let mut metadata = MetadataMap::new();
    for (key, value) in trailers {
        // Stream names are client input: a value that is not a valid header is left out
        // rather than failing the whole error.
        if let Ok(value) = MetadataValue::try_from(value.as_str()) {
            metadata.insert(*key, value);
        }
    }
    Status::with_metadata(code, message, metadata)
}

/// The stream was tombstoned.
pub fn stream_deleted(stream: &str) -> Status {
    with_trailers(
        Code::FailedPrecondition,
        format!("Event stream '{stream}' is deleted."),
        &[
            (EXCEPTION, "stream-deleted".into()),
            ("stream-name", stream.into()),
        ],
    )
}

/// A delete or tombstone whose expected revision did not hold. `actual` is -1 for no stream.
pub fn delete_wrong_expected_version(stream: &str, expected: i64, actual: i64) -> Status {
    with_trailers(
        Code::FailedPrecondition,
        format!(
            "Delete failed due to WrongExpectedVersion. Stream: {stream}, \
             Expected version: {expected}, Actual version: {actual}"
        ),
        &[
            (EXCEPTION, "wrong-expected-version".into()),
            ("stream-name", stream.into()),
            ("expected-version", expected.to_string()),
            ("actual-version", actual.to_string()),
        ],
    )
}

/// Missing or refused credentials.
pub fn access_denied() -> Status {
    with_trailers(
        Code::PermissionDenied,
        "Access Denied".into(),
        &[(EXCEPTION, "access-denied".into())],
    )
}

/// A proposed event without the `type` or `content-type` metadata.
pub fn required_metadata_missing(property: &str) -> Status {
    with_trailers(
        Code::InvalidArgument,
        format!("Required Metadata Property '{property}' is missing"),
        &[
            (EXCEPTION, "missing-required-metadata-property".into()),
            ("required-metadata-properties", "type,content-type".into()),
        ],
    )
}

/// An append whose events add up to more than the limit.
pub fn maximum_append_size_exceeded(limit: usize) -> Status {
    with_trailers(
        Code::InvalidArgument,
        format!("Maximum Append Size of {limit} Exceeded."),
        &[
            (EXCEPTION, "maximum-append-size-exceeded".into()),
            ("maximum-append-size", limit.to_string()),
        ],
    )
}

/// A position that does not exist or is malformed.
pub fn invalid_position() -> Status {
    Status::invalid_argument("Trying to read from an invalid position.")
}

/// A required field (a oneof the server cannot default) is absent.
pub fn required_argument(name: &str) -> Status {
    Status::invalid_argument(format!("'{name}' is a required argument"))
}

/// A malformed argument; the message names what was wrong.
pub fn invalid_argument(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

/// The store failed (disk full, database closed by shutdown, ...).
pub fn storage_failure(error: &anyhow::Error) -> Status {
    Status::unavailable(format!("Server Is Not Ready: {error:#}"))
}

/// The server is stopping: long-running calls end with this so clients can reconnect.
pub fn shutting_down() -> Status {
    Status::unavailable("Server Is Shutting Down")
}
