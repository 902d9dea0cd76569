//! Read-only SQL over the projections of a data directory.
//!
//! Each projection's current database (as the catalog says when the reader opens) is attached
//! read-only under the projection's name, so a query can join projections
//! (`SELECT … FROM order_summary.orders JOIN payments.payments …`). Only the projections a query
//! names are attached, so any number of projections can live in one directory; when the
//! directory holds only one, its tables are also reachable unqualified. The authorizer allows
//! reads only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use super::statements::to_value;
use super::{DataDir, Mode, Policy};
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

/// Most projections one query may name: SQLite's attached-database limit, which the build raises
/// from its default of 10 (`.cargo/config.toml`).
pub const MAX_JOINED: usize = 125;

/// A read-only view over the projection databases of one data directory.
pub struct Reader {
    /// Each projection's current database, by name, as resolved when the reader was opened.
    databases: Vec<(String, PathBuf)>,
    /// Longest one query may run ([`QUERY_DEADLINE`]).
    deadline: std::time::Duration,
}

impl Reader {
    /// Resolves every projection of `data_dir` to its current database.
    pub fn open(data_dir: &Path) -> anyhow::Result<Reader> {
        let databases = DataDir::existing(data_dir).current_databases()?;
        if databases.is_empty() {
            bail!(
                "no projection databases in {}; run a projection first",
                data_dir.display()
            );
        }
        Ok(Reader {
            databases,
            deadline: QUERY_DEADLINE,
        })
    }

    /// The projections this reader sees, with their current database files.
    pub fn databases(&self) -> &[(String, PathBuf)] {
        &self.databases
    }

    /// A connection with the projections `sql` names attached (all of them when there is only
    /// one), read-only and under the read-only authorizer.
    fn connect(&self, sql: &str) -> anyhow::Result<(Connection, Arc<Policy>)> {
        let named = self.named_in(sql);
        if named.len() > MAX_JOINED {
            bail!(
                "the query names {} projections; one query can read at most {MAX_JOINED}",
                named.len()
            );
        }
        let connection = match self.databases.as_slice() {
            // With one projection, open it as `main` too, so its tables need no prefix.
            [(_, path)] => open_read_only(path)?,
            _ => Connection::open_in_memory()?,
        };
        connection.set_limit(
            rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED,
            MAX_JOINED as i32,
        )?;
        for (name, path) in named {
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
        Ok((connection, policy))
    }

    /// The projections whose names occur as words in `sql` (all of them when there is only
    /// one). Attaching one too many is harmless; missing one would fail the query, so any
    /// word that matches, quoted or not, counts.
    fn named_in(&self, sql: &str) -> Vec<&(String, PathBuf)> {
        if self.databases.len() == 1 {
            return self.databases.iter().collect();
        }
        let words = |split: fn(char) -> bool| -> Vec<String> {
            sql.split(split)
                .filter(|w| !w.is_empty())
                .map(|w| w.to_ascii_lowercase())
                .collect()
        };
        let mut found = words(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        found.extend(words(|c| {
            !(c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }));
        self.databases
            .iter()
            .filter(|(name, _)| found.iter().any(|w| w == name))
            .collect()
    }

    /// Runs one read-only statement and returns its columns and all its rows; a statement
    /// still running after [`QUERY_DEADLINE`] is interrupted with an error.
    pub fn query(&self, sql: &str) -> anyhow::Result<QueryResult> {
        let (connection, policy) = self.connect(sql)?;
        policy.set_deadline(Some(std::time::Instant::now() + self.deadline));
        self.run(&connection, &policy, sql)
    }

    fn run(
        &self,
        connection: &Connection,
        policy: &Policy,
        sql: &str,
    ) -> anyhow::Result<QueryResult> {
        let mut statement =
            connection
                .prepare(sql)
                .map_err(|error| match policy.take_denial() {
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

    #[test]
    fn a_query_attaches_only_the_projections_it_names() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..130 {
            Connection::open(dir.path().join(format!("p{index}.db")))
                .unwrap()
                .execute_batch(&format!(
                    "CREATE TABLE t (x); INSERT INTO t VALUES ({index})"
                ))
                .unwrap();
        }
        let reader = Reader::open(dir.path()).unwrap();
        let result = reader
            .query("SELECT a.x + b.x FROM p3.t AS a JOIN \"p120\".t AS b")
            .unwrap();
        assert_eq!(result.rows, vec![vec![Value::Integer(123)]]);
        let all: Vec<String> = (0..12).map(|i| format!("SELECT x FROM p{i}.t")).collect();
        let union = reader.query(&all.join(" UNION ALL ")).unwrap();
        assert_eq!(union.rows.len(), 12);
        let too_many: Vec<String> = (0..130).map(|i| format!("SELECT x FROM p{i}.t")).collect();
        let error = reader.query(&too_many.join(" UNION ALL ")).unwrap_err();
        assert!(
            error.to_string().contains("names 130 projections"),
            "{error:#}"
        );
    }
}
