//! The SQLite authorizer that confines a plugin to its own tables.
//!
//! SQLite asks the authorizer about every table, column, function and command while it
//! prepares a statement, so a denial here stops a statement before it runs, whatever its text
//! looks like. One connection serves both the host and the plugin, so the authorizer reads the
//! current [`Mode`] from a shared flag that the store flips around plugin statements.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Table-name prefix reserved for the host's own tables in every projection database.
pub const RESERVED_PREFIX: &str = "_projector_";

/// Who is preparing statements on the connection right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// The host itself: everything is allowed.
    Host = 0,
    /// The host applying a plugin's declared schema: only creating tables, indexes and views
    /// with unreserved names in the main database.
    Schema = 1,
    /// A plugin's statement during `handle`: reads and writes of unreserved tables only.
    Plugin = 2,
    /// A user's query: reads only, on any attached database.
    ReadOnly = 3,
}

/// The authorizer's shared state: the current mode and why the last statement was denied.
#[derive(Debug)]
pub struct Policy {
    mode: AtomicU8,
    last_denial: Mutex<Option<String>>,
    /// When the running plugin statement must stop; SQLite's progress handler checks it, so
    /// one statement (a runaway recursive CTE, say) cannot outlive the batch deadline.
    deadline: Mutex<Option<std::time::Instant>>,
}

impl Policy {
    /// A policy starting in `mode`.
    pub fn new(mode: Mode) -> Arc<Policy> {
        Arc::new(Policy {
            mode: AtomicU8::new(mode as u8),
            last_denial: Mutex::new(None),
            deadline: Mutex::new(None),
        })
    }

    /// Switches the mode for statements prepared from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Records why a statement is being refused, for whoever classifies its error; used by
    /// host functions that refuse a call the authorizer could not judge.
    pub fn deny(&self, reason: String) {
        *self.last_denial.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// Takes the reason for the most recent denial, if any.
    pub fn take_denial(&self) -> Option<String> {
        self.last_denial
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Sets or clears the running statement's deadline.
    pub fn set_deadline(&self, deadline: Option<std::time::Instant>) {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = deadline;
    }

    /// Whether the running statement is past its deadline.
    pub fn past_deadline(&self) -> bool {
        let deadline = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        deadline.is_some_and(|d| std::time::Instant::now() >= d)
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            0 => Mode::Host,
            1 => Mode::Schema,
            2 => Mode::Plugin,
            _ => Mode::ReadOnly,
        }
    }

    /// Installs this policy as `connection`'s authorizer.
    pub fn install(self: &Arc<Policy>, connection: &rusqlite::Connection) {
        let policy = Arc::clone(self);
        connection.authorizer(Some(move |context: AuthContext<'_>| {
            match decide(policy.mode(), &context) {
                Ok(()) => Authorization::Allow,
                Err(reason) => {
                    policy.deny(reason);
                    Authorization::Deny
                }
            }
        }));
    }
}

/// Decides one authorizer question; `Err` carries the reason shown to the plugin or user.
pub fn decide(mode: Mode, context: &AuthContext<'_>) -> Result<(), String> {
    use AuthAction as A;
    let action = &context.action;
    // Things no mode but the host may ever do, whatever the table.
    match action {
        A::Attach { .. } | A::Detach { .. } if mode != Mode::Host => {
            return Err("ATTACH and DETACH are not allowed".into());
        }
        A::Pragma { pragma_name, .. } if mode != Mode::Host => {
            return Err(format!("PRAGMA {pragma_name} is not allowed"));
        }
        A::Transaction { .. } | A::Savepoint { .. } if mode != Mode::Host => {
            return Err("transaction control is the host's: every handle call already runs in one transaction".into());
        }
        // load_extension loads native code; fts3_tokenizer hands out and accepts host pointers
        // when its arguments are bound parameters, which plugin arguments always are.
        A::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension")
                || function_name.eq_ignore_ascii_case("fts3_tokenizer") =>
        {
            return Err(format!("{function_name} is not allowed"));
        }
        // What a plugin writes must follow from the events alone (see determinism.rs).
        A::Function { function_name } if matches!(mode, Mode::Schema | Mode::Plugin) => {
            if let Some(reason) = super::determinism::denial(function_name) {
                return Err(reason);
            }
        }
        _ => {}
    }
    match mode {
        Mode::Host => Ok(()),
        Mode::Schema => decide_schema(context),
        Mode::Plugin => decide_plugin(context),
        Mode::ReadOnly => decide_read_only(action),
    }
}

fn decide_schema(context: &AuthContext<'_>) -> Result<(), String> {
    use AuthAction as A;
    let in_main = context.database_name.is_none_or(|db| db == "main");
    match context.action {
        A::CreateTable { table_name: name } | A::CreateView { view_name: name } => {
            if !in_main {
                return Err(format!(
                    "`{name}` must be created in the projection's own database"
                ));
            }
            unreserved(name)
        }
        // An index on a host table could change how the host's own writes behave.
        A::CreateIndex {
            index_name,
            table_name,
        } => {
            if !in_main {
                return Err(format!(
                    "`{index_name}` must be created in the projection's own database"
                ));
            }
            unreserved(index_name).and_then(|()| unreserved(table_name))
        }
        // Creating an object writes its row into sqlite_schema and reads existing tables.
        A::Insert { table_name } | A::Update { table_name, .. } if is_schema_table(table_name) => {
            Ok(())
        }
        A::Read { table_name, .. } => unreserved(table_name),
        // Only `CREATE TABLE … AS SELECT` runs a query while the schema is applied (a view's
        // query runs when the view is read). SQLite does not ask about the rows it writes, so
        // its query could run for ever or fill the disk before anything checks it.
        A::Select => Err(
            "CREATE TABLE … AS SELECT is not allowed in a schema: declare the table's columns \
             and fill it from events"
                .into(),
        ),
        A::Function { .. } | A::Recursive => Ok(()),
        // Creating a partial index asks about reindexing the index being created.
        A::Reindex { index_name } if in_main => unreserved(index_name),
        ref other => Err(format!(
            "a schema may only create tables, indexes and views, not {}",
            action_text(other)
        )),
    }
}

