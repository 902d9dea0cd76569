//! Hostile plugins, one test per attack: each attack is a few events for the `misbehave` guest
//! among `Ok` events, run through the pipeline beside a well-behaved projection (`tally`, which
//! counts every event by type) over one source.
//!
//! Every test asserts the attack's outcome with its message (denied, dead-lettered, stopped, or
//! projected harmlessly), and the harness asserts for each of them that the run ended within a
//! bound, that no event was lost or applied twice (the attacker's rows are exactly the `Ok`
//! events up to its stored checkpoint, and a stopped attacker, restarted on a fixed plugin,
//! ends with every event once), and that the bystander is complete and exactly what it builds
//! with no attacker beside it. The host stays alive throughout: the run returns, the attacker's
//! `Ok` events after a dead-lettered attack are projected by a fresh instance, and a stopped
//! attacker restarts in the same process.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use projector::event::RecordedEvent;
use projector::pipeline::{self, BatchOptions, Outcome};
use projector::projection::ErrorPolicy;
use projector::runtime::{Limits, Runtime};
use projector::source::MemorySource;
use projector::value::Value;
use projector_tests::{guests, tables};

use crate::util::{self, event};

/// Longest any attack's run may take: an attack that holds a projection (or the host) longer
/// than its limits allow has won, whatever its outcome says.
const RUN_BOUND: Duration = Duration::from_secs(60);

/// Events per batch: small, so an attack shares its batch with an `Ok` event before it and one
/// after it, which the recovery under savepoints must keep, or a stop must roll back.
const BATCH: usize = 3;

/// `Ok` events before the first attacking event: with batches of three, one batch commits
/// before the attack's, which also holds an `Ok` event.
const LEAD: u64 = 4;

/// `Ok` events after the last attacking event, so the projection is seen going on after it.
const TAIL: u64 = 2;

/// Limits for the attacker: the defaults, with memory lowered so that memory attacks end
/// quickly (the query result bound follows the memory limit).
fn limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    }
}

