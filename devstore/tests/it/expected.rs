//! Every expected-revision case of append, delete and tombstone on a live, missing,
//! soft-deleted, tombstoned and metadata-only stream, through the official Rust client, against
//! the real server's answers (docs/devstore.md has the table and where each cell comes from).

use eventstore::{
    AppendToStreamOptions, Client, CurrentRevision, DeleteStreamOptions, Error, ExpectedRevision,
    ReadStreamOptions, StreamMetadataBuilder, StreamMetadataResult, StreamPosition,
    TombstoneStreamOptions,
};

use crate::util::{collect, events, start, stream};

/// The states a stream can be in before the operation.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Two events: last revision 1.
    Live,
    /// Nothing ever written.
    Missing,
    /// Two events, then soft-deleted: last revision 1.
    SoftDeleted,
    /// One event, then tombstoned.
    Tombstoned,
    /// Metadata written, no events.
    MetadataOnly,
}

/// What the operation gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Wrong expected version; the stream's actual last revision (-1: none).
    Wrong(i64),
    /// The stream is deleted.
    Deleted,
}

#[derive(Clone, Copy, Debug)]
enum Operation {
    Append,
    Delete,
    Tombstone,
}

/// The expectations of each row, in order: any, no stream, stream exists, exact 1, exact 5.
const EXPECTATIONS: [ExpectedRevision; 5] = [
    ExpectedRevision::Any,
    ExpectedRevision::NoStream,
    ExpectedRevision::StreamExists,
    ExpectedRevision::Exact(1),
    ExpectedRevision::Exact(5),
];

use Outcome::{Deleted, Ok as Done, Wrong};

/// The real server's table (KurrentDB 24.10 to 25.1: the index writer's commit check and the
/// soft delete's own check; see docs/devstore.md).
fn table(operation: Operation, state: State) -> [Outcome; 5] {
    match (operation, state) {
        (_, State::Tombstoned) => [Deleted; 5],
        (_, State::Live) => [Done, Wrong(1), Done, Done, Wrong(1)],
        (_, State::SoftDeleted) => [Done, Done, Deleted, Done, Wrong(1)],
        (_, State::MetadataOnly) => [Done, Done, Done, Wrong(-1), Wrong(-1)],
        (Operation::Append | Operation::Tombstone, State::Missing) => {
            [Done, Done, Wrong(-1), Wrong(-1), Wrong(-1)]
        }
        // A soft delete of a stream with neither events nor metadata always fails.
        (Operation::Delete, State::Missing) => [Wrong(-1); 5],
    }
}

/// A fresh stream in `state`.
async fn prepare(client: &Client, state: State) -> anyhow::Result<String> {
    let name = stream(&format!("{state:?}").to_lowercase());
    match state {
        State::Missing => {}
        State::Live => {
            client
                .append_to_stream(name.as_str(), &Default::default(), events("E", 2))
                .await?;
        }
        State::SoftDeleted => {
            client
                .append_to_stream(name.as_str(), &Default::default(), events("E", 2))
                .await?;
            client
                .delete_stream(name.as_str(), &Default::default())
                .await?;
        }
        State::Tombstoned => {
            client
                .append_to_stream(name.as_str(), &Default::default(), events("E", 1))
                .await?;
            client
                .tombstone_stream(name.as_str(), &Default::default())
                .await?;
        }
        State::MetadataOnly => {
            let metadata = StreamMetadataBuilder::new().max_count(10).build();
            client
                .set_stream_metadata(name.as_str(), &Default::default(), &metadata)
                .await?;
        }
    }
    Ok(name)
}

