//! Read-only SQL over the projections of a data directory.
//!
//! Each projection's current database (as the catalog says when the reader opens) is attached
//! read-only under the projection's name, so a query can join projections
//! (`SELECT … FROM order_summary.orders JOIN payments.payments …`). Only the projections a query
//! names are attached, so any number of projections can live in one directory; when the
//! directory holds only one, its tables are also reachable unqualified. The authorizer allows
//! reads only; the connection is hardened (see [`super::guard`]) and a text must hold one
//! statement. A reader may bound its results ([`ResultBounds`]): a result past them is refused
//! whole ([`ResultCut`]), never returned in part.
//!
//! A query runs in one read transaction that also reads the checkpoint of every projection it
//! names, so its answer says which position of each projection it reflects
//! ([`QueryResult::positions`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use rusqlite::types::ValueRef;

use super::statements::to_value;
use super::{DataDir, Mode, Policy, guard};
use crate::value::Value;

/// Column names and rows returned by a query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// The result columns, in order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
    /// Each projection the query names, with the committed position (commit part) its rows
    /// reflect (`None`: it has committed nothing yet).
    pub positions: BTreeMap<String, Option<u64>>,
}

impl QueryResult {
    /// The rows as a JSON array of objects keyed by column name (`projector query --format
    /// json`).
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

/// Attempts to take one snapshot of a projection opened twice (see `Reader::pin_snapshots`).
const PIN_ATTEMPTS: usize = 20;

/// Longest one query may run.
pub const QUERY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Most projections one query may name: SQLite's attached-database limit, which the build raises
/// from its default of 10 (`.cargo/config.toml`).
pub const MAX_JOINED: usize = 125;

/// How much one query may return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultBounds {
    /// Most rows.
    pub max_rows: usize,
    /// Most bytes: the bytes of every text and blob, plus [`VALUE_OVERHEAD`] per value. No
    /// single value may be larger either: SQLite refuses to build one.
    pub max_bytes: usize,
}

impl ResultBounds {
    /// No bound but SQLite's own (one value of at most 1,000,000,000 bytes): for the command
    /// line, where whoever queries owns the machine.
    pub const NONE: ResultBounds = ResultBounds {
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
    };
}

/// What each value counts towards [`ResultBounds::max_bytes`] besides its text or blob bytes.
pub const VALUE_OVERHEAD: usize = 16;

/// Why a query's result was refused: it was larger than the reader's [`ResultBounds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResultCut {
    /// More rows than [`ResultBounds::max_rows`].
    #[error(
        "the result was cut: it has more than {0} rows; ask for fewer (a LIMIT, a narrower \
         WHERE, or an aggregate such as count(*))"
    )]
    Rows(usize),
    /// More bytes than [`ResultBounds::max_bytes`].
    #[error(
        "the result was cut: it holds more than {0} bytes; ask for fewer rows or columns, or \
         for a part of large values (substr(), length())"
    )]
    Bytes(usize),
    /// One value (read or built) larger than [`ResultBounds::max_bytes`].
    #[error(
        "the query was stopped: a value it reads or builds is larger than {0} bytes, the most \
         one result may hold; ask for a part of it (substr()) or its length()"
    )]
    Value(usize),
}

