//! Stream names are bounded in length and count toward the append size, in `Append` and in
//! `BatchAppend`.

use devstore::limits::{MAX_APPEND_SIZE, MAX_STREAM_NAME_BYTES};
use eventstore::{Error, EventData, ExpectedRevision, ReadStreamOptions};
use prost::bytes::Bytes;

use crate::util::{collect, events, start, stream};

/// A unique stream name exactly `length` bytes long.
fn name_of_length(length: usize) -> String {
    let mut name = stream("long");
    let padding = length - name.len();
    name.push_str(&"n".repeat(padding));
    name
}

/// One event whose own size (payload plus type) is `MAX_APPEND_SIZE - room`.
fn event_leaving_room(room: usize) -> EventData {
    let event_type = "Blob";
    let payload = vec![7u8; MAX_APPEND_SIZE - room - event_type.len()];
    EventData::binary(event_type, Bytes::from(payload))
}

fn assert_invalid_argument(error: Error, expected_message: &str) {
    match error {
        Error::Grpc { code, message } => {
            assert_eq!(code, tonic::Code::InvalidArgument, "{message}");
            assert!(message.contains(expected_message), "{message}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// An append whose events fit but whose stream name pushes it over the limit is refused; the
/// same events under a short name are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_name_counts_toward_the_append_size() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let long = name_of_length(1000);
    let error = client
        .append_to_stream(long.as_str(), &Default::default(), event_leaving_room(500))
        .await
        .expect_err("500 bytes of room, 1000 bytes of stream name");
    assert_invalid_argument(error, "Maximum Append Size of 1048576 Exceeded.");

    let short = stream("short");
    client
        .append_to_stream(short.as_str(), &Default::default(), event_leaving_room(500))
        .await?;
    let read = collect(
        client
            .read_stream(short.as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(read.len(), 1);
    server.shutdown().await
}

/// The same in a batch append: the name counts, and a fresh session still writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_name_counts_toward_the_batch_append_size() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let batch = client.batch_append(&Default::default()).await?;
    let long = name_of_length(1000);
    let error = batch
        .append_to_stream(
            long.as_str(),
            ExpectedRevision::Any,
            vec![event_leaving_room(500)],
        )
        .await
        .expect_err("500 bytes of room, 1000 bytes of stream name");
    assert_invalid_argument(error, "MaximumAppendSizeExceeded");

    // The client ends a batch session after its first failure, so a new one shows the server
    // still takes batch appends.
    let batch = client.batch_append(&Default::default()).await?;
    let short = stream("short");
    let written = batch
        .append_to_stream(
            short.as_str(),
            ExpectedRevision::Any,
            vec![event_leaving_room(500)],
        )
        .await?;
    assert_eq!(written.current_revision(), Some(0));
    server.shutdown().await
}

/// A name one byte over the limit is refused for appends and reads; one at the limit works,
/// and so does its `$$` metadata stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_name_length_is_bounded() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let too_long = name_of_length(MAX_STREAM_NAME_BYTES + 1);
    let error = client
        .append_to_stream(too_long.as_str(), &Default::default(), events("E", 1))
        .await
        .expect_err("name over the limit");
    assert_invalid_argument(error, &format!("limit of {MAX_STREAM_NAME_BYTES} bytes"));
    let read = async {
        collect(
            client
                .read_stream(too_long.as_str(), &ReadStreamOptions::default())
                .await?,
        )
        .await
    };
    let error = read.await.expect_err("name over the limit");
    let error = error.downcast::<Error>()?;
    assert_invalid_argument(error, &format!("limit of {MAX_STREAM_NAME_BYTES} bytes"));

    let longest = name_of_length(MAX_STREAM_NAME_BYTES);
    client
        .append_to_stream(longest.as_str(), &Default::default(), events("E", 2))
        .await?;
    client
        .delete_stream(longest.as_str(), &Default::default())
        .await?;
    let metadata = format!("$${longest}");
    let read = collect(
        client
            .read_stream(metadata.as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(read.len(), 1);
    server.shutdown().await
}