/// Runs `operation` on `name` expecting `expected`, and classifies the answer.
async fn run(
    client: &Client,
    operation: Operation,
    name: &str,
    expected: ExpectedRevision,
) -> anyhow::Result<Outcome> {
    let result = match operation {
        Operation::Append => {
            let options = AppendToStreamOptions::default().expected_revision(expected);
            client
                .append_to_stream(name, &options, events("E", 1))
                .await
                .map(|_| ())
        }
        Operation::Delete => {
            let options = DeleteStreamOptions::default().expected_revision(expected);
            client.delete_stream(name, &options).await.map(|_| ())
        }
        Operation::Tombstone => {
            let options = TombstoneStreamOptions::default().expected_revision(expected);
            client.tombstone_stream(name, &options).await.map(|_| ())
        }
    };
    Ok(match result {
        Ok(()) => Done,
        Err(Error::ResourceDeleted) => Deleted,
        Err(Error::WrongExpectedVersion { current, .. }) => Wrong(match current {
            CurrentRevision::Current(revision) => revision as i64,
            CurrentRevision::NoStream => -1,
        }),
        // Deletes carry theirs in the message, as the real server words it.
        Err(Error::Grpc { code, message })
            if code == tonic::Code::FailedPrecondition
                && message.starts_with("Delete failed due to WrongExpectedVersion.") =>
        {
            let number = |label: &str| -> anyhow::Result<i64> {
                let rest = message
                    .split(label)
                    .nth(1)
                    .ok_or_else(|| anyhow::anyhow!("no {label} in {message}"))?;
                let digits: String = rest
                    .chars()
                    .take_while(|c| *c == '-' || c.is_ascii_digit())
                    .collect();
                Ok(digits.parse()?)
            };
            let wanted = match expected {
                ExpectedRevision::Any => -2,
                ExpectedRevision::NoStream => -1,
                ExpectedRevision::StreamExists => -4,
                ExpectedRevision::Exact(revision) => revision as i64,
            };
            anyhow::ensure!(
                message.contains(&format!("Stream: {name},"))
                    && number("Expected version: ")? == wanted,
                "{message}"
            );
            Wrong(number("Actual version: ")?)
        }
        Err(other) => anyhow::bail!("{operation:?} on {name} expecting {expected:?}: {other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_expected_revision_case_answers_as_the_real_server() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let mut mismatches = Vec::new();
    for operation in [Operation::Append, Operation::Delete, Operation::Tombstone] {
        for state in [
            State::Live,
            State::Missing,
            State::SoftDeleted,
            State::Tombstoned,
            State::MetadataOnly,
        ] {
            let wanted = table(operation, state);
            for (expected, wanted) in EXPECTATIONS.into_iter().zip(wanted) {
                // A fresh stream per case: each case changes what it touches.
                let name = prepare(&client, state).await?;
                let got = run(&client, operation, &name, expected).await?;
                if got != wanted {
                    mismatches.push(format!(
                        "{operation:?} on a {state:?} stream expecting {expected:?}: got {got:?}, the real server answers {wanted:?}"
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    server.shutdown().await
}

/// What follows the operations: a tombstoned never-written stream refuses appends; an append
/// to a soft-deleted stream continues its revisions and shows only the new events; a soft
/// delete keeps `$tb` alone in the metadata, as the real server's delete writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_follows_deletes_and_tombstones() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let never = stream("never");
    client
        .tombstone_stream(never.as_str(), &Default::default())
        .await?;
    let append = client
        .append_to_stream(never.as_str(), &Default::default(), events("E", 1))
        .await;
    assert!(matches!(append, Err(Error::ResourceDeleted)), "{append:?}");
    assert!(matches!(
        client
            .read_stream(never.as_str(), &Default::default())
            .await,
        Err(Error::ResourceDeleted)
    ));

    let soft = stream("soft");
    let metadata = StreamMetadataBuilder::new()
        .max_count(100)
        .insert_custom_property("owner", "tests")
        .build();
    client
        .set_stream_metadata(soft.as_str(), &Default::default(), &metadata)
        .await?;
    client
        .append_to_stream(soft.as_str(), &Default::default(), events("E", 2))
        .await?;
    client
        .delete_stream(soft.as_str(), &Default::default())
        .await?;
    let after = client
        .get_stream_metadata(
            soft.as_str(),
            &ReadStreamOptions::default().position(StreamPosition::End),
        )
        .await?;
    match after {
        StreamMetadataResult::Success(versioned) => {
            let kept = versioned.metadata();
            assert_eq!(kept.max_count, None, "{kept:?}");
            assert!(kept.custom_properties.is_empty(), "{kept:?}");
        }
        other => anyhow::bail!("unexpected metadata result {other:?}"),
    }
    let recreated = client
        .append_to_stream(
            soft.as_str(),
            &AppendToStreamOptions::default().expected_revision(ExpectedRevision::Any),
            events("E", 3),
        )
        .await?;
    assert_eq!(recreated.next_expected_version, 4);
    let read = collect(
        client
            .read_stream(soft.as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(
        read.iter()
            .map(|e| e.get_original_event().revision)
            .collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    // Recreated, it is live again: a second `no_stream` append is wrong.
    let again = client
        .append_to_stream(
            soft.as_str(),
            &AppendToStreamOptions::default().expected_revision(ExpectedRevision::NoStream),
            events("E", 1),
        )
        .await;
    assert!(
        matches!(again, Err(Error::WrongExpectedVersion { .. })),
        "{again:?}"
    );
    server.shutdown().await
}

/// `$maxAge` hides the events written longer ago than it says from stream reads and stream
/// subscriptions (not from `$all`, which shows everything until a scavenge), and `$acl` comes
/// back as it was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_hides_expired_events_and_acls_round_trip() -> anyhow::Result<()> {
    use eventstore::{Acl, ReadAllOptions, StreamAclBuilder, SubscribeToStreamOptions};
    let (server, client) = start().await?;
    let name = stream("aged");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("Old", 2))
        .await?;
    let acl = StreamAclBuilder::new()
        .add_read_roles("$admins")
        .add_read_roles("ops")
        .build();
    // The Rust client writes `$maxAge` in milliseconds, while servers read seconds: 1 ms here
    // is `"$maxAge": 1`, one second on the server (see docs/devstore.md, client quirks).
    let metadata = StreamMetadataBuilder::new()
        .max_age(std::time::Duration::from_millis(1))
        .acl(Acl::Stream(acl))
        .build();
    client
        .set_stream_metadata(name.as_str(), &Default::default(), &metadata)
        .await?;
    match client
        .get_stream_metadata(name.as_str(), &Default::default())
        .await?
    {
        StreamMetadataResult::Success(versioned) => assert_eq!(versioned.metadata(), &metadata),
        other => anyhow::bail!("unexpected metadata result {other:?}"),
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    client
        .append_to_stream(name.as_str(), &Default::default(), events("New", 1))
        .await?;
    let read = collect(
        client
            .read_stream(name.as_str(), &Default::default())
            .await?,
    )
    .await?;
    let revisions: Vec<u64> = read
        .iter()
        .map(|e| e.get_original_event().revision)
        .collect();
    assert_eq!(revisions, vec![2], "the two older than $maxAge are hidden");
    let mut subscription = client
        .subscribe_to_stream(
            name.as_str(),
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Start),
        )
        .await;
    let first = crate::util::guard(subscription.next()).await??;
    assert_eq!(first.get_original_event().revision, 2);
    // `$all` still has them.
    let all = collect(client.read_all(&ReadAllOptions::default()).await?).await?;
    let old = all
        .iter()
        .filter(|e| e.get_original_event().stream_id == name)
        .count();
    assert_eq!(old, 3);
    server.shutdown().await
}
