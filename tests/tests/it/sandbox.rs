//! Plugins that misbehave: traps, endless loops, memory hogs and SQL outside their own tables
//! are stopped with a clear error, nothing half-done is committed, and the host carries on.

use std::path::Path;
use std::time::Duration;

use projector::event::RecordedEvent;
use projector::projection::{ErrorPolicy, Projection};
use projector::runtime::{Limits, Runtime};
use projector_tests::{guests, tables};

use crate::util::{self, event};

fn positions(data: &Path) -> anyhow::Result<Vec<i64>> {
    Ok(tables::rows(data, "misbehave", "items")?
        .into_iter()
        .map(|row| match row[0] {
            projector::value::Value::Integer(p) => p,
            ref other => panic!("unexpected {other:?}"),
        })
        .collect())
}

fn misbehave(runtime: &Runtime, data: &Path, policy: ErrorPolicy) -> anyhow::Result<Projection> {
    util::open(runtime, guests::MISBEHAVE, data, policy)
}

/// A panic in the plugin costs only the event that caused it: it is dead-lettered with the
/// panic message, the rest of the batch commits, and the next batch runs on a fresh instance.
#[test]
fn a_trapping_event_is_dead_lettered_and_the_rest_commits() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let report = projection.apply(
        &[event(1, "Ok", ""), event(2, "Trap", ""), event(3, "Ok", "")],
        None,
    )?;
    assert_eq!((report.projected, report.failed), (2, 1));
    projection.apply(&[event(4, "Ok", "")], None)?;
    assert_eq!(positions(dir.path())?, vec![1, 3, 4]);
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].0, dead[0].1.as_str()), (2, "Trap"));
    assert!(
        dead[0]
            .2
            .contains("misbehave was told to trap at position 2"),
        "{}",
        dead[0].2
    );
    Ok(())
}

/// With `on-error = stop` the same trap stops the projection and commits nothing of the batch.
#[test]
fn the_stop_policy_commits_nothing_of_a_failing_batch() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::Stop)?;
    let error = projection
        .apply(&[event(1, "Ok", ""), event(2, "Trap", "")], None)
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("on-error = stop"),
        "{error:#}"
    );
    assert!(projection.checkpoint().is_none());
    assert!(positions(dir.path())?.is_empty());
    Ok(())
}

/// A plugin that never returns is interrupted at the batch deadline; the batch is rolled back,
/// the checkpoint stays, and the host (and the projection's next instance) keep working.
#[test]
fn an_endless_loop_is_stopped_at_the_deadline() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let limits = Limits {
        batch_deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let runtime = Runtime::new(limits, None)?;
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    projection.apply(&[event(1, "Ok", "")], None)?;
    let error = projection
        .apply(&[event(2, "Ok", ""), event(3, "Loop", "")], None)
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("per-batch deadline of 300ms"), "{message}");
    assert_eq!(projection.checkpoint().map(|c| c.position.commit), Some(1));
    assert_eq!(positions(dir.path())?, vec![1]);
    projection.apply(&[event(4, "Ok", "")], None)?;
    assert_eq!(positions(dir.path())?, vec![1, 4]);
    Ok(())
}

/// A plugin that allocates without end hits its memory cap: the event it did so on is
/// dead-lettered with a message that says so, the rest of the batch commits, and the next
/// batch runs on a fresh instance. Even on every event of a batch it costs those events (their
/// size may be the cause); failing on every event in a row is what stops a plugin.
#[test]
fn memory_growth_past_the_cap_costs_the_event() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let runtime = Runtime::new(limits, None)?;
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let report = projection.apply(&[event(1, "Ok", ""), event(2, "Grow", "")], None)?;
    assert_eq!((report.projected, report.failed), (1, 1));
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    assert!(
        dead[0].2.contains("over its limit of 16777216 bytes"),
        "{}",
        dead[0].2
    );
    projection.apply(&[event(3, "Ok", "")], None)?;
    assert_eq!(positions(dir.path())?, vec![1, 3]);
    let report = projection.apply(&[event(4, "Grow", ""), event(5, "Grow", "")], None)?;
    assert_eq!((report.projected, report.failed), (0, 2));
    Ok(())
}

