//! `projector test --expect DIR`: a projection's tables and dead letters as files a plugin
//! author commits beside the plugin, compared on every run.
//!
//! One file per table, `DIR/<table>.jsonl`, and `DIR/_dead_letters.jsonl`: the column names on
//! the first line, then one row per line as a JSON array, the rows sorted by their values (so
//! the order of writes does not matter, and a diff shows the rows that changed). Values keep
//! their SQLite storage class: integers as JSON integers, reals always with a fraction or an
//! exponent (and `{"real": "NaN"}` / `"inf"` / `"-inf"` for what JSON cannot hold), text as
//! strings, blobs as `{"blob": "<base64>"}`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::store::QueryResult;
use crate::value::Value;

/// The file the dead letters go in.
pub const DEAD_LETTERS: &str = "_dead_letters";

/// Rows shown per side of a mismatch before the rest are counted.
const SHOWN_ROWS: usize = 20;

/// One file's worth: a table (or the dead letters) as lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The column names, encoded.
    pub header: String,
    /// The rows, encoded, sorted.
    pub rows: Vec<String>,
}

impl Snapshot {
    /// The snapshot of a query result.
    pub fn of(result: &QueryResult) -> Snapshot {
        let header = serde_json::Value::from(result.columns.clone()).to_string();
        let mut rows: Vec<String> = result
            .rows
            .iter()
            .map(|row| {
                let values: Vec<String> = row.iter().map(encode).collect();
                format!("[{}]", values.join(","))
            })
            .collect();
        rows.sort();
        Snapshot { header, rows }
    }

    /// The file's text.
    fn text(&self) -> String {
        let mut text = String::with_capacity(self.header.len() + 1);
        text.push_str(&self.header);
        text.push('\n');
        for row in &self.rows {
            text.push_str(row);
            text.push('\n');
        }
        text
    }

    /// Reads a snapshot file.
    fn parse(text: &str) -> Snapshot {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default().to_owned();
        let mut rows: Vec<String> = lines
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        rows.sort();
        Snapshot { header, rows }
    }
}