/// What an attack must come to.
enum Expected {
    /// Each attacking event, in order, is dead-lettered with an error containing its text, and
    /// the projection goes on to the end.
    DeadLettered(Vec<&'static str>),
    /// The projection stops at the first attacking event with a reason containing this text.
    Stopped(&'static str),
    /// Every event is projected: no dead letter, no stop.
    Projected,
}

/// What an attack's run left, for the assertions particular to one attack.
struct Ran {
    /// The run's data directory; kept until the test ends.
    data: tempfile::TempDir,
    /// The attacker's `items` rows: `(position, stream)`.
    items: Vec<(i64, String)>,
    /// The attacker's dead letters: `(position, event type, error)`.
    dead: Vec<(i64, String, String)>,
    /// Positions of the attacking events.
    attacks: Vec<i64>,
}

/// An event for the `Sql` instruction running `statement`.
fn sql(statement: &str) -> (&'static str, String) {
    ("Sql", statement.to_string())
}

/// `LEAD` `Ok` events, then each attacking event followed by an `Ok` one, then `TAIL` more.
fn script(attack: &[(&str, String)]) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut next = 1;
    let mut push = |event_type: &str, data: &str| {
        events.push(event(next, event_type, data));
        next += 1;
    };
    (0..LEAD).for_each(|_| push("Ok", ""));
    for (event_type, data) in attack {
        push(event_type, data);
        push("Ok", "");
    }
    (0..TAIL).for_each(|_| push("Ok", ""));
    events
}

/// Runs `attack` (events among `Ok` ones) through the pipeline with the attacker under
/// `limits` and a bystander beside it, asserts `expected` and everything every attack must
/// leave intact, and returns what the run left.
async fn attack(
    attack: &[(&str, String)],
    limits: Limits,
    expected: Expected,
) -> anyhow::Result<Ran> {
    let events = script(attack);
    let attacks: Vec<i64> = events
        .iter()
        .filter(|e| e.event_type != "Ok")
        .map(|e| e.position.commit as i64)
        .collect();
    let data = tempfile::tempdir()?;
    let attacker_runtime = Runtime::new(limits.clone(), None)?;
    let attacker = util::open(
        &attacker_runtime,
        guests::MISBEHAVE,
        data.path(),
        ErrorPolicy::DeadLetter,
    )?;
    let bystander = util::open(
        &util::runtime(),
        guests::TALLY_V1,
        data.path(),
        ErrorPolicy::DeadLetter,
    )?;
    let mut outcomes = run(vec![attacker, bystander], &events, &limits).await?;
    let bystander = outcomes.pop().expect("the bystander's outcome");
    let attacker = outcomes.pop().expect("the attacker's outcome");
    check_bystander(data.path(), &events, &bystander).await?;
    let ran = Ran {
        items: items(data.path())?,
        dead: tables::dead_letters(data.path(), "misbehave")?,
        attacks,
        data,
    };
    check_accounting(ran.data.path(), &events, &attacker, &ran)?;
    let last = events.last().map(|e| e.position.commit as i64);
    let checkpoint = attacker.checkpoint.map(|p| p.commit as i64);
    let reason = attacker.error.as_ref().map(|e| format!("{e:#}"));
    match expected {
        Expected::DeadLettered(errors) => {
            assert_eq!(reason, None, "the attacker must go on");
            assert_eq!(checkpoint, last, "the attacker must reach the end");
            let dead: Vec<i64> = ran.dead.iter().map(|d| d.0).collect();
            assert_eq!(
                dead, ran.attacks,
                "exactly the attacking events are dead-lettered"
            );
            assert_eq!(
                errors.len(),
                ran.dead.len(),
                "one expected error per attacking event"
            );
            for ((position, event_type, error), expected) in ran.dead.iter().zip(errors) {
                assert!(
                    error.contains(expected),
                    "the dead letter of {event_type} at {position} must say {expected:?}: {error}"
                );
            }
        }
        Expected::Stopped(expected) => {
            let reason = reason.expect("the attacker must be stopped");
            assert!(
                reason.contains("projection misbehave stopped at") && reason.contains(expected),
                "the stop's reason must say {expected:?}: {reason}"
            );
            assert!(
                ran.dead.is_empty(),
                "a stop dead-letters nothing: {:?}",
                ran.dead
            );
            assert!(
                checkpoint.is_some_and(|c| c < ran.attacks[0]),
                "nothing of the attack's batch may commit: checkpoint {checkpoint:?}"
            );
            resume_fixed(ran.data.path(), &events, limits).await?;
        }
        Expected::Projected => {
            assert_eq!(reason, None, "the attacker must go on");
            assert_eq!(checkpoint, last, "the attacker must reach the end");
            assert!(
                ran.dead.is_empty(),
                "nothing is dead-lettered: {:?}",
                ran.dead
            );
        }
    }
    Ok(ran)
}

/// Runs `projections` over `events` to the end, within [`RUN_BOUND`].
async fn run(
    projections: Vec<projector::projection::Projection>,
    events: &[RecordedEvent],
    limits: &Limits,
) -> anyhow::Result<Vec<Outcome>> {
    let source = Arc::new(MemorySource::new("hostile", events.to_vec()));
    let batching = BatchOptions {
        max_events: BATCH,
        ..BatchOptions::default()
    };
    let settings = pipeline::Settings::new(batching, limits.thread_stack_bytes);
    let started = Instant::now();
    let outcomes = tokio::time::timeout(
        RUN_BOUND,
        pipeline::run(projections, source, settings, std::future::pending()),
    )
    .await
    .with_context(|| format!("the run did not end within {RUN_BOUND:?}"))??;
    assert!(started.elapsed() < RUN_BOUND);
    Ok(outcomes)
}

/// The attacker's `items` rows, `(position, stream)` in position order.
fn items(data: &Path) -> anyhow::Result<Vec<(i64, String)>> {
    Ok(tables::rows(data, "misbehave", "items")?
        .into_iter()
        .map(|row| match (&row[0], &row[1]) {
            (Value::Integer(position), Value::Text(stream)) => (*position, stream.clone()),
            other => panic!("unexpected items row {other:?}"),
        })
        .collect())
}

/// No event lost or applied twice: the stored checkpoint is the run's, every `Ok` event up to
/// it wrote its own row (positions are the table's key, so a second application would have
/// failed and shown as a dead letter), nothing after it is stored, and every event up to it was
/// either projected or dead-lettered, once.
fn check_accounting(
    data: &Path,
    events: &[RecordedEvent],
    attacker: &Outcome,
    ran: &Ran,
) -> anyhow::Result<()> {
    let checkpoint = attacker.checkpoint.map(|p| p.commit as i64);
    assert_eq!(
        checkpoint,
        tables::checkpoint(data, "misbehave"),
        "the run's checkpoint must be the stored one"
    );
    let committed = |position: i64| checkpoint.is_some_and(|c| position <= c);
    let expected_ok: Vec<(i64, String)> = events
        .iter()
        .filter(|e| e.event_type == "Ok" && committed(e.position.commit as i64))
        .map(|e| (e.position.commit as i64, e.stream_id.clone()))
        .collect();
    let stored_ok: Vec<(i64, String)> = ran
        .items
        .iter()
        .filter(|(position, _)| !ran.attacks.contains(position))
        .cloned()
        .collect();
    assert_eq!(
        stored_ok, expected_ok,
        "the Ok rows must be exactly the Ok events up to the checkpoint {checkpoint:?}"
    );
    for (position, _) in &ran.items {
        assert!(
            committed(*position),
            "row {position} is past the checkpoint"
        );
    }
    for (position, event_type, _) in &ran.dead {
        assert!(
            committed(*position),
            "dead letter {position} is past the checkpoint"
        );
        assert_ne!(
            event_type, "Ok",
            "an Ok event was dead-lettered at {position}"
        );
    }
    let handled = events
        .iter()
        .filter(|e| committed(e.position.commit as i64))
        .count() as u64;
    assert_eq!(
        (attacker.projected + attacker.failed, attacker.failed),
        (handled, ran.dead.len() as u64),
        "every event up to the checkpoint is projected or dead-lettered, once"
    );
    Ok(())
}

/// The bystander went on to the end untouched: its rows are the model of its events, and the
/// same as it builds alone.
async fn check_bystander(
    data: &Path,
    events: &[RecordedEvent],
    outcome: &Outcome,
) -> anyhow::Result<()> {
    if let Some(error) = &outcome.error {
        panic!("the bystander must not stop: {error:#}");
    }
    let last = events.last().map(|e| e.position.commit as i64);
    assert_eq!(outcome.checkpoint.map(|p| p.commit as i64), last);
    assert_eq!(
        (outcome.projected, outcome.failed),
        (events.len() as u64, 0)
    );
    assert_eq!(tables::checkpoint(data, "tally"), last);
    assert!(tables::dead_letters(data, "tally")?.is_empty());
    assert_eq!(tables::rows(data, "tally", "tally")?, tally_model(events));
    let alone = tempfile::tempdir()?;
    let tally = util::open(
        &util::runtime(),
        guests::TALLY_V1,
        alone.path(),
        ErrorPolicy::DeadLetter,
    )?;
    let source = Arc::new(MemorySource::new("alone", events.to_vec()));
    util::run_to_end(vec![tally], source, BATCH).await?;
    assert_eq!(
        tables::dump(data, "tally")?,
        tables::dump(alone.path(), "tally")?,
        "the bystander must build what it builds with no attacker beside it"
    );
    Ok(())
}

/// What tally v1 builds from `events`: per type, the count, version `'1'` and last position,
/// ordered like [`tables::rows`].
fn tally_model(events: &[RecordedEvent]) -> Vec<Vec<Value>> {
    let mut counts = std::collections::BTreeMap::<&str, (i64, i64)>::new();
    for event in events {
        let entry = counts.entry(&event.event_type).or_default();
        entry.0 += 1;
        entry.1 = event.position.commit as i64;
    }
    counts
        .into_iter()
        .map(|(event_type, (count, last))| {
            vec![
                Value::Text(event_type.to_string()),
                Value::Integer(count),
                Value::Text("1".into()),
                Value::Integer(last),
            ]
        })
        .collect()
}

/// Restarts a stopped attacker from its checkpoint on a fixed plugin (here: the same events
/// with the attacks made harmless, `Ok`), and asserts that it ends with every event's row once
/// and no dead letter: the stopped batch's events were not lost, nor is any applied twice.
async fn resume_fixed(data: &Path, events: &[RecordedEvent], limits: Limits) -> anyhow::Result<()> {
    let fixed: Vec<RecordedEvent> = events
        .iter()
        .map(|e| RecordedEvent {
            event_type: "Ok".into(),
            ..e.clone()
        })
        .collect();
    let runtime = Runtime::new(limits.clone(), None)?;
    let attacker = util::open(&runtime, guests::MISBEHAVE, data, ErrorPolicy::DeadLetter)?;
    let outcome = run(vec![attacker], &fixed, &limits)
        .await?
        .pop()
        .expect("the outcome");
    if let Some(error) = &outcome.error {
        panic!("the restarted projection must not stop: {error:#}");
    }
    let expected: Vec<(i64, String)> = fixed
        .iter()
        .map(|e| (e.position.commit as i64, e.stream_id.clone()))
        .collect();
    assert_eq!(items(data)?, expected, "every event once after the restart");
    assert!(tables::dead_letters(data, "misbehave")?.is_empty());
    Ok(())
}

/// A plugin that never returns is interrupted at the batch deadline, which stops the
/// projection (a time limit is the plugin's fault, not the event's) with the deadline named.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_stops_the_projection_at_the_deadline() -> anyhow::Result<()> {
    let limits = Limits {
        batch_deadline: Duration::from_secs(1),
        ..limits()
    };
    let started = Instant::now();
    attack(
        &[("Loop", String::new())],
        limits,
        Expected::Stopped("the plugin ran past its per-batch deadline of 1s and was stopped"),
    )
    .await?;
    // The deadline, not the run bound, ended it (the harness runs the bystander alone and the
    // restart too, each well under a second).
    assert!(started.elapsed() < Duration::from_secs(30));
    Ok(())
}

