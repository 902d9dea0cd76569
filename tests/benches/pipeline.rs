//! Throughput of the projection pipeline: order events from an in-memory source through the
//! `order-summary` wasm plugin into SQLite, side by side with the same plugin logic compiled
//! natively and writing through the same store (the ceiling wasm is measured against), and
//! with SQLite alone replaying the exact statements the plugin made (the floor under both).
//!
//! Run with `cargo bench -p projector-tests --bench pipeline` (add `-- EVENTS ROUNDS` to change
//! the defaults of 200000 events and 5 rounds). Prints the median of the rounds for each path and
//! their ratio; docs/BENCHMARKS.md records the figures.

use std::path::Path;
use std::time::Instant;

use projector::event::RecordedEvent;
use projector::runtime::{Limits, Runtime};
use projector::store::{Checkpoint, Checkpointer, Db, PluginRecord, WRITER_AUTOCHECKPOINT_PAGES};
use projector::value::{SqlError, SqlSession, Value};

const BATCH: usize = 500;

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let count = args.first().copied().unwrap_or(200_000);
    let rounds = args.get(1).copied().unwrap_or(5);
    // Clean events only: every path then does the same work, one call per batch.
    let events = projector_tests::bench::recorded_order_events(count)?;
    println!(
        "{} order events, batches of {BATCH}, {rounds} rounds",
        events.len()
    );
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let runtime = Runtime::new(Limits::default(), None)?;
    let mut wasm_rates = Vec::new();
    let mut native_rates = Vec::new();
    let mut sqlite_rates = Vec::new();
    for round in 1..=rounds {
        let dir = tempfile::tempdir()?;
        let wasm = tokio.block_on(wasm_pipeline(&runtime, &dir.path().join("wasm"), &events))?;
        let (native, _) = native_ceiling(&dir.path().join("native"), &events, false)?;
        // An untimed second native run records the statements SQLite alone replays.
        let (_, statements) = native_ceiling(&dir.path().join("recorded"), &events, true)?;
        let sqlite = sqlite_alone(&dir.path().join("sqlite.db"), &statements, events.len())?;
        println!(
            "round {round}: wasm pipeline {wasm:>9.0} events/s   native logic {native:>9.0} events/s   SQLite alone {sqlite:>9.0} events/s"
        );
        wasm_rates.push(wasm);
        native_rates.push(native);
        sqlite_rates.push(sqlite);
    }
    let (wasm, native) = (median(&mut wasm_rates), median(&mut native_rates));
    let sqlite = median(&mut sqlite_rates);
    println!(
        "median: wasm pipeline {wasm:.0} events/s, native logic {native:.0} events/s, SQLite alone {sqlite:.0} events/s; native/wasm {:.2}x, SQLite-alone/wasm {:.2}x",
        native / wasm,
        sqlite / wasm
    );
    Ok(())
}

/// The whole pipeline: source task, batcher, channel, projection thread, wasm, SQLite.
async fn wasm_pipeline(
    runtime: &Runtime,
    data: &Path,
    events: &[RecordedEvent],
) -> anyhow::Result<f64> {
    let projection = projector_tests::bench::order_summary(runtime, data)?;
    projector_tests::bench::pipeline_rate(projection, events, BATCH).await
}

/// The same plugin logic, native, through the same store: one transaction per batch. With
/// `record`, also returns every statement it ran, per batch, for [`sqlite_alone`].
fn native_ceiling(
    data: &Path,
    events: &[RecordedEvent],
    record: bool,
) -> anyhow::Result<(f64, Vec<Batch>)> {
    let manifest = order_summary::manifest();
    let plugin = PluginRecord {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        schema: manifest.schema.clone(),
        wasm_sha256: "native".into(),
    };
    let mut db = Db::open(&data.join("order_summary.db"), &plugin, Default::default())?;
    let started = Instant::now();
    let mut handled = 0u64;
    let mut recorded = Vec::new();
    let mut texts = std::collections::HashMap::new();
    for batch in events.chunks(BATCH) {
        let guest_events: Vec<projector_sdk::Event> = batch.iter().map(to_sdk_event).collect();
        db.begin()?;
        let mut sql = NativeSql {
            db: &mut db,
            record,
            texts: &mut texts,
            statements: Vec::new(),
        };
        order_summary::handle(&mut sql, &guest_events)
            .map_err(|e| anyhow::format_err!("native run failed: {e:?}"))?;
        recorded.push(sql.statements);
        handled += batch.len() as u64;
        db.commit(Checkpoint {
            position: batch.last().unwrap().position,
            events_handled: handled,
            last_event: None,
        })?;
    }
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, recorded))
}

