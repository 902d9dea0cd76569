//! The `values` test projection: pins the value model at the plugin boundary, so the Rust, Python
//! and JavaScript builds can be checked to see the same thing (plugins/test-languages.sh).
//!
//! For every event it records what arrived (`received`: the s64 fields, the data's length and
//! bytes, whether they are UTF-8, the JSON kind of the body, the metadata). An event of type
//! `RoundTrip` also binds each of a fixed set of edge values ([`EDGES`]) through `sql`: it reads
//! the value back from `SELECT ?1` and from a table column, and records in `round_trips` whether
//! each came back the same (reals compared bit for bit, so `-0.0` is not `0.0` and NaN is itself).
//! `edges` holds what SQLite stored, which the snapshot pins (NaN is stored as NULL).
//! An event of type `Bug` fails as a bug in plugin code does (here a panic, a trap; in the
//! Python and JS twins an uncaught exception), so plugins/test-languages.sh can check that each
//! language's failure names its message and where it happened.
//!
//! Build with `cargo build --release --target wasm32-wasip2` in `plugins/`; check with
//! `projector test values.wasm --events fixtures/values.jsonl --expect values/expected`.

use projector_sdk::{Error, Event, Manifest, Sql, Value};

/// The tables; `edges.value` has no declared type, so SQLite keeps each value's storage class.
const SCHEMA: [&str; 3] = [
    "CREATE TABLE received (position INTEGER PRIMARY KEY, event_type TEXT NOT NULL, \
     content_type TEXT NOT NULL, stream_revision INTEGER NOT NULL, created_unix_ms INTEGER NOT NULL, \
     data_length INTEGER NOT NULL, data BLOB NOT NULL, data_utf8 INTEGER NOT NULL, \
     json_kind TEXT NOT NULL, metadata_length INTEGER NOT NULL, metadata BLOB NOT NULL)",
    "CREATE TABLE edges (name TEXT PRIMARY KEY, value)",
    "CREATE TABLE round_trips (name TEXT PRIMARY KEY, echoed_type TEXT NOT NULL, \
     echoed_same INTEGER NOT NULL, stored_type TEXT NOT NULL, stored_same INTEGER NOT NULL, \
     refused TEXT)",
];

const RECEIVE: &str = "INSERT INTO received VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const ECHO: &str = "SELECT ?1, typeof(?1)";
const STORE: &str =
    "INSERT INTO edges (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2";
const READ_BACK: &str = "SELECT value, typeof(value) FROM edges WHERE name = ?1";
const RECORD: &str = "INSERT OR REPLACE INTO round_trips VALUES (?1, ?2, ?3, ?4, ?5, NULL)";

/// The edge values bound on a `RoundTrip`, by name; the same list in every language's build.
pub fn edges() -> Vec<(&'static str, Value)> {
    let two_53 = 1i64 << 53;
    vec![
        ("null", Value::Null),
        ("int_zero", Value::Integer(0)),
        ("int_2p53", Value::Integer(two_53)),
        ("int_neg_2p53", Value::Integer(-two_53)),
        ("int_2p53_plus_1", Value::Integer(two_53 + 1)),
        ("int_neg_2p53_minus_1", Value::Integer(-two_53 - 1)),
        ("int_min", Value::Integer(i64::MIN)),
        ("int_max", Value::Integer(i64::MAX)),
        ("real_half", Value::Real(0.5)),
        ("real_neg_zero", Value::Real(-0.0)),
        ("real_nan", Value::Real(f64::NAN)),
        ("real_inf", Value::Real(f64::INFINITY)),
        ("real_neg_inf", Value::Real(f64::NEG_INFINITY)),
        ("real_1e308", Value::Real(1e308)),
        ("text_empty", Value::Text(String::new())),
        ("text_non_ascii", Value::Text("héllo – 日本 😀".into())),
        ("text_nul", Value::Text("a\0b".into())),
        ("blob_empty", Value::Blob(Vec::new())),
        ("blob_bytes", Value::Blob(vec![0x00, 0xff, 0x80, 0x01])),
    ]
}