/// Unbounded recursion overflows the wasm stack: a trap, so the event is dead-lettered with
/// the trap named, the instance replaced, and the next events go on.
#[tokio::test(flavor = "multi_thread")]
async fn deep_recursion_is_a_trap_and_dead_lettered() -> anyhow::Result<()> {
    attack(
        &[("Recurse", String::new())],
        limits(),
        Expected::DeadLettered(vec!["the plugin trapped: wasm trap: call stack exhausted"]),
    )
    .await?;
    Ok(())
}

/// A plugin that allocates without end hits its memory cap: the event it did so on is
/// dead-lettered with the cap named (an event may simply be too large for the plugin), and a
/// fresh instance goes on with the next events.
#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_costs_its_event_at_the_cap() -> anyhow::Result<()> {
    attack(
        &[("Grow", String::new())],
        limits(),
        Expected::DeadLettered(vec!["over its limit of 33554432 bytes"]),
    )
    .await?;
    Ok(())
}

/// Writes to the host's own tables (the checkpoint, the dead letters, the plugin record) are
/// denied by name; the harness sees the checkpoint and dead letters unharmed.
#[tokio::test(flavor = "multi_thread")]
async fn writes_to_the_hosts_tables_are_denied() -> anyhow::Result<()> {
    attack(
        &[
            sql("UPDATE _projector_checkpoint SET commit_position = 0"),
            sql("DELETE FROM _projector_dead_letters"),
            sql("UPDATE _projector_plugin SET wasm_sha256 = 'forged'"),
        ],
        limits(),
        Expected::DeadLettered(vec![
            "denied: `_projector_checkpoint` is reserved for the host",
            "denied: `_projector_dead_letters` is reserved for the host",
            "denied: `_projector_plugin` is reserved for the host",
        ]),
    )
    .await?;
    Ok(())
}