/// The statements of one batch: text and parameters.
type Batch = Vec<(&'static str, Vec<Value>)>;

/// SQLite alone: the exact statements of the native run, replayed through rusqlite on the same
/// schema with the same pragmas and the same background checkpoints as `store::Db`, one
/// transaction per batch, with no plugin, no JSON, no host.
fn sqlite_alone(path: &Path, batches: &[Batch], events: usize) -> anyhow::Result<f64> {
    let db = rusqlite::Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "NORMAL")?;
    db.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
    let _checkpointer = Checkpointer::start(path)?;
    for statement in order_summary::manifest().schema {
        db.execute_batch(&statement)?;
    }
    let started = Instant::now();
    for batch in batches {
        db.execute_batch("BEGIN")?;
        for (text, params) in batch {
            let mut statement = db.prepare_cached(text)?;
            let params: Vec<rusqlite::types::Value> = params.iter().map(to_sqlite).collect();
            let mut rows = statement.query(rusqlite::params_from_iter(params))?;
            while rows.next()?.is_some() {}
        }
        db.execute_batch("COMMIT")?;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

fn to_sqlite(value: &Value) -> rusqlite::types::Value {
    match value {
        Value::Null => rusqlite::types::Value::Null,
        Value::Integer(i) => rusqlite::types::Value::Integer(*i),
        Value::Real(r) => rusqlite::types::Value::Real(*r),
        Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
        Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

struct NativeSql<'a> {
    db: &'a mut Db,
    record: bool,
    /// Each distinct statement text once (the plugin's texts are a handful of constants).
    texts: &'a mut std::collections::HashMap<String, &'static str>,
    statements: Batch,
}

impl NativeSql<'_> {
    /// Records `statement` for the SQLite-alone replay, when recording.
    fn record(&mut self, statement: &str, params: &[Value]) {
        if !self.record {
            return;
        }
        let text = *self
            .texts
            .entry(statement.to_string())
            .or_insert_with(|| Box::leak(statement.to_string().into_boxed_str()));
        self.statements.push((text, params.to_vec()));
    }
}

impl projector_sdk::Sql for NativeSql<'_> {
    fn execute(
        &mut self,
        statement: &str,
        params: &[projector_sdk::Value],
    ) -> Result<i64, projector_sdk::SqlError> {
        let params: Vec<Value> = params.iter().map(to_host_value).collect();
        self.record(statement, &params);
        self.db.execute(statement, &params).map_err(to_sdk_error)
    }

    fn query(
        &mut self,
        statement: &str,
        params: &[projector_sdk::Value],
    ) -> Result<Vec<Vec<projector_sdk::Value>>, projector_sdk::SqlError> {
        let params: Vec<Value> = params.iter().map(to_host_value).collect();
        self.record(statement, &params);
        let rows = self.db.query(statement, &params).map_err(to_sdk_error)?;
        Ok(rows
            .into_iter()
            .map(|row| row.into_iter().map(to_sdk_value).collect())
            .collect())
    }
}

fn to_sdk_event(event: &RecordedEvent) -> projector_sdk::Event {
    projector_sdk::Event {
        stream_id: event.stream_id.clone(),
        stream_revision: event.stream_revision as i64,
        position: event.position.commit as i64,
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        content_type: event.content_type.clone(),
        created_unix_ms: event.created_unix_ms,
        data: event.data.clone(),
        metadata: event.metadata.clone(),
    }
}

fn to_host_value(value: &projector_sdk::Value) -> Value {
    match value {
        projector_sdk::Value::Null => Value::Null,
        projector_sdk::Value::Integer(i) => Value::Integer(*i),
        projector_sdk::Value::Real(r) => Value::Real(*r),
        projector_sdk::Value::Text(t) => Value::Text(t.clone()),
        projector_sdk::Value::Blob(b) => Value::Blob(b.clone()),
    }
}

fn to_sdk_value(value: Value) -> projector_sdk::Value {
    match value {
        Value::Null => projector_sdk::Value::Null,
        Value::Integer(i) => projector_sdk::Value::Integer(i),
        Value::Real(r) => projector_sdk::Value::Real(r),
        Value::Text(t) => projector_sdk::Value::Text(t),
        Value::Blob(b) => projector_sdk::Value::Blob(b),
    }
}

fn to_sdk_error(error: SqlError) -> projector_sdk::SqlError {
    match error {
        SqlError::Denied(m) => projector_sdk::SqlError::Denied(m),
        SqlError::Invalid(m) => projector_sdk::SqlError::Invalid(m),
        SqlError::Constraint(m) => projector_sdk::SqlError::Constraint(m),
        SqlError::Other(m) => projector_sdk::SqlError::Other(m),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}
