//! A durable devstore keeps every event, position and deletion across a restart.

use devstore::{Config, Server, Storage};
use eventstore::{ReadAllOptions, ResolvedEvent};

use crate::util::{client, collect, config, events, guard, stream};

fn summary(events: &[ResolvedEvent]) -> Vec<(String, u64, u64, uuid::Uuid, String)> {
    events
        .iter()
        .map(|event| {
            let event = event.get_original_event();
            (
                event.stream_id.clone(),
                event.revision,
                event.position.commit,
                event.id,
                event.event_type.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_events_positions_and_deletions() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let durable = || Config {
        storage: Storage::Dir(data.path().to_owned()),
        ..config()
    };
    let kept = stream("kept");
    let deleted = stream("deleted");

    let server = Server::start(durable()).await?;
    let first = client(&server)?;
    first
        .append_to_stream(kept.as_str(), &Default::default(), events("E", 5))
        .await?;
    first
        .append_to_stream(deleted.as_str(), &Default::default(), events("E", 2))
        .await?;
    first
        .delete_stream(deleted.as_str(), &Default::default())
        .await?;
    let before = summary(&collect(first.read_all(&ReadAllOptions::default()).await?).await?);
    guard(server.shutdown()).await??;

    let server = Server::start(durable()).await?;
    let second = client(&server)?;
    let after = summary(&collect(second.read_all(&ReadAllOptions::default()).await?).await?);
    assert_eq!(after, before);
    // Exactly one `$users` event: the seed is not repeated on restart.
    assert_eq!(after.iter().filter(|event| event.0 == "$users").count(), 1);
    let mut read = second
        .read_stream(deleted.as_str(), &Default::default())
        .await?;
    assert!(matches!(
        guard(read.next()).await?,
        Err(eventstore::Error::ResourceNotFound)
    ));
    let next = second
        .append_to_stream(kept.as_str(), &Default::default(), events("E", 1))
        .await?;
    assert_eq!(next.next_expected_version, 5);
    assert_eq!(next.position.commit, before.last().expect("events").2 + 1);
    guard(server.shutdown()).await?
}