/// Changing the schema during handle is denied as a schema change (not as a write to a table
/// the plugin never named), so the author knows to move the statement into the manifest.
#[tokio::test(flavor = "multi_thread")]
async fn schema_changes_during_handle_are_denied_by_name() -> anyhow::Result<()> {
    attack(
        &[
            sql("CREATE TABLE extra (a)"),
            sql("DROP TABLE items"),
            sql("CREATE INDEX by_stream ON items (stream)"),
            sql("ALTER TABLE items ADD COLUMN extra"),
        ],
        limits(),
        Expected::DeadLettered(vec![
            "a SQL statement failed: denied: changing the schema (a write to `sqlite_master`: CREATE, ALTER or DROP) is not allowed during handle; declare tables, indexes and views in the manifest's schema",
            "a SQL statement failed: denied: changing the schema (a write to `sqlite_master`",
            "a SQL statement failed: denied: changing the schema (a write to `sqlite_master`",
            "a SQL statement failed: denied: plugins may only read and write their own tables during handle, not ALTER TABLE items;",
        ]),
    )
    .await?;
    Ok(())
}

/// A panic's location and message reach the dead letter: after the plugin wrote past the
/// output capture's bound too, and cut to a bound (its location kept) when the message is 10 MB.
#[tokio::test(flavor = "multi_thread")]
async fn a_panic_names_its_location_and_message_within_a_bound() -> anyhow::Result<()> {
    let ran = attack(
        &[
            ("Trap", String::new()),
            ("PanicAfterOutput", String::new()),
            ("PanicHuge", String::new()),
        ],
        limits(),
        Expected::DeadLettered(vec![
            "the plugin trapped: wasm trap: wasm `unreachable` instruction executed; it said: panicked at misbehave/src/lib.rs:",
            "the plugin trapped: wasm trap: wasm `unreachable` instruction executed; it said: panicked at misbehave/src/lib.rs:",
            "the plugin trapped: wasm trap: wasm `unreachable` instruction executed; it said: panicked at misbehave/src/lib.rs:",
        ]),
    )
    .await?;
    let says = [
        format!("misbehave was told to trap at position {}", ran.attacks[0]),
        format!(
            "misbehave panicked after its output at position {}",
            ran.attacks[1]
        ),
        "misbehave panicked at length: huge huge".to_string(),
    ];
    for ((position, _, error), says) in ran.dead.iter().zip(says) {
        assert!(
            error.contains(&says),
            "the dead letter at {position} must say {says:?}: {error}"
        );
        assert!(
            error.len() < 1200,
            "the dead letter at {position} is {} bytes",
            error.len()
        );
    }
    Ok(())
}