/// A read-only view over the projection databases of one data directory.
pub struct Reader {
    /// Each projection's current database, by name, as resolved when the reader was opened.
    databases: Vec<(String, PathBuf)>,
    /// Longest one query may run ([`QUERY_DEADLINE`]).
    deadline: std::time::Duration,
    /// How much one query may return.
    bounds: ResultBounds,
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
            bounds: ResultBounds::NONE,
        })
    }

    /// This reader, with its results bounded by `bounds` (none by default).
    pub fn bounded(self, bounds: ResultBounds) -> Reader {
        Reader { bounds, ..self }
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
        guard::harden(&connection, self.bounds.max_bytes)?;
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

    /// The projections a query of `sql` reads: those it names (all of them when there is
    /// only one).
    pub fn read_by(&self, sql: &str) -> Vec<String> {
        self.named_in(sql)
            .into_iter()
            .map(|(n, _)| n.clone())
            .collect()
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
    /// still running after [`QUERY_DEADLINE`] is interrupted with an error, a text holding
    /// more than one statement is refused, and a result past the reader's bounds is refused
    /// with a [`ResultCut`].
    pub fn query(&self, sql: &str) -> anyhow::Result<QueryResult> {
        let (connection, policy) = self.connect(sql)?;
        let positions = self.pin_snapshots(&connection, &policy, sql)?;
        policy.set_mode(Mode::ReadOnly);
        policy.set_deadline(Some(std::time::Instant::now() + self.deadline));
        let mut result = self.run(&connection, &policy, sql)?;
        policy.set_deadline(None);
        policy.set_mode(Mode::Host);
        connection.execute_batch("COMMIT")?;
        result.positions = positions;
        Ok(result)
    }

    /// Opens the read transaction the query runs in and reads each named projection's
    /// checkpoint in it first: a database's snapshot is taken at its first read and held to
    /// the end, so the rows the query reads next are those of these positions. With one
    /// projection its file is open twice (as `main` and under its name), two snapshots that
    /// must agree: taken again when a commit landed between the two.
    fn pin_snapshots(
        &self,
        connection: &Connection,
        policy: &Policy,
        sql: &str,
    ) -> anyhow::Result<BTreeMap<String, Option<u64>>> {
        policy.set_mode(Mode::Host);
        // No checkpoint row (or table, for a database being created) is "nothing committed";
        // any other failure is an error, never an invented position.
        let checkpoint = |schema: &str| -> anyhow::Result<Option<u64>> {
            let quoted = schema.replace('"', "\"\"");
            let read = connection
                .query_row(
                    &format!(
                        "SELECT commit_position FROM \"{quoted}\"._projector_checkpoint WHERE id = 1"
                    ),
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .optional();
            match read {
                Ok(position) => Ok(position.map(|p| p as u64)),
                Err(error) if error.to_string().contains("no such table") => Ok(None),
                Err(error) => Err(anyhow::Error::new(error)
                    .context(format!("reading the checkpoint of {schema}"))),
            }
        };
        let named = self.named_in(sql);
        let single = self.databases.len() == 1;
        for _ in 0..PIN_ATTEMPTS {
            connection.execute_batch("BEGIN")?;
            let mut positions = BTreeMap::new();
            for (name, _) in &named {
                positions.insert(name.clone(), checkpoint(name)?);
            }
            let main = if single { checkpoint("main")? } else { None };
            if !single || positions.values().all(|p| *p == main) {
                return Ok(positions);
            }
            connection.execute_batch("ROLLBACK")?;
        }
        bail!(
            "the projection committed during each of {PIN_ATTEMPTS} attempts to read it at one \
             position; ask again"
        )
    }

    fn run(
        &self,
        connection: &Connection,
        policy: &Policy,
        sql: &str,
    ) -> anyhow::Result<QueryResult> {
        let statement = guard::prepare_single(connection, sql);
        if let Err(rusqlite::Error::MultipleStatement) = statement {
            // The authorizer may have refused the second statement; that is not the reason.
            policy.take_denial();
            bail!(
                "invalid query: one statement per query, and this text holds more than one; \
                 send each statement on its own"
            );
        }
        let mut statement = statement
            .map_err(|error| self.failure(error, policy, "preparing the query"))?
            .ok_or_else(|| anyhow::format_err!("the query is empty: it holds no statement"))?;
        let columns: Vec<String> = statement
            .column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let mut rows = statement.raw_query();
        let mut result = Vec::new();
        let mut bytes = 0usize;
        loop {
            // SQLite checks the deadline inside loops only; a statement that computes each
            // row in one straight line (a compound of VALUES) is checked here, between rows.
            if policy.past_deadline() {
                return Err(self.stopped());
            }
            let Some(row) = rows
                .next()
                .map_err(|error| self.failure(error, policy, "running the query"))?
            else {
                break;
            };
            if result.len() == self.bounds.max_rows {
                return Err(ResultCut::Rows(self.bounds.max_rows).into());
            }
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                let value = row.get_ref(index)?;
                bytes = bytes.saturating_add(VALUE_OVERHEAD);
                if let ValueRef::Text(data) | ValueRef::Blob(data) = value {
                    bytes = bytes.saturating_add(data.len());
                }
                if bytes > self.bounds.max_bytes {
                    return Err(ResultCut::Bytes(self.bounds.max_bytes).into());
                }
                values.push(to_value(value));
            }
            result.push(values);
        }
        Ok(QueryResult {
            columns,
            rows: result,
            positions: BTreeMap::new(),
        })
    }

    /// What went wrong while `doing` something with the query, in the user's terms.
    fn failure(&self, error: rusqlite::Error, policy: &Policy, doing: &str) -> anyhow::Error {
        if let Some(reason) = policy.take_denial() {
            return anyhow::format_err!("query denied: {reason}");
        }
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::OperationInterrupted) => self.stopped(),
            Some(rusqlite::ErrorCode::TooBig) if self.bounds != ResultBounds::NONE => {
                ResultCut::Value(self.bounds.max_bytes).into()
            }
            _ => anyhow::Error::new(error).context(doing.to_string()),
        }
    }

    fn stopped(&self) -> anyhow::Error {
        anyhow::format_err!(
            "the query ran longer than {} ms and was stopped",
            self.deadline.as_millis()
        )
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

    fn one_projection() -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("p.db"))
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3)")
            .unwrap();
        let reader = Reader::open(dir.path()).unwrap();
        (dir, reader)
    }

    #[test]
    fn a_text_of_several_statements_is_refused() {
        let (_dir, reader) = one_projection();
        for sql in [
            "SELECT 1; SELECT 2",
            "SELECT 1; DELETE FROM t",
            "SELECT 1; ATTACH 'x' AS y",
            &"SELECT 1;".repeat(100_000),
        ] {
            let error = reader.query(sql).unwrap_err().to_string();
            assert!(
                error.starts_with("invalid query: one statement per query"),
                "{error}"
            );
        }
        let one = reader
            .query("SELECT count(*) FROM t; -- counted\n")
            .unwrap();
        assert_eq!(one.rows, vec![vec![Value::Integer(3)]]);
        let denied = reader.query("DELETE FROM t").unwrap_err().to_string();
        assert!(denied.starts_with("query denied"), "{denied}");
        let empty = reader.query(" -- nothing").unwrap_err().to_string();
        assert!(empty.contains("holds no statement"), "{empty}");
    }

    #[test]
    fn a_result_past_the_row_bound_is_cut() {
        let (_dir, reader) = one_projection();
        let reader = reader.bounded(ResultBounds {
            max_rows: 3,
            max_bytes: 1 << 20,
        });
        assert_eq!(reader.query("SELECT x FROM t").unwrap().rows.len(), 3);
        let error = reader
            .query("SELECT x FROM t UNION ALL SELECT 4")
            .unwrap_err();
        assert_eq!(error.downcast_ref(), Some(&ResultCut::Rows(3)));
        assert!(error.to_string().contains("more than 3 rows"), "{error}");
    }

    #[test]
    fn a_result_past_the_byte_bound_is_cut() {
        let (_dir, reader) = one_projection();
        let reader = reader.bounded(ResultBounds {
            max_rows: 100,
            max_bytes: 1000,
        });
        // Three values of 300 bytes and their overhead fit; a fourth does not.
        let three = reader.query("SELECT zeroblob(300) FROM t").unwrap();
        assert_eq!(three.rows.len(), 3);
        let error = reader
            .query("SELECT zeroblob(300) FROM t UNION ALL SELECT zeroblob(300)")
            .unwrap_err();
        assert_eq!(error.downcast_ref(), Some(&ResultCut::Bytes(1000)));
        let error = reader.query("SELECT zeroblob(1001)").unwrap_err();
        assert_eq!(error.downcast_ref(), Some(&ResultCut::Value(1000)));
        let error = reader
            .query("SELECT length(replace(hex(zeroblob(400)), '0', 'ab'))")
            .unwrap_err();
        assert_eq!(error.downcast_ref(), Some(&ResultCut::Value(1000)));
    }

    #[test]
    fn an_unbounded_reader_returns_everything() {
        let (_dir, reader) = one_projection();
        let big = reader
            .query("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 20000) SELECT n, zeroblob(1000) FROM c")
            .unwrap();
        assert_eq!(big.rows.len(), 20_000);
    }

    /// SQLite checks its progress handler at loop bottoms only; a compound of VALUES steps
    /// from row to row without one, so the reader checks between rows.
    #[test]
    fn a_query_without_loops_is_stopped_between_rows() {
        let (_dir, mut reader) = one_projection();
        reader.deadline = std::time::Duration::from_millis(1);
        let rows = vec!["SELECT length(hex(zeroblob(1000000)))"; 400].join(" UNION ALL ");
        let error = reader.query(&rows).unwrap_err().to_string();
        assert!(error.contains("ran longer than 1 ms"), "{error}");
    }
}
