//! Test fixtures: a server per test, a client for it, event builders and a hang guard.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use devstore::{Config, Server};
use eventstore::{Client, EventData, ReadStream, ResolvedEvent};

/// Upper bound for any single awaited step; only there so a bug hangs no CI run.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// A configuration listening on an ephemeral loopback port, in memory.
pub fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        ..Config::default()
    }
}

/// Starts an in-memory server and a client connected to it.
pub async fn start() -> anyhow::Result<(Server, Client)> {
    let server = Server::start(config()).await?;
    let client = client(&server)?;
    Ok((server, client))
}

/// A client for `server`. `discoveryInterval=0` skips the client's initial 500 ms sleep.
pub fn client(server: &Server) -> anyhow::Result<Client> {
    client_for(&format!(
        "{}&discoveryInterval=0",
        server.connection_string()
    ))
}

/// A client for a connection string.
pub fn client_for(connection_string: &str) -> anyhow::Result<Client> {
    let settings = connection_string
        .parse()
        .context("parsing connection string")?;
    Client::new(settings).context("creating client")
}

/// A stream name no other test uses.
pub fn stream(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `count` JSON events of `event_type` with payload `{"index": i}`, i from 0.
pub fn events(event_type: &str, count: usize) -> Vec<EventData> {
    (0..count)
        .map(|index| {
            EventData::json(event_type, &serde_json::json!({ "index": index }))
                .expect("serialisable")
        })
        .collect()
}

/// Awaits `future`, failing instead of hanging forever.
pub async fn guard<T>(future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .context("step did not finish within the hang guard")
}

/// Drains a read.
pub async fn collect(mut read: ReadStream) -> anyhow::Result<Vec<ResolvedEvent>> {
    let mut events = Vec::new();
    while let Some(event) = guard(read.next()).await?? {
        events.push(event);
    }
    Ok(events)
}
