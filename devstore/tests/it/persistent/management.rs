//! Creating, updating, listing, describing and deleting groups, and the errors the real server
//! gives for each misuse, as the official client reports them.

use std::time::Duration;

use eventstore::{
    Error, PersistentSubscriptionOptions, PersistentSubscriptionToAllOptions, StreamPosition,
    SubscribeToPersistentSubscriptionOptions,
};

use super::next;
use crate::util::{events, guard, start, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_listed_described_updated_and_deleted() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    client
        .create_persistent_subscription_to_all(
            "audit",
            &PersistentSubscriptionToAllOptions::default(),
        )
        .await?;

    let again = client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await;
    assert!(
        matches!(again, Err(Error::ResourceAlreadyExists)),
        "{again:?}"
    );
    let missing = client
        .get_persistent_subscription_info(orders.as_str(), "nobody", &Default::default())
        .await;
    assert!(
        matches!(missing, Err(Error::ResourceNotFound)),
        "{missing:?}"
    );
    let missing = client
        .subscribe_to_persistent_subscription(orders.as_str(), "nobody", &Default::default())
        .await;
    assert!(
        matches!(missing, Err(Error::ResourceNotFound)),
        "{:?}",
        missing.err()
    );
    // A stream that never had a group is not found; the real server answers so too.
    let never = client
        .list_persistent_subscriptions_for_stream("never-had-one", &Default::default())
        .await;
    assert!(matches!(never, Err(Error::ResourceNotFound)), "{never:?}");

    let all = client
        .list_all_persistent_subscriptions(&Default::default())
        .await?;
    let mut names: Vec<(String, String)> = all
        .iter()
        .map(|info| (info.event_source.clone(), info.group_name.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("$all".to_owned(), "audit".to_owned()),
            (orders.clone(), "billing".to_owned())
        ]
    );
    let for_stream = client
        .list_persistent_subscriptions_for_stream(orders.as_str(), &Default::default())
        .await?;
    assert_eq!(for_stream.len(), 1);
    let to_all = client
        .list_persistent_subscriptions_to_all(&Default::default())
        .await?;
    assert_eq!(to_all.len(), 1);

    let info = client
        .get_persistent_subscription_info(orders.as_str(), "billing", &Default::default())
        .await?;
    let settings = info.settings.expect("settings");
    assert_eq!(settings.max_retry_count, 10);
    assert_eq!(settings.message_timeout, Duration::from_secs(30));
    assert_eq!(settings.start_from, StreamPosition::Start);
    assert_eq!(info.status, "Live");

    // An update drops the connected consumers and takes effect.
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    let updated = options.clone().max_retry_count(3);
    client
        .update_persistent_subscription(orders.as_str(), "billing", &updated)
        .await?;
    let dropped = guard(consumer.next()).await?;
    assert!(
        matches!(dropped, Err(Error::IllegalStateError(_))),
        "{dropped:?}"
    );
    let info = client
        .get_persistent_subscription_info(orders.as_str(), "billing", &Default::default())
        .await?;
    assert_eq!(info.settings.expect("settings").max_retry_count, 3);

    // A delete drops them too, and the group is gone.
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    client
        .delete_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    let dropped = guard(consumer.next()).await?;
    assert!(
        matches!(dropped, Err(Error::IllegalStateError(_))),
        "{dropped:?}"
    );
    let gone = client
        .get_persistent_subscription_info(orders.as_str(), "billing", &Default::default())
        .await;
    assert!(matches!(gone, Err(Error::ResourceNotFound)), "{gone:?}");
    let deleted_again = client
        .delete_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await;
    assert!(
        matches!(deleted_again, Err(Error::ResourceNotFound)),
        "{deleted_again:?}"
    );
    // Its stream had a group, so listing it is an empty list now.
    let for_stream = client
        .list_persistent_subscriptions_for_stream(orders.as_str(), &Default::default())
        .await?;
    assert!(for_stream.is_empty());
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_group_refuses_another_consumer_and_info_shows_the_connections() -> anyhow::Result<()>
{
    let (server, client) = start().await?;
    let orders = stream("orders");
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .max_subscriber_count(1);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let subscribe = SubscribeToPersistentSubscriptionOptions::default().buffer_size(7);
    let mut consumer = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &subscribe)
        .await?;
    let refused = client
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &subscribe)
        .await;
    let Err(Error::Grpc { code, message }) = refused else {
        panic!("a second consumer was not refused: {:?}", refused.err());
    };
    assert_eq!(code, tonic::Code::FailedPrecondition);
    assert!(
        message.starts_with("Maximum subscriptions reached"),
        "{message}"
    );

    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 2))
        .await?;
    next(&mut consumer).await?;
    next(&mut consumer).await?;
    let info = client
        .get_persistent_subscription_info(orders.as_str(), "billing", &Default::default())
        .await?;
    assert_eq!(info.connections.len(), 1);
    let connection = &info.connections[0];
    assert_eq!(connection.in_flight_messages, 2);
    assert_eq!(connection.available_slots, 5);
    assert_eq!(info.stats.total_in_flight_messages, 2);
    assert_eq!(info.stats.last_known_event_revision, Some(1));
    server.shutdown().await
}
