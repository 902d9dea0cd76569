//! Reading a projection's tables back in a canonical order, to compare two databases or a
//! database with a model.

use std::path::Path;

use projector::store::Reader;
use projector::value::Value;

/// Every row of `table` in projection `projection` of `data_dir`, ordered by all columns.
pub fn rows(data_dir: &Path, projection: &str, table: &str) -> anyhow::Result<Vec<Vec<Value>>> {
    let reader = Reader::open(data_dir)?;
    let columns = reader
        .query(&format!(
            "SELECT * FROM \"{projection}\".\"{table}\" LIMIT 0"
        ))?
        .columns
        .len();
    let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
    let result = reader.query(&format!(
        "SELECT * FROM \"{projection}\".\"{table}\" ORDER BY {}",
        order.join(", ")
    ))?;
    Ok(result.rows)
}

/// A text dump of every plugin table of `projection` (schema and rows), for byte-for-byte
/// comparison of two runs.
pub fn dump(data_dir: &Path, projection: &str) -> anyhow::Result<String> {
    let reader = Reader::open(data_dir)?;
    let tables = reader.query(&format!(
        "SELECT name, sql FROM \"{projection}\".sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_projector\\_%' ESCAPE '\\' ORDER BY name"
    ))?;
    let mut out = String::new();
    for table in tables.rows {
        let (Value::Text(name), Value::Text(sql)) = (&table[0], &table[1]) else {
            continue;
        };
        out.push_str(sql);
        out.push('\n');
        for row in rows(data_dir, projection, name)? {
            out.push_str(&format!("{row:?}\n"));
        }
    }
    Ok(out)
}

/// The dead letters of `projection`: `(position, event type, error)` in position order.
pub fn dead_letters(
    data_dir: &Path,
    projection: &str,
) -> anyhow::Result<Vec<(i64, String, String)>> {
    let reader = Reader::open(data_dir)?;
    let result = reader.query(&format!(
        "SELECT commit_position, event_type, error FROM \"{projection}\"._projector_dead_letters ORDER BY commit_position"
    ))?;
    Ok(result
        .rows
        .into_iter()
        .map(|row| match (&row[0], &row[1], &row[2]) {
            (Value::Integer(p), Value::Text(t), Value::Text(e)) => (*p, t.clone(), e.clone()),
            other => panic!("unexpected dead-letter row {other:?}"),
        })
        .collect())
}

/// The committed position of the current version of `projection`, if it has one yet.
pub fn checkpoint(data_dir: &Path, projection: &str) -> Option<i64> {
    let reader = Reader::open(data_dir).ok()?;
    let result = reader
        .query(&format!(
            "SELECT commit_position FROM \"{projection}\"._projector_checkpoint WHERE id = 1"
        ))
        .ok()?;
    match result.rows.first().map(|row| &row[0]) {
        Some(Value::Integer(position)) => Some(*position),
        _ => None,
    }
}
