//! Idempotent appends, as the real server's commit check decides them: a retried append whose
//! events (by id) are already where it says answers as the first one did and writes nothing;
//! one that only partly matches is a wrong expected version. docs/devstore.md has the rules.

use devstore::{Config, Server, Storage};
use eventstore::{
    AppendToStreamOptions, Client, CurrentRevision, Error, EventData, ExpectedRevision, Position,
    ReadAllOptions,
};

use crate::util::{client, collect, config, guard, start, stream};

/// An event with a chosen id.
fn event(id: uuid::Uuid) -> EventData {
    EventData::json("E", &serde_json::json!({ "id": id.to_string() }))
        .expect("serialisable")
        .id(id)
}

/// `count` fresh ids.
fn ids(count: usize) -> Vec<uuid::Uuid> {
    (0..count).map(|_| uuid::Uuid::new_v4()).collect()
}

/// What an append answered: the stream's next expected version and the position.
type Written = (u64, Position);

/// Appends the events with `ids` to `stream` expecting `expected`.
async fn append(
    client: &Client,
    stream: &str,
    expected: ExpectedRevision,
    ids: &[uuid::Uuid],
) -> eventstore::Result<Written> {
    let options = AppendToStreamOptions::default().expected_revision(expected);
    let events: Vec<EventData> = ids.iter().copied().map(event).collect();
    let written = client.append_to_stream(stream, &options, events).await?;
    Ok((written.next_expected_version, written.position))
}

/// The ids of `stream`'s events, oldest first.
async fn stored_ids(client: &Client, stream: &str) -> anyhow::Result<Vec<uuid::Uuid>> {
    let read = collect(client.read_stream(stream, &Default::default()).await?).await?;
    Ok(read
        .iter()
        .map(|event| event.get_original_event().id)
        .collect())
}

/// How many events `$all` has.
async fn log_length(client: &Client) -> anyhow::Result<usize> {
    Ok(collect(client.read_all(&ReadAllOptions::default()).await?)
        .await?
        .len())
}

/// Asserts a wrong expected version with the stream at `current`.
fn assert_wrong(result: eventstore::Result<Written>, current: u64) {
    match result {
        Err(Error::WrongExpectedVersion {
            current: actual, ..
        }) => assert_eq!(actual, CurrentRevision::Current(current)),
        other => panic!("expected a wrong expected version, got {other:?}"),
    }
}

/// Retrying an append with the same ids and the same `no_stream` or exact expectation returns
/// the first append's revision and position, whenever it is retried, and writes nothing; so does
/// retrying a leading part of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_retry_answers_as_the_first_append_and_writes_nothing() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("exact");
    let first = ids(3);
    let second = ids(2);
    let created = append(&client, &name, ExpectedRevision::NoStream, &first).await?;
    assert_eq!(created.0, 2);
    let retried = append(&client, &name, ExpectedRevision::NoStream, &first).await?;
    assert_eq!(retried, created);
    let grown = append(&client, &name, ExpectedRevision::Exact(2), &second).await?;
    assert_eq!(grown.0, 4);
    let length = log_length(&client).await?;

    assert_eq!(
        append(&client, &name, ExpectedRevision::Exact(2), &second).await?,
        grown
    );
    assert_eq!(
        append(&client, &name, ExpectedRevision::NoStream, &first).await?,
        created,
        "still a retry after later appends"
    );
    let leading = append(&client, &name, ExpectedRevision::NoStream, &first[..1]).await?;
    assert_eq!(leading.0, 0);
    assert_eq!(leading.1.commit, created.1.commit - 2);

    let mut all = first.clone();
    all.extend(&second);
    assert_eq!(stored_ids(&client, &name).await?, all);
    assert_eq!(log_length(&client).await?, length);
    server.shutdown().await
}