/// One value, unambiguous about its storage class.
fn encode(value: &Value) -> String {
    use base64::Engine as _;
    match value {
        Value::Null => "null".to_owned(),
        Value::Integer(integer) => integer.to_string(),
        Value::Real(real) if real.is_nan() => r#"{"real":"NaN"}"#.to_owned(),
        Value::Real(real) if real.is_infinite() => {
            let sign = if *real > 0.0 { "inf" } else { "-inf" };
            format!(r#"{{"real":"{sign}"}}"#)
        }
        Value::Real(real) => {
            // Rust's shortest round-trip form, with a fraction added to whole numbers so a
            // real never reads as an integer.
            let text = format!("{real:?}");
            if text.contains(['.', 'e', 'E']) {
                text
            } else {
                format!("{text}.0")
            }
        }
        Value::Text(text) => serde_json::Value::from(text.as_str()).to_string(),
        Value::Blob(bytes) => format!(
            r#"{{"blob":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

/// Writes every snapshot to `dir` (created if missing), replacing the `.jsonl` files there.
pub fn write(dir: &Path, snapshots: &BTreeMap<String, Snapshot>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for stale in files(dir)?.keys() {
        if !snapshots.contains_key(stale) {
            let path = dir.join(format!("{stale}.jsonl"));
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for (name, snapshot) in snapshots {
        let path = dir.join(format!("{name}.jsonl"));
        std::fs::write(&path, snapshot.text())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Compares `actual` with the snapshots in `dir`: None when they agree, else a readable
/// account of every difference.
pub fn compare(dir: &Path, actual: &BTreeMap<String, Snapshot>) -> anyhow::Result<Option<String>> {
    let expected = files(dir)?;
    let names: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    let mut report = String::new();
    for name in names {
        match (expected.get(name), actual.get(name)) {
            (Some(_), None) => {
                let _ = writeln!(
                    report,
                    "{name}: expected, but the projection has no such table"
                );
            }
            (None, Some(snapshot)) => {
                let _ = writeln!(
                    report,
                    "{name}: not expected ({} rows); run with --update to add {name}.jsonl",
                    snapshot.rows.len()
                );
            }
            (Some(expected), Some(actual)) => difference(&mut report, name, expected, actual),
            (None, None) => {}
        }
    }
    Ok((!report.is_empty()).then_some(report))
}

/// Appends what differs between two snapshots of `name`.
fn difference(report: &mut String, name: &str, expected: &Snapshot, actual: &Snapshot) {
    if expected.header != actual.header {
        let _ = writeln!(
            report,
            "{name}: columns differ\n- {}\n+ {}",
            expected.header, actual.header
        );
        return;
    }
    let (missing, extra) = multiset_difference(&expected.rows, &actual.rows);
    if missing.is_empty() && extra.is_empty() {
        return;
    }
    let _ = writeln!(
        report,
        "{name}: {} expected rows missing, {} rows not expected ({} expected, {} produced); columns {}",
        missing.len(),
        extra.len(),
        expected.rows.len(),
        actual.rows.len(),
        expected.header
    );
    for (sign, rows) in [('-', &missing), ('+', &extra)] {
        for row in rows.iter().take(SHOWN_ROWS) {
            let _ = writeln!(report, "{sign} {row}");
        }
        if rows.len() > SHOWN_ROWS {
            let _ = writeln!(report, "{sign} … and {} more", rows.len() - SHOWN_ROWS);
        }
    }
}

/// The rows only in `expected` and those only in `actual`, counting repeats; both sorted.
fn multiset_difference<'a>(
    expected: &'a [String],
    actual: &'a [String],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    let (mut left, mut right) = (expected.iter().peekable(), actual.iter().peekable());
    loop {
        match (left.peek(), right.peek()) {
            (Some(a), Some(b)) if a == b => {
                left.next();
                right.next();
            }
            (Some(a), Some(b)) if a < b => missing.extend(left.next().map(String::as_str)),
            (Some(_), Some(_)) => extra.extend(right.next().map(String::as_str)),
            (Some(_), None) => missing.extend(left.next().map(String::as_str)),
            (None, Some(_)) => extra.extend(right.next().map(String::as_str)),
            (None, None) => break,
        }
    }
    (missing, extra)
}

/// The snapshot files in `dir`, by name (empty if `dir` does not exist).
fn files(dir: &Path) -> anyhow::Result<BTreeMap<String, Snapshot>> {
    let mut found = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(error) => return Err(error).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let (Some(stem), Some("jsonl")) = (
            path.file_stem().and_then(|stem| stem.to_str()),
            path.extension().and_then(|extension| extension.to_str()),
        ) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        found.insert(stem.to_owned(), Snapshot::parse(&text));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_storage_class() {
        assert_eq!(encode(&Value::Integer(1)), "1");
        assert_eq!(encode(&Value::Real(1.0)), "1.0");
        assert_eq!(encode(&Value::Real(0.1)), "0.1");
        assert_eq!(encode(&Value::Real(1e300)), "1e300");
        assert_eq!(encode(&Value::Real(f64::NAN)), r#"{"real":"NaN"}"#);
        assert_eq!(
            encode(&Value::Real(f64::NEG_INFINITY)),
            r#"{"real":"-inf"}"#
        );
        assert_eq!(encode(&Value::Text("1".into())), r#""1""#);
        assert_eq!(encode(&Value::Text("é\n\"".into())), r#""é\n\"""#);
        assert_eq!(encode(&Value::Blob(vec![0, 255])), r#"{"blob":"AP8="}"#);
        assert_eq!(encode(&Value::Null), "null");
    }

    #[test]
    fn differences_count_repeated_rows() {
        let rows = |rows: &[&str]| rows.iter().map(|row| (*row).to_owned()).collect::<Vec<_>>();
        let (expected, actual) = (rows(&["a", "a", "b", "d"]), rows(&["a", "c", "d", "d"]));
        let (missing, extra) = multiset_difference(&expected, &actual);
        assert_eq!(missing, ["a", "b"]);
        assert_eq!(extra, ["c", "d"]);
    }

    #[test]
    fn a_written_snapshot_compares_equal_and_a_changed_one_does_not() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let result = QueryResult {
            columns: vec!["id".into(), "total".into()],
            rows: vec![
                vec![Value::Text("b".into()), Value::Real(2.5)],
                vec![Value::Text("a".into()), Value::Integer(1)],
            ],
            positions: Default::default(),
        };
        let mut snapshots = BTreeMap::from([("orders".to_owned(), Snapshot::of(&result))]);
        write(dir.path(), &snapshots)?;
        assert_eq!(
            std::fs::read_to_string(dir.path().join("orders.jsonl"))?,
            "[\"id\",\"total\"]\n[\"a\",1]\n[\"b\",2.5]\n"
        );
        assert_eq!(compare(dir.path(), &snapshots)?, None);

        snapshots.get_mut("orders").expect("orders").rows[0] = "[\"a\",1.0]".into();
        let report = compare(dir.path(), &snapshots)?.expect("a difference");
        assert!(report.contains("- [\"a\",1]\n+ [\"a\",1.0]"), "{report}");
        snapshots.insert("refunds".into(), Snapshot::of(&result));
        let report = compare(dir.path(), &snapshots)?.expect("a difference");
        assert!(
            report.contains("refunds: not expected (2 rows)"),
            "{report}"
        );
        Ok(())
    }
}
