//! Failures that are not an event's fault: a plugin that fails on everything is stopped as
//! broken however its events are batched, and a fault of the database (a lock held elsewhere,
//! a database at its size cap) is retried and then stops the projection, never dead-lettering
//! an event and never losing one.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::event::RecordedEvent;
use projector::pipeline::{self, BatchOptions, Outcome};
use projector::projection::{ErrorPolicy, Failures, Projection};
use projector::source::MemorySource;
use projector_tests::{guests, tables};

use crate::util::{self, event};

fn misbehave(data: &Path, failures: Failures) -> anyhow::Result<Projection> {
    util::open(&util::runtime(), guests::MISBEHAVE, data, failures)
}

/// Runs `projection` over `events`, one event per batch as live traffic comes, to the end.
async fn run_one_by_one(projection: Projection, events: Vec<RecordedEvent>) -> Outcome {
    let options = BatchOptions {
        max_events: 1,
        ..BatchOptions::default()
    };
    let source = Arc::new(MemorySource::new("test", events));
    let settings = pipeline::Settings::new(options, 8 << 20);
    let mut outcomes = pipeline::run(vec![projection], source, settings, std::future::pending())
        .await
        .expect("the pipeline runs");
    outcomes.remove(0)
}

fn stored_positions(data: &Path) -> Vec<i64> {
    tables::rows(data, "misbehave", "items")
        .unwrap()
        .into_iter()
        .map(|row| match row[0] {
            projector::value::Value::Integer(p) => p,
            ref other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// A plugin that panics on every event, fed one event per batch, is stopped after the bound
/// of failures in a row instead of dead-lettering the log; one good event resets the count.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_failing_every_event_is_stopped_whatever_the_batches() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let failures = Failures {
        max_consecutive: 10,
        ..Failures::default()
    };
    // Nine failures, a success, then failures without end.
    let mut events: Vec<RecordedEvent> = (1..=9).map(|p| event(p, "Trap", "")).collect();
    events.push(event(10, "Ok", ""));
    events.extend((11..=60).map(|p| event(p, "Trap", "")));
    let outcome = run_one_by_one(misbehave(dir.path(), failures)?, events).await;
    let error = format!("{:#}", outcome.error.expect("the projection must stop"));
    assert!(error.contains("failed on 10 events in a row"), "{error}");
    assert!(error.contains("since position 11"), "{error}");
    // The tenth failure in a row was not dead-lettered: its batch was rolled back.
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    assert_eq!(dead.len(), 9 + 9);
    assert_eq!(outcome.checkpoint.map(|p| p.commit), Some(19));
    assert_eq!(stored_positions(dir.path()), vec![10]);
    Ok(())
}

/// A database at its size cap fails the plugin's insert as a full database: the batch is
/// retried, then the projection stops with the cap in its reason, no dead letter written. Run
/// again with a larger cap, it carries on from where it stopped and loses nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_at_its_size_cap_is_retried_then_stops() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let events: Vec<RecordedEvent> = (1..=12)
        .map(|p| {
            let insert =
                format!("INSERT INTO items (position, stream) VALUES ({p}, zeroblob(200000))");
            event(p, "Sql", &insert)
        })
        .collect();
    let capped = Failures {
        max_database_bytes: 1 << 20,
        transient_retries: 2,
        ..Failures::default()
    };
    let started = Instant::now();
    let outcome = run_one_by_one(misbehave(dir.path(), capped)?, events.clone()).await;
    let error = format!("{:#}", outcome.error.expect("the projection must stop"));
    assert!(error.contains("size cap of 1 MiB"), "{error}");
    assert!(error.contains("3 times (2 retries)"), "{error}");
    // The two retries waited at least 0.5 s and 1 s (the backoff's jittered lower halves).
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(tables::dead_letters(dir.path(), "misbehave")?.is_empty());
    let stored = stored_positions(dir.path());
    assert!(!stored.is_empty() && stored.len() < 12, "{stored:?}");
    assert_eq!(
        outcome.checkpoint.map(|p| p.commit as i64),
        stored.last().copied()
    );

    let roomy = Failures {
        max_database_bytes: 64 << 20,
        ..Failures::default()
    };
    let outcome = run_one_by_one(misbehave(dir.path(), roomy)?, events).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(stored_positions(dir.path()), (1..=12).collect::<Vec<_>>());
    assert!(tables::dead_letters(dir.path(), "misbehave")?.is_empty());
    Ok(())
}

