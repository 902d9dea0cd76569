//! Delivery rate of a persistent subscription with acks, with one consumer and with three,
//! using the official `eventstore` client over loopback.
//!
//! Run with `cargo run --release -p devstore --example persistent -- [RUNS]` (default 5).
//! Each run starts a fresh in-memory server, stores 50,000 events of ~300 bytes in one stream,
//! creates a group from the start, and times from the consumers' first subscribe until every
//! event was received and acked (one ack message per event, a buffer of 64 per consumer), for
//! one consumer and then for three on a new group. It prints each run and the medians.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use devstore::{Config, Server};
use eventstore::{
    Client, EventData, PersistentSubscriptionOptions, StreamPosition,
    SubscribeToPersistentSubscriptionOptions,
};

const EVENTS: usize = 50_000;
const BATCH: usize = 500;
const BUFFER: usize = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|runs| runs.parse())
        .transpose()?
        .unwrap_or(5);
    let (mut one, mut three) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let server = Server::start(Config {
            listen: "127.0.0.1:0".parse()?,
            ..Config::default()
        })
        .await?;
        let client =
            Client::new(format!("{}&discoveryInterval=0", server.connection_string()).parse()?)?;
        let payload = "x".repeat(280);
        for _ in 0..EVENTS / BATCH {
            let events: Vec<EventData> = (0..BATCH)
                .map(|index| {
                    EventData::json("Placed", &serde_json::json!({"i": index, "p": payload}))
                })
                .collect::<Result<_, _>>()?;
            client
                .append_to_stream("orders", &Default::default(), events)
                .await?;
        }
        let single = rate(&client, "one", 1).await?;
        let shared = rate(&client, "three", 3).await?;
        println!("run {run}: acked events/s, 1 consumer {single:.0}, 3 consumers {shared:.0}");
        one.push(single);
        three.push(shared);
        server.shutdown().await?;
    }
    println!(
        "median acked events/s, 1 consumer: {:.0}",
        common::median(&mut one)
    );
    println!(
        "median acked events/s, 3 consumers: {:.0}",
        common::median(&mut three)
    );
    Ok(())
}

/// Events per second delivered and acked through a new group with `consumers` consumers.
async fn rate(client: &Client, group: &str, consumers: usize) -> anyhow::Result<f64> {
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    client
        .create_persistent_subscription("orders", group, &options)
        .await?;
    let acked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let subscribe = SubscribeToPersistentSubscriptionOptions::default().buffer_size(BUFFER);
        let mut subscription = client
            .subscribe_to_persistent_subscription("orders", group, &subscribe)
            .await?;
        let (acked, done) = (Arc::clone(&acked), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            loop {
                let event = subscription.next().await?;
                subscription.ack(event).await?;
                if acked.fetch_add(1, Ordering::Relaxed) + 1 == EVENTS {
                    done.notify_one();
                }
            }
            #[allow(unreachable_code)]
            anyhow::Ok(())
        }));
    }
    done.notified().await;
    let seconds = started.elapsed().as_secs_f64();
    for task in tasks {
        task.abort();
    }
    Ok(EVENTS as f64 / seconds)
}
