//! `Streams/Append`: positions, revisions, and every expected-revision mode.

use eventstore::{
    AppendToStreamOptions, CurrentRevision, Error, ExpectedRevision, ReadStreamOptions,
    StreamPosition,
};

use crate::util::{collect, events, start, stream};

/// Appended events read back with the revisions, ids, types, payloads and the exact log
/// position the append reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_then_read_back_with_identical_positions() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("order");
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::new_v4()).collect();
    let proposed = events("OrderPlaced", 3)
        .into_iter()
        .zip(&ids)
        .map(|(event, id)| event.id(*id))
        .collect::<Vec<_>>();
    let before = chrono_free_now_secs();
    let result = client
        .append_to_stream(name.as_str(), &Default::default(), proposed)
        .await?;
    assert_eq!(result.next_expected_version, 2);
    assert_eq!(result.position.commit, result.position.prepare);

    let read = collect(
        client
            .read_stream(name.as_str(), &Default::default())
            .await?,
    )
    .await?;
    assert_eq!(read.len(), 3);
    for (revision, event) in read.iter().enumerate() {
        let recorded = event.get_original_event();
        assert_eq!(recorded.revision, revision as u64);
        assert_eq!(recorded.stream_id, name);
        assert_eq!(recorded.event_type, "OrderPlaced");
        assert!(recorded.is_json);
        assert_eq!(recorded.id, ids[revision]);
        assert_eq!(
            recorded.as_json::<serde_json::Value>()?,
            serde_json::json!({ "index": revision })
        );
        assert!(recorded.created.timestamp() >= before - 5);
        assert_eq!(event.commit_position, Some(recorded.position.commit));
    }
    let last = read.last().expect("three events").get_original_event();
    assert_eq!(last.position, result.position);
    // Positions are strictly increasing within the append.
    assert!(read.windows(2).all(|pair| {
        pair[0].get_original_event().position < pair[1].get_original_event().position
    }));
    server.shutdown().await
}

/// Every expected-revision mode, with the wrong-expected-version result in the response body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_revision_modes_and_conflicts() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("account");
    let expect = |revision| AppendToStreamOptions::default().expected_revision(revision);

    let error = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::StreamExists),
            events("E", 1),
        )
        .await
        .expect_err("stream does not exist yet");
    assert!(matches!(
        error,
        Error::WrongExpectedVersion {
            expected: ExpectedRevision::StreamExists,
            current: CurrentRevision::NoStream
        }
    ));
    let error = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::Exact(0)),
            events("E", 1),
        )
        .await
        .expect_err("stream does not exist yet");
    assert!(matches!(
        error,
        Error::WrongExpectedVersion {
            current: CurrentRevision::NoStream,
            ..
        }
    ));

    let created = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::NoStream),
            events("E", 2),
        )
        .await?;
    assert_eq!(created.next_expected_version, 1);

    let error = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::NoStream),
            events("E", 1),
        )
        .await
        .expect_err("stream exists");
    assert!(matches!(
        error,
        Error::WrongExpectedVersion {
            expected: ExpectedRevision::NoStream,
            current: CurrentRevision::Current(1)
        }
    ));
    let error = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::Exact(0)),
            events("E", 1),
        )
        .await
        .expect_err("last revision is 1");
    assert!(matches!(
        error,
        Error::WrongExpectedVersion {
            expected: ExpectedRevision::Exact(0),
            current: CurrentRevision::Current(1)
        }
    ));

    let exact = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::Exact(1)),
            events("E", 1),
        )
        .await?;
    assert_eq!(exact.next_expected_version, 2);
    let exists = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::StreamExists),
            events("E", 1),
        )
        .await?;
    assert_eq!(exists.next_expected_version, 3);
    let any = client
        .append_to_stream(
            name.as_str(),
            &expect(ExpectedRevision::Any),
            events("E", 1),
        )
        .await?;
    assert_eq!(any.next_expected_version, 4);

    // Conflicting appends wrote nothing.
    let options = ReadStreamOptions::default().position(StreamPosition::Start);
    let read = collect(client.read_stream(name.as_str(), &options).await?).await?;
    assert_eq!(read.len(), 5);
    server.shutdown().await
}

/// An append of no events succeeds and reports the stream's current revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_append_reports_current_revision() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("empty");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 3))
        .await?;
    let result = client
        .append_to_stream(name.as_str(), &Default::default(), Vec::new())
        .await?;
    assert_eq!(result.next_expected_version, 2);
    server.shutdown().await
}

fn chrono_free_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs() as i64
}
