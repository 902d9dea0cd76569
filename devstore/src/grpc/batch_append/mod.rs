//! `Streams/BatchAppend`: many appends multiplexed on one bidirectional call.
//!
//! Each append is a correlation id whose options arrive with its first chunk and whose events
//! may span several chunks until `is_final` (`pending`). Failures are reported per correlation
//! id in the response body as `google.rpc.Status`, with the real server's codes and detail
//! messages (`response`).

mod pending;
mod response;

use tonic::Streaming;

use super::append::write;
use super::convert::decode_uuid;
use super::sink::{Sink, Stop};
use crate::proto::shared::StreamIdentifier;
use crate::proto::streams::{BatchAppendReq, BatchAppendResp};
use crate::store::Store;
use pending::PendingAppends;
use response::{bad_request, failure, outcome};

/// Serves one batch-append call until the client closes its side.
pub async fn run(
    store: Store,
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
