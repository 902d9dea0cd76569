//! `Streams/BatchAppend`: many appends multiplexed on one bidirectional call.
//!
//! Each append is a correlation id whose options arrive with its first chunk and whose events
//! may span several chunks until `is_final` (`pending`). Failures are reported per correlation
//! id in the response body as `google.rpc.Status`, with the real server's codes and detail
//! messages (`response`). Each append is checked against the caller's access when its final
//! chunk arrives (the real server checks at its first; the clients send one chunk per append)
//! and refused alone with `PermissionDenied` "AccessDenied".

mod pending;
mod response;

use tonic::Streaming;

use super::access::{self, Caller, Operation};
use super::append::write;
use super::convert::decode_uuid;
use super::sink::{Sink, Stop};
use crate::proto::shared::StreamIdentifier;
use crate::proto::streams::{BatchAppendReq, BatchAppendResp};
use crate::store::Store;
use pending::{PendingAppend, PendingAppends};
use response::{access_denied, bad_request, failure, outcome};

/// Serves one batch-append call from `caller` until the client closes its side.
pub async fn run(
    store: Store,
    caller: Caller,
    mut requests: Streaming<BatchAppendReq>,
    mut sink: Sink<BatchAppendResp>,
) -> Result<(), Stop> {
    let mut pending = PendingAppends::default();
    loop {
        let request = match sink.wait(requests.message()).await? {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(_) => return Err(Stop::ClientGone),
        };
        let correlation = request.correlation_id.clone();
        let key = match decode_uuid(correlation.as_ref(), "correlation_id") {
            Ok(key) => key,
            Err(error) => return Err(sink.fail(error).await),
        };
        let identifier = request
            .options
            .as_ref()
            .and_then(|options| options.stream_identifier.clone());
        let response = match pending.add(key, request) {
            Err(error) => Some(failure(error, identifier)),
            Ok(None) => None,
            Ok(Some(append)) => Some(complete(&store, &caller, append).await),
        };
        if let Some(mut response) = response {
            response.correlation_id = correlation;
            sink.send(response).await?;
        }
    }
}

/// Writes an append whose final chunk arrived, if `caller` may write its stream.
async fn complete(store: &Store, caller: &Caller, append: PendingAppend) -> BatchAppendResp {
    let identifier = Some(StreamIdentifier {
        stream_name: append.stream.clone().into(),
    });
    if access::check(store, caller, &append.stream, Operation::Write).is_err() {
        return failure(access_denied(), identifier);
    }
    let expected = append.expected;
    match write(store, append.stream.clone(), expected, append.events).await {
        Ok(result) => outcome(result, &append.stream, expected, identifier),
        Err(error) => failure(bad_request(error.message()), identifier),
    }
}
