//! Hardening for a connection that runs SQL someone else wrote (a user's query through the
//! API, a plugin's statements), so that no single statement outlives its deadline by minutes or
//! takes the process down.
//!
//! SQLite stops a running statement only between VDBE instructions: the progress handler (which
//! enforces the query and statement deadlines) and `sqlite3_interrupt` are checked at the same
//! places, the bottom of loops and jumps (`check_for_interrupt` in vdbe.c), never inside one
//! instruction. A watchdog thread calling `interrupt()` would therefore stop nothing the
//! progress handler does not; even a long ORDER BY is no exception, since the sorter's one
//! unchecked step sorts rows that were inserted under the handler's checks. What neither can
//! stop is one function call that runs for minutes, so [`harden`] makes every call cost at
//! most linear time in the length bound:
//! - `SQLITE_LIMIT_LENGTH` bounds every string and blob, argument or result (so `zeroblob`,
//!   `randomblob`, `printf` widths and precisions, `replace` and `||` refuse rather than build
//!   something larger).
//! - `instr`, `replace`, two-argument `trim`/`ltrim`/`rtrim` and two-argument `unhex` are
//!   quadratic in SQLite (on 200,000-character arguments: `trim` 75 s, `unhex` 13 s; `instr` of
//!   a 2 MB needle in 4 MB: 86 s). They are replaced by linear implementations with SQLite's
//!   exact semantics (see `search`, `trim`, `unhex`), which take milliseconds on megabytes.
//! - LIKE and GLOB cost the string's length times the pattern's (on a 16 MB string with a
//!   1,000-byte pattern: 11 s for LIKE, 24 s for GLOB with classes);
//!   `SQLITE_LIMIT_LIKE_PATTERN_LENGTH` keeps the pattern at [`LIKE_PATTERN_LENGTH`] bytes
//!   (100 bytes: 2.5 s at most on 16 MB).
//! - The JSON functions are linear and nest at most 1,000 deep (60 `json_set` paths on 8 MB:
//!   40 ms).
//!
//! What remains is the straight-line work of one row: many calls on values near the length
//! bound in one row run between two checks (900 `upper()` of an 8 MB value took 6 s), so that
//! is bounded by the statement's length rather than by its deadline. (The reader also checks
//! its deadline between rows, which SQLite does not do for statements without loops.)

mod search;
mod text;
mod trim;
mod unhex;

#[cfg(test)]
mod oracle;

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::functions::FunctionFlags;
use rusqlite::limits::Limit;
use rusqlite::{Batch, Connection, Statement};

/// Most bytes SQLite may hold at once in the whole process: one statement can keep many values
/// of the length bound alive at once (`max(printf(…), printf(…), …)` with a thousand arguments),
/// which no per-value bound stops; past this, its allocations fail (SQLITE_NOMEM) instead of
/// the host running out of memory.
pub(crate) const PROCESS_HEAP_LIMIT: i64 = 1 << 30;

/// Sets [`PROCESS_HEAP_LIMIT`], once per process.
fn limit_process_heap() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_hard_heap_limit64 only stores the limit (under SQLite's own mutex);
        // it may be called at any time, from any thread.
        unsafe {
            rusqlite::ffi::sqlite3_hard_heap_limit64(PROCESS_HEAP_LIMIT);
        }
    });
}

/// The longest LIKE or GLOB pattern, in bytes: a call costs the string's length times this.
pub(crate) const LIKE_PATTERN_LENGTH: i32 = 100;

/// Bounds every string and blob on `connection` to `max_length` bytes (SQLite caps it at its
/// own maximum, 1,000,000,000) and replaces the built-in functions whose single call is
/// super-linear with linear ones. Call it once, right after opening; it changes no data.
pub(crate) fn harden(connection: &Connection, max_length: usize) -> rusqlite::Result<()> {
    limit_process_heap();
    let length = i32::try_from(max_length).unwrap_or(i32::MAX);
    connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, length)?;
    connection.set_limit(Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, LIKE_PATTERN_LENGTH)?;
    // The progress handler (the deadline) runs only at jumps: straight-line code (one row's
    // many calls) is bounded by the program's length instead, for plugin statements and API
    // queries alike.
    connection.set_limit(Limit::SQLITE_LIMIT_VDBE_OP, super::MAX_STATEMENT_OPS)?;
    // Statement texts are not data (values travel as parameters or in the tables): a long one
    // is an attack or a bug.
    connection.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, super::MAX_STATEMENT_BYTES)?;
    // Pure functions of their arguments, as the built-ins they replace: INNOCUOUS keeps them
    // usable in views and indexes of a database whose schema is not trusted.
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    connection.create_scalar_function("instr", 2, flags, search::instr)?;
    connection.create_scalar_function("replace", 3, flags, move |context| {
        search::replace(context, max_length)
    })?;
    connection.create_scalar_function("trim", 2, flags, |context| {
        trim::trim(context, trim::Side::Both)
    })?;
    connection.create_scalar_function("ltrim", 2, flags, |context| {
        trim::trim(context, trim::Side::Left)
    })?;
    connection.create_scalar_function("rtrim", 2, flags, |context| {
        trim::trim(context, trim::Side::Right)
    })?;
    connection.create_scalar_function("unhex", 2, flags, unhex::unhex)?;
    Ok(())
}