/// An event too large for the plugin's memory is dead-lettered with its size and what to do,
/// never a stop the projection cannot get past; the events around it are projected.
#[test]
fn an_event_too_large_for_the_plugin_is_dead_lettered() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let limits = Limits {
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let runtime = Runtime::new(limits, None)?;
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let huge = "x".repeat(12 << 20);
    let report = projection.apply(
        &[
            event(1, "Ok", ""),
            event(2, "Ok", &huge),
            event(3, "Ok", ""),
        ],
        None,
    )?;
    assert_eq!((report.projected, report.failed), (2, 1));
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    assert_eq!(dead[0].0, 2);
    assert!(dead[0].2.contains("12582912 bytes"), "{}", dead[0].2);
    assert!(dead[0].2.contains("memory_mib"), "{}", dead[0].2);
    assert_eq!(positions(dir.path())?, vec![1, 3]);
    // With more memory, the kept event is retried and projected.
    drop(projection);
    let roomy = Runtime::new(Limits::default(), None)?;
    let mut projection = misbehave(&roomy, dir.path(), ErrorPolicy::DeadLetter)?;
    let report = projection.retry_dead_letters(&projector::store::Selection::All)?;
    assert_eq!((report.retried, report.projected), (1, 1));
    assert_eq!(positions(dir.path())?, vec![1, 2, 3]);
    assert!(tables::dead_letters(dir.path(), "misbehave")?.is_empty());
    Ok(())
}

/// Every way out of the plugin's own tables is denied, with the reason in the dead letter, and
/// none of them changes anything.
#[test]
fn statements_outside_the_plugins_tables_are_denied() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let escape = dir.path().join("escape.db");
    let copy = dir.path().join("copy.db");
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let statements = [
        "SELECT * FROM _projector_checkpoint".to_string(),
        "UPDATE _projector_checkpoint SET commit_position = 0".into(),
        "DELETE FROM _projector_dead_letters".into(),
        "INSERT INTO _projector_plugin (id, name, version, schema, wasm_sha256) VALUES (2, 'a', 'b', 'c', 'd')".into(),
        format!("ATTACH DATABASE '{}' AS other", escape.display()),
        "PRAGMA journal_mode = DELETE".into(),
        "PRAGMA writable_schema = ON".into(),
        "BEGIN".into(),
        "COMMIT".into(),
        "ROLLBACK".into(),
        "SAVEPOINT mine".into(),
        "SELECT load_extension('/tmp/evil.so')".into(),
        "CREATE TABLE smuggled (a)".into(),
        "CREATE TEMP TABLE smuggled (a)".into(),
        "DROP TABLE items".into(),
        // A trigger body's `;` already makes the text two statements to the one-statement
        // scan, so this is refused before the authorizer sees it; either refusal will do.
        "CREATE TRIGGER wipe AFTER INSERT ON items BEGIN DELETE FROM items; END".into(),
        "SELECT sql FROM sqlite_master".into(),
        "ALTER TABLE items ADD COLUMN extra TEXT".into(),
    ];
    let mut position = 1;
    for statement in &statements {
        let report = projection.apply(&[event(position, "Sql", statement)], None)?;
        assert_eq!(report.failed, 1, "{statement} should have failed");
        let dead = tables::dead_letters(dir.path(), "misbehave")?;
        let error = &dead.last().unwrap().2;
        assert!(
            error.contains("denied") || error.contains("one statement per call"),
            "{statement}: {error}"
        );
        position += 1;
    }
    // SQLite itself refuses this one, before the authorizer is asked.
    let report = projection.apply(&[event(position, "Sql", "DELETE FROM sqlite_master")], None)?;
    assert_eq!(report.failed, 1);
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    assert!(
        dead.last().unwrap().2.contains("may not be modified"),
        "{}",
        dead.last().unwrap().2
    );
    position += 1;
    // VACUUM has no authorizer action, but it cannot run inside the batch's transaction.
    let report = projection.apply(
        &[event(
            position,
            "Sql",
            &format!("VACUUM INTO '{}'", copy.display()),
        )],
        None,
    )?;
    assert_eq!(report.failed, 1);
    assert!(!escape.exists() && !copy.exists());
    assert_eq!(
        projection.checkpoint().map(|c| c.position.commit),
        Some(position)
    );
    projection.apply(&[event(position + 1, "Ok", "")], None)?;
    assert_eq!(positions(dir.path())?, vec![position as i64 + 1]);
    Ok(())
}

