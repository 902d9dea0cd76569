//! Bad input gets the real server's error and the server keeps serving.
//!
//! Some bad input cannot be produced with the official client (it always sends valid UUIDs and
//! the required metadata), so those tests speak the protocol with devstore's generated stubs.

use std::collections::HashMap;

use devstore::proto::shared::{StreamIdentifier, Uuid as WireUuid, uuid};
use devstore::proto::streams::append_req::{
    self, ProposedMessage, options::ExpectedStreamRevision,
};
use devstore::proto::streams::streams_client::StreamsClient;
use devstore::proto::streams::{AppendReq, append_resp};
use eventstore::{
    Error, EventData, ExpectedRevision, StreamPosition, SubscribeToAllOptions, SubscriptionEvent,
};
use prost::bytes::Bytes;

use crate::util::{collect, events, guard, start, stream};

/// An append over the real server's 1 MiB limit is refused with its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_append_is_refused() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("big");
    let big = (0..3)
        .map(|_| EventData::binary("Blob", Bytes::from(vec![7u8; 400 * 1024])))
        .collect::<Vec<_>>();
    let error = client
        .append_to_stream(name.as_str(), &Default::default(), big)
        .await
        .expect_err("1.2 MiB");
    match error {
        Error::Grpc { code, message } => {
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert_eq!(message, "Maximum Append Size of 1048576 Exceeded.");
        }
        other => anyhow::bail!("unexpected error {other:?}"),
    }
    let fits = (0..2)
        .map(|_| EventData::binary("Blob", Bytes::from(vec![7u8; 400 * 1024])))
        .collect::<Vec<_>>();
    client
        .append_to_stream(name.as_str(), &Default::default(), fits)
        .await?;
    assert_eq!(
        collect(
            client
                .read_stream(name.as_str(), &Default::default())
                .await?
        )
        .await?
        .len(),
        2
    );
    server.shutdown().await
}

fn proposed(id: WireUuid, metadata: &[(&str, &str)]) -> AppendReq {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let message = ProposedMessage {
        id: Some(id),
        metadata,
        custom_metadata: Bytes::new(),
        data: Bytes::from_static(b"{}"),
    };
    AppendReq {
        content: Some(append_req::Content::ProposedMessage(message)),
    }
}

fn options(stream: &str) -> AppendReq {
    let options = append_req::Options {
        stream_identifier: Some(StreamIdentifier {
            stream_name: stream.to_owned().into(),
        }),
        expected_stream_revision: Some(ExpectedStreamRevision::Any(())),
    };
    AppendReq {
        content: Some(append_req::Content::Options(options)),
    }
}

/// An invalid UUID and missing required metadata are refused; a valid string UUID is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_uuid_and_missing_metadata_are_refused() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let mut raw = StreamsClient::connect(format!("http://{}", server.local_addr())).await?;
    let name = stream("raw");
    let json = [("type", "E"), ("content-type", "application/json")];
    let string_id = |text: &str| WireUuid {
        value: Some(uuid::Value::String(text.to_owned())),
    };

    let bad_uuid = vec![options(&name), proposed(string_id("not-a-uuid"), &json)];
    let status = raw
        .append(futures::stream::iter(bad_uuid))
        .await
        .expect_err("invalid uuid");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("not-a-uuid"),
        "{}",
        status.message()
    );

    let no_type = vec![
        options(&name),
        proposed(
            string_id(&uuid_v4()),
            &[("content-type", "application/json")],
        ),
    ];
    let status = raw
        .append(futures::stream::iter(no_type))
        .await
        .expect_err("no type");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "Required Metadata Property 'type' is missing"
    );
    let exception = status
        .metadata()
        .get("exception")
        .map(|value| value.to_str())
        .transpose()?;
    assert_eq!(exception, Some("missing-required-metadata-property"));

    let id = uuid_v4();
    let good = vec![options(&name), proposed(string_id(&id), &json)];
    let response = raw.append(futures::stream::iter(good)).await?.into_inner();
    assert!(matches!(
        response.result,
        Some(append_resp::Result::Success(_))
    ));
    let read = collect(
        client
            .read_stream(name.as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].get_original_event().id.to_string(), id);
    server.shutdown().await
}

fn uuid_v4() -> String {
    ::uuid::Uuid::new_v4().to_string()
}

/// A client that disconnects in the middle of a subscription leaves the server serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_mid_subscription() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    for batch in 0..5 {
        client
            .append_to_stream(
                format!("bulk-{batch}").as_str(),
                &Default::default(),
                events("E", 200),
            )
            .await?;
    }
    {
        let leaving = crate::util::client(&server)?;
        let mut subscription = leaving
            .subscribe_to_all(&SubscribeToAllOptions::default())
            .await;
        let mut seen = 0;
        while seen < 10 {
            if let SubscriptionEvent::EventAppeared(_) =
                guard(subscription.next_subscription_event()).await??
            {
                seen += 1;
            }
        }
        // Dropping the subscription and its client closes the call mid-catch-up.
    }
    let other = crate::util::client(&server)?;
    let options = SubscribeToAllOptions::default().position(StreamPosition::Start);
    let mut subscription = other.subscribe_to_all(&options).await;
    let mut events_seen = 0;
    loop {
        match guard(subscription.next_subscription_event()).await?? {
            SubscriptionEvent::EventAppeared(_) => events_seen += 1,
            SubscriptionEvent::CaughtUp => break,
            _ => {}
        }
    }
    assert_eq!(events_seen, 1001);
    server.shutdown().await
}

/// Batch append writes atomically per stream and reports conflicts per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_append_and_its_conflicts() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let batch = client.batch_append(&Default::default()).await?;
    let mut names = Vec::new();
    for _ in 0..3 {
        let name = stream("batch");
        let result = batch
            .append_to_stream(name.as_str(), ExpectedRevision::NoStream, events("E", 3))
            .await?;
        assert_eq!(result.current_revision(), Some(2));
        assert_eq!(
            collect(
                client
                    .read_stream(name.as_str(), &Default::default())
                    .await?
            )
            .await?
            .len(),
            3
        );
        names.push(name);
    }
    // The client ends its batch session after the first failed append, so this comes last.
    let conflict = batch
        .append_to_stream(
            names[0].as_str(),
            ExpectedRevision::NoStream,
            events("E", 1),
        )
        .await;
    assert!(
        matches!(
            conflict,
            Err(Error::Grpc {
                code: tonic::Code::AlreadyExists,
                ..
            })
        ),
        "{conflict:?}"
    );
    assert_eq!(
        collect(
            client
                .read_stream(names[0].as_str(), &Default::default())
                .await?
        )
        .await?
        .len(),
        3
    );
    server.shutdown().await
}
