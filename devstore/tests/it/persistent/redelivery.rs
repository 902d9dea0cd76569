//! What happens to a message that is not acked: nacked and parked until replayed, retried
//! after the message timeout, handed on when its consumer leaves, parked after its retries.

use std::time::Duration;

use eventstore::{
    NakAction, PersistentSubscriptionOptions, ReplayParkedMessagesOptions, StreamPosition,
    SubscribeToPersistentSubscriptionOptions,
};

use super::{eventually, next, parked, revision};
use crate::util::{events, guard, start, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_message_comes_back_after_replay_parked() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 5))
        .await?;
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    for expected in 0..5 {
        let (event, retry_count) = next(&mut consumer).await?;
        assert_eq!((revision(&event), retry_count), (expected, 0));
        if expected == 2 {
            consumer
                .nack(event, NakAction::Park, "cannot bill it")
                .await?;
        } else {
            consumer.ack(event).await?;
        }
    }
    let parked_now = || parked(&client, &orders, "billing");
    eventually(|| async { Ok(parked_now().await? == 1) }).await?;
    let nothing = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(
        nothing.is_err(),
        "a parked message came back by itself: {nothing:?}"
    );

    client
        .replay_parked_messages(
            orders.as_str(),
            "billing",
            &ReplayParkedMessagesOptions::default(),
        )
        .await?;
    let (event, retry_count) = next(&mut consumer).await?;
    assert_eq!((revision(&event), retry_count), (2, 0));
    // Delivered through its link in the parked stream, and acked by the link's id.
    let link = event
        .link
        .as_ref()
        .expect("a replayed message carries its link");
    assert_eq!(
        link.stream_id,
        format!("$persistentsubscription-{orders}::billing-parked")
    );
    assert_eq!(
        parked_now().await?,
        1,
        "still parked until it is settled again"
    );
    consumer.ack(event).await?;
    eventually(|| async { Ok(parked_now().await? == 0) }).await?;
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_not_acked_in_time_goes_to_another_consumer() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .message_timeout(Duration::from_millis(500));
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    // The first consumer takes five messages and then hangs: it neither acks nor reads on.
    let mut hung = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 5))
        .await?;
    for expected in 0..5 {
        let (event, _) = next(&mut hung).await?;
        assert_eq!(revision(&event), expected);
    }
    let mut healthy = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    let mut acked = std::collections::BTreeSet::new();
    while acked.len() < 5 {
        let (event, retry_count) = next(&mut healthy).await?;
        assert!(
            retry_count >= 1,
            "event {} came without a retry",
            revision(&event)
        );
        acked.insert(revision(&event));
        healthy.ack(event).await?;
    }
    assert_eq!(acked, (0..5).collect());
    drop(hung);
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_consumers_messages_go_to_another_at_once() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    // A timeout far beyond the test: only the departure can hand the messages on.
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .message_timeout(Duration::from_secs(600));
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let mut leaving = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 3))
        .await?;
    for _ in 0..3 {
        next(&mut leaving).await?;
    }
    let mut staying = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    drop(leaving);
    for expected in 0..3 {
        let (event, retry_count) = guard(next(&mut staying)).await??;
        assert_eq!((revision(&event), retry_count), (expected, 1));
        staying.ack(event).await?;
    }
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_retried_past_max_retry_count_is_parked() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .max_retry_count(2);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let mut consumer = client
        .subscribe_to_persistent_subscription(
            orders.as_str(),
            "billing",
            &SubscribeToPersistentSubscriptionOptions::default(),
        )
        .await?;
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 1))
        .await?;
    // Delivered max_retry_count + 1 times, then parked.
    for expected_retry in 0..3 {
        let (event, retry_count) = next(&mut consumer).await?;
        assert_eq!(retry_count, expected_retry);
        consumer.nack(event, NakAction::Retry, "not yet").await?;
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(
        nothing.is_err(),
        "delivered after its last retry: {nothing:?}"
    );
    eventually(|| async { Ok(parked(&client, &orders, "billing").await? == 1) }).await?;
    server.shutdown().await
}
