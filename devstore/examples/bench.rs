//! Throughput benchmark of devstore with the official `eventstore` client over loopback.
//!
//! Run with `cargo run --release -p devstore --example bench -- [RUNS]` (default 5 runs).
//! Each run starts a fresh in-process server and measures:
//! - appends/s: 1,000 sequential appends of 100 events of ~300 bytes each (one client), once
//!   with in-memory storage and once with SQLite storage in a temporary directory;
//! - catch-up read rate: one `$all` subscription from the start over 200,000 stored events,
//!   until `caught_up`.
//!
//! It prints each run and the median of each figure.

mod common;

use std::time::{Duration, Instant};

use devstore::{Config, Server, Storage};
use eventstore::{Client, EventData};

const BATCHES: usize = 1_000;
const BATCH_SIZE: usize = 100;
const CATCH_UP_EVENTS: usize = 200_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|runs| runs.parse())
        .transpose()?
        .unwrap_or(5);
    let mut memory_appends = Vec::new();
    let mut sqlite_appends = Vec::new();
    let mut catch_up = Vec::new();
    for run in 1..=runs {
        let memory = append_rate(Storage::Memory).await?;
        let data = tempfile::tempdir()?;
        let sqlite = append_rate(Storage::Dir(data.path().to_owned())).await?;
        let read = catch_up_rate().await?;
        println!(
            "run {run}: appends/s memory {memory:.0}, sqlite {sqlite:.0}; catch-up events/s {read:.0}"
        );
        memory_appends.push(memory);
        sqlite_appends.push(sqlite);
        catch_up.push(read);
    }
    println!(
        "median appended events/s (memory): {:.0}",
        common::median(&mut memory_appends)
    );
    println!(
        "median appended events/s (sqlite): {:.0}",
        common::median(&mut sqlite_appends)
    );
    println!(
        "median catch-up read events/s ($all, one subscription): {:.0}",
        common::median(&mut catch_up)
    );
    Ok(())
}

/// Events per second appended in batches of 100 by one client.
async fn append_rate(storage: Storage) -> anyhow::Result<f64> {
    let server = Server::start(Config {
        listen: "127.0.0.1:0".parse()?,
        storage,
        ..Config::default()
    })
    .await?;
    let client = client(&server)?;
    // Warm up the connection (handshake) outside the measurement.
    client
        .append_to_stream("warm-up", &Default::default(), batch())
        .await?;
    let started = Instant::now();
    for index in 0..BATCHES {
        client
            .append_to_stream(
                format!("bench-{}", index % 100).as_str(),
                &Default::default(),
                batch(),
            )
            .await?;
    }
    let rate = (BATCHES * BATCH_SIZE) as f64 / started.elapsed().as_secs_f64();
    server.shutdown().await?;
    Ok(rate)
}

/// Events per second delivered to one `$all` subscription catching up from the start.
async fn catch_up_rate() -> anyhow::Result<f64> {
    let server = Server::start(Config {
        listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    })
    .await?;
    let client = client(&server)?;
    for index in 0..CATCH_UP_EVENTS / BATCH_SIZE {
        client
            .append_to_stream(
                format!("fill-{}", index % 100).as_str(),
                &Default::default(),
                batch(),
            )
            .await?;
    }
    let (rate, delivered) = common::catch_up(&client, Duration::from_secs(120)).await?;
    anyhow::ensure!(
        delivered > CATCH_UP_EVENTS,
        "caught up after only {delivered} events"
    );
    server.shutdown().await?;
    Ok(rate)
}

fn client(server: &Server) -> anyhow::Result<Client> {
    Ok(Client::new(
        format!("{}&discoveryInterval=0", server.connection_string()).parse()?,
    )?)
}

/// 100 JSON events of about 300 bytes of payload each.
fn batch() -> Vec<EventData> {
    (0..BATCH_SIZE)
        .map(|index| {
            let payload = serde_json::json!({
                "index": index,
                "customer": "c-0123456789abcdef",
                "note": "x".repeat(240),
            });
            EventData::json("BenchEvent", &payload).expect("serialisable")
        })
        .collect()
}
