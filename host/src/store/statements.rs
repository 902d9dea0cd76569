//! Plugin SQL on the open batch: binding [`Value`]s, reading rows back, and turning SQLite
//! errors into the categories plugins see.
//!
//! Statements are prepared through rusqlite's statement cache, keyed by their text, so a plugin
//! that reuses fixed statement texts pays for parsing once per database connection.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, ErrorCode};

use super::{Db, LOST_TRANSACTION, Mode};
use crate::value::{SqlError, SqlSession, Value};

impl SqlSession for Db {
    fn call_deadline(&mut self, deadline: std::time::Instant) {
        self.call_deadline = Some(deadline);
    }

    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<i64, SqlError> {
        let started = std::time::Instant::now();
        let result = self.execute_plugin(statement, params);
        self.work.time += started.elapsed();
        if let Ok(rows) = result {
            self.work.rows_changed += rows as u64;
        }
        result
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let started = std::time::Instant::now();
        let result = self.query_plugin(statement, params);
        self.work.time += started.elapsed();
        result
    }
}

impl Db {
    /// A plugin's `execute`: its rows changed.
    fn execute_plugin(&mut self, statement: &str, params: &[Value]) -> Result<i64, SqlError> {
        let _plugin_mode = PluginMode::enter(self);
        let mut prepared = self.prepare_plugin_statement(statement, params)?;
        // `changes()` is the last write's count, not this statement's, when it writes nothing.
        let writes = !prepared.readonly();
        // Step to the end exactly once: a statement with RETURNING makes all its changes on the
        // first step, so executing it and then querying it would apply it twice.
        let mut rows = prepared.raw_query();
        loop {
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(error) => {
                    drop(rows);
                    return Err(self.classify(error));
                }
            }
        }
        drop(rows);
        drop(prepared);
        Ok(if writes {
            self.connection.changes() as i64
        } else {
            0
        })
    }

    /// A plugin's `query`: its rows, bounded.
    fn query_plugin(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        let _plugin_mode = PluginMode::enter(self);
        let mut prepared = self.prepare_plugin_statement(statement, params)?;
        let columns = prepared.column_count();
        let mut rows = prepared.raw_query();
        let mut result = Vec::new();
        let mut result_bytes = 0usize;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(error) => {
                    drop(rows);
                    return Err(self.classify(error));
                }
            };
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                let value = row
                    .get_ref(index)
                    .map_err(|e| SqlError::Other(e.to_string()))?;
                result_bytes += match value {
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len() + 16,
                    _ => 16,
                };
                values.push(to_value(value));
            }
            // The guest's memory cap only applies once rows reach it; bound them on the host
            // side too, or one query could exhaust the host's memory.
            if result_bytes > self.limits.max_result_bytes {
                return Err(SqlError::Other(format!(
                    "the query's result exceeds {} bytes; select fewer rows or columns",
                    self.limits.max_result_bytes
                )));
            }
            result.push(values);
        }
        Ok(result)
    }
}

/// Keeps the authorizer in plugin mode while a plugin statement is prepared and stepped: SQLite
/// may re-prepare a statement mid-step (after a schema change), and that must be judged as the
/// plugin's too.
struct PluginMode(std::sync::Arc<super::Policy>);

impl PluginMode {
    fn enter(db: &Db) -> PluginMode {
        db.policy.take_denial();
        db.policy.set_mode(Mode::Plugin);
        let own = std::time::Instant::now() + db.limits.statement_deadline;
        let deadline = db.call_deadline.map_or(own, |call| call.min(own));
        db.policy.set_deadline(Some(deadline));
        PluginMode(std::sync::Arc::clone(&db.policy))
    }
}

impl Drop for PluginMode {
    fn drop(&mut self) {
        self.0.set_mode(Mode::Host);
        self.0.set_deadline(None);
    }
}

