//! Read-only SQL over every projection database in a data directory.
//!
//! Each `<name>.db` is attached read-only under its projection name, so a query can join
//! projections (`SELECT … FROM order_summary.orders JOIN payments.payments …`). When only one
//! projection exists its tables are also reachable unqualified. The authorizer allows reads only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use super::statements::to_value;
use super::{Mode, Policy};
use crate::value::Value;

/// Column names and rows returned by a query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// The result columns, in order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl QueryResult {
    /// The rows as a JSON array of objects keyed by column name (`projector query --format
    /// json`, the API).
    pub fn to_json(&self) -> serde_json::Value {
        let rows = self.rows.iter().map(|row| {
            let object: serde_json::Map<String, serde_json::Value> = self
                .columns
                .iter()
                .cloned()
                .zip(row.iter().map(Value::to_json))
                .collect();
            serde_json::Value::Object(object)
        });
        serde_json::Value::Array(rows.collect())
    }
}

/// Longest one query may run.
pub const QUERY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// A read-only view over the projection databases of one data directory.
pub struct Reader {
    connection: Connection,
    policy: Arc<Policy>,
    /// Longest one query may run ([`QUERY_DEADLINE`]).
    deadline: std::time::Duration,
}

impl Reader {
    /// Opens every `*.db` file in `data_dir` for reading.
    pub fn open(data_dir: &Path) -> anyhow::Result<Reader> {
        let databases = projection_databases(data_dir)?;
        let connection = match databases.as_slice() {
            // With one projection, open it as `main` too, so its tables need no prefix.
            [(_, path)] => open_read_only(path)?,
            _ => Connection::open_in_memory()?,
        };
        for (name, path) in &databases {
            let uri = format!("file:{}?mode=ro", path.display());
            connection
                .execute("ATTACH DATABASE ?1 AS ?2", rusqlite::params![uri, name])
                .with_context(|| format!("attaching {}", path.display()))?;
        }
        connection.pragma_update(None, "query_only", true)?;
        let policy = Policy::new(Mode::ReadOnly);
        policy.install(&connection);
        // A query may recurse forever (WITH RECURSIVE); the API runs queries from anyone who
        // can reach it, so each one gets a deadline, checked by SQLite as it steps.
        let interrupt = Arc::clone(&policy);
        connection.progress_handler(10_000, Some(move || interrupt.past_deadline()));
        Ok(Reader {
            connection,
            policy,
            deadline: QUERY_DEADLINE,
        })
    }

    /// Runs one read-only statement and returns its columns and all its rows; a statement
    /// still running after [`QUERY_DEADLINE`] is interrupted with an error.
    pub fn query(&self, sql: &str) -> anyhow::Result<QueryResult> {
        self.policy
            .set_deadline(Some(std::time::Instant::now() + self.deadline));
        let result = self.run(sql);
        self.policy.set_deadline(None);
        result
    }

    fn run(&self, sql: &str) -> anyhow::Result<QueryResult> {
        let mut statement =
            self.connection
                .prepare(sql)
                .map_err(|error| match self.policy.take_denial() {
                    Some(reason) => anyhow::format_err!("query denied: {reason}"),
                    None => anyhow::Error::new(error).context("preparing the query"),
                })?;
        let columns: Vec<String> = statement
            .column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let mut rows = statement.raw_query();
        let mut result = Vec::new();
        while let Some(row) = rows
            .next()
            .map_err(|error| match error.sqlite_error_code() {
                Some(rusqlite::ErrorCode::OperationInterrupted) => anyhow::format_err!(
                    "the query ran longer than {} ms and was stopped",
                    self.deadline.as_millis()
                ),
                _ => anyhow::Error::new(error).context("running the query"),
            })?
        {
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                values.push(to_value(row.get_ref(index)?));
            }
            result.push(values);
        }
        Ok(QueryResult {
            columns,
            rows: result,
        })
    }
}

fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {} read-only", path.display()))
}

/// The projection databases in `data_dir`: `(projection name, path)`, sorted by name.
pub fn projection_databases(data_dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(data_dir)
        .with_context(|| format!("reading data directory {}", data_dir.display()))?;
    let mut databases = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "db")
            && let Some(name) = path.file_stem().and_then(|s| s.to_str())
        {
            databases.push((name.to_string(), path.clone()));
        }
    }
    databases.sort();
    if databases.is_empty() {
        bail!(
            "no projection databases (*.db) in {}; run a projection first",
            data_dir.display()
        );
    }
    Ok(databases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_that_never_ends_is_stopped_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("p.db"))
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        let mut reader = Reader::open(dir.path()).unwrap();
        reader.deadline = std::time::Duration::from_millis(50);
        let error = reader
            .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
            .unwrap_err();
        assert!(
            error.to_string().contains("ran longer than 50 ms"),
            "{error:#}"
        );
        assert_eq!(
            reader.query("SELECT count(*) FROM t").unwrap().rows.len(),
            1
        );
    }
}
