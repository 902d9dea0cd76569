//! A plugin's schema: applied once per database file, each entry one statement under the
//! batch deadline and the schema policy, and tried first on a scratch database when a module is
//! prepared, so a candidate whose DDL does not run (or breaks the rules) is refused before it
//! can disturb anything.

use std::time::Duration;

use rusqlite::Connection;

use super::authorizer::{Mode, Policy};
use super::{DbLimits, HOST_SCHEMA, guard_connection, schema_check, single};

/// Runs a plugin's schema statements on `connection` under the schema policy, each under
/// `deadline`; the first one that fails or is denied is named in the error.
///
/// Each entry must be one statement (a second one would escape the per-entry checks), and what
/// they create is checked afterwards for what the authorizer cannot see while they run.
pub(super) fn apply_schema(
    connection: &Connection,
    policy: &Policy,
    schema: &[String],
    deadline: Duration,
) -> anyhow::Result<()> {
    policy.set_mode(Mode::Schema);
    let applied = schema
        .iter()
        .enumerate()
        .try_for_each(|(index, statement)| {
            policy.take_denial();
            policy.set_deadline(Some(std::time::Instant::now() + deadline));
            run_schema_statement(connection, statement).map_err(|error| {
                let reason = policy.take_denial().unwrap_or(error);
                anyhow::format_err!(
                    "schema statement {} ({:?}) failed: {reason}",
                    index + 1,
                    crate::text::cut(statement, 300)
                )
            })
        })
        .and_then(|()| schema_check::created(connection, policy));
    policy.set_deadline(None);
    policy.set_mode(Mode::Host);
    applied
}

/// Prepares and runs one schema entry.
fn run_schema_statement(connection: &Connection, statement: &str) -> Result<(), String> {
    single::check(statement)?;
    let mut prepared = connection.prepare(statement).map_err(|e| e.to_string())?;
    let mut rows = prepared.raw_query();
    while rows.next().map_err(|e| e.to_string())?.is_some() {}
    Ok(())
}

/// Checks that `schema` creates its tables on an empty scratch database, under the same
/// authorizer and deadline a projection database uses, without touching any real file: a
/// candidate module whose DDL does not run is refused before it can disturb anything.
pub fn check_schema(schema: &[String], deadline: Duration) -> anyhow::Result<()> {
    let connection = Connection::open_in_memory()?;
    connection.execute_batch(HOST_SCHEMA)?;
    let policy = Policy::new(Mode::Host);
    guard_connection(&connection, &policy, DbLimits::default().max_result_bytes)?;
    apply_schema(&connection, &policy, schema, deadline)
}
