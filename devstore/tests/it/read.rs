//! `Streams/Read` in count mode: streams and `$all`, both directions, every start option.

use eventstore::{Error, Position, ReadAllOptions, ReadEvent, ReadStreamOptions, StreamPosition};

use crate::util::{collect, events, guard, start, stream};

fn revisions(read: &[eventstore::ResolvedEvent]) -> Vec<u64> {
    read.iter()
        .map(|event| event.get_original_event().revision)
        .collect()
}

/// Forwards reads are inclusive of the start revision, backwards reads too; `End` forwards is
/// empty; `max_count` bounds the read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reads_in_both_directions_from_every_start() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("read");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 10))
        .await?;
    let read = |options: ReadStreamOptions| {
        let client = client.clone();
        let name = name.clone();
        async move { collect(client.read_stream(name.as_str(), &options).await?).await }
    };
    // The client's `position(Start | End)` also sets the direction, so direction goes last.
    let forwards = |position| ReadStreamOptions::default().position(position).forwards();
    let backwards = |position| ReadStreamOptions::default().position(position).backwards();

    assert_eq!(
        revisions(&read(forwards(StreamPosition::Start)).await?),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(
        revisions(&read(forwards(StreamPosition::Position(3))).await?),
        (3..10).collect::<Vec<_>>()
    );
    assert!(read(forwards(StreamPosition::End)).await?.is_empty());
    assert_eq!(
        revisions(&read(forwards(StreamPosition::Start).max_count(4)).await?),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        revisions(&read(backwards(StreamPosition::End)).await?),
        (0..10).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        revisions(&read(backwards(StreamPosition::Position(1))).await?),
        vec![1, 0]
    );
    assert_eq!(
        revisions(&read(backwards(StreamPosition::Start)).await?),
        vec![0]
    );
    assert_eq!(
        revisions(&read(backwards(StreamPosition::End).max_count(3)).await?),
        vec![9, 8, 7]
    );
    assert!(
        read(forwards(StreamPosition::Position(10)))
            .await?
            .is_empty()
    );
    server.shutdown().await
}

/// With the control option the client sends, a stream read ends with the last revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_read_reports_last_stream_position() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let name = stream("last");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 10))
        .await?;
    let options = ReadStreamOptions::default()
        .position(StreamPosition::Start)
        .max_count(2);
    let mut read = client.read_stream(name.as_str(), &options).await?;
    let mut last = None;
    let mut count = 0;
    while let Some(event) = guard(read.next_read_event()).await?? {
        match event {
            ReadEvent::Event(_) => count += 1,
            ReadEvent::LastStreamPosition(position) => last = Some(position),
            _ => {}
        }
    }
    assert_eq!((count, last), (2, Some(9)));
    server.shutdown().await
}

/// A stream that was never written is "not found", and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_stream_is_not_found() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let mut read = client
        .read_stream(stream("missing").as_str(), &Default::default())
        .await?;
    assert!(matches!(
        guard(read.next()).await?,
        Err(Error::ResourceNotFound)
    ));
    let name = stream("after");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 1))
        .await?;
    assert_eq!(
        collect(
            client
                .read_stream(name.as_str(), &Default::default())
                .await?
        )
        .await?
        .len(),
        1
    );
    server.shutdown().await
}

/// `$all`: a fresh node starts with `$users`; forwards from a position is inclusive,
/// backwards exclusive; `End` backwards starts at the newest event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_reads_in_both_directions_from_every_start() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let first = stream("a");
    let second = stream("b");
    client
        .append_to_stream(first.as_str(), &Default::default(), events("E", 3))
        .await?;
    client
        .append_to_stream(second.as_str(), &Default::default(), events("E", 3))
        .await?;
    let read = |options: ReadAllOptions| {
        let client = client.clone();
        async move { collect(client.read_all(&options).await?).await }
    };
    let position = |event: &eventstore::ResolvedEvent| event.get_original_event().position;

    let all = read(ReadAllOptions::default().position(StreamPosition::Start)).await?;
    assert_eq!(all.len(), 7);
    let users = all[0].get_original_event();
    assert_eq!(
        (users.stream_id.as_str(), users.event_type.as_str()),
        ("$users", "$UserCreated")
    );
    assert!(
        all.windows(2)
            .all(|pair| position(&pair[0]) < position(&pair[1]))
    );

    let middle = position(&all[3]);
    let from_middle =
        read(ReadAllOptions::default().position(StreamPosition::Position(middle))).await?;
    assert_eq!(
        from_middle.iter().map(position).collect::<Vec<_>>(),
        all[3..].iter().map(position).collect::<Vec<_>>()
    );

    let before_middle = read(
        ReadAllOptions::default()
            .position(StreamPosition::Position(middle))
            .backwards(),
    )
    .await?;
    assert_eq!(
        before_middle.iter().map(position).collect::<Vec<_>>(),
        all[..3].iter().rev().map(position).collect::<Vec<_>>()
    );

    let newest_first = read(
        ReadAllOptions::default()
            .position(StreamPosition::End)
            .backwards(),
    )
    .await?;
    assert_eq!(
        newest_first.iter().map(position).collect::<Vec<_>>(),
        all.iter().rev().map(position).collect::<Vec<_>>()
    );
    assert!(
        read(
            ReadAllOptions::default()
                .position(StreamPosition::End)
                .forwards()
        )
        .await?
        .is_empty()
    );
    assert!(
        read(
            ReadAllOptions::default()
                .position(StreamPosition::Start)
                .backwards()
        )
        .await?
        .is_empty()
    );
    let two = read(
        ReadAllOptions::default()
            .position(StreamPosition::Start)
            .max_count(2),
    )
    .await?;
    assert_eq!(two.len(), 2);

    let past_the_end = Position {
        commit: 1_000_000,
        prepare: 1_000_000,
    };
    assert!(
        read(ReadAllOptions::default().position(StreamPosition::Position(past_the_end)))
            .await?
            .is_empty()
    );
    server.shutdown().await
}
