//! Keeps rowids deterministic: once a table's largest rowid is 2^63-1, SQLite picks every new
//! rowid at random, so a replay of the same events would build other tables. No function call
//! is involved (`INSERT INTO t(rowid, x) VALUES (9223372036854775807, 0)`, then any insert), so
//! neither the authorizer nor the determinism rules see it.
//!
//! After each plugin call the projection asks [`super::Db::rowid_at_limit`] whether a plugin
//! table reached that rowid (one seek to the rightmost row per table); if one did, the call is
//! refused as a constraint and rolled back, which is the same on every replay. (Triggers on
//! every insert would catch it a statement earlier, but cost every insert; measured, 7% of the
//! pipeline's throughput.)

use rusqlite::Connection;

/// The refusal, as the plugin's error says it.
pub const REFUSAL: &str = "reached rowid 9223372036854775807, the largest SQLite has; past it \
     SQLite picks new rowids at random, which a replay would not repeat: use smaller keys";

/// The query that names a plugin table whose largest rowid is the limit, if any; `None` when
/// no table has rowids (`WITHOUT ROWID` tables cannot reach the state).
pub fn query(connection: &Connection, tables: &[String]) -> Option<String> {
    let checks: Vec<String> = tables
        .iter()
        .filter_map(|table| {
            let quoted = format!("\"{}\"", table.replace('"', "\"\""));
            connection
                .prepare(&format!("SELECT rowid FROM main.{quoted} LIMIT 0"))
                .ok()?;
            let name = table.replace('\'', "''");
            Some(format!(
                "SELECT '{name}' WHERE (SELECT max(rowid) FROM main.{quoted}) = 9223372036854775807"
            ))
        })
        .collect();
    (!checks.is_empty()).then(|| format!("{} LIMIT 1", checks.join(" UNION ALL ")))
}
