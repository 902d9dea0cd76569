//! Plugin SQL on the open batch: binding [`Value`]s, reading rows back, and turning SQLite
//! errors into the categories plugins see.
//!
//! Statements are prepared through rusqlite's statement cache, keyed by their text, so a plugin
//! that reuses fixed statement texts pays for parsing once per database connection.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, ErrorCode};

use super::{Db, Mode};
use crate::value::{SqlError, SqlSession, Value};

impl SqlSession for Db {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<i64, SqlError> {
        let mut prepared = self.prepare_plugin_statement(statement, params)?;
        match prepared.raw_execute() {
            Ok(_) => {}
            // A statement that returns rows (SELECT, RETURNING) is still allowed through execute:
            // rusqlite refuses it, so step it to the end ourselves.
            Err(rusqlite::Error::ExecuteReturnedResults) => {
                let mut rows = prepared.raw_query();
                while rows.next().map_err(|e| self.classify(e))?.is_some() {}
            }
            Err(error) => return Err(self.classify(error)),
        }
        drop(prepared);
        Ok(self.connection.changes() as i64)
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let mut prepared = self.prepare_plugin_statement(statement, params)?;
        let columns = prepared.column_count();
        let mut rows = prepared.raw_query();
        let mut result = Vec::new();
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
                let value = row.get_ref(index).map_err(|e| SqlError::Other(e.to_string()))?;
                values.push(to_value(value));
            }
            result.push(values);
        }
        Ok(result)
    }
}

impl Db {
    /// Prepares (or fetches from the cache) a plugin statement under the plugin policy and
    /// binds its parameters.
    fn prepare_plugin_statement(&self, statement: &str, params: &[Value]) -> Result<CachedStatement<'_>, SqlError> {
        if !self.in_batch {
            return Err(SqlError::Denied("SQL is only available while handle runs".into()));
        }
        self.policy.set_mode(Mode::Plugin);
        let prepared = self.connection.prepare_cached(statement);
        self.policy.set_mode(Mode::Host);
        let mut prepared = prepared.map_err(|e| self.classify(e))?;
        let expected = prepared.parameter_count();
        if expected != params.len() {
            return Err(SqlError::Invalid(format!(
                "the statement has {expected} parameters but {} values were given",
                params.len()
            )));
        }
        for (index, value) in params.iter().enumerate() {
            prepared.raw_bind_parameter(index + 1, to_value_ref(value)).map_err(|e| self.classify(e))?;
        }
        Ok(prepared)
    }

    /// Sorts a rusqlite error into a plugin-visible category, with the authorizer's reason
    /// when the statement was denied.
    fn classify(&self, error: rusqlite::Error) -> SqlError {
        let denial = self.policy.take_denial();
        match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let text = message.clone().unwrap_or_else(|| failure.to_string());
                match failure.code {
                    ErrorCode::AuthorizationForStatementDenied => SqlError::Denied(denial.unwrap_or(text)),
                    ErrorCode::ConstraintViolation => SqlError::Constraint(text),
                    ErrorCode::Unknown if denial.is_some() => SqlError::Denied(denial.unwrap_or(text)),
                    ErrorCode::Unknown => SqlError::Invalid(text),
                    _ => SqlError::Other(text),
                }
            }
            rusqlite::Error::MultipleStatement => {
                SqlError::Invalid("one statement per call: the text holds more than one".into())
            }
            rusqlite::Error::InvalidParameterCount(..) | rusqlite::Error::InvalidColumnIndex(..) => {
                SqlError::Invalid(error.to_string())
            }
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