/// Prepares the one statement `sql` holds: `None` if it holds none (only blanks or comments),
/// [`rusqlite::Error::MultipleStatement`] if it holds more than one.
///
/// rusqlite's own `prepare` looks for a second statement by preparing the tail with itself,
/// which recurses once per statement: `SELECT 1;` repeated 100,000 times overflows the stack
/// and aborts the process. Here the first statement is prepared, then SQLite's tail after it,
/// once, without recursion. Preparing that tail runs the authorizer on the second statement:
/// a denial it records belongs to no statement the caller runs and must be discarded.
pub(crate) fn prepare_single<'c>(
    connection: &'c Connection,
    sql: &str,
) -> rusqlite::Result<Option<Statement<'c>>> {
    let mut statements = Batch::new(connection, sql);
    let Some(first) = statements.next()? else {
        return Ok(None);
    };
    match statements.next() {
        Ok(None) => Ok(Some(first)),
        // A second statement, valid or not, is a second statement.
        Ok(Some(_)) | Err(_) => Err(rusqlite::Error::MultipleStatement),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hardened(max_length: usize) -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        harden(&connection, max_length).unwrap();
        connection
    }

    #[test]
    fn a_statement_is_bounded_in_length_and_in_program_size() {
        let connection = hardened(1 << 20);
        // Hundreds of calls are a small program; twenty columns of 900 (each within SQLite's
        // expression depth) are not.
        let chain = format!("0{}", " + length(upper('x'))".repeat(900));
        let sum: i64 = connection
            .query_row(&format!("SELECT {chain}"), [], |row| row.get(0))
            .unwrap();
        assert_eq!(sum, 900);
        let large = format!("SELECT {}", vec![chain; 20].join(", "));
        assert!(
            Connection::open_in_memory()
                .unwrap()
                .prepare(&large)
                .is_ok()
        );
        // SQLite reports a program past SQLITE_LIMIT_VDBE_OP as out of memory.
        let error = connection.prepare(&large).unwrap_err().to_string();
        assert!(error.contains("out of memory"), "{error}");
        let long = format!("SELECT 1 -- {}", "x".repeat(2 << 20));
        assert!(
            connection.prepare(&long).is_err(),
            "a 2 MiB statement was prepared"
        );
    }

    fn error_of(connection: &Connection, sql: &str) -> String {
        connection
            .query_row(sql, [], |row| row.get::<_, rusqlite::types::Value>(0))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn no_value_is_built_past_the_length_bound() {
        let connection = hardened(1000);
        let length: i64 = connection
            .query_row("SELECT length(zeroblob(1000))", [], |row| row.get(0))
            .unwrap();
        assert_eq!(length, 1000);
        for sql in [
            "SELECT zeroblob(1001)",
            "SELECT randomblob(1001)",
            "SELECT hex(zeroblob(501))",
            "SELECT replace(hex(zeroblob(300)), '0', 'ab')",
            "SELECT zeroblob(600) || zeroblob(600)",
        ] {
            assert!(
                error_of(&connection, sql).contains("too big"),
                "{sql}: {}",
                error_of(&connection, sql)
            );
        }
        // printf refuses as well, with NULL or the error depending on where it overflows.
        for sql in [
            "SELECT printf('%1001d', 1)",
            "SELECT printf('%.*c', 1001, 'x')",
        ] {
            match connection.query_row(sql, [], |row| row.get::<_, Option<String>>(0)) {
                Ok(value) => assert_eq!(value, None, "{sql}"),
                Err(error) => assert!(error.to_string().contains("too big"), "{sql}: {error}"),
            }
        }
    }

    #[test]
    fn like_and_glob_patterns_are_short() {
        let connection = hardened(1 << 20);
        let short = "a".repeat(LIKE_PATTERN_LENGTH as usize);
        let matched: bool = connection
            .query_row("SELECT ?1 LIKE ?1 AND ?1 GLOB ?1", [&short], |row| {
                row.get(0)
            })
            .unwrap();
        assert!(matched);
        let long = format!("{short}a");
        for sql in ["SELECT 'a' LIKE ?1", "SELECT 'a' GLOB ?1"] {
            let error = connection
                .query_row(sql, [&long], |row| row.get::<_, bool>(0))
                .unwrap_err()
                .to_string();
            assert!(error.contains("pattern too complex"), "{sql}: {error}");
        }
    }

    #[test]
    fn a_text_holds_one_statement() {
        let connection = hardened(1 << 20);
        let one = prepare_single(&connection, "  SELECT 1; -- and a comment\n;; /* more */")
            .unwrap()
            .expect("a statement");
        assert_eq!(one.column_count(), 1);
        assert!(
            prepare_single(&connection, " -- nothing\n ;")
                .unwrap()
                .is_none()
        );
        for two in [
            "SELECT 1; SELECT 2",
            "SELECT 1; not sql",
            "SELECT 1;;DELETE",
        ] {
            assert!(
                matches!(
                    prepare_single(&connection, two),
                    Err(rusqlite::Error::MultipleStatement)
                ),
                "{two}"
            );
        }
        assert!(prepare_single(&connection, "SELEC 1").is_err());
    }

    /// rusqlite's `prepare` recurses once per statement of the text and overflows the stack
    /// on this one; `prepare_single` looks at the second statement and stops.
    #[test]
    fn a_hundred_thousand_statements_are_refused_without_recursing() {
        let connection = hardened(1 << 20);
        let many = "SELECT 1;".repeat(100_000);
        let refused = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                matches!(
                    prepare_single(&connection, &many),
                    Err(rusqlite::Error::MultipleStatement)
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(refused);
    }
}
