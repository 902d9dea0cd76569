//! Keeps plugin SQL deterministic: a replay of the same events must build the same tables.
//!
//! Two kinds of SQL function break that. Some have no deterministic use at all (`random()`,
//! `CURRENT_TIMESTAMP`, the counters of the connection's history); the authorizer denies those
//! by name ([`denial`]). The date and time functions are deterministic on a given time value,
//! which projections use to format event timestamps, but not on `'now'` or on the
//! `'localtime'`/`'utc'` modifiers, which read the wall clock and the machine's time zone. The
//! authorizer does not see arguments, so the projection connection overrides those functions
//! ([`install`]). A call is answered by SQLite's own implementation on a private in-memory
//! connection, evaluated as a generated column: SQLite itself then refuses every impure use
//! (`'now'` however spelt, as a blob, after a NUL; `'subsec'` as a time value; `'localtime'`,
//! `'utc'`), so the host does not have to list them. The common cases are named first, for a
//! clearer message.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::authorizer::Policy;

/// Why plugin SQL may not call `function`, if it may not.
pub fn denial(function: &str) -> Option<String> {
    let lower = function.to_ascii_lowercase();
    let why = match lower.as_str() {
        "random" | "randomblob" => "it returns different values on every replay",
        "fts5_source_id" => "it depends on the host's build, not on the events",
        "current_time" | "current_date" | "current_timestamp" => {
            "it reads the wall clock; use the event's created-unix-ms"
        }
        "changes" | "total_changes" | "last_insert_rowid" => {
            "it depends on statements outside this one, which differ with how batches are cut; \
             use RETURNING or the count `execute` returns"
        }
        "sqlite_version"
        | "sqlite_source_id"
        | "sqlite_compileoption_used"
        | "sqlite_compileoption_get" => "it depends on the host's build, not on the events",
        _ => return None,
    };
    Some(format!(
        "{function}() is not deterministic: {why} (a replay must build the same tables)"
    ))
}

/// The date and time functions, with the fewest arguments at which they do not mean "now".
const DATE_FUNCTIONS: [(&str, usize); 7] = [
    ("date", 1),
    ("time", 1),
    ("datetime", 1),
    ("julianday", 1),
    ("unixepoch", 1),
    ("strftime", 2),
    ("timediff", 2),
];

/// Overrides the date and time functions on `connection` so that only deterministic calls get
/// through; a refused call records its reason on `policy` (so it reaches the plugin as
/// `denied`) and fails the statement.
pub fn install(connection: &Connection, policy: &Arc<Policy>) -> rusqlite::Result<()> {
    for (name, least_arguments) in DATE_FUNCTIONS {
        let policy = Arc::clone(policy);
        connection.create_scalar_function(
            name,
            -1,
            // Innocuous, so views, defaults and indexes may use them (the schema is not trusted):
            // only pure calls get through.
            FunctionFlags::SQLITE_UTF8
                | FunctionFlags::SQLITE_DETERMINISTIC
                | FunctionFlags::SQLITE_INNOCUOUS,
            move |context| {
                let refused = refusal(name, least_arguments, context);
                let answer = match refused {
                    Some(reason) => Err(reason),
                    None => delegate(name, context),
                };
                answer.map_err(|reason| {
                    policy.deny(reason.clone());
                    rusqlite::Error::UserFunctionError(reason.into())
                })
            },
        )?;
    }
    Ok(())
}

/// Why this call would not be deterministic, if it would not.
fn refusal(name: &str, least_arguments: usize, context: &Context<'_>) -> Option<String> {
    // Each arity is a table on the private connection: a handful of modifiers is what real
    // calls use, and a thousand arities would be a thousand tables.
    if context.len() > MAX_DATE_ARGUMENTS {
        return Some(format!(
            "{name}() takes at most {MAX_DATE_ARGUMENTS} arguments here, not {}",
            context.len()
        ));
    }
    if context.len() < least_arguments {
        return Some(format!(
            "{name}() without a time value means now, which is not deterministic; \
             pass the event's timestamp"
        ));
    }
    // strftime's first argument is its format, its time value the second.
    let (first, time_value) = if name == "strftime" { (1, 1) } else { (0, 0) };
    (first..context.len()).find_map(|index| {
        // SQLite reads a blob as text, and stops at a NUL.
        let (ValueRef::Text(bytes) | ValueRef::Blob(bytes)) = context.get_raw(index) else {
            return None;
        };
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
        let word = String::from_utf8_lossy(bytes).trim().to_ascii_lowercase();
        match word.as_str() {
            "subsec" | "subsecond" if index == time_value => Some(format!(
                "{name}('{word}') as a time value means now, which is not deterministic; pass \
                 the event's timestamp"
            )),
            "now" => Some(format!(
                "{name}('now') reads the wall clock, which is not deterministic; pass the event's timestamp"
            )),
            "localtime" | "utc" => Some(format!(
                "{name}(…, '{word}') depends on the machine's time zone, which is not \
                 deterministic; keep times in UTC"
            )),
            _ => None,
        }
    })
}

/// Most arguments a date function call may have.
const MAX_DATE_ARGUMENTS: usize = 16;

/// Longest string the private connection builds: dates are short, and a format string that
/// grows (`strftime('%J%J…')`) must not build megabytes.
const BUILT_IN_MAX_LENGTH: i32 = 1 << 20;

