//! SQL values and errors as the host passes them between a plugin and its database.
//!
//! The runtime converts the WIT `value` and `sql-error` types to these, and the store binds and
//! reads them, so neither of those modules needs to know the other's types.

use std::fmt;

/// One of SQLite's five storage classes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A signed 64-bit integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

/// Why a plugin's SQL statement failed, in the categories the WIT `sql-error` exposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlError {
    /// The statement touches something the plugin may not.
    Denied(String),
    /// The statement does not parse or names unknown tables or columns.
    Invalid(String),
    /// A constraint failed.
    Constraint(String),
    /// Any other SQLite error.
    Other(String),
}

impl SqlError {
    /// The same kind of error with its message passed through `change` (to bound it, say).
    pub fn map_message(self, change: impl FnOnce(&str) -> String) -> SqlError {
        match self {
            SqlError::Denied(m) => SqlError::Denied(change(&m)),
            SqlError::Invalid(m) => SqlError::Invalid(change(&m)),
            SqlError::Constraint(m) => SqlError::Constraint(change(&m)),
            SqlError::Other(m) => SqlError::Other(change(&m)),
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Denied(m) => write!(f, "denied: {m}"),
            SqlError::Invalid(m) => write!(f, "invalid statement: {m}"),
            SqlError::Constraint(m) => write!(f, "constraint failed: {m}"),
            SqlError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for SqlError {}

/// The database side of a plugin's `sql` import: what the runtime calls while `handle` runs.
///
/// The store implements it on the projection's open transaction; the benchmark implements it
/// natively to measure the ceiling without wasm.
pub trait SqlSession: Send {
    /// Runs a statement that returns no rows and returns the number of rows changed.
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<i64, SqlError>;
    /// Runs a statement and returns all its rows.
    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError>;
    /// The plugin call in progress must end by `deadline`: no statement it runs may outlive
    /// it (a statement begun late in the call gets what is left, not a deadline of its own).
    fn call_deadline(&mut self, deadline: std::time::Instant);
}

impl Value {
    /// The value as JSON: blobs as base64 text, non-finite reals as null.
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        use serde_json::Value as Json;
        match self {
            Value::Null => Json::Null,
            Value::Integer(i) => Json::from(*i),
            Value::Real(r) => serde_json::Number::from_f64(*r).map_or(Json::Null, Json::Number),
            Value::Text(t) => Json::String(t.clone()),
            Value::Blob(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        }
    }
}
