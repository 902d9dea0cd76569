//! A durable devstore reads what memory no longer holds from SQLite: pages that straddle the
//! newest events it keeps, reads after a restart (when it holds none), truncated streams, and
//! subscriptions catching up from disk while appends go on. Every event read is checked against
//! what was written, payload and custom metadata included.
//!
//! The servers here keep only 16 KiB of recent events (a few dozen), so nearly every read goes
//! to disk and most pages (512 events) mix both sources.

use std::path::Path;

use devstore::{Config, Server, Storage};
use eventstore::{
    Client, EventData, ReadAllOptions, ReadStreamOptions, StreamMetadataBuilder, StreamPosition,
    SubscribeToAllOptions, SubscribeToStreamOptions, Subscription, SubscriptionEvent,
    SubscriptionFilter,
};
use prost::bytes::Bytes;

use crate::util::{client, collect, config, guard, stream};

/// A durable server keeping 16 KiB of recent events in `dir`.
fn durable(dir: &Path) -> Config {
    Config {
        storage: Storage::Dir(dir.to_owned()),
        recent_bytes: 16 << 10,
        ..config()
    }
}

/// Event `index` of `stream`: its payload and custom metadata name both, so a read can tell
/// that it got the right bytes for the right position; even and odd ones differ in type.
fn event(stream: &str, index: u64) -> EventData {
    EventData::json(
        event_type(index),
        &serde_json::json!({ "stream": stream, "index": index }),
    )
    .expect("serialisable")
    .metadata(Bytes::from(format!("meta {stream} {index}")))
}

/// Even revisions are `Even` events, odd ones `Odd`.
fn event_type(index: u64) -> &'static str {
    if index.is_multiple_of(2) {
        "Even"
    } else {
        "Odd"
    }
}

/// Asserts that `event` is the one [`event`] made for its stream and revision.
fn check(event: &eventstore::RecordedEvent) {
    let payload: serde_json::Value = serde_json::from_slice(&event.data).expect("JSON payload");
    assert_eq!(payload["stream"], event.stream_id.as_str(), "{event:?}");
    assert_eq!(payload["index"], event.revision, "{event:?}");
    assert_eq!(
        event.custom_metadata,
        Bytes::from(format!("meta {} {}", event.stream_id, event.revision)),
    );
    assert_eq!(event.event_type, event_type(event.revision));
    assert!(event.is_json);
}

/// Appends `appends` rounds of `per_append` events to each of `streams` (whose next revision
/// is `from`), interleaved, so that each stream's revisions are scattered over the log.
async fn write(
    client: &Client,
    streams: &[String],
    from: u64,
    appends: u64,
    per_append: u64,
) -> anyhow::Result<()> {
    for round in 0..appends {
        for name in streams {
            let first = from + round * per_append;
            let batch: Vec<EventData> = (first..first + per_append)
                .map(|index| event(name, index))
                .collect();
            client
                .append_to_stream(name.as_str(), &Default::default(), batch)
                .await?;
        }
    }
    Ok(())
}

/// Reads `$all` both ways and each of `streams` (of `per_stream` events) both ways, checking
/// every event.
async fn read_back(client: &Client, streams: &[String], per_stream: u64) -> anyhow::Result<()> {
    let forwards = collect(client.read_all(&ReadAllOptions::default()).await?).await?;
    let positions: Vec<u64> = forwards
        .iter()
        .map(|event| event.get_original_event().position.commit)
        .collect();
    let head = *positions.last().expect("events");
    assert_eq!(positions, (1..=head).collect::<Vec<_>>());
    let mine = forwards
        .iter()
        .map(|event| event.get_original_event())
        .filter(|event| streams.contains(&event.stream_id));
    let mut count = 0;
    for event in mine {
        check(event);
        count += 1;
    }
    assert_eq!(count, streams.len() as u64 * per_stream);
    let backwards = collect(
        client
            .read_all(
                &ReadAllOptions::default()
                    .position(StreamPosition::End)
                    .backwards(),
            )
            .await?,
    )
    .await?;
    let positions: Vec<u64> = backwards
        .iter()
        .map(|event| event.get_original_event().position.commit)
        .collect();
    assert_eq!(positions, (1..=head).rev().collect::<Vec<_>>());
    for name in streams {
        let read = collect(
            client
                .read_stream(name.as_str(), &Default::default())
                .await?,
        )
        .await?;
        let revisions: Vec<u64> = read
            .iter()
            .map(|event| event.get_original_event().revision)
            .collect();
        assert_eq!(revisions, (0..per_stream).collect::<Vec<_>>());
        read.iter()
            .for_each(|event| check(event.get_original_event()));
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(per_stream / 2))
            .backwards();
        let read = collect(client.read_stream(name.as_str(), &options).await?).await?;
        let revisions: Vec<u64> = read
            .iter()
            .map(|event| event.get_original_event().revision)
            .collect();
        assert_eq!(revisions, (0..=per_stream / 2).rev().collect::<Vec<_>>());
        read.iter()
            .for_each(|event| check(event.get_original_event()));
    }
    Ok(())
}