/// Events a plugin refuses as invalid are dead-lettered even when the whole batch is refused;
/// a plugin that traps on every event of a batch is stopped instead.
#[test]
fn refusals_are_dead_lettered_but_a_plugin_failing_everything_stops() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let report = projection.apply(&[event(1, "Refuse", ""), event(2, "Refuse", "")], None)?;
    assert_eq!(report.failed, 2);
    let error = projection
        .apply(&[event(3, "Trap", ""), event(4, "Trap", "")], None)
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("failed on every event"),
        "{error:#}"
    );
    assert_eq!(projection.checkpoint().map(|c| c.position.commit), Some(2));
    Ok(())
}

/// Output on stdout and stderr is captured into the log; a chatty plugin never fills the
/// bounded capture and traps, because its instance is recycled first.
#[test]
fn a_chatty_plugin_keeps_running() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::Stop)?;
    let line = "x".repeat(500);
    for round in 0..10u64 {
        let events: Vec<RecordedEvent> = (0..100)
            .map(|i| event(round * 100 + i + 1, "Print", &line))
            .collect();
        let report = projection.apply(&events, None)?;
        assert_eq!(report.failed, 0);
    }
    Ok(())
}

/// Printing 100 KB in one call, far past the capture's bound, costs no event: what fits is
/// logged, the rest is dropped and counted, and the plugin never sees a failed write.
#[test]
fn printing_past_the_capture_never_traps() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let flood = "y".repeat(100 << 10);
    let report = projection.apply(
        &[
            event(1, "Print", &flood),
            event(2, "Print", &flood),
            event(3, "Ok", ""),
        ],
        None,
    )?;
    assert_eq!((report.projected, report.failed), (3, 0));
    assert!(tables::dead_letters(dir.path(), "misbehave")?.is_empty());
    assert_eq!(positions(dir.path())?, vec![3]);
    Ok(())
}

/// An error text of megabytes from a plugin is cut before it is stored or logged, and says
/// how long it was.
#[test]
fn a_huge_error_text_is_cut_before_it_is_stored() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let report = projection.apply(&[event(1, "Shout", ""), event(2, "Ok", "")], None)?;
    assert_eq!((report.projected, report.failed), (1, 1));
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    let error = &dead[0].2;
    assert!(error.len() < 5000, "{} bytes stored", error.len());
    assert!(
        error.contains("cut from 12582912 bytes"),
        "{}",
        &error[error.len() - 100..]
    );
    Ok(())
}

/// A row at the largest rowid would make SQLite pick the next rowids at random, and a replay
/// build other tables: the event that put it there is refused as a constraint and
/// dead-lettered, and the events after it get the rowids they always would.
#[test]
fn the_largest_rowid_is_refused_so_replays_agree() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let largest = "INSERT INTO items (position, stream) VALUES (9223372036854775807, 'x')";
    let report = projection.apply(
        &[
            event(1, "Ok", ""),
            event(2, "Sql", largest),
            event(3, "Ok", ""),
        ],
        None,
    )?;
    assert_eq!((report.projected, report.failed), (2, 1));
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    assert!(dead[0].2.contains("at random"), "{}", dead[0].2);
    assert_eq!(positions(dir.path())?, vec![1, 3]);
    Ok(())
}

