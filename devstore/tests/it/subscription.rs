//! Catch-up subscriptions: confirmation, catch-up, `caught_up`, live, without gap or duplicate.

use eventstore::{
    Position, ReadAllOptions, StreamPosition, SubscribeToAllOptions, SubscribeToStreamOptions,
    Subscription, SubscriptionEvent,
};

use crate::util::{collect, events, guard, start, stream};

/// What a subscription delivered, in order.
#[derive(Debug, Default)]
struct Delivered {
    confirmations: usize,
    caught_up_after: Vec<usize>,
    positions: Vec<Position>,
    revisions: Vec<u64>,
}

impl Delivered {
    /// Reads until `events` events arrived (and, if `until_caught_up`, a `caught_up` after them).
    async fn take(&mut self, subscription: &mut Subscription, events: usize) -> anyhow::Result<()> {
        while self.positions.len() < events {
            self.next(subscription).await?;
        }
        Ok(())
    }

    async fn until_caught_up(&mut self, subscription: &mut Subscription) -> anyhow::Result<()> {
        let seen = self.caught_up_after.len();
        while self.caught_up_after.len() == seen {
            self.next(subscription).await?;
        }
        Ok(())
    }

    async fn next(&mut self, subscription: &mut Subscription) -> anyhow::Result<()> {
        match guard(subscription.next_subscription_event()).await?? {
            SubscriptionEvent::Confirmed(_) => self.confirmations += 1,
            SubscriptionEvent::CaughtUp => self.caught_up_after.push(self.positions.len()),
            SubscriptionEvent::EventAppeared(event) => {
                let event = event.get_original_event();
                self.positions.push(event.position);
                self.revisions.push(event.revision);
            }
            _ => {}
        }
        Ok(())
    }
}

/// A `$all` subscription that starts mid-log catches up, reports caught-up, and receives the
/// thousands of events appended concurrently, each exactly once and in log order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_subscription_from_mid_log_hands_over_to_live_without_gap_or_duplicate()
-> anyhow::Result<()> {
    let (server, client) = start().await?;
    for batch in 0..10 {
        client
            .append_to_stream(
                format!("before-{batch}").as_str(),
                &Default::default(),
                events("E", 100),
            )
            .await?;
    }
    let history = collect(client.read_all(&ReadAllOptions::default()).await?).await?;
    let start_at = history[500].get_original_event().position;

    let writer_client = crate::util::client(&server)?;
    let writer = tokio::spawn(async move {
        for batch in 0..20 {
            let name = format!("live-{batch}");
            writer_client
                .append_to_stream(name.as_str(), &Default::default(), events("E", 100))
                .await?;
        }
        anyhow::Ok(())
    });
    let options = SubscribeToAllOptions::default().position(StreamPosition::Position(start_at));
    let mut subscription = client.subscribe_to_all(&options).await;
    let mut delivered = Delivered::default();
    let expected_count = history.len() - 501 + 2000;
    delivered.take(&mut subscription, expected_count).await?;
    guard(writer).await???;
    if delivered.caught_up_after.is_empty() {
        delivered.until_caught_up(&mut subscription).await?;
    }

    let everything = collect(client.read_all(&ReadAllOptions::default()).await?).await?;
    let after_start: Vec<Position> = everything
        .iter()
        .map(|event| event.get_original_event().position)
        .filter(|position| *position > start_at)
        .collect();
    assert_eq!(delivered.positions, after_start);
    assert_eq!(delivered.confirmations, 1);
    assert_eq!(delivered.caught_up_after.len(), 1);

    // Still live: a later append arrives after the caught-up.
    let late = client
        .append_to_stream("late", &Default::default(), events("E", 1))
        .await?;
    delivered
        .take(&mut subscription, expected_count + 1)
        .await?;
    assert_eq!(delivered.positions.last(), Some(&late.position));
    server.shutdown().await
}

/// A stream subscription from the start gets history, caught-up, then live events; one from a
/// revision starts after it; one from the end only gets new events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_subscription_start_options() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("sub");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 5))
        .await?;
    let subscribe = |position| {
        let options = SubscribeToStreamOptions::default().start_from(position);
        let client = client.clone();
        let name = name.clone();
        async move { client.subscribe_to_stream(name.as_str(), &options).await }
    };
    let mut from_start = subscribe(StreamPosition::Start).await;
    let mut from_two = subscribe(StreamPosition::Position(2)).await;
    let mut from_end = subscribe(StreamPosition::End).await;
    let (mut start_seen, mut two_seen, mut end_seen) = (
        Delivered::default(),
        Delivered::default(),
        Delivered::default(),
    );
    start_seen.until_caught_up(&mut from_start).await?;
    two_seen.until_caught_up(&mut from_two).await?;
    end_seen.until_caught_up(&mut from_end).await?;
    assert_eq!(start_seen.revisions, vec![0, 1, 2, 3, 4]);
    assert_eq!(two_seen.revisions, vec![3, 4]);
    assert!(end_seen.revisions.is_empty());

    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 2))
        .await?;
    client
        .append_to_stream(
            stream("other").as_str(),
            &Default::default(),
            events("E", 2),
        )
        .await?;
    start_seen.take(&mut from_start, 7).await?;
    two_seen.take(&mut from_two, 4).await?;
    end_seen.take(&mut from_end, 2).await?;
    assert_eq!(start_seen.revisions, (0..7).collect::<Vec<_>>());
    assert_eq!(two_seen.revisions, vec![3, 4, 5, 6]);
    assert_eq!(end_seen.revisions, vec![5, 6]);
    assert_eq!(start_seen.caught_up_after, vec![5]);
    server.shutdown().await
}

/// Subscribing to a stream that does not exist yet is fine: caught-up at once, then its first
/// events when they come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_to_a_stream_that_does_not_exist_yet() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("future");
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream(name.as_str(), &options).await;
    let mut delivered = Delivered::default();
    delivered.until_caught_up(&mut subscription).await?;
    let other = crate::util::client(&server)?;
    other
        .append_to_stream(name.as_str(), &Default::default(), events("E", 3))
        .await?;
    delivered.take(&mut subscription, 3).await?;
    assert_eq!(delivered.revisions, vec![0, 1, 2]);
    server.shutdown().await
}

/// A `$all` subscription from the end only sees events appended after it was confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_subscription_from_end_sees_only_new_events() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    client
        .append_to_stream(stream("old").as_str(), &Default::default(), events("E", 3))
        .await?;
    let options = SubscribeToAllOptions::default().position(StreamPosition::End);
    let mut subscription = client.subscribe_to_all(&options).await;
    let mut delivered = Delivered::default();
    delivered.until_caught_up(&mut subscription).await?;
    let new = client
        .append_to_stream(stream("new").as_str(), &Default::default(), events("E", 1))
        .await?;
    delivered.take(&mut subscription, 1).await?;
    assert_eq!(delivered.positions, vec![new.position]);
    server.shutdown().await
}
