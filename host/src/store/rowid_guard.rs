//! Keeps rowids deterministic: once a table's largest rowid is 2^63-1, SQLite picks every new
//! rowid at random, so a replay of the same events would build other tables. No function call
//! is involved (`INSERT INTO t(rowid, x) VALUES (9223372036854775807, 0)`, then any insert), so
//! neither the authorizer nor the determinism rules see it.
//!
//! Each plugin table with rowids gets two TEMP triggers on the projection's connection (never
//! stored in the file, so queries and other tools see the plugin's schema as written) that
//! refuse that one rowid on insert and update. The plugin's statement fails as a constraint, a
//! refusal the same on every replay.

use rusqlite::Connection;

/// The message of the refusal, as the plugin sees it.
const REFUSAL: &str = "rowid 9223372036854775807 is the largest SQLite has; past it SQLite picks \
     new rowids at random, which a replay would not repeat: use smaller keys";

/// Installs the triggers on every table of `tables` that has rowids (a `WITHOUT ROWID` table
/// cannot reach the state).
pub fn install(connection: &Connection, tables: &[String]) -> rusqlite::Result<()> {
    for (index, table) in tables.iter().enumerate() {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        if connection
            .prepare(&format!("SELECT rowid FROM main.{quoted} LIMIT 0"))
            .is_err()
        {
            continue;
        }
        for (event, suffix) in [("INSERT", "insert"), ("UPDATE", "update")] {
            connection.execute_batch(&format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS _projector_rowid_{suffix}_{index}
                 BEFORE {event} ON main.{quoted}
                 WHEN NEW.rowid = 9223372036854775807
                 BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            ))?;
        }
    }
    Ok(())
}
