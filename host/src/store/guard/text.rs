//! Arguments as SQLite's text functions see them, and results returned the way they return
//! them.
//!
//! SQLite's functions read any argument as text (`sqlite3_value_text`): a blob as its bytes,
//! an integer in decimal, a real as `%!.15g` renders it. Text is bytes, not necessarily valid
//! UTF-8 (`CAST(x'80' AS TEXT)` is a text value), so everything here works on bytes.

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

thread_local! {
    /// A private in-memory SQLite that renders reals as text: only SQLite renders them exactly
    /// as SQLite does, and a real argument is a few bytes, so the round trip costs little.
    static RENDERER: rusqlite::Result<Connection> = Connection::open_in_memory();
}

/// `value` as SQLite's text functions read it; `None` for NULL.
pub(super) fn text_of(value: ValueRef<'_>) -> rusqlite::Result<Option<Cow<'_, [u8]>>> {
    Ok(match value {
        ValueRef::Null => None,
        ValueRef::Integer(integer) => Some(Cow::Owned(integer.to_string().into_bytes())),
        ValueRef::Real(real) => Some(Cow::Owned(real_as_text(real)?)),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(Cow::Borrowed(bytes)),
    })
}

fn real_as_text(real: f64) -> rusqlite::Result<Vec<u8>> {
    RENDERER.with(|renderer| {
        let renderer = renderer.as_ref().map_err(|error| {
            rusqlite::Error::UserFunctionError(
                format!("opening the SQLite that renders reals as text: {error}").into(),
            )
        })?;
        renderer
            .prepare_cached("SELECT CAST(?1 AS TEXT)")?
            .query_row([real], |row| row.get::<_, String>(0))
            .map(String::into_bytes)
    })
}

/// Whether `byte` continues a UTF-8 character (`10xxxxxx`). SQLite steps over text by
/// skipping these, whatever comes before them.
pub(super) fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// The length of the character `bytes` starts with, as SQLite's `SQLITE_SKIP_UTF8` counts it:
/// a byte of 0xC0 or more and every continuation byte after it, or any other single byte.
/// `bytes` must not be empty.
pub(super) fn char_len(bytes: &[u8]) -> usize {
    if bytes[0] < 0xC0 {
        return 1;
    }
    1 + bytes[1..]
        .iter()
        .take_while(|&&byte| is_continuation(byte))
        .count()
}

/// The error SQLite gives for a string or blob over `SQLITE_LIMIT_LENGTH`.
pub(super) fn too_big() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_TOOBIG),
        None,
    )
}

/// A text result, returned byte for byte: SQLite's functions return text that is not valid
/// UTF-8 when their input was not, so a `String` cannot carry it.
pub(super) struct Text(pub Vec<u8>);

impl ToSql for Text {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_render_as_sqlite_renders_them() {
        for (real, text) in [
            (1.5, "1.5"),
            (5.0, "5.0"),
            (1e20, "1.0e+20"),
            (-0.1, "-0.1"),
            (1.0 / 3.0, "0.333333333333333"),
            (f64::INFINITY, "Inf"),
        ] {
            assert_eq!(real_as_text(real).unwrap(), text.as_bytes(), "{real}");
        }
    }

    #[test]
    fn characters_are_counted_as_sqlite_skips_them() {
        assert_eq!(char_len(b"a"), 1);
        assert_eq!(char_len("é!".as_bytes()), 2);
        assert_eq!(char_len("😀".as_bytes()), 4);
        assert_eq!(char_len(b"\x80\x80"), 1);
        assert_eq!(char_len(b"\xC3"), 1);
        assert_eq!(char_len(b"\xC0\x80\x80\x80\x80\x80a"), 6);
    }
}