thread_local! {
    /// SQLite's own date functions, untouched by the override: a private in-memory connection
    /// per thread (projection threads each get one on first use), with one single-row table per
    /// function and arity whose generated column is the call.
    static BUILT_IN: RefCell<Option<(Connection, HashSet<String>)>> = const { RefCell::new(None) };
}

/// Evaluates the call with SQLite's built-in implementation, as a generated column so that
/// SQLite refuses an impure use; the reason, when refused.
fn delegate(name: &str, context: &Context<'_>) -> Result<Value, String> {
    BUILT_IN.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let connection = Connection::open_in_memory().map_err(|e| e.to_string())?;
            connection
                .set_limit(
                    rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH,
                    BUILT_IN_MAX_LENGTH,
                )
                .map_err(|e| e.to_string())?;
            *cell = Some((connection, HashSet::new()));
        }
        let (connection, tables) = cell.as_mut().expect("opened above");
        evaluate(connection, tables, name, context).map_err(|error| {
            let text = error.to_string();
            if text.contains("non-deterministic") {
                format!(
                    "{name}() on these arguments reads the wall clock or the time zone ('now', \
                     'subsec' as a time value, 'localtime', 'utc'), which is not deterministic; \
                     pass the event's timestamp and keep times in UTC"
                )
            } else {
                text
            }
        })
    })
}

fn evaluate(
    connection: &Connection,
    tables: &mut HashSet<String>,
    name: &str,
    context: &Context<'_>,
) -> rusqlite::Result<Value> {
    let count = context.len();
    let table = format!("pure_{name}_{count}");
    let columns: Vec<String> = (0..count).map(|i| format!("a{i}")).collect();
    if !tables.contains(&table) {
        // Recorded once made: a failed attempt (a wrong arity, say) is tried again next time.
        connection.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} ({list}, v AS ({name}({list})));
             INSERT INTO {table} ({list}) SELECT {nulls} WHERE NOT EXISTS (SELECT 1 FROM {table});",
            list = columns.join(", "),
            nulls = vec!["NULL"; count].join(", "),
        ))?;
        tables.insert(table.clone());
    }
    let assignments: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let mut statement = connection.prepare_cached(&format!(
        "UPDATE {table} SET {} RETURNING v",
        assignments.join(", ")
    ))?;
    for index in 0..count {
        // Bound as they came, so text that is not UTF-8 reaches SQLite unchanged.
        statement.raw_bind_parameter(index + 1, ToSqlOutput::Borrowed(context.get_raw(index)))?;
    }
    let mut rows = statement.raw_query();
    let row = rows.next()?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    // Not rusqlite's `From<ValueRef>`, which panics on text that is not UTF-8.
    Ok(match row.get_ref(0)? {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Mode;

    fn connection() -> (Connection, Arc<Policy>) {
        let connection = Connection::open_in_memory().unwrap();
        let policy = Policy::new(Mode::Host);
        install(&connection, &policy).unwrap();
        (connection, policy)
    }

    #[test]
    fn deterministic_calls_answer_as_sqlite_does() {
        let (connection, _) = connection();
        let built_in = Connection::open_in_memory().unwrap();
        for call in [
            "datetime(1700000000, 'unixepoch')",
            "date('2024-02-29', '+1 year')",
            "strftime('%Y-%m-%dT%H:%M:%f', 1700000000.5, 'unixepoch', 'subsec')",
            "julianday('2000-01-01 12:00')",
            "unixepoch('2024-01-01')",
            "time('12:34:56', '+90 minutes')",
            "timediff('2024-03-01', '2024-02-01')",
            "datetime(NULL)",
            "date('not a date')",
        ] {
            let ours: Value = connection
                .query_row(&format!("SELECT {call}"), [], |row| row.get(0))
                .unwrap();
            let theirs: Value = built_in
                .query_row(&format!("SELECT {call}"), [], |row| row.get(0))
                .unwrap();
            assert_eq!(ours, theirs, "{call}");
        }
    }

    #[test]
    fn calls_on_the_clock_or_the_time_zone_are_denied() {
        let (connection, policy) = connection();
        for call in [
            "datetime('now')",
            "date()",
            "strftime('%s')",
            "datetime(' NOW ')",
            "datetime(1700000000, 'unixepoch', 'localtime')",
            "datetime('2024-01-01', 'utc')",
            "datetime(x'6e6f77')",
            "datetime('now' || char(0) || 'x')",
            "datetime(0, 'unixepoch', CAST('localtime' AS BLOB))",
            "unixepoch('subsec')",
            "strftime('%s', 'subsecond')",
            "julianday('NoW')",
        ] {
            let error = connection
                .query_row(&format!("SELECT {call}"), [], |row| row.get::<_, Value>(0))
                .unwrap_err();
            let reason = policy.take_denial().expect(call);
            assert!(reason.contains("not deterministic"), "{call}: {reason}");
            assert!(error.to_string().contains("not deterministic"), "{error}");
        }
        // A time value bound as a parameter is judged the same way.
        assert!(
            connection
                .query_row("SELECT datetime(?1)", ["now"], |row| row.get::<_, Value>(0))
                .is_err()
        );
    }

    #[test]
    fn functions_without_a_deterministic_use_are_named() {
        for function in ["random", "RANDOMBLOB", "current_timestamp", "changes"] {
            assert!(denial(function).unwrap().contains(function));
        }
        assert_eq!(denial("abs"), None);
    }
}