fn decide_plugin(context: &AuthContext<'_>) -> Result<(), String> {
    use AuthAction as A;
    let in_main = context.database_name.is_none_or(|db| db == "main");
    match context.action {
        A::Select | A::Function { .. } | A::Recursive => Ok(()),
        // SQLite asks about writing the schema table before it asks about the CREATE, ALTER or
        // DROP that writes it: name the change, not the table the plugin never wrote.
        A::Insert { table_name } | A::Update { table_name, .. } | A::Delete { table_name }
            if is_schema_table(table_name) =>
        {
            Err(format!(
                "changing the schema (a write to `{table_name}`: CREATE, ALTER or DROP) is not \
                 allowed during handle; {DECLARE_IN_SCHEMA}"
            ))
        }
        A::Read { table_name, .. }
        | A::Insert { table_name }
        | A::Update { table_name, .. }
        | A::Delete { table_name } => {
            if !in_main {
                return Err(format!(
                    "table `{table_name}` is outside the projection's database"
                ));
            }
            // AUTOINCREMENT keeps its counters in sqlite_sequence; that is the plugin's own data.
            if table_name == "sqlite_sequence" {
                return Ok(());
            }
            if is_schema_table(table_name) {
                return Err(format!(
                    "the schema table `{table_name}` is not the plugin's"
                ));
            }
            unreserved(table_name)
        }
        ref other => Err(format!(
            "plugins may only read and write their own tables during handle, not {}; \
             {DECLARE_IN_SCHEMA}",
            action_text(other)
        )),
    }
}

const DECLARE_IN_SCHEMA: &str = "declare tables, indexes and views in the manifest's schema";

fn decide_read_only(action: &AuthAction<'_>) -> Result<(), String> {
    use AuthAction as A;
    match action {
        A::Select | A::Read { .. } | A::Function { .. } | A::Recursive => Ok(()),
        other => Err(format!(
            "queries are read-only: {} is not allowed",
            action_text(other)
        )),
    }
}

/// What a statement was about to do, as SQL a plugin author recognises (`DROP TABLE items`),
/// for the denial's message.
fn action_text(action: &AuthAction<'_>) -> String {
    use AuthAction as A;
    match action {
        A::CreateTable { table_name } => format!("CREATE TABLE {table_name}"),
        A::CreateTempTable { table_name } => format!("CREATE TEMP TABLE {table_name}"),
        A::CreateIndex {
            index_name,
            table_name,
        }
        | A::CreateTempIndex {
            index_name,
            table_name,
        } => {
            format!("CREATE INDEX {index_name} ON {table_name}")
        }
        A::CreateTrigger {
            trigger_name,
            table_name,
        }
        | A::CreateTempTrigger {
            trigger_name,
            table_name,
        } => {
            format!("CREATE TRIGGER {trigger_name} ON {table_name}")
        }
        A::CreateView { view_name } | A::CreateTempView { view_name } => {
            format!("CREATE VIEW {view_name}")
        }
        A::CreateVtable {
            table_name,
            module_name,
        } => {
            format!("CREATE VIRTUAL TABLE {table_name} USING {module_name}")
        }
        A::DropTable { table_name } | A::DropTempTable { table_name } => {
            format!("DROP TABLE {table_name}")
        }
        A::DropIndex { index_name, .. } | A::DropTempIndex { index_name, .. } => {
            format!("DROP INDEX {index_name}")
        }
        A::DropTrigger { trigger_name, .. } | A::DropTempTrigger { trigger_name, .. } => {
            format!("DROP TRIGGER {trigger_name}")
        }
        A::DropView { view_name } | A::DropTempView { view_name } => {
            format!("DROP VIEW {view_name}")
        }
        A::DropVtable { table_name, .. } => format!("DROP TABLE {table_name}"),
        A::AlterTable { table_name, .. } => format!("ALTER TABLE {table_name}"),
        A::Analyze { table_name } => format!("ANALYZE {table_name}"),
        A::Reindex { index_name } => format!("REINDEX {index_name}"),
        A::Insert { table_name } => format!("INSERT INTO {table_name}"),
        A::Update {
            table_name,
            column_name,
        } => format!("UPDATE {table_name} SET {column_name}"),
        A::Delete { table_name } => format!("DELETE FROM {table_name}"),
        other => format!("{other:?}"),
    }
}

fn unreserved(name: &str) -> Result<(), String> {
    // Bytes, not a str slice: a non-ASCII name must not split a character.
    let prefix = name.as_bytes().get(..RESERVED_PREFIX.len());
    if prefix.is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())) {
        return Err(format!(
            "`{name}` is reserved for the host (names starting with {RESERVED_PREFIX})"
        ));
    }
    Ok(())
}

fn is_schema_table(name: &str) -> bool {
    [
        "sqlite_master",
        "sqlite_schema",
        "sqlite_temp_master",
        "sqlite_temp_schema",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(name))
}