/// ATTACH would reach any file the host can open; it is denied and creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn attach_is_denied() -> anyhow::Result<()> {
    let elsewhere = tempfile::tempdir()?;
    let escape = elsewhere.path().join("escape.db");
    attack(
        &[sql(&format!(
            "ATTACH DATABASE '{}' AS other",
            escape.display()
        ))],
        limits(),
        Expected::DeadLettered(vec!["denied: ATTACH and DETACH are not allowed"]),
    )
    .await?;
    assert!(!escape.exists(), "ATTACH created {}", escape.display());
    Ok(())
}

/// PRAGMA would change how the host's database behaves (its journal, its schema's
/// protection); each is denied by name.
#[tokio::test(flavor = "multi_thread")]
async fn pragmas_are_denied() -> anyhow::Result<()> {
    attack(
        &[
            sql("PRAGMA journal_mode = DELETE"),
            sql("PRAGMA writable_schema = ON"),
            sql("PRAGMA foreign_keys = OFF"),
        ],
        limits(),
        Expected::DeadLettered(vec![
            "denied: PRAGMA journal_mode is not allowed",
            "denied: PRAGMA writable_schema is not allowed",
            "denied: PRAGMA foreign_keys is not allowed",
        ]),
    )
    .await?;
    Ok(())
}

/// `load_extension` would load native code into the host; it is denied by name.
#[tokio::test(flavor = "multi_thread")]
async fn load_extension_is_denied() -> anyhow::Result<()> {
    attack(
        &[sql("SELECT load_extension('/tmp/evil.so')")],
        limits(),
        Expected::DeadLettered(vec!["denied: load_extension is not allowed"]),
    )
    .await?;
    Ok(())
}

/// Transaction control would commit half a batch without its checkpoint, or undo the host's
/// writes; each statement is denied, and the harness sees every batch whole.
#[tokio::test(flavor = "multi_thread")]
async fn transaction_control_is_denied() -> anyhow::Result<()> {
    let denied = "denied: transaction control is the host's";
    attack(
        &[
            sql("COMMIT"),
            sql("ROLLBACK"),
            sql("BEGIN"),
            sql("SAVEPOINT mine"),
            sql("RELEASE projector_event"),
        ],
        limits(),
        Expected::DeadLettered(vec![denied; 5]),
    )
    .await?;
    Ok(())
}

/// SQL in a bound parameter is data: it is stored as written, and the table is intact (the
/// harness finds every `Ok` row after it).
#[tokio::test(flavor = "multi_thread")]
async fn sql_injection_through_parameters_is_stored_literally() -> anyhow::Result<()> {
    let payloads = [
        "x'); DROP TABLE items; --",
        "'; DELETE FROM items WHERE '1' = '1",
    ];
    let ran = attack(
        &payloads.map(|p| ("Inject", p.to_string())),
        limits(),
        Expected::Projected,
    )
    .await?;
    let injected: Vec<(i64, String)> = ran
        .items
        .iter()
        .filter(|(position, _)| ran.attacks.contains(position))
        .cloned()
        .collect();
    let expected: Vec<(i64, String)> = ran
        .attacks
        .iter()
        .zip(payloads)
        .map(|(position, payload)| (*position, payload.to_string()))
        .collect();
    assert_eq!(injected, expected);
    Ok(())
}

