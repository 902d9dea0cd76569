//! Conveniences on the generated [`Value`] and [`Error`] types, so plugin code reads like the
//! SQL it runs: `&[order_id.into(), total.into()]` to bind, `row[1].as_integer()` to read, `?` to
//! pass a failed statement up.

use crate::{Error, InvalidEvent, SqlError, Value};

impl Value {
    /// The integer in this value, if it holds one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(integer) => Some(*integer),
            _ => None,
        }
    }

    /// The text in this value, if it holds text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// Whether this value is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl From<i64> for Value {
    fn from(integer: i64) -> Self {
        Value::Integer(integer)
    }
}

impl From<f64> for Value {
    fn from(real: f64) -> Self {
        Value::Real(real)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<Vec<u8>> for Value {
    fn from(blob: Vec<u8>) -> Self {
        Value::Blob(blob)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

impl Error {
    /// The error for one event of the batch that cannot be projected; the host may dead-letter
    /// it and project the rest of the batch without it.
    ///
    /// `index` is the event's index in the slice passed to `handle`.
    pub fn invalid_event(index: usize, message: impl Into<String>) -> Self {
        Error::InvalidEvent(InvalidEvent {
            // A batch never comes near 2^32 events; saturate rather than panic all the same.
            index: u32::try_from(index).unwrap_or(u32::MAX),
            message: message.into(),
        })
    }

    /// The error for anything that is neither one bad event nor a failed statement, such as a
    /// table holding something the plugin never wrote; the whole batch fails.
    pub fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }
}

/// Lets `?` pass a failed statement up from `handle`.
impl From<SqlError> for Error {
    fn from(error: SqlError) -> Self {
        Error::Sql(error)
    }
}

/// Reads an integer column of a result row, failing the batch if it holds anything else.
pub fn integer_column(row: &[Value], column: usize) -> Result<i64, Error> {
    row.get(column)
        .and_then(Value::as_integer)
        .ok_or_else(|| Error::other(format!("expected an integer in result column {column}")))
}

/// Reads a text column of a result row, failing the batch if it holds anything else.
pub fn text_column(row: &[Value], column: usize) -> Result<&str, Error> {
    row.get(column)
        .and_then(Value::as_text)
        .ok_or_else(|| Error::other(format!("expected text in result column {column}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_pick_the_matching_storage_class() {
        assert_eq!(Value::from(7), Value::Integer(7));
        assert_eq!(Value::from("a"), Value::Text("a".into()));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("b")), Value::Text("b".into()));
    }

    #[test]
    fn columns_of_the_wrong_type_fail_the_batch() {
        let row = [Value::Integer(3), Value::Text("x".into())];
        assert_eq!(integer_column(&row, 0), Ok(3));
        assert_eq!(text_column(&row, 1), Ok("x"));
        assert!(matches!(integer_column(&row, 1), Err(Error::Other(_))));
        assert!(matches!(text_column(&row, 2), Err(Error::Other(_))));
    }
}