impl Db {
    /// Prepares (or fetches from the cache) a plugin statement under the plugin policy and
    /// binds its parameters.
    fn prepare_plugin_statement(
        &self,
        statement: &str,
        params: &[Value],
    ) -> Result<CachedStatement<'_>, SqlError> {
        if !self.in_batch {
            return Err(SqlError::Denied(
                "SQL is only available while handle runs".into(),
            ));
        }
        // SQLite itself can end the transaction (ON CONFLICT ROLLBACK, a full disk). Writing on
        // would autocommit each statement outside the batch, so refuse until the batch ends.
        if self.connection.is_autocommit() {
            return Err(SqlError::Other(LOST_TRANSACTION.into()));
        }
        // Before SQLite sees the text: rusqlite's own check of a tail recurses per statement.
        super::single::check(statement).map_err(SqlError::Invalid)?;
        // Cached statements were all prepared here, under the plugin policy (see `Db`).
        let mut prepared = self
            .connection
            .prepare_cached(statement)
            .map_err(|e| self.classify(e))?;
        let expected = prepared.parameter_count();
        if expected != params.len() {
            return Err(SqlError::Invalid(format!(
                "the statement has {expected} parameters but {} values were given",
                params.len()
            )));
        }
        for (index, value) in params.iter().enumerate() {
            prepared
                .raw_bind_parameter(index + 1, to_value_ref(value))
                .map_err(|e| self.classify(e))?;
        }
        Ok(prepared)
    }

    /// Sorts a rusqlite error into a plugin-visible category, with the authorizer's reason
    /// when the statement was denied.
    fn classify(&self, error: rusqlite::Error) -> SqlError {
        if let Some(fault) = super::fault::of(&error) {
            self.fault.set(Some(fault));
        }
        // Whatever code SQLite reports (SQLITE_AUTH, or SQLITE_ERROR for a denied function), a
        // denial recorded while preparing this statement is the reason.
        if let Some(reason) = self.policy.take_denial() {
            return SqlError::Denied(reason);
        }
        match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let text = message.clone().unwrap_or_else(|| failure.to_string());
                match failure.code {
                    ErrorCode::AuthorizationForStatementDenied => SqlError::Denied(text),
                    ErrorCode::ConstraintViolation => SqlError::Constraint(text),
                    ErrorCode::OperationInterrupted => SqlError::Other(format!(
                        "the statement ran past its deadline of {:?} and was interrupted",
                        self.limits.statement_deadline
                    )),
                    ErrorCode::Unknown => SqlError::Invalid(text),
                    _ => SqlError::Other(text),
                }
            }
            rusqlite::Error::MultipleStatement => {
                SqlError::Invalid("one statement per call: the text holds more than one".into())
            }
            rusqlite::Error::InvalidParameterCount(..)
            | rusqlite::Error::InvalidColumnIndex(..) => SqlError::Invalid(error.to_string()),
            _ => SqlError::Other(error.to_string()),
        }
    }
}

fn to_value_ref(value: &Value) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match value {
        Value::Null => ValueRef::Null,
        Value::Integer(i) => ValueRef::Integer(*i),
        Value::Real(r) => ValueRef::Real(*r),
        Value::Text(t) => ValueRef::Text(t.as_bytes()),
        Value::Blob(b) => ValueRef::Blob(b),
    })
}