/// A query whose rows add up past the result bound (the memory limit) fails with the bound
/// named before the host holds more than that; the event is dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_query_result_is_cut_off_at_the_bound() -> anyhow::Result<()> {
    attack(
        &[("Huge", String::new())],
        limits(),
        Expected::DeadLettered(vec![
            "the query's result exceeds 33554432 bytes; select fewer rows or columns",
        ]),
    )
    .await?;
    Ok(())
}

/// Log lines of the `projector::runtime` target that mention the log flood, captured from
/// every thread (the projections run on their own): a process-wide subscriber, installed once.
fn flood_log() -> &'static Mutex<Vec<String>> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    static LINES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("projector::runtime", tracing::Level::INFO);
        let subscriber =
            tracing_subscriber::registry().with(FloodLines(Arc::clone(&lines)).with_filter(filter));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a global subscriber");
        lines
    })
}

/// Keeps the lines that mention the flood or the dropping of lines; other tests' lines pass by.
struct FloodLines(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FloodLines {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, "{}={value:?} ", field.name());
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        if fields.0.contains(FLOOD_MARK) || fields.0.contains("over the per-call limit") {
            self.0.lock().unwrap().push(fields.0);
        }
    }
}

/// Tags this test's flood lines, so no other test's log can be mistaken for them.
const FLOOD_MARK: &str = "hostile-flood-5d1c";

/// 100,000 log calls in one `handle` are kept to the per-call budget (100 lines, the rest
/// counted as dropped in one line); the call goes on to its end, so the event is projected.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_flood_is_kept_to_the_per_call_budget() -> anyhow::Result<()> {
    let log = flood_log();
    let ran = attack(
        &[("LogFlood", FLOOD_MARK.to_string())],
        limits(),
        Expected::Projected,
    )
    .await?;
    let row = ran.items.iter().find(|(p, _)| *p == ran.attacks[0]);
    assert_eq!(row.map(|r| r.1.as_str()), Some("flooded"));
    let lines = log.lock().unwrap().clone();
    let flood = lines.iter().filter(|l| l.contains(FLOOD_MARK)).count();
    assert_eq!(
        flood,
        Limits::default().log_lines_per_call as usize,
        "{lines:#?}"
    );
    let dropped: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("dropped=99900") && l.contains("misbehave"))
        .collect();
    assert_eq!(dropped.len(), 1, "{lines:#?}");
    Ok(())
}

/// A text of 100,000 statements in one `sql` call (which once overflowed the host's stack) is
/// refused as invalid with the rule named; the host carries on.
#[tokio::test(flavor = "multi_thread")]
async fn a_text_of_many_statements_is_invalid() -> anyhow::Result<()> {
    attack(
        &[("ManyStatements", String::new())],
        limits(),
        Expected::DeadLettered(vec!["invalid statement: one statement per call"]),
    )
    .await?;
    Ok(())
}

/// A `$name(…)` parameter hiding a quote from the one-statement scan, followed by 116,500
/// statements (what rusqlite's recursive tail check would overflow the stack on), is refused
/// before SQLite sees the text; the host lives.
#[tokio::test(flavor = "multi_thread")]
async fn a_statement_hidden_behind_a_tcl_parameter_is_refused() -> anyhow::Result<()> {
    let hidden = "SELECT $a(')".to_string() + &";SELECT 1".repeat(116_500);
    attack(
        &[sql(&hidden)],
        limits(),
        Expected::DeadLettered(vec!["parameters of the form $name(…) are not supported"]),
    )
    .await?;
    Ok(())
}

/// `random()` would make a replay build other tables; it is denied by name.
#[tokio::test(flavor = "multi_thread")]
async fn random_in_sql_is_denied() -> anyhow::Result<()> {
    attack(
        &[sql("SELECT random()"), sql("SELECT randomblob(16)")],
        limits(),
        Expected::DeadLettered(vec![
            "denied: random() is not deterministic",
            "denied: randomblob() is not deterministic",
        ]),
    )
    .await?;
    Ok(())
}

