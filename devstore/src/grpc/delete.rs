//! `Streams/Delete` (soft delete through `$tb`) and `Streams/Tombstone` (hard delete).

use tonic::Status;

use super::access::{self, Caller, Operation};
use super::convert::stream_name;
use super::status;
use crate::proto::shared::StreamIdentifier;
use crate::store::{ExpectedRevision, Store, WriteError};

/// Which kind of delete.
#[derive(Debug, Clone, Copy)]
pub enum DeleteKind {
    /// Hide the events; the stream can be recreated.
    Soft,
    /// Write a tombstone; the stream is gone for good.
    Tombstone,
}

/// The parts of `DeleteReq.Options` and `TombstoneReq.Options`, which are separate but equal
/// message types.
pub struct DeleteRequest {
    pub stream_identifier: Option<StreamIdentifier>,
    /// None when the client set no expectation (rejected).
    pub expected: Option<ExpectedRevision>,
}

/// Deletes a stream for `caller`; returns the log position of the record that did it.
pub async fn delete(
    store: &Store,
    caller: &Caller,
    kind: DeleteKind,
    request: DeleteRequest,
) -> Result<u64, Status> {
    let stream = stream_name(request.stream_identifier.as_ref())?;
    let expected = request
        .expected
        .ok_or_else(|| status::required_argument("expected_stream_revision"))?;
    access::check(store, caller, &stream, Operation::Delete)?;
    let store = store.clone();
    let name = stream.clone();
    let result = tokio::task::spawn_blocking(move || match kind {
        DeleteKind::Soft => store.delete(&name, expected),
        DeleteKind::Tombstone => store.tombstone(&name, expected),
    })
    .await
    .map_err(|error| Status::internal(format!("delete task failed: {error}")))?;
    match result {
        Ok(position) => Ok(position),
        Err(WriteError::WrongExpectedVersion { current }) => {
            Err(status::delete_wrong_expected_version(
                &stream,
                expected.as_version_number(),
                current.map_or(-1, |revision| revision as i64),
            ))
        }
        Err(WriteError::StreamDeleted) => Err(status::stream_deleted(&stream)),
        Err(WriteError::Storage(error)) => Err(status::storage_failure(&error)),
    }
}
