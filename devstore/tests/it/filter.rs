//! Filtered `$all` subscriptions: prefixes and regexes on stream names and event types, and
//! checkpoints for stretches where nothing matches.

use eventstore::{
    Error, Position, StreamPosition, SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter,
};

use crate::util::{events, guard, start, stream};

/// What a filtered subscription sent until it caught up.
struct CatchUp {
    event_streams: Vec<String>,
    event_types: Vec<String>,
    checkpoints: Vec<Position>,
}

async fn catch_up(
    client: &eventstore::Client,
    filter: SubscriptionFilter,
) -> anyhow::Result<CatchUp> {
    let options = SubscribeToAllOptions::default()
        .position(StreamPosition::Start)
        .filter(filter);
    let mut subscription = client.subscribe_to_all(&options).await;
    let mut caught_up = CatchUp {
        event_streams: Vec::new(),
        event_types: Vec::new(),
        checkpoints: Vec::new(),
    };
    loop {
        match guard(subscription.next_subscription_event()).await?? {
            SubscriptionEvent::EventAppeared(event) => {
                let event = event.get_original_event();
                caught_up.event_streams.push(event.stream_id.clone());
                caught_up.event_types.push(event.event_type.clone());
            }
            SubscriptionEvent::Checkpoint(position) => caught_up.checkpoints.push(position),
            SubscriptionEvent::CaughtUp => return Ok(caught_up),
            _ => {}
        }
    }
}

/// A stream-name prefix filter passes only matching streams and reports a checkpoint every
/// `max` considered events, then one at the end of catch-up, never going backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_prefix_filter_with_checkpoints_over_filtered_out_stretches() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let wanted = stream("wanted");
    for batch in 0..10 {
        client
            .append_to_stream(
                format!("noise-{batch}").as_str(),
                &Default::default(),
                events("Noise", 10),
            )
            .await?;
    }
    let last = client
        .append_to_stream(wanted.as_str(), &Default::default(), events("Wanted", 2))
        .await?;

    let filter = SubscriptionFilter::on_stream_name()
        .add_prefix("wanted-")
        .max(10);
    let caught_up = catch_up(&client, filter).await?;
    assert_eq!(caught_up.event_streams, vec![wanted.clone(), wanted]);
    // 1 `$users` + 100 noise + 2 wanted events considered: checkpoints at 10, 20, ... 100 and
    // one at the end of catch-up.
    assert_eq!(caught_up.checkpoints.len(), 11);
    assert!(
        caught_up
            .checkpoints
            .windows(2)
            .all(|pair| pair[0] < pair[1])
    );
    assert_eq!(caught_up.checkpoints.last(), Some(&last.position));
    server.shutdown().await
}

/// Regexes are .NET-style searches: on event types, and the client's system-event exclusion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_type_regex_filters() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    client
        .append_to_stream(
            stream("orders").as_str(),
            &Default::default(),
            events("OrderPlaced", 2),
        )
        .await?;
    client
        .append_to_stream(
            stream("orders").as_str(),
            &Default::default(),
            events("OrderShipped", 1),
        )
        .await?;
    client
        .append_to_stream(
            stream("users").as_str(),
            &Default::default(),
            events("UserJoined", 1),
        )
        .await?;

    let placed = catch_up(
        &client,
        SubscriptionFilter::on_event_type().regex("Placed$"),
    )
    .await?;
    assert_eq!(placed.event_types, vec!["OrderPlaced", "OrderPlaced"]);
    let orders = catch_up(&client, SubscriptionFilter::on_event_type().regex("^Order")).await?;
    assert_eq!(orders.event_types.len(), 3);
    let no_system = catch_up(
        &client,
        SubscriptionFilter::on_event_type().exclude_system_events(),
    )
    .await?;
    assert_eq!(no_system.event_types.len(), 4);
    assert!(
        no_system
            .event_types
            .iter()
            .all(|event_type| !event_type.starts_with('$'))
    );
    let by_prefixes = catch_up(
        &client,
        SubscriptionFilter::on_event_type()
            .add_prefix("User")
            .add_prefix("OrderS"),
    )
    .await?;
    assert_eq!(by_prefixes.event_types, vec!["OrderShipped", "UserJoined"]);
    server.shutdown().await
}

/// A regex that does not compile fails the subscription with the server's error, and the
/// server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_regex_is_refused() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let filter = SubscriptionFilter::on_stream_name().regex("(unclosed");
    let options = SubscribeToAllOptions::default().filter(filter);
    let mut subscription = client.subscribe_to_all(&options).await;
    let error = guard(subscription.next_subscription_event())
        .await?
        .expect_err("invalid regex");
    assert!(
        matches!(error, Error::ServerError(ref message) if message.contains("(unclosed")),
        "{error:?}"
    );
    let result = client
        .append_to_stream(
            stream("still-up").as_str(),
            &Default::default(),
            events("E", 1),
        )
        .await?;
    assert_eq!(result.next_expected_version, 0);
    server.shutdown().await
}

/// Live events pass the filter too, and checkpoints keep coming while only noise is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_checkpoints_while_nothing_matches() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let filter = SubscriptionFilter::on_stream_name()
        .add_prefix("wanted-")
        .max(5);
    let options = SubscribeToAllOptions::default()
        .position(StreamPosition::End)
        .filter(filter);
    let mut subscription = client.subscribe_to_all(&options).await;
    loop {
        if let SubscriptionEvent::CaughtUp = guard(subscription.next_subscription_event()).await?? {
            break;
        }
    }
    let noise = client
        .append_to_stream(
            stream("noise").as_str(),
            &Default::default(),
            events("E", 10),
        )
        .await?;
    let wanted = client
        .append_to_stream(
            stream("wanted").as_str(),
            &Default::default(),
            events("E", 1),
        )
        .await?;
    let mut checkpoints = Vec::new();
    loop {
        match guard(subscription.next_subscription_event()).await?? {
            SubscriptionEvent::Checkpoint(position) => checkpoints.push(position),
            SubscriptionEvent::EventAppeared(event) => {
                assert_eq!(event.get_original_event().position, wanted.position);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(checkpoints.len(), 2);
    assert_eq!(checkpoints.last(), Some(&noise.position));
    server.shutdown().await
}
