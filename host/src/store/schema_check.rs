//! Checks on what a plugin's schema created, for what the authorizer cannot see while the
//! schema runs.
//!
//! A column's `DEFAULT` is evaluated on every insert, but SQLite asks the authorizer about it
//! neither when the table is created nor when a row is inserted, so `DEFAULT CURRENT_TIMESTAMP`
//! or `DEFAULT (random())` would slip past the determinism rules; each default is therefore
//! evaluated once here under the plugin policy. A deferred foreign key is checked only at
//! `COMMIT`, where a violation would fail the whole batch with no event to blame, so a
//! projection could neither dead-letter the event nor move past it: those are refused.

use anyhow::bail;
use rusqlite::Connection;

use super::authorizer::{Mode, Policy};

/// Fails with the reason when a table the schema created breaks one of the rules above.
pub fn created(connection: &Connection, policy: &Policy) -> anyhow::Result<()> {
    policy.set_mode(Mode::Host);
    let tables: Vec<(String, String)> = connection
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL
             AND name NOT LIKE '\\_projector\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (table, sql) in &tables {
        if has_deferred_constraint(sql) {
            bail!(
                "table `{table}` declares a DEFERRABLE INITIALLY DEFERRED constraint; deferred \
                 constraints are checked only when a batch commits, where a violation cannot be \
                 traced to an event: declare it without DEFERRABLE"
            );
        }
        // The PRAGMA statement, not `pragma_table_xinfo(…)`, which a table of the plugin's
        // could shadow.
        let defaults: Vec<(String, String)> = connection
            .prepare(&format!(
                "PRAGMA main.table_xinfo(\"{}\")",
                table.replace('"', "\"\"")
            ))?
            .query_map([], |row| {
                Ok((row.get(1)?, row.get::<_, Option<String>>(4)?))
            })?
            .filter_map(|row| {
                row.map(|(name, default)| default.map(|d| (name, d)))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        for (column, default) in defaults {
            if let Err(reason) = evaluate_as_plugin(connection, policy, &default) {
                bail!("the DEFAULT of column `{column}` of table `{table}` ({default}): {reason}");
            }
        }
    }
    Ok(())
}

/// Evaluates a default expression the way a plugin's statement would be judged.
fn evaluate_as_plugin(
    connection: &Connection,
    policy: &Policy,
    default: &str,
) -> Result<(), String> {
    policy.take_denial();
    policy.set_mode(Mode::Plugin);
    let evaluated = connection
        .prepare(&format!("SELECT ({default})"))
        .and_then(|mut statement| statement.query_row([], |_| Ok(())));
    policy.set_mode(Mode::Host);
    evaluated.map_err(|error| policy.take_denial().unwrap_or_else(|| error.to_string()))
}

/// Whether a `CREATE TABLE` text declares a constraint that is checked only at commit.
fn has_deferred_constraint(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    words.windows(3).enumerate().any(|(index, window)| {
        window == ["DEFERRABLE", "INITIALLY", "DEFERRED"]
            && (index == 0 || words[index - 1] != "NOT")
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::has_deferred_constraint;
    use crate::store::check_schema;

    fn refusal(schema: &[&str]) -> String {
        let schema: Vec<String> = schema.iter().map(|s| s.to_string()).collect();
        let started = Instant::now();
        let error = check_schema(&schema, Duration::from_secs(1)).expect_err("must be refused");
        // Refused at once, never after running the statement to its end.
        assert!(started.elapsed() < Duration::from_secs(5), "{schema:?}");
        format!("{error:#}")
    }

    /// Each way a schema could hang the host, escape the rules or fail every batch is refused
    /// with the reason.
    #[test]
    fn schemas_that_break_the_rules_are_refused() {
        let endless = "CREATE TABLE t AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT i FROM r";
        assert!(refusal(&[endless]).contains("AS SELECT is not allowed"));
        assert!(refusal(&["CREATE TABLE a (x); CREATE TABLE b (y)"]).contains("one statement"));
        assert!(
            refusal(&[
                "CREATE TABLE a (x PRIMARY KEY)",
                "CREATE TABLE b (y REFERENCES a(x) DEFERRABLE INITIALLY DEFERRED)"
            ])
            .contains("DEFERRED")
        );
        for default in ["CURRENT_TIMESTAMP", "(random())", "(datetime('now'))"] {
            let message = refusal(&[&format!("CREATE TABLE a (x, y DEFAULT {default})")]);
            assert!(message.contains("not deterministic"), "{message}");
        }
        // Views and indexes still run, and a deterministic default is fine.
        let fine: Vec<String> = [
            "CREATE TABLE a (x, y DEFAULT (datetime(0, 'unixepoch')), z DEFAULT 'none')",
            "CREATE INDEX a_x ON a (x) WHERE x > 1",
            "CREATE VIEW v AS SELECT x FROM a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        check_schema(&fine, Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn deferred_constraints_are_found() {
        assert!(has_deferred_constraint(
            "CREATE TABLE b (x REFERENCES a(x) DEFERRABLE\n initially   deferred)"
        ));
        assert!(!has_deferred_constraint(
            "CREATE TABLE b (x REFERENCES a(x) NOT DEFERRABLE INITIALLY DEFERRED)"
        ));
        assert!(!has_deferred_constraint(
            "CREATE TABLE b (x REFERENCES a(x) DEFERRABLE INITIALLY IMMEDIATE)"
        ));
    }
}