/// Files that are not plugins are refused with the reason, and the runtime keeps loading good ones.
#[test]
fn modules_that_are_not_plugins_are_refused_with_the_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let check = |bytes: &[u8], expected: &str| {
        let path = dir.path().join("candidate.wasm");
        std::fs::write(&path, bytes).unwrap();
        let message = format!("{:#}", runtime.load(&path).err().expect("must be refused"));
        assert!(
            message.contains(expected),
            "expected {expected:?} in: {message}"
        );
    };
    check(
        &std::fs::read(guests::WRONG_WORLD)?,
        "does not implement the projector:plugin/projection@0.1.0 world",
    );
    check(
        b"\0asm\x01\0\0\0",
        "core WebAssembly module, not a component",
    );
    check(b"hello, I am a text file", "not a WebAssembly file");
    let plugin = std::fs::read(guests::ORDER_SUMMARY)?;
    check(&plugin[..plugin.len() / 2], "compiling the component");
    let loaded = runtime.load(Path::new(guests::ORDER_SUMMARY))?;
    assert_eq!(loaded.manifest.name, "order_summary");
    Ok(())
}

/// A plugin that sleeps would block inside the host where no deadline reaches it; the clock
/// refuses, the event is dead-lettered, and the projection goes on at once.
#[test]
fn a_sleeping_plugin_is_refused_instead_of_hanging() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let mut projection = misbehave(&runtime, dir.path(), ErrorPolicy::DeadLetter)?;
    let report = projection.apply(&[event(1, "Sleep", ""), event(2, "Ok", "")], None)?;
    assert_eq!((report.projected, report.failed), (1, 1));
    let dead = tables::dead_letters(dir.path(), "misbehave")?;
    assert!(dead[0].2.contains("may not sleep"), "{}", dead[0].2);
    Ok(())
}

/// Two dead letters at one commit position (events of one transaction, told apart by their
/// prepare positions): a retry tries each once, whichever is refused again, and a fixed build
/// projects both.
#[test]
fn dead_letters_sharing_a_commit_position_are_each_retried_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = util::runtime();
    let in_transaction = |prepare: u64| {
        let mut poison = event(10, "Poison", "{}");
        poison.position = projector::event::Position {
            commit: 10,
            prepare,
        };
        poison
    };
    let mut broken = util::open(
        &runtime,
        guests::TALLY_V1,
        dir.path(),
        ErrorPolicy::DeadLetter,
    )?;
    let report = broken.apply(&[in_transaction(8), in_transaction(9)], None)?;
    assert_eq!(report.failed, 2);
    let attempts = |dir: &Path| -> anyhow::Result<Vec<(i64, i64)>> {
        let result = projector::store::Reader::open(dir)?.query(
            "SELECT prepare_position, attempts FROM tally._projector_dead_letters ORDER BY 1",
        )?;
        Ok(result
            .rows
            .iter()
            .map(|row| match (&row[0], &row[1]) {
                (
                    projector::value::Value::Integer(prepare),
                    projector::value::Value::Integer(attempts),
                ) => (*prepare, *attempts),
                other => panic!("unexpected row {other:?}"),
            })
            .collect())
    };
    let before = attempts(dir.path())?;
    let report = broken.retry_dead_letters(&projector::store::Selection::All)?;
    assert_eq!((report.retried, report.refused), (2, 2));
    let after = attempts(dir.path())?;
    assert_eq!(
        after,
        before.iter().map(|(p, a)| (*p, a + 1)).collect::<Vec<_>>(),
        "each refused once more"
    );
    drop(broken);
    let mut fixed = util::open(
        &runtime,
        guests::TALLY_ACCEPTS_POISON,
        dir.path(),
        ErrorPolicy::DeadLetter,
    )?;
    let report = fixed.retry_dead_letters(&projector::store::Selection::All)?;
    assert_eq!((report.retried, report.projected), (2, 2));
    assert!(tables::dead_letters(dir.path(), "tally")?.is_empty());
    Ok(())
}
