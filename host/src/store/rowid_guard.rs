//! Keeps rowids deterministic: once a table's largest rowid is 2^63-1, SQLite picks every new
//! rowid at random, so a replay of the same events would build other tables. No function call
//! is involved (`INSERT INTO t(rowid, x) VALUES (9223372036854775807, 0)`, then any insert), so
//! neither the authorizer nor the determinism rules see it.
//!
//! After each plugin call the projection asks [`super::Db::rowid_at_limit`] whether a plugin
//! table reached that rowid (one seek to the rightmost row per table); if one did, the call is
//! refused as a constraint and rolled back, which is the same on every replay.
//!
//! What it does not catch: a call that sets the largest rowid, inserts (getting a random
//! rowid) and deletes the largest row again before it returns. Catching that needs a check on
//! every write: triggers on every insert cost 7% of the pipeline's throughput (measured), a
//! query after every writing statement more. The guard is for the plugin that stores such a
//! key by accident; a plugin that works at being non-deterministic only harms its own tables.

use rusqlite::Connection;

/// The refusal, as the plugin's error says it.
pub const REFUSAL: &str = "reached rowid 9223372036854775807, the largest SQLite has; past it \
     SQLite picks new rowids at random, which a replay would not repeat: use smaller keys";

/// Tables per query: SQLite refuses a compound SELECT of more than 500 terms.
const TABLES_PER_QUERY: usize = 400;

/// The queries that name a plugin table whose largest rowid is the limit, if any. Tables
/// without rowids (`WITHOUT ROWID`) cannot reach the state; a table whose every rowid alias
/// (`rowid`, `_rowid_`, `oid`) is a column's name cannot have its rowid set at all.
pub fn queries(connection: &Connection, tables: &[String]) -> rusqlite::Result<Vec<String>> {
    let without_rowid: Vec<String> = connection
        .prepare("PRAGMA main.table_list")?
        .query_map([], |row| {
            Ok((row.get::<_, String>(1)?, row.get::<_, i64>(4)?))
        })?
        .filter_map(|row| row.ok().filter(|(_, wr)| *wr != 0).map(|(name, _)| name))
        .collect();
    let mut terms = Vec::new();
    for table in tables.iter().filter(|t| !without_rowid.contains(t)) {
        let columns = super::column_names(connection, table)?;
        let Some(alias) = ["rowid", "_rowid_", "oid"]
            .into_iter()
            .find(|alias| !columns.iter().any(|c| c.eq_ignore_ascii_case(alias)))
        else {
            continue;
        };
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let name = table.replace('\'', "''");
        terms.push(format!(
            "SELECT '{name}' WHERE (SELECT max({alias}) FROM main.{quoted}) = 9223372036854775807"
        ));
    }
    Ok(terms
        .chunks(TABLES_PER_QUERY)
        .map(|chunk| format!("{} LIMIT 1", chunk.join(" UNION ALL ")))
        .collect())
}