/// A refused event too large to keep in a database at its cap: keeping the dead letter meets
/// the full database, which is a fault of the database like any other (retried, then the stop
/// names the cap), never a half-open batch that fails the next attempt for another reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_that_does_not_fit_stops_on_the_cap() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let capped = Failures {
        max_database_bytes: 1 << 20,
        transient_retries: 1,
        ..Failures::default()
    };
    let events = vec![
        event(1, "Ok", ""),
        event(2, "Trap", &"x".repeat(2 << 20)),
        event(3, "Ok", ""),
    ];
    let outcome = run_one_by_one(misbehave(dir.path(), capped)?, events).await;
    let error = format!("{:#}", outcome.error.expect("the projection must stop"));
    assert!(error.contains("size cap of 1 MiB"), "{error}");
    assert!(!error.contains("already open"), "{error}");
    assert!(tables::dead_letters(dir.path(), "misbehave")?.is_empty());
    assert_eq!(stored_positions(dir.path()), vec![1]);
    Ok(())
}

/// Holds the projection database's write lock from another connection for `hold`.
fn hold_write_lock(data: &Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let db = std::fs::read_dir(data.join("misbehave"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "db"))
        .expect("the projection's database");
    let connection = rusqlite::Connection::open(db).unwrap();
    connection.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        connection.execute_batch("ROLLBACK").unwrap();
    })
}

/// A database locked by another connection past SQLite's busy timeout (5 s) fails the batch;
/// it is retried and goes through once the lock is gone, every event projected once.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_database_is_retried_until_the_lock_is_gone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let projection = misbehave(dir.path(), ErrorPolicy::DeadLetter.into())?;
    let holder = hold_write_lock(dir.path(), Duration::from_secs(6));
    let events: Vec<RecordedEvent> = (1..=5).map(|p| event(p, "Ok", "")).collect();
    let outcome = run_one_by_one(projection, events).await;
    holder.join().unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(stored_positions(dir.path()), vec![1, 2, 3, 4, 5]);
    assert!(tables::dead_letters(dir.path(), "misbehave")?.is_empty());
    Ok(())
}

/// A lock that outlasts the retries stops the projection with the lock as the reason; nothing
/// is committed or dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_that_stays_stops_the_projection() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let failures = Failures {
        transient_retries: 1,
        ..Failures::default()
    };
    let projection = misbehave(dir.path(), failures)?;
    let holder = hold_write_lock(dir.path(), Duration::from_secs(14));
    let outcome = run_one_by_one(projection, vec![event(1, "Ok", "")]).await;
    let error = format!("{:#}", outcome.error.expect("the projection must stop"));
    assert!(error.contains("locked by another connection"), "{error}");
    assert!(error.contains("2 times (1 retries)"), "{error}");
    holder.join().unwrap();
    assert!(stored_positions(dir.path()).is_empty());
    assert!(tables::dead_letters(dir.path(), "misbehave")?.is_empty());
    assert_eq!(outcome.checkpoint, None);
    Ok(())
}

/// A stored position past the end of the log (the store was reset or replaced) stops the
/// projection with that reason instead of silently waiting for the log to grow past it.
#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_past_the_end_of_the_log_stops_the_projection() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut projection = misbehave(dir.path(), Failures::default())?;
    projection.apply(&[event(40, "Ok", ""), event(50, "Ok", "")], None)?;
    // The "reset" store holds ten events.
    let events: Vec<RecordedEvent> = (1..=10).map(|p| event(p, "Ok", "")).collect();
    let outcome = run_one_by_one(projection, events).await;
    let error = format!("{:#}", outcome.error.expect("the projection must stop"));
    assert!(error.contains("past the end of"), "{error}");
    assert!(error.contains("its last event is at 10"), "{error}");
    assert_eq!(stored_positions(dir.path()), vec![40, 50]);
    Ok(())
}

/// A source whose subscription panics: the feed task dies.
struct PanickingSource;

impl projector::source::EventSource for PanickingSource {
    fn describe(&self) -> String {
        "a source that panics".into()
    }

    fn subscribe(
        &self,
        _after: Option<projector::event::Position>,
        _filter: &projector::event::EventFilter,
    ) -> projector::source::Subscription {
        Box::pin(futures::stream::poll_fn(
            |_| -> std::task::Poll<Option<_>> { panic!("the source broke in an unexpected way") },
        ))
    }

    fn head(
        &self,
    ) -> futures::future::BoxFuture<'_, anyhow::Result<Option<projector::event::Position>>> {
        Box::pin(async { Ok(None) })
    }

    fn is_finite(&self) -> bool {
        false
    }
}

/// A panic in a projection's source task stops the projection visibly, with the panic as the
/// reason, instead of ending it as if the source were done.
#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_source_task_stops_its_projection_visibly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let projection = misbehave(dir.path(), Failures::default())?;
    let settings = pipeline::Settings::new(BatchOptions::default(), 8 << 20);
    let outcomes = pipeline::run(
        vec![projection],
        Arc::new(PanickingSource),
        settings,
        std::future::pending(),
    )
    .await?;
    let error = format!("{:#}", outcomes[0].error.as_ref().expect("it must stop"));
    assert!(
        error.contains("source task of projection misbehave panicked"),
        "{error}"
    );
    assert!(
        error.contains("the source broke in an unexpected way"),
        "{error}"
    );
    Ok(())
}
