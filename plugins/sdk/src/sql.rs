//! The one seam between a plugin's logic and the database it writes.
//!
//! Plugin logic takes `&mut impl Sql` instead of calling the WIT `sql` import directly, so the
//! same code can run natively against rusqlite or a fake. `HostSql` is the only caller of the
//! import, and it exists only on wasm32, where the host provides it.

use crate::{SqlError, Value};

/// SQL over the projection's own tables, inside the transaction of the current batch.
///
/// Pass values as parameters (`?1`, `?2`, …) and keep statement texts fixed: the host prepares
/// each distinct text once and caches it.
pub trait Sql {
    /// Runs a statement that returns no rows (INSERT, UPDATE, DELETE, upsert) and returns the
    /// number of rows it changed.
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<i64, SqlError>;

    /// Runs a statement that returns rows (SELECT, or DML with RETURNING) and returns all of them,
    /// each a list of column values in the order of the statement's result columns.
    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError>;
}

/// The host's `sql` import: the [`Sql`] a plugin gets when it runs as a component.
///
/// It holds nothing: the host knows which projection and transaction the calls belong to.
#[cfg(target_arch = "wasm32")]
#[derive(Clone, Copy, Debug, Default)]
pub struct HostSql;

#[cfg(target_arch = "wasm32")]
impl Sql for HostSql {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<i64, SqlError> {
        crate::bindings::projector::plugin::sql::execute(statement, params)
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        crate::bindings::projector::plugin::sql::query(statement, params)
    }
}