/// Converts a column value read from SQLite into a [`Value`].
pub(super) fn to_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Position;
    use crate::store::{Checkpoint, PluginRecord};

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let record = PluginRecord {
            name: "t".into(),
            version: "1".into(),
            schema: vec!["CREATE TABLE items (id INTEGER PRIMARY KEY, value)".into()],
            wasm_sha256: "0".into(),
        };
        let db = Db::open(&dir.path().join("t.db"), &record, Default::default()).unwrap();
        (dir, db)
    }

    #[test]
    fn values_round_trip_in_every_storage_class() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        let values = [
            Value::Null,
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("é".into()),
            Value::Blob(vec![0, 255]),
        ];
        for (id, value) in values.iter().enumerate() {
            let changed = db.execute(
                "INSERT INTO items (id, value) VALUES (?1, ?2)",
                &[Value::Integer(id as i64), value.clone()],
            );
            assert_eq!(changed, Ok(1));
        }
        // A statement that writes nothing reports no changes, not the last write's.
        assert_eq!(db.execute("SELECT count(*) FROM items", &[]), Ok(0));
        let rows = db
            .query("SELECT value FROM items ORDER BY id", &[])
            .unwrap();
        assert_eq!(
            rows.into_iter()
                .map(|mut r| r.remove(0))
                .collect::<Vec<_>>(),
            values
        );
    }

    /// The statement cache must never hand a plugin one of the host's statements: the host's
    /// own texts are refused like any other.
    #[test]
    fn a_plugin_cannot_borrow_the_hosts_statements() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        db.commit(Checkpoint {
            position: Position::at(1),
            events_handled: 1,
            last_event: None,
        })
        .unwrap();
        db.begin().unwrap();
        for text in [
            "COMMIT",
            "ROLLBACK",
            "BEGIN IMMEDIATE",
            "SAVEPOINT projector_event",
        ] {
            assert!(
                matches!(db.execute(text, &[]), Err(SqlError::Denied(_))),
                "{text}"
            );
        }
        let checkpoint = "INSERT INTO _projector_checkpoint (id, commit_position, prepare_position, events_handled)
                 VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET commit_position = ?1, prepare_position = ?2, events_handled = ?3";
        let error = db
            .execute(
                checkpoint,
                &[Value::Integer(0), Value::Integer(0), Value::Integer(0)],
            )
            .unwrap_err();
        assert!(
            matches!(&error, SqlError::Denied(m) if m.contains("_projector_checkpoint")),
            "{error}"
        );
        db.commit(Checkpoint {
            position: Position::at(2),
            events_handled: 2,
            last_event: None,
        })
        .unwrap();
        assert_eq!(
            db.checkpoint().unwrap().map(|c| c.position),
            Some(Position::at(2))
        );
    }

    #[test]
    fn plugin_sql_outside_a_batch_is_denied() {
        let (_dir, mut db) = open();
        assert!(matches!(
            db.execute("INSERT INTO items (id) VALUES (1)", &[]),
            Err(SqlError::Denied(_))
        ));
    }

    /// A denied statement names what it tried: DDL during handle is named a schema change (SQLite
    /// asks about the write to the schema table before the CREATE or DROP itself), other
    /// actions in SQL (`ALTER TABLE items`).
    #[test]
    fn a_denial_names_what_the_statement_touched() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        for (statement, says) in [
            (
                "CREATE TABLE x (a)",
                "changing the schema (a write to `sqlite_master`",
            ),
            (
                "CREATE TEMP TABLE x (a)",
                "changing the schema (a write to `sqlite_temp_master`",
            ),
            (
                "DROP TABLE items",
                "changing the schema (a write to `sqlite_master`",
            ),
            (
                "CREATE INDEX i ON items (value)",
                "changing the schema (a write to `sqlite_master`",
            ),
            ("ALTER TABLE items ADD COLUMN b", "not ALTER TABLE items;"),
            (
                "SELECT * FROM sqlite_master",
                "the schema table `sqlite_master` is not the plugin's",
            ),
            (
                "DELETE FROM _projector_checkpoint",
                "`_projector_checkpoint` is reserved for the host",
            ),
        ] {
            match db.execute(statement, &[]) {
                Err(SqlError::Denied(message)) => {
                    assert!(message.contains(says), "{statement}: {message}")
                }
                other => panic!("{statement}: {other:?}"),
            }
        }
    }

    #[test]
    fn errors_fall_into_the_plugin_visible_categories() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        assert!(matches!(
            db.execute("INSERT INTO nowhere VALUES (1)", &[]),
            Err(SqlError::Invalid(_))
        ));
        assert!(matches!(
            db.execute("INSERT INTO items (id) VALUES (?1)", &[]),
            Err(SqlError::Invalid(_))
        ));
        db.execute("INSERT INTO items (id) VALUES (1)", &[])
            .unwrap();
        assert!(matches!(
            db.execute("INSERT INTO items (id) VALUES (1)", &[]),
            Err(SqlError::Constraint(_))
        ));
        assert!(matches!(
            db.execute("SELECT 1; SELECT 2", &[]),
            Err(SqlError::Invalid(_))
        ));
    }

    /// Plugin SQL cannot read the clock, the time zone or a random source, so a replay builds
    /// the same tables; a denied call names the function.
    #[test]
    fn non_deterministic_functions_are_denied() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        for (statement, function) in [
            ("SELECT random()", "random"),
            ("SELECT randomblob(4)", "randomblob"),
            ("SELECT CURRENT_TIMESTAMP", "current_timestamp"),
            ("SELECT datetime('now')", "datetime('now')"),
            ("SELECT date(0, 'unixepoch', 'localtime')", "localtime"),
            ("SELECT last_insert_rowid()", "last_insert_rowid"),
        ] {
            let error = db.query(statement, &[]).unwrap_err();
            assert!(
                matches!(&error, SqlError::Denied(m) if m.contains(function)),
                "{statement}: {error}"
            );
        }
        let rows = db
            .query(
                "SELECT datetime(?1 / 1000, 'unixepoch')",
                &[Value::Integer(1_700_000_000_000)],
            )
            .unwrap();
        assert_eq!(rows, vec![vec![Value::Text("2023-11-14 22:13:20".into())]]);
    }

    /// A table at the largest rowid, after which SQLite would pick rowids at random, is named
    /// for the projection to refuse the call that put it there.
    #[test]
    fn a_table_at_the_largest_rowid_is_named() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        db.execute("INSERT INTO items (id, value) VALUES (1, 0)", &[])
            .unwrap();
        assert_eq!(db.rowid_at_limit().unwrap(), None);
        db.execute(
            "INSERT INTO items (id, value) VALUES (?1, 0)",
            &[Value::Integer(i64::MAX)],
        )
        .unwrap();
        let reason = db.rowid_at_limit().unwrap().unwrap();
        assert!(
            reason.contains("`items`") && reason.contains("at random"),
            "{reason}"
        );
    }

    /// A column named `rowid` does not hide the table's real rowid from the guard, and a
    /// database already holding the largest rowid is refused at open with what to do.
    #[test]
    fn the_rowid_guard_sees_through_a_column_named_rowid() {
        let dir = tempfile::tempdir().unwrap();
        let record = PluginRecord {
            name: "t".into(),
            version: "1".into(),
            schema: vec![
                "CREATE TABLE t (rowid TEXT, x)".into(),
                "CREATE TABLE w (rowid INTEGER PRIMARY KEY, x) WITHOUT ROWID".into(),
            ],
            wasm_sha256: "0".into(),
        };
        let path = dir.path().join("t.db");
        let mut db = Db::open(&path, &record, Default::default()).unwrap();
        db.begin().unwrap();
        // A WITHOUT ROWID table's column named rowid is only a column.
        db.execute(
            "INSERT INTO w (rowid, x) VALUES (?1, 1)",
            &[Value::Integer(i64::MAX)],
        )
        .unwrap();
        assert_eq!(db.rowid_at_limit().unwrap(), None);
        db.execute(
            "INSERT INTO t (_rowid_, rowid, x) VALUES (?1, 'a', 1)",
            &[Value::Integer(i64::MAX)],
        )
        .unwrap();
        assert!(db.rowid_at_limit().unwrap().unwrap().contains("`t`"));
        db.commit(Checkpoint {
            position: Position::at(1),
            events_handled: 1,
            last_event: None,
        })
        .unwrap();
        drop(db);
        let error = Db::open(&path, &record, Default::default())
            .err()
            .expect("refused");
        assert!(format!("{error:#}").contains("delete it"), "{error:#}");
    }

    /// A plugin table named like a table-valued pragma cannot shadow what the host reads when
    /// it opens the database again.
    #[test]
    fn a_plugin_table_cannot_shadow_the_hosts_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let record = PluginRecord {
            name: "t".into(),
            version: "1".into(),
            schema: vec![
                "CREATE TABLE pragma_table_info (x)".into(),
                "CREATE TABLE pragma_table_xinfo (x, y DEFAULT 1)".into(),
            ],
            wasm_sha256: "0".into(),
        };
        let path = dir.path().join("t.db");
        drop(Db::open(&path, &record, Default::default()).unwrap());
        let db = Db::open(&path, &record, Default::default()).unwrap();
        assert_eq!(db.checkpoint().unwrap(), None);
    }

    /// Deterministic date calls work where the schema uses them too (a default, a view),
    /// though the schema is not trusted: the override is innocuous.
    #[test]
    fn date_functions_work_in_defaults_and_views() {
        let dir = tempfile::tempdir().unwrap();
        let record = PluginRecord {
            name: "t".into(),
            version: "1".into(),
            schema: vec![
                "CREATE TABLE t (a, b DEFAULT (datetime(0, 'unixepoch')))".into(),
                "CREATE VIEW v AS SELECT date(a, 'unixepoch') AS d, b FROM t".into(),
            ],
            wasm_sha256: "0".into(),
        };
        let mut db = Db::open(&dir.path().join("t.db"), &record, Default::default()).unwrap();
        db.begin().unwrap();
        db.execute("INSERT INTO t (a) VALUES (86400)", &[]).unwrap();
        let rows = db.query("SELECT d, b FROM v", &[]).unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Value::Text("1970-01-02".into()),
                Value::Text("1970-01-01 00:00:00".into())
            ]]
        );
    }

    /// The text that overflowed the stack through rusqlite's recursive tail check is refused
    /// as invalid in one pass.
    #[test]
    fn a_text_of_many_statements_is_invalid() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        let text = "SELECT 1;".repeat(100_000);
        assert!(
            matches!(db.query(&text, &[]), Err(SqlError::Invalid(m)) if m.contains("one statement"))
        );
    }

    /// `execute` steps a statement once: DML with RETURNING must not apply twice.
    #[test]
    fn returning_statements_apply_once() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        db.execute("INSERT INTO items (id, value) VALUES (1, 0)", &[])
            .unwrap();
        db.execute(
            "UPDATE items SET value = value + 1 WHERE id = 1 RETURNING value",
            &[],
        )
        .unwrap();
        let rows = db.query("SELECT value FROM items", &[]).unwrap();
        assert_eq!(rows, vec![vec![Value::Integer(1)]]);
    }

    /// When SQLite rolls the batch back itself (ON CONFLICT ROLLBACK), later plugin statements
    /// and the commit are refused, so the checkpoint never commits without the batch's writes.
    #[test]
    fn a_transaction_sqlite_rolled_back_cannot_commit() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        db.execute("INSERT INTO items (id) VALUES (1)", &[])
            .unwrap();
        assert!(
            db.execute("INSERT OR ROLLBACK INTO items (id) VALUES (1)", &[])
                .is_err()
        );
        assert!(
            matches!(db.execute("INSERT INTO items (id) VALUES (2)", &[]), Err(SqlError::Other(m)) if m.contains("rolled back"))
        );
        let error = db
            .commit(Checkpoint {
                position: Position::at(5),
                events_handled: 1,
                last_event: None,
            })
            .unwrap_err();
        assert!(error.to_string().contains("rolled back"), "{error}");
        db.rollback().unwrap();
        assert_eq!(db.checkpoint().unwrap(), None);
    }

    /// One runaway statement is interrupted at the statement deadline.
    #[test]
    fn a_runaway_statement_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let record = PluginRecord {
            name: "t".into(),
            version: "1".into(),
            schema: vec!["CREATE TABLE t (a)".into()],
            wasm_sha256: "0".into(),
        };
        let limits = crate::store::DbLimits {
            statement_deadline: std::time::Duration::from_millis(100),
            ..Default::default()
        };
        let mut db = Db::open(&dir.path().join("t.db"), &record, limits).unwrap();
        db.begin().unwrap();
        let endless = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r";
        let error = db.query(endless, &[]).unwrap_err();
        assert!(
            matches!(&error, SqlError::Other(m) if m.contains("deadline")),
            "{error}"
        );
    }

    /// A statement begun late in a plugin call gets what is left of the call's deadline, not
    /// a whole deadline of its own.
    #[test]
    fn a_statement_ends_with_the_call_that_runs_it() {
        let (_dir, mut db) = open();
        db.begin().unwrap();
        let started = std::time::Instant::now();
        db.call_deadline(started + std::time::Duration::from_millis(200));
        let endless = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r";
        let error = db.query(endless, &[]).unwrap_err();
        assert!(
            matches!(&error, SqlError::Other(m) if m.contains("deadline")),
            "{error}"
        );
        // The statement's own deadline is the default 10 s; the call's came first.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// A query cannot return more than the result bound, however its rows are made.
    #[test]
    fn query_results_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let record = PluginRecord {
            name: "t".into(),
            version: "1".into(),
            schema: vec!["CREATE TABLE t (a)".into()],
            wasm_sha256: "0".into(),
        };
        let limits = crate::store::DbLimits {
            max_result_bytes: 1 << 20,
            ..Default::default()
        };
        let mut db = Db::open(&dir.path().join("t.db"), &record, limits).unwrap();
        db.begin().unwrap();
        let big = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100) SELECT zeroblob(100000) FROM r";
        assert!(matches!(db.query(big, &[]), Err(SqlError::Other(m)) if m.contains("exceeds")));
        assert!(db.query("SELECT zeroblob(2000000)", &[]).is_err());
    }
}