pub fn manifest() -> Manifest {
    Manifest {
        name: "values".into(),
        version: "1.0.0".into(),
        description: "What crosses the plugin boundary, for the value-model tests".into(),
        event_types: vec![],
        stream_prefixes: vec![],
        schema: SCHEMA.iter().map(|s| (*s).into()).collect(),
    }
}

pub fn handle(sql: &mut impl Sql, events: &[Event]) -> Result<(), Error> {
    for event in events {
        let utf8 = std::str::from_utf8(&event.data).is_ok();
        let params = [
            event.position.into(),
            event.event_type.as_str().into(),
            event.content_type.as_str().into(),
            event.stream_revision.into(),
            event.created_unix_ms.into(),
            (event.data.len() as i64).into(),
            Value::Blob(event.data.clone()),
            i64::from(utf8).into(),
            json_kind(&event.data).into(),
            (event.metadata.len() as i64).into(),
            Value::Blob(event.metadata.clone()),
        ];
        sql.execute(RECEIVE, &params)?;
        match event.event_type.as_str() {
            "RoundTrip" => round_trip(sql)?,
            "Bug" => panic!("values was told to fail at position {}", event.position),
            _ => {}
        }
    }
    Ok(())
}

/// Binds every edge value, reads it back twice and records whether it came back the same.
fn round_trip(sql: &mut impl Sql) -> Result<(), Error> {
    for (name, value) in edges() {
        let echoed = first_row(sql.query(ECHO, std::slice::from_ref(&value))?)?;
        sql.execute(STORE, &[name.into(), value.clone()])?;
        let stored = first_row(sql.query(READ_BACK, &[name.into()])?)?;
        let params = [
            name.into(),
            echoed[1].clone(),
            i64::from(same(&echoed[0], &value)).into(),
            stored[1].clone(),
            i64::from(same(&stored[0], &value)).into(),
        ];
        sql.execute(RECORD, &params)?;
    }
    Ok(())
}

fn first_row(rows: Vec<Vec<Value>>) -> Result<Vec<Value>, Error> {
    rows.into_iter()
        .next()
        .filter(|row| row.len() == 2)
        .ok_or_else(|| Error::other("expected one row of two columns"))
}

/// Exact equality: reals bit for bit (NaN is itself, `-0.0` is not `0.0`).
fn same(got: &Value, sent: &Value) -> bool {
    match (got, sent) {
        (Value::Real(got), Value::Real(sent)) => got.to_bits() == sent.to_bits(),
        _ => got == sent,
    }
}

/// The kind of JSON value the data holds, or `invalid`.
pub fn json_kind(data: &[u8]) -> &'static str {
    use serde_json::Value as Json;
    match serde_json::from_slice::<Json>(data) {
        Ok(Json::Object(_)) => "object",
        Ok(Json::Array(_)) => "array",
        Ok(Json::String(_)) => "string",
        Ok(Json::Number(_)) => "number",
        Ok(Json::Bool(_)) => "boolean",
        Ok(Json::Null) => "null",
        Err(_) => "invalid",
    }
}

projector_sdk::export_plugin!(manifest, handle);

#[cfg(test)]
mod tests {
    use projector_sdk::native::{Database, json_event};

    use super::*;

    /// Natively (rusqlite, no host): every edge value comes back as sent but NaN, which SQLite
    /// turns into NULL on the way in.
    #[test]
    fn edge_values_round_trip_but_nan() -> Result<(), Error> {
        let mut db = Database::in_memory(&manifest()).unwrap();
        db.batch(|sql| handle(sql, &[json_event(1, "values-1", "RoundTrip", "{}")]))?;
        let lines = db.lines("SELECT name, echoed_same, stored_same FROM round_trips WHERE NOT (echoed_same AND stored_same)")?;
        assert_eq!(lines, ["real_nan|0|0"]);
        Ok(())
    }

    #[test]
    fn json_kinds() {
        let kinds: Vec<&str> = ["{}", "[1]", "\"s\"", "1e400", "true", "null", "", "NaN"]
            .iter()
            .map(|data| json_kind(data.as_bytes()))
            .collect();
        assert_eq!(
            kinds,
            [
                "object", "array", "string", "invalid", "boolean", "null", "invalid", "invalid"
            ]
        );
    }
}
