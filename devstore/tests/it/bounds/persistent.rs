//! Persistent subscriptions: a client can neither create groups or consumers without end, nor
//! make one consumer hold an unbounded number of unacked events, nor have a nack's reason
//! copied into the log at any size.

use eventstore::{
    Error, PersistentSubscriptionOptions, StreamPosition, SubscribeToPersistentSubscriptionOptions,
};

use crate::util::{events, guard, start, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_stop_at_the_limit_and_the_server_goes_on() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default();
    for index in 0..devstore::limits::MAX_PERSISTENT_GROUPS {
        client
            .create_persistent_subscription(orders.as_str(), format!("group-{index}"), &options)
            .await?;
    }
    let refused = client
        .create_persistent_subscription(orders.as_str(), "one-too-many", &options)
        .await;
    let Err(Error::Grpc { code, message }) = refused else {
        panic!("the group past the limit was not refused: {refused:?}");
    };
    assert_eq!(code, tonic::Code::ResourceExhausted);
    assert!(message.contains("delete some first"), "{message}");

    // Deleting one makes room, and the others still serve.
    client
        .delete_persistent_subscription(orders.as_str(), "group-0", &Default::default())
        .await?;
    client
        .create_persistent_subscription(orders.as_str(), "one-too-many", &options)
        .await?;
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "group-1", &Default::default())
        .await?;
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 1))
        .await?;
    let event = guard(consumer.next()).await??;
    assert_eq!(event.get_original_event().revision, 0);
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_buffer_is_cut_to_the_limit() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let greedy = SubscribeToPersistentSubscriptionOptions::default().buffer_size(10_000_000);
    let _consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &greedy)
        .await?;
    let info = client
        .get_persistent_subscription_info(orders.as_str(), "billing", &Default::default())
        .await?;
    assert_eq!(
        info.connections[0].available_slots,
        devstore::limits::MAX_PERSISTENT_BUFFER as usize
    );
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_of_one_group_stop_at_the_limit_whatever_the_group_allows() -> anyhow::Result<()>
{
    let (server, client) = start().await?;
    let orders = stream("orders");
    // 0 means "no limit" to the real server; devstore still caps it.
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .max_subscriber_count(0);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let mut consumers = Vec::new();
    for _ in 0..devstore::limits::MAX_CONSUMERS_PER_GROUP {
        consumers.push(
            client
                .subscribe_to_persistent_subscription(
                    orders.as_str(),
                    "billing",
                    &Default::default(),
                )
                .await?,
        );
    }
    let refused = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await;
    let Err(Error::Grpc { code, message }) = refused else {
        panic!(
            "the consumer past the limit was not refused: {:?}",
            refused.err()
        );
    };
    assert_eq!(code, tonic::Code::FailedPrecondition);
    assert!(
        message.starts_with("Maximum subscriptions reached"),
        "{message}"
    );
    // The group still serves the ones it has.
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 1))
        .await?;
    let (event, _) = guard(crate::persistent::next(&mut consumers[0])).await??;
    assert_eq!(event.get_original_event().revision, 0);
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_reason_is_cut_before_it_is_copied_into_the_parked_stream() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 1))
        .await?;
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    let (event, _) = crate::persistent::next(&mut consumer).await?;
    consumer
        .nack(event, eventstore::NakAction::Park, "x".repeat(100_000))
        .await?;
    let parked = format!("$persistentsubscription-{orders}::billing-parked");
    crate::persistent::eventually(|| async {
        Ok(crate::persistent::parked(&client, &orders, "billing").await? == 1)
    })
    .await?;
    let links = crate::util::collect(
        client
            .read_stream(parked.as_str(), &Default::default())
            .await?,
    )
    .await?;
    let metadata = &links[0].get_original_event().custom_metadata;
    let limit = devstore::limits::MAX_NACK_REASON_BYTES;
    assert!(
        metadata.len() > limit && metadata.len() < limit + 200,
        "parked link metadata of {} bytes",
        metadata.len()
    );
    server.shutdown().await
}
