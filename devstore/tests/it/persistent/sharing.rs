//! Several consumers of one group receive every event exactly once between them, on a stream
//! and on `$all`, under each consumer strategy.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use eventstore::{
    Client, PersistentSubscriptionOptions, PersistentSubscriptionToAllOptions, StreamPosition,
    SubscribeToPersistentSubscriptionOptions, SubscriptionFilter, SystemConsumerStrategy,
};
use tokio::sync::mpsc;

use super::next;
use crate::util::{events, start, stream};

/// Consumers of one group, each acking everything it gets and reporting it.
struct Sharing {
    received: mpsc::UnboundedReceiver<(usize, String, u64)>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    consumers: usize,
}

/// Connects `consumers` consumers to `group` (on `source`, or `$all` when None).
async fn join(
    client: &Client,
    source: Option<&str>,
    group: &str,
    consumers: usize,
) -> anyhow::Result<Sharing> {
    let (sender, received) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for index in 0..consumers {
        let options = SubscribeToPersistentSubscriptionOptions::default().buffer_size(10);
        let mut subscription = match source {
            Some(stream) => {
                client
                    .subscribe_to_persistent_subscription(stream, group, &options)
                    .await?
            }
            None => {
                client
                    .subscribe_to_persistent_subscription_to_all(group, &options)
                    .await?
            }
        };
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let (event, _) = next(&mut subscription).await?;
                let recorded = event.get_original_event();
                let message = (index, recorded.stream_id.clone(), recorded.revision);
                subscription.ack(event).await?;
                if sender.send(message).is_err() {
                    return anyhow::Ok(());
                }
            }
        }));
    }
    Ok(Sharing {
        received,
        tasks,
        consumers,
    })
}

impl Sharing {
    /// Waits for `total` messages between the consumers, then a little longer for any
    /// duplicate. Returns each consumer's (stream, revision) list.
    async fn collect(mut self, total: usize) -> anyhow::Result<Vec<Vec<(String, u64)>>> {
        let mut by_consumer = vec![Vec::new(); self.consumers];
        for _ in 0..total {
            let (index, stream, revision) = crate::util::guard(self.received.recv())
                .await?
                .expect("consumers run");
            by_consumer[index].push((stream, revision));
        }
        // Anything more would be a duplicate.
        let extra = tokio::time::timeout(Duration::from_millis(500), self.received.recv()).await;
        assert!(extra.is_err(), "a message arrived twice: {extra:?}");
        for task in self.tasks {
            task.abort();
        }
        Ok(by_consumer)
    }
}

/// Every (stream, revision) exactly once between the consumers.
fn assert_exactly_once(by_consumer: &[Vec<(String, u64)>], expected: &BTreeSet<(String, u64)>) {
    let all: Vec<&(String, u64)> = by_consumer.iter().flatten().collect();
    let distinct: BTreeSet<(String, u64)> = all.iter().map(|&message| message.clone()).collect();
    assert_eq!(all.len(), distinct.len(), "duplicates among {all:?}");
    assert_eq!(&distinct, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_of_a_stream_get_every_event_once() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let orders = stream("orders");
    client
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 100))
        .await?;
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    client
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    // Half before the consumers come, half while they work.
    let sharing = join(&client, Some(&orders), "billing", 3).await?;
    for _ in 0..10 {
        client
            .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 10))
            .await?;
    }
    let by_consumer = sharing.collect(200).await?;
    let expected = (0..200)
        .map(|revision| (orders.clone(), revision))
        .collect();
    assert_exactly_once(&by_consumer, &expected);
    // Round robin: the 100 waiting events went round, so every consumer took part.
    assert!(
        by_consumer.iter().all(|messages| !messages.is_empty()),
        "{by_consumer:?}"
    );
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_of_all_get_every_filtered_event_once() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let streams: Vec<String> = (0..4).map(|_| stream("shop")).collect();
    let noise = stream("noise");
    for round in 0..5 {
        for stream in &streams {
            client
                .append_to_stream(stream.as_str(), &Default::default(), events("Sold", 10))
                .await?;
        }
        client
            .append_to_stream(
                noise.as_str(),
                &Default::default(),
                events("Noise", round + 1),
            )
            .await?;
    }
    let options = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .filter(SubscriptionFilter::on_stream_name().add_prefix("shop-"));
    client
        .create_persistent_subscription_to_all("audit", &options)
        .await?;
    let by_consumer = join(&client, None, "audit", 3).await?.collect(200).await?;
    let expected = streams
        .iter()
        .flat_map(|stream| (0..50).map(move |revision| (stream.clone(), revision)))
        .collect();
    assert_exactly_once(&by_consumer, &expected);
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_to_single_fills_one_consumer_and_pinned_keeps_streams_together()
-> anyhow::Result<()> {
    let (server, client) = start().await?;
    // Dispatch to single: 8 events fit the first consumer's buffer of 10, so it gets them all.
    let single = stream("single");
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .consumer_strategy_name(SystemConsumerStrategy::DispatchToSingle);
    client
        .create_persistent_subscription(single.as_str(), "one", &options)
        .await?;
    let subscribe = SubscribeToPersistentSubscriptionOptions::default().buffer_size(10);
    let mut first = client
        .subscribe_to_persistent_subscription(single.as_str(), "one", &subscribe)
        .await?;
    let mut second = client
        .subscribe_to_persistent_subscription(single.as_str(), "one", &subscribe)
        .await?;
    client
        .append_to_stream(single.as_str(), &Default::default(), events("E", 8))
        .await?;
    for expected in 0..8 {
        let (event, _) = next(&mut first).await?;
        assert_eq!(super::revision(&event), expected);
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), second.next()).await;
    assert!(nothing.is_err(), "the second consumer got {nothing:?}");

    // Pinned: each stream's events all go to one consumer.
    let streams: Vec<String> = (0..6).map(|_| stream("pinned")).collect();
    let options = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .consumer_strategy_name(SystemConsumerStrategy::Pinned)
        .filter(SubscriptionFilter::on_stream_name().add_prefix("pinned-"));
    client
        .create_persistent_subscription_to_all("pins", &options)
        .await?;
    // Both consumers are there before the events, so the streams spread over them.
    let sharing = join(&client, None, "pins", 2).await?;
    for _ in 0..3 {
        for stream in &streams {
            client
                .append_to_stream(stream.as_str(), &Default::default(), events("E", 2))
                .await?;
        }
    }
    let by_consumer = sharing.collect(36).await?;
    let mut owners: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (index, messages) in by_consumer.iter().enumerate() {
        for (stream, _) in messages {
            owners.entry(stream.clone()).or_default().insert(index);
        }
    }
    assert_eq!(owners.len(), 6);
    assert!(owners.values().all(|owner| owner.len() == 1), "{owners:?}");
    // Both took part: a free stream goes to the consumer owning the fewest.
    assert!(
        by_consumer.iter().all(|messages| !messages.is_empty()),
        "{owners:?}"
    );
    server.shutdown().await
}
