//! Soft delete, tombstone and stream metadata.

use eventstore::{
    AppendToStreamOptions, DeleteStreamOptions, Error, ExpectedRevision, ReadStreamOptions,
    StreamMetadataBuilder, StreamMetadataResult, StreamPosition, SubscribeToStreamOptions,
    SubscriptionEvent, TombstoneStreamOptions,
};

use crate::util::{collect, events, guard, start, stream};

/// A soft-deleted stream reads as not found, can be recreated with `NoStream`, keeps its old
/// events hidden, and continues its revisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_delete_hides_events_and_allows_recreation() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("soft");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 2))
        .await?;
    let options = DeleteStreamOptions::default().expected_revision(ExpectedRevision::Exact(1));
    client.delete_stream(name.as_str(), &options).await?;
    let mut read = client
        .read_stream(name.as_str(), &Default::default())
        .await?;
    assert!(matches!(
        guard(read.next()).await?,
        Err(Error::ResourceNotFound)
    ));
    // Deleting again with the same expectation still succeeds.
    client.delete_stream(name.as_str(), &options).await?;

    let recreate = AppendToStreamOptions::default().expected_revision(ExpectedRevision::NoStream);
    let result = client
        .append_to_stream(name.as_str(), &recreate, events("E", 1))
        .await?;
    assert_eq!(result.next_expected_version, 2);
    let read = collect(
        client
            .read_stream(name.as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(
        read.iter()
            .map(|event| event.get_original_event().revision)
            .collect::<Vec<_>>(),
        vec![2]
    );
    server.shutdown().await
}

/// A tombstoned stream refuses reads, appends, deletes and tombstones with the deleted error,
/// and a live subscription to it gets the tombstone and then that error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstone_is_final() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("hard");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 1))
        .await?;
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream(name.as_str(), &options).await;
    loop {
        if let SubscriptionEvent::CaughtUp = guard(subscription.next_subscription_event()).await?? {
            break;
        }
    }
    client
        .tombstone_stream(name.as_str(), &TombstoneStreamOptions::default())
        .await?;

    let tombstone = match guard(subscription.next_subscription_event()).await?? {
        SubscriptionEvent::EventAppeared(event) => event.get_original_event().event_type.clone(),
        other => anyhow::bail!("expected the tombstone event, got {other:?}"),
    };
    assert_eq!(tombstone, "$streamDeleted");
    assert!(matches!(
        guard(subscription.next_subscription_event()).await?,
        Err(Error::ResourceDeleted)
    ));

    assert!(matches!(
        client.read_stream(name.as_str(), &Default::default()).await,
        Err(Error::ResourceDeleted)
    ));
    let append = client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 1))
        .await;
    assert!(matches!(append, Err(Error::ResourceDeleted)));
    let delete = client
        .delete_stream(name.as_str(), &Default::default())
        .await;
    assert!(matches!(delete, Err(Error::ResourceDeleted)));
    let again = client
        .tombstone_stream(name.as_str(), &Default::default())
        .await;
    assert!(matches!(again, Err(Error::ResourceDeleted)));
    server.shutdown().await
}

/// Deleting with a wrong expectation, or a stream that never existed, is the real server's
/// wrong-expected-version error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_wrong_expected_revision() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("del");
    let error = client
        .delete_stream(name.as_str(), &Default::default())
        .await
        .expect_err("never existed");
    match error {
        Error::Grpc { code, message } => {
            assert_eq!(code, tonic::Code::FailedPrecondition);
            assert_eq!(
                message,
                format!(
                    "Delete failed due to WrongExpectedVersion. Stream: {name}, Expected version: -2, Actual version: -1"
                )
            );
        }
        other => anyhow::bail!("unexpected error {other:?}"),
    }
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 3))
        .await?;
    let wrong = DeleteStreamOptions::default().expected_revision(ExpectedRevision::Exact(0));
    let error = client
        .delete_stream(name.as_str(), &wrong)
        .await
        .expect_err("last revision is 2");
    assert!(matches!(
        error,
        Error::Grpc {
            code: tonic::Code::FailedPrecondition,
            ..
        }
    ));
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
    server.shutdown().await
}

/// Stream metadata round-trips through `$$<stream>`; `$maxCount` limits what reads return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_metadata_round_trip_and_max_count() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("meta");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 5))
        .await?;
    assert!(
        client
            .get_stream_metadata(name.as_str(), &Default::default())
            .await?
            .is_not_found()
    );
    let metadata = StreamMetadataBuilder::new()
        .max_count(2)
        .insert_custom_property("owner", "tests")
        .build();
    client
        .set_stream_metadata(name.as_str(), &Default::default(), &metadata)
        .await?;
    let read_back = client
        .get_stream_metadata(
            name.as_str(),
            &ReadStreamOptions::default().position(StreamPosition::End),
        )
        .await?;
    match read_back {
        StreamMetadataResult::Success(versioned) => assert_eq!(versioned.metadata(), &metadata),
        other => anyhow::bail!("unexpected metadata result {other:?}"),
    }
    let read = collect(
        client
            .read_stream(name.as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(
        read.iter()
            .map(|event| event.get_original_event().revision)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    server.shutdown().await
}