/// Reads in both directions return every event with its payload, whether it comes from the
/// newest events in memory, from SQLite, or (within one page) from both; and the same after a
/// restart, when nothing is in memory, and after appending more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_across_memory_and_disk_return_every_payload() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let streams: Vec<String> = (0..3).map(|_| stream("paged")).collect();
    let server = Server::start(durable(data.path())).await?;
    let writer = client(&server)?;
    write(&writer, &streams, 0, 10, 40).await?;
    read_back(&writer, &streams, 400).await?;
    guard(server.shutdown()).await??;

    let server = Server::start(durable(data.path())).await?;
    let reader = client(&server)?;
    read_back(&reader, &streams, 400).await?;
    write(&reader, &streams, 400, 1, 20).await?;
    read_back(&reader, &streams, 420).await?;
    guard(server.shutdown()).await?
}

/// `$maxCount` and `$maxAge` apply to stream reads served from disk, after a restart too
/// (`$maxAge` then compares the write times loaded from SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_streams_read_from_disk_show_only_their_visible_events() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let counted = stream("counted");
    let aged = stream("aged");
    let server = Server::start(durable(data.path())).await?;
    let writer = client(&server)?;
    write(&writer, std::slice::from_ref(&counted), 0, 4, 50).await?;
    let metadata = StreamMetadataBuilder::new().max_count(10).build();
    writer
        .set_stream_metadata(counted.as_str(), &Default::default(), &metadata)
        .await?;
    write(&writer, std::slice::from_ref(&aged), 0, 1, 2).await?;
    // The Rust client writes `$maxAge` in milliseconds and servers read seconds: one second.
    let metadata = StreamMetadataBuilder::new()
        .max_age(std::time::Duration::from_millis(1))
        .build();
    writer
        .set_stream_metadata(aged.as_str(), &Default::default(), &metadata)
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    write(&writer, std::slice::from_ref(&aged), 2, 1, 1).await?;
    check_truncated(&writer, &counted, &aged).await?;
    guard(server.shutdown()).await??;

    let server = Server::start(durable(data.path())).await?;
    check_truncated(&client(&server)?, &counted, &aged).await?;
    guard(server.shutdown()).await?
}

/// `counted` shows its newest 10 of 200 revisions and `aged` only its revision 2, both ways.
async fn check_truncated(client: &Client, counted: &str, aged: &str) -> anyhow::Result<()> {
    let read = |name: &str, options: ReadStreamOptions| {
        let name = name.to_owned();
        async move {
            let read = collect(client.read_stream(name.as_str(), &options).await?).await?;
            read.iter()
                .for_each(|event| check(event.get_original_event()));
            let revisions: Vec<u64> = read
                .iter()
                .map(|event| event.get_original_event().revision)
                .collect();
            anyhow::Ok(revisions)
        }
    };
    let forwards = ReadStreamOptions::default();
    let backwards = ReadStreamOptions::default()
        .position(StreamPosition::End)
        .backwards();
    assert_eq!(
        read(counted, forwards.clone()).await?,
        (190..200).collect::<Vec<_>>()
    );
    assert_eq!(
        read(counted, backwards.clone()).await?,
        (190..200).rev().collect::<Vec<_>>()
    );
    assert_eq!(read(aged, forwards).await?, vec![2]);
    assert_eq!(read(aged, backwards).await?, vec![2]);
    Ok(())
}

/// What a subscription delivered until it had `events` events.
async fn take(subscription: &mut Subscription, events: usize) -> anyhow::Result<Vec<u64>> {
    let mut positions = Vec::new();
    while positions.len() < events {
        if let SubscriptionEvent::EventAppeared(event) =
            guard(subscription.next_subscription_event()).await??
        {
            let event = event.get_original_event();
            if event.stream_id != "$users" {
                check(event);
            }
            positions.push(event.position.commit);
        }
    }
    Ok(positions)
}

/// `$all` (plain and filtered) and stream subscriptions started after a restart catch up from
/// disk while a writer keeps appending, and get every event once, in order, with its payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_catch_up_from_disk_while_appends_continue() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let streams: Vec<String> = (0..2).map(|_| stream("caught")).collect();
    let server = Server::start(durable(data.path())).await?;
    write(&client(&server)?, &streams, 0, 10, 100).await?;
    guard(server.shutdown()).await??;

    let server = Server::start(durable(data.path())).await?;
    let client = client(&server)?;
    let all = SubscribeToAllOptions::default().position(StreamPosition::Start);
    let mut everything = client.subscribe_to_all(&all).await;
    let odd = all
        .clone()
        .filter(SubscriptionFilter::on_event_type().add_prefix("Odd"));
    let mut odd = client.subscribe_to_all(&odd).await;
    let from_start = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut first_stream = client
        .subscribe_to_stream(streams[0].as_str(), &from_start)
        .await;
    let writer = {
        let client = client.clone();
        let streams = streams.clone();
        tokio::spawn(async move { write(&client, &streams, 1000, 20, 25).await })
    };
    // 2,000 events (and `$users`) before, 1,000 during.
    let everything = take(&mut everything, 1 + 3000).await;
    guard(writer).await???;
    let everything = everything?;
    assert_eq!(everything, (1..=3001).collect::<Vec<_>>());
    let odd = take(&mut odd, 1500).await?;
    assert!(odd.windows(2).all(|pair| pair[0] < pair[1]), "in order");
    let first = take(&mut first_stream, 1500).await?;
    assert!(first.windows(2).all(|pair| pair[0] < pair[1]), "in order");
    guard(server.shutdown()).await?
}
