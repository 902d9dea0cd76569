//! A `BatchAppend` call holds a bounded number of unfinished appends, of bounded size.
//!
//! The official client always sends each append as one final chunk, so these tests speak the
//! protocol with devstore's generated stubs to leave appends open.

use std::collections::HashMap;

use devstore::limits::{MAX_APPEND_SIZE, MAX_PENDING_APPEND_BYTES, MAX_PENDING_APPENDS};
use devstore::proto::shared::{StreamIdentifier, Uuid as WireUuid, uuid};
use devstore::proto::streams::batch_append_req::{
    Options, ProposedMessage, options::ExpectedStreamPosition,
};
use devstore::proto::streams::streams_client::StreamsClient;
use devstore::proto::streams::{BatchAppendReq, BatchAppendResp, batch_append_resp};
use prost::bytes::Bytes;

use crate::util::{collect, events, guard, start, stream};

/// A chunk of the append `correlation` with one event of `payload` bytes; the first chunk of an
/// append names its stream.
fn chunk(
    correlation: &str,
    stream: Option<&str>,
    payload: usize,
    is_final: bool,
) -> BatchAppendReq {
    let wire_uuid = |text: String| WireUuid {
        value: Some(uuid::Value::String(text)),
    };
    let options = stream.map(|stream| Options {
        stream_identifier: Some(StreamIdentifier {
            stream_name: stream.to_owned().into(),
        }),
        expected_stream_position: Some(ExpectedStreamPosition::Any(())),
        deadline_option: None,
    });
    let metadata = HashMap::from([
        ("type".to_owned(), "Chunk".to_owned()),
        (
            "content-type".to_owned(),
            "application/octet-stream".to_owned(),
        ),
    ]);
    BatchAppendReq {
        correlation_id: Some(wire_uuid(correlation.to_owned())),
        options,
        proposed_messages: vec![ProposedMessage {
            id: Some(wire_uuid(::uuid::Uuid::new_v4().to_string())),
            metadata,
            custom_metadata: Bytes::new(),
            data: Bytes::from(vec![7u8; payload]),
        }],
        is_final,
    }
}

fn correlation() -> String {
    ::uuid::Uuid::new_v4().to_string()
}

/// Sends `requests` on one batch-append call and returns every response until the call ends.
async fn batch_append(
    server: &devstore::Server,
    requests: Vec<BatchAppendReq>,
) -> anyhow::Result<Vec<BatchAppendResp>> {
    let mut raw = StreamsClient::connect(format!("http://{}", server.local_addr())).await?;
    let mut responses = raw
        .batch_append(futures::stream::iter(requests))
        .await?
        .into_inner();
    let mut received = Vec::new();
    while let Some(response) = guard(responses.message()).await?? {
        received.push(response);
    }
    Ok(received)
}

fn correlation_of(response: &BatchAppendResp) -> Option<String> {
    match response.correlation_id.as_ref()?.value.as_ref()? {
        uuid::Value::String(text) => Some(text.clone()),
        uuid::Value::Structured(_) => None,
    }
}

fn assert_resource_exhausted(response: &BatchAppendResp, correlation: &str, mentions: &str) {
    assert_eq!(correlation_of(response).as_deref(), Some(correlation));
    match &response.result {
        Some(batch_append_resp::Result::Error(status)) => {
            assert_eq!(
                status.code,
                tonic::Code::ResourceExhausted as i32,
                "{}",
                status.message
            );
            assert!(status.message.contains(mentions), "{}", status.message);
        }
        other => panic!("expected ResourceExhausted for {correlation}, got {other:?}"),
    }
}

fn assert_success(response: &BatchAppendResp, correlation: &str) {
    assert_eq!(correlation_of(response).as_deref(), Some(correlation));
    assert!(
        matches!(response.result, Some(batch_append_resp::Result::Success(_))),
        "{response:?}"
    );
}

/// One unfinished append past the cap is refused; finishing an open one still works on the same
/// call, and the server takes ordinary appends afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_appends_are_capped_per_call() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let streams: Vec<String> = (0..MAX_PENDING_APPENDS).map(|_| stream("open")).collect();
    let correlations: Vec<String> = streams.iter().map(|_| correlation()).collect();
    let mut requests: Vec<BatchAppendReq> = streams
        .iter()
        .zip(&correlations)
        .map(|(stream, correlation)| chunk(correlation, Some(stream), 10, false))
        .collect();
    let over = correlation();
    requests.push(chunk(&over, Some(&stream("over")), 10, false));
    requests.push(chunk(&correlations[0], None, 10, true));

    let responses = batch_append(&server, requests).await?;
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_resource_exhausted(&responses[0], &over, "unfinished appends");
    assert_success(&responses[1], &correlations[0]);
    let written = collect(
        client
            .read_stream(streams[0].as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(written.len(), 2);

    let after = stream("after");
    client
        .append_to_stream(after.as_str(), &Default::default(), events("E", 1))
        .await?;
    server.shutdown().await
}

/// Unfinished appends that together would hold more than the byte cap: the one that crosses it
/// is refused, the others stay open and can be finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_append_bytes_are_capped_per_call() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    // Each chunk fits one append comfortably; together they cross the call's cap by one.
    let payload = MAX_APPEND_SIZE - 24 * 1024;
    let open = MAX_PENDING_APPEND_BYTES / payload + 1;
    assert!(open <= MAX_PENDING_APPENDS, "the count cap would hit first");
    let streams: Vec<String> = (0..open).map(|_| stream("heavy")).collect();
    let correlations: Vec<String> = streams.iter().map(|_| correlation()).collect();
    let mut requests: Vec<BatchAppendReq> = streams
        .iter()
        .zip(&correlations)
        .map(|(stream, correlation)| chunk(correlation, Some(stream), payload, false))
        .collect();
    requests.push(chunk(&correlations[0], None, 10, true));

    let responses = batch_append(&server, requests).await?;
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_resource_exhausted(&responses[0], &correlations[open - 1], "bytes");
    assert_success(&responses[1], &correlations[0]);
    let written = collect(
        client
            .read_stream(streams[0].as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(written.len(), 2);
    assert_eq!(written[0].get_original_event().data.len(), payload);

    let after = stream("after");
    client
        .append_to_stream(after.as_str(), &Default::default(), events("E", 1))
        .await?;
    server.shutdown().await
}
