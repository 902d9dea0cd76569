//! A native [`Sql`] over a rusqlite connection: what plugin unit tests run against, and a
//! stand-in for the host when measuring a plugin's logic without wasm.
//!
//! It mirrors what the host promises a plugin (the manifest's schema applied up front, one
//! transaction per batch, cached prepared statements) but none of what the host enforces: no
//! authorizer, no limits, no checkpoint. Tests of those belong to the host.

use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{Connection, ErrorCode, params_from_iter};

use crate::{Error, Event, Manifest, Sql, SqlError, Value};

/// A projection's database, natively: a rusqlite connection with the plugin's schema.
pub struct Database {
    connection: Connection,
}

impl Database {
    /// Opens a fresh in-memory database and creates the manifest's schema in it.
    pub fn in_memory(manifest: &Manifest) -> rusqlite::Result<Self> {
        Self::with_schema(Connection::open_in_memory()?, manifest)
    }

    /// Creates the manifest's schema in `connection` (which should be empty) and wraps it.
    pub fn with_schema(connection: Connection, manifest: &Manifest) -> rusqlite::Result<Self> {
        for statement in &manifest.schema {
            connection.execute_batch(statement)?;
        }
        Ok(Database { connection })
    }

    /// Runs one batch the way the host does: `handle` inside a transaction that commits if it
    /// returns `Ok` and rolls back every write if it returns `Err`.
    pub fn batch<T>(
        &mut self,
        handle: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.connection.execute_batch("BEGIN").map_err(sql_error)?;
        let result = handle(self);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.connection.execute_batch(end).map_err(sql_error)?;
        result
    }

    /// Runs a query outside any batch and returns its rows, for assertions in tests.
    pub fn rows(&mut self, statement: &str) -> Result<Vec<Vec<Value>>, SqlError> {
        self.query(statement, &[])
    }

    /// Runs a query outside any batch and returns its rows as `a|b|c` lines (NULL as `NULL`),
    /// which keeps a test's expected table one readable line per row.
    pub fn lines(&mut self, statement: &str) -> Result<Vec<String>, SqlError> {
        let cell = |value: &Value| match value {
            Value::Null => "NULL".to_owned(),
            Value::Integer(integer) => integer.to_string(),
            Value::Real(real) => real.to_string(),
            Value::Text(text) => text.clone(),
            Value::Blob(blob) => format!("{blob:?}"),
        };
        let rows = self.rows(statement)?;
        let line = |row: &Vec<Value>| row.iter().map(cell).collect::<Vec<_>>().join("|");
        Ok(rows.iter().map(line).collect())
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

impl Sql for Database {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<i64, SqlError> {
        let mut prepared = self
            .connection
            .prepare_cached(statement)
            .map_err(sql_error)?;
        let changed = prepared.execute(params_from_iter(params.iter().map(to_sqlite)));
        changed.map(|n| n as i64).map_err(sql_error)
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let mut prepared = self
            .connection
            .prepare_cached(statement)
            .map_err(sql_error)?;
        let n_columns = prepared.column_count();
        let mut rows = prepared
            .query(params_from_iter(params.iter().map(to_sqlite)))
            .map_err(sql_error)?;
        let mut result = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            let columns = (0..n_columns).map(|i| row.get_ref(i).map(from_sqlite));
            result.push(columns.collect::<Result<_, _>>().map_err(sql_error)?);
        }
        Ok(result)
    }
}

/// Builds a JSON event as the host would pass it, for tests: `position` also serves as the
/// stream revision and the seed of a made-up event id.
pub fn json_event(position: i64, stream_id: &str, event_type: &str, data: &str) -> Event {
    Event {
        stream_id: stream_id.to_owned(),
        stream_revision: position,
        position,
        event_id: format!("00000000-0000-4000-8000-{position:012x}"),
        event_type: event_type.to_owned(),
        content_type: "application/json".to_owned(),
        created_unix_ms: 0,
        data: data.as_bytes().to_vec(),
        metadata: Vec::new(),
    }
}

fn to_sqlite(value: &Value) -> SqliteValue {
    match value {
        Value::Null => SqliteValue::Null,
        Value::Integer(integer) => SqliteValue::Integer(*integer),
        Value::Real(real) => SqliteValue::Real(*real),
        Value::Text(text) => SqliteValue::Text(text.clone()),
        Value::Blob(blob) => SqliteValue::Blob(blob.clone()),
    }
}

fn from_sqlite(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(integer) => Value::Integer(integer),
        ValueRef::Real(real) => Value::Real(real),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(blob) => Value::Blob(blob.to_vec()),
    }
}

/// Sorts a rusqlite error into the WIT's categories, roughly as the host does.
fn sql_error(error: rusqlite::Error) -> SqlError {
    let message = error.to_string();
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => SqlError::Constraint(message),
        Some(ErrorCode::AuthorizationForStatementDenied) => SqlError::Denied(message),
        _ if matches!(error, rusqlite::Error::SqlInputError { .. }) => SqlError::Invalid(message),
        _ => SqlError::Other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            name: "test".into(),
            version: "1.0.0".into(),
            description: String::new(),
            event_types: vec![],
            stream_prefixes: vec![],
            schema: vec!["CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)".into()],
        }
    }

    #[test]
    fn binds_parameters_and_reads_rows_back() -> Result<(), Error> {
        let mut db = Database::in_memory(&manifest()).unwrap();
        let insert = "INSERT INTO t (k, n) VALUES (?1, ?2)";
        assert_eq!(db.execute(insert, &["a".into(), 1.into()])?, 1);
        assert_eq!(db.execute(insert, &["b".into(), Value::Null])?, 1);
        let rows = db.query("SELECT k, n FROM t WHERE k >= ?1 ORDER BY k", &["a".into()])?;
        assert_eq!(rows, [["a".into(), 1.into()], ["b".into(), Value::Null]]);
        assert_eq!(
            db.lines("SELECT k, n FROM t ORDER BY k")?,
            ["a|1", "b|NULL"]
        );
        Ok(())
    }

    #[test]
    fn a_failed_batch_leaves_no_writes() {
        let mut db = Database::in_memory(&manifest()).unwrap();
        let result = db.batch(|sql| {
            sql.execute("INSERT INTO t (k) VALUES ('a')", &[])?;
            Ok(sql.execute("INSERT INTO t (k) VALUES ('a')", &[])?)
        });
        assert!(matches!(result, Err(Error::Sql(SqlError::Constraint(_)))));
        assert_eq!(db.rows("SELECT count(*) FROM t"), Ok(vec![vec![0.into()]]));
    }
}