/// With `any` or `stream exists`, a retry is recognised by the ids of recent appends, wherever
/// the stream is now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_any_retry_of_a_recent_append_writes_nothing() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("any");
    let first = ids(2);
    let written = append(&client, &name, ExpectedRevision::Any, &first).await?;
    append(&client, &name, ExpectedRevision::Any, &ids(1)).await?;
    let length = log_length(&client).await?;
    assert_eq!(
        append(&client, &name, ExpectedRevision::Any, &first).await?,
        written
    );
    assert_eq!(
        append(&client, &name, ExpectedRevision::StreamExists, &first).await?,
        written
    );
    assert_eq!(log_length(&client).await?, length);
    assert_eq!(stored_ids(&client, &name).await?.len(), 3);
    server.shutdown().await
}

/// A retry that only partly matches what was written is a wrong expected version, even with
/// `any`; one whose first event was not written is a new append (written, with `any`, even if
/// its later events were written before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_overlap_is_a_wrong_expected_version() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("partial");
    let first = ids(3);
    append(&client, &name, ExpectedRevision::NoStream, &first).await?;
    let new = uuid::Uuid::new_v4();

    // Revision 0 matches, revision 1 does not.
    assert_wrong(
        append(&client, &name, ExpectedRevision::NoStream, &[first[0], new]).await,
        2,
    );
    // All three match, but the stream ends before the fourth.
    let longer = [first[0], first[1], first[2], new];
    assert_wrong(
        append(&client, &name, ExpectedRevision::NoStream, &longer).await,
        2,
    );
    // The first differs (revision 1 is first[1]): the usual wrong expected version.
    assert_wrong(
        append(&client, &name, ExpectedRevision::Exact(0), &[first[2]]).await,
        2,
    );
    assert_wrong(
        append(&client, &name, ExpectedRevision::Any, &[first[1], new]).await,
        2,
    );
    assert_eq!(stored_ids(&client, &name).await?, first);

    let written = append(&client, &name, ExpectedRevision::Any, &[new, first[1]]).await?;
    assert_eq!(written.0, 4);
    assert_eq!(
        stored_ids(&client, &name).await?[3..],
        [new, first[1]],
        "written again"
    );
    server.shutdown().await
}

/// After a restart an exact retry is still recognised (the events are read back from the log,
/// here from SQLite), while an `any` retry is written again: like the real server, devstore
/// remembers recent ids only while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_exact_retries_are_recognised_and_any_retries_are_not() -> anyhow::Result<()>
{
    let data = tempfile::tempdir()?;
    let durable = || Config {
        storage: Storage::Dir(data.path().to_owned()),
        recent_bytes: 0,
        ..config()
    };
    let name = stream("restart");
    let exact = ids(2);
    let any = ids(1);
    let server = Server::start(durable()).await?;
    let first = client(&server)?;
    let created = append(&first, &name, ExpectedRevision::NoStream, &exact).await?;
    append(&first, &name, ExpectedRevision::Any, &any).await?;
    guard(server.shutdown()).await??;

    let server = Server::start(durable()).await?;
    let second = client(&server)?;
    assert_eq!(
        append(&second, &name, ExpectedRevision::NoStream, &exact).await?,
        created
    );
    let again = append(&second, &name, ExpectedRevision::Any, &any).await?;
    assert_eq!(again.0, 3);
    assert_eq!(
        stored_ids(&second, &name).await?,
        [exact[0], exact[1], any[0], any[0]]
    );
    guard(server.shutdown()).await?
}

/// `BatchAppend` (the Python client's list appends) goes through the same check: a retried
/// batch answers with the first one's revision and position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_append_retry_writes_nothing() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("batch");
    let first = ids(3);
    let batch = client.batch_append(&Default::default()).await?;
    let events = || first.iter().copied().map(event).collect::<Vec<_>>();
    let created = batch
        .append_to_stream(name.as_str(), ExpectedRevision::NoStream, events())
        .await?;
    let retried = batch
        .append_to_stream(name.as_str(), ExpectedRevision::NoStream, events())
        .await?;
    assert_eq!(retried, created);
    assert_eq!(retried.current_revision(), Some(2));
    assert_eq!(stored_ids(&client, &name).await?, first);
    server.shutdown().await
}