/// The wall clock in SQL would make a replay build other tables; each way to read it is
/// denied with the function named.
#[tokio::test(flavor = "multi_thread")]
async fn the_wall_clock_in_sql_is_denied() -> anyhow::Result<()> {
    attack(
        &[
            sql("SELECT datetime('now')"),
            sql("SELECT CURRENT_TIMESTAMP"),
            // What a list of spellings would miss, SQLite's own purity check catches.
            sql("SELECT datetime(x'6e6f77')"),
            sql("SELECT datetime('now' || char(0) || 'x')"),
            sql("SELECT unixepoch('subsec')"),
            sql("SELECT datetime(0, 'unixepoch', CAST('localtime' AS BLOB))"),
        ],
        limits(),
        Expected::DeadLettered(vec![
            "denied: datetime('now') reads the wall clock",
            "denied: current_timestamp() is not deterministic",
            "denied: datetime('now') reads the wall clock",
            "denied: datetime('now') reads the wall clock",
            "denied: unixepoch('subsec') as a time value means now",
            "denied: datetime(…, 'localtime') depends on the machine's time zone",
        ]),
    )
    .await?;
    Ok(())
}

/// Files, environment, arguments, network and clocks through WASI: the plugin sees nothing of
/// the host (every call fails or comes back empty, the clocks stand at zero), touches nothing
/// (no file written, no connection made), and its event is projected.
#[tokio::test(flavor = "multi_thread")]
async fn wasi_shows_the_plugin_nothing_of_the_host() -> anyhow::Result<()> {
    let elsewhere = tempfile::tempdir()?;
    let escape = elsewhere.path().join("escape.txt");
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let ran = attack(
        &[("Wasi", format!("{}\n{port}", escape.display()))],
        limits(),
        Expected::Projected,
    )
    .await?;
    let row = ran.items.iter().find(|(p, _)| *p == ran.attacks[0]);
    assert_eq!(
        row.map(|r| r.1.as_str()),
        Some("fs-read:denied fs-write:denied env:0 args:0 net:denied clock:0 instant:0")
    );
    assert!(!escape.exists(), "the plugin wrote {}", escape.display());
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the plugin reached the network: {accepted:?}"
    );
    Ok(())
}

/// Printing 100 KB in one call, past the output capture, costs no event.
#[tokio::test(flavor = "multi_thread")]
async fn printing_100_kb_in_one_call_is_projected() -> anyhow::Result<()> {
    attack(
        &[("Print", "y".repeat(100 << 10))],
        limits(),
        Expected::Projected,
    )
    .await?;
    Ok(())
}

/// A 12 MB error text is cut to 4 KiB before it is stored, and says how long it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_12_mb_error_text_is_cut_before_it_is_stored() -> anyhow::Result<()> {
    let ran = attack(
        &[("Shout", String::new())],
        limits(),
        Expected::DeadLettered(vec!["… [cut from 12582912 bytes]"]),
    )
    .await?;
    let error = &ran.dead[0].2;
    assert!(error.len() < 4096 + 100, "{} bytes stored", error.len());
    Ok(())
}

/// Sleeping would block inside the host where no deadline reaches; the clock refuses, the event
/// is dead-lettered, and the projection goes on at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_sleeps_is_refused() -> anyhow::Result<()> {
    let started = Instant::now();
    attack(
        &[("Sleep", String::new())],
        limits(),
        Expected::DeadLettered(vec![
            "plugins may not sleep or wait on a clock: time is frozen inside handle",
        ]),
    )
    .await?;
    assert!(started.elapsed() < Duration::from_secs(30));
    Ok(())
}

/// A schema of `CREATE TABLE … AS WITH RECURSIVE …` over a query that never ends is refused
/// when the projection opens, at once and with the reason, instead of running; it leaves
/// nothing behind, and a well-behaved projection then runs in the same data directory.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_schema_query_is_refused_at_open() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let runtime = Runtime::new(limits(), None)?;
    let started = Instant::now();
    let error = util::open(
        &runtime,
        guests::TALLY_ENDLESS_SCHEMA,
        data.path(),
        ErrorPolicy::DeadLetter,
    )
    .err()
    .expect("the schema must be refused");
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = format!("{error:#}");
    assert!(
        message.contains("CREATE TABLE … AS SELECT is not allowed in a schema"),
        "{message}"
    );
    let events = script(&[]);
    let tally = util::open(
        &util::runtime(),
        guests::TALLY_V1,
        data.path(),
        ErrorPolicy::DeadLetter,
    )?;
    let outcome = run(vec![tally], &events, &limits()).await?.remove(0);
    check_bystander(data.path(), &events, &outcome).await?;
    Ok(())
}
