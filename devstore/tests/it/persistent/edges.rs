//! The cases that break a naive group: duplicate event ids, a full pinned consumer, a start
//! at the end across an update, a replay cut short by an update, a consumer that never reads
//! while its group is updated, and a consumer leaving at its retry limit.

use std::time::Duration;

use eventstore::{
    EventData, NakAction, PersistentSubscriptionOptions, PersistentSubscriptionToAllOptions,
    ReplayParkedMessagesOptions, StreamPosition, SubscribeToPersistentSubscriptionOptions,
    SubscriptionFilter, SystemConsumerStrategy,
};

use super::{eventually, next, parked, revision};
use crate::util::{events, guard, start, stream};

/// Two events with one id (in two streams, which the real server allows) are both delivered by
/// a `$all` group, one after the other, and both settle: no slot or checkpoint is lost to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sharing_an_id_are_delivered_one_after_the_other() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let options = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .checkpoint_lower_bound(1)
        .checkpoint_upper_bound(1)
        .filter(SubscriptionFilter::on_stream_name().add_prefix("twin-"));
    client
        .create_persistent_subscription_to_all("billing", &options)
        .await?;
    let mut consumer = client
        .subscribe_to_persistent_subscription_to_all("billing", &Default::default())
        .await?;
    let id = uuid::Uuid::new_v4();
    let twins = [stream("twin"), stream("twin")];
    for (index, twin) in twins.iter().enumerate() {
        let event = EventData::json("Placed", &serde_json::json!({ "index": index }))?.id(id);
        client
            .append_to_stream(twin.as_str(), &Default::default(), vec![event])
            .await?;
    }
    let mut last = 0;
    for twin in &twins {
        let (event, _) = next(&mut consumer).await?;
        let recorded = event.get_original_event();
        assert_eq!((&recorded.stream_id, recorded.id), (twin, id));
        last = recorded.position.commit;
        consumer.ack(event).await?;
    }
    eventually(|| async {
        let info = client
            .get_persistent_subscription_info_to_all("billing", &Default::default())
            .await?;
        // At or past the second twin: what the filter passes over after it counts as read.
        let checkpoint = info.stats.last_checkpointed_position;
        Ok(checkpoint.is_some_and(|position| position.commit >= last)
            && info.connections[0].in_flight_messages == 0)
    })
    .await?;
    server.shutdown().await
}

/// Under the pinned strategy, a consumer that is full holds back only its own streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pinned_consumer_does_not_hold_back_the_others() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let options = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .message_timeout(Duration::from_secs(600))
        .consumer_strategy_name(SystemConsumerStrategy::Pinned)
        .filter(SubscriptionFilter::on_stream_name().add_prefix("pin-"));
    client
        .create_persistent_subscription_to_all("pins", &options)
        .await?;
    let first = stream("pin-a");
    let one = SubscribeToPersistentSubscriptionOptions::default().buffer_size(1);
    let mut full = client
        .subscribe_to_persistent_subscription_to_all("pins", &one)
        .await?;
    client
        .append_to_stream(first.as_str(), &Default::default(), events("E", 2))
        .await?;
    // It holds the first event and never acks: it is full, and `first` is pinned to it.
    let (held, _) = next(&mut full).await?;
    assert_eq!(held.get_original_event().stream_id, first);
    let ten = SubscribeToPersistentSubscriptionOptions::default().buffer_size(10);
    let mut other = client
        .subscribe_to_persistent_subscription_to_all("pins", &ten)
        .await?;
    let second = stream("pin-b");
    client
        .append_to_stream(second.as_str(), &Default::default(), events("E", 3))
        .await?;
    for expected in 0..3 {
        let (event, _) = next(&mut other).await?;
        let recorded = event.get_original_event();
        assert_eq!(
            (recorded.stream_id.as_str(), recorded.revision),
            (second.as_str(), expected)
        );
        other.ack(event).await?;
    }
    server.shutdown().await
}

/// A group created at the end delivers what was written after it was created, even when it is
/// updated (the Rust client sends its start again) before any checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_started_at_the_end_keeps_its_place_across_an_update() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Old", 2))
        .await?;
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::End);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("New", 3))
        .await?;
    client
        .update_persistent_subscription(orders.as_str(), "billing", &options.max_retry_count(4))
        .await?;
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    for expected in 2..5 {
        let (event, _) = next(&mut consumer).await?;
        assert_eq!(revision(&event), expected);
        consumer.ack(event).await?;
    }
    server.shutdown().await
}

/// A replay cut short by an update leaves the replayed message parked until it is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_cut_short_leaves_the_message_parked() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 1))
        .await?;
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let parked_now = || parked(&client, &orders, "billing");
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    let (event, _) = next(&mut consumer).await?;
    consumer.nack(event, NakAction::Park, "bad").await?;
    eventually(|| async { Ok(parked_now().await? == 1) }).await?;

    // Replayed into the consumer, which does not ack; then the group is updated.
    client
        .replay_parked_messages(
            orders.as_str(),
            "billing",
            &ReplayParkedMessagesOptions::default(),
        )
        .await?;
    let (replayed, _) = next(&mut consumer).await?;
    assert_eq!(revision(&replayed), 0);
    assert_eq!(parked_now().await?, 1, "unsettled, it is still parked");
    client
        .update_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    assert_eq!(parked_now().await?, 1);

    // Replayed again after the update, and acked: now it is no longer parked.
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    client
        .replay_parked_messages(
            orders.as_str(),
            "billing",
            &ReplayParkedMessagesOptions::default(),
        )
        .await?;
    let (replayed, _) = next(&mut consumer).await?;
    assert_eq!(revision(&replayed), 0);
    consumer.ack(replayed).await?;
    eventually(|| async { Ok(parked_now().await? == 0) }).await?;
    server.shutdown().await
}

/// A consumer that stops reading its call still gets the "dropped" status when its group is
/// updated, and the group goes on serving others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stopped_reading_is_still_dropped() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .message_timeout(Duration::from_millis(100))
        .max_retry_count(100);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let two = SubscribeToPersistentSubscriptionOptions::default().buffer_size(2);
    let mut stalled = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &two)
        .await?;
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 4))
        .await?;
    // Its messages time out and go round again, some of them back into its call.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut healthy = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    let mut acked = std::collections::BTreeSet::new();
    while acked.len() < 4 {
        let (event, _) = next(&mut healthy).await?;
        acked.insert(revision(&event));
        healthy.ack(event).await?;
    }
    client
        .update_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    // The stalled consumer reads what piled up, then the dropped status.
    let dropped = guard(async {
        loop {
            if let Err(error) = stalled.next().await {
                return error;
            }
        }
    })
    .await?;
    assert!(
        matches!(dropped, eventstore::Error::IllegalStateError(_)),
        "{dropped:?}"
    );
    server.shutdown().await
}

/// A consumer leaving hands its messages on with one more retry, and parks those whose
/// retries that uses up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_leaving_at_the_retry_limit_parks_its_messages() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .max_retry_count(1);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 1))
        .await?;
    for expected_retry in 0..2 {
        let mut leaving = client
            .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
            .await?;
        let (_, retry_count) = next(&mut leaving).await?;
        assert_eq!(retry_count, expected_retry);
    }
    eventually(|| async { Ok(parked(&client, &orders, "billing").await? == 1) }).await?;
    server.shutdown().await
}
