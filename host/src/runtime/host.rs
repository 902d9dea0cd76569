//! The data inside each plugin instance's `Store`, and the host side of the WIT imports:
//! `sql` (forwarded to the projection's open transaction) and `log`.

use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{GuestSqlError, GuestValue, log, sql, types};
use super::limits::{Limiter, Limits};
use super::output::Capture;
use crate::value::{SqlError, SqlSession, Value};

/// Bytes of stdout and stderr kept per call; a plugin's panic message fits easily, and what
/// does not fit is dropped and counted, never refused.
const CAPTURED_OUTPUT_BYTES: usize = 64 << 10;

/// Everything one plugin instance's `Store` holds.
pub struct HostState {
    /// The projection's name, on every log line.
    pub(super) projection: String,
    /// Where the `sql` import sends statements: the projection's database, shared with the
    /// projection worker that opens and commits the batch around each call.
    pub(super) sql: Arc<Mutex<dyn SqlSession>>,
    /// Caps memory and tables.
    pub(super) limiter: Limiter,
    /// An empty WASI context: no files, environment, network or arguments; fixed clocks and a
    /// seeded random source, so a replay behaves like the first run.
    wasi: WasiCtx,
    /// WASI's resource handles (its streams).
    table: ResourceTable,
    /// The plugin's stdout and stderr, drained into the log after each call.
    pub(super) stdout: Capture,
    pub(super) stderr: Capture,
    /// Log lines left in this call's budget; reset before each call.
    pub(super) log_budget: u32,
    /// Lines dropped over the budget in this call.
    pub(super) logs_dropped: u32,
    /// The configured budget.
    log_lines_per_call: u32,
}

impl HostState {
    /// State for a fresh instance of `projection`.
    pub fn new(projection: &str, sql: Arc<Mutex<dyn SqlSession>>, limits: &Limits) -> HostState {
        let stdout = Capture::new(CAPTURED_OUTPUT_BYTES);
        let stderr = Capture::new(CAPTURED_OUTPUT_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .secure_random(seeded_random())
            .insecure_random(seeded_random())
            .insecure_random_seed(0)
            .build();
        HostState {
            projection: projection.to_string(),
            sql,
            limiter: Limiter::new(limits),
            wasi,
            table: ResourceTable::new(),
            stdout,
            stderr,
            log_budget: limits.log_lines_per_call,
            logs_dropped: 0,
            log_lines_per_call: limits.log_lines_per_call,
        }
    }

    /// Resets the per-call budgets before the host calls into the plugin.
    pub(super) fn start_call(&mut self, deadline: std::time::Instant) {
        self.session().call_deadline(deadline);
        self.log_budget = self.log_lines_per_call;
        self.logs_dropped = 0;
    }

    fn session(&self) -> std::sync::MutexGuard<'_, dyn SqlSession + 'static> {
        // A poisoned lock means a host thread panicked mid-statement; the store's transaction
        // is rolled back by the worker either way, so carrying on is safe.
        self.sql.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Longest plugin log line kept; the rest is cut.
const MAX_LOG_LINE_BYTES: usize = 4096;

fn seeded_random() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(0x7072_6f6a_6563_746f)
}

/// A clock stuck at the Unix epoch: plugins get event time from `created-unix-ms`, never from
/// the wall, so replays are deterministic.
struct FixedClock;

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl sql::Host for HostState {
    fn execute(
        &mut self,
        statement: String,
        params: Vec<GuestValue>,
    ) -> wasmtime::Result<Result<i64, GuestSqlError>> {
        let params: Vec<Value> = params.into_iter().map(from_guest_value).collect();
        Ok(self
            .session()
            .execute(&statement, &params)
            .map_err(to_guest_error))
    }

    fn query(
        &mut self,
        statement: String,
        params: Vec<GuestValue>,
    ) -> wasmtime::Result<Result<Vec<Vec<GuestValue>>, GuestSqlError>> {
        let params: Vec<Value> = params.into_iter().map(from_guest_value).collect();
        let rows = self.session().query(&statement, &params);
        Ok(rows
            .map(|rows| {
                rows.into_iter()
                    .map(|row| row.into_iter().map(to_guest_value).collect())
                    .collect()
            })
            .map_err(to_guest_error))
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        if self.log_budget == 0 {
            self.logs_dropped += 1;
            return Ok(());
        }
        self.log_budget -= 1;
        let message = crate::text::cut(&message, MAX_LOG_LINE_BYTES);
        let projection = self.projection.as_str();
        match level {
            log::Level::Debug => tracing::debug!(projection, "{message}"),
            log::Level::Info => tracing::info!(projection, "{message}"),
            log::Level::Warn => tracing::warn!(projection, "{message}"),
            log::Level::Error => tracing::error!(projection, "{message}"),
        }
        Ok(())
    }
}

fn from_guest_value(value: GuestValue) -> Value {
    match value {
        GuestValue::Null => Value::Null,
        GuestValue::Integer(i) => Value::Integer(i),
        GuestValue::Real(r) => Value::Real(r),
        GuestValue::Text(t) => Value::Text(t),
        GuestValue::Blob(b) => Value::Blob(b),
    }
}

fn to_guest_value(value: Value) -> GuestValue {
    match value {
        Value::Null => GuestValue::Null,
        Value::Integer(i) => GuestValue::Integer(i),
        Value::Real(r) => GuestValue::Real(r),
        Value::Text(t) => GuestValue::Text(t),
        Value::Blob(b) => GuestValue::Blob(b),
    }
}

/// Converts a host SQL error to the WIT variant.
pub(super) fn to_guest_error(error: SqlError) -> GuestSqlError {
    match error {
        SqlError::Denied(m) => GuestSqlError::Denied(m),
        SqlError::Invalid(m) => GuestSqlError::Invalid(m),
        SqlError::Constraint(m) => GuestSqlError::Constraint(m),
        SqlError::Other(m) => GuestSqlError::Other(m),
    }
}

/// Converts the WIT variant back to a host SQL error.
pub(super) fn from_guest_error(error: GuestSqlError) -> SqlError {
    match error {
        GuestSqlError::Denied(m) => SqlError::Denied(m),
        GuestSqlError::Invalid(m) => SqlError::Invalid(m),
        GuestSqlError::Constraint(m) => SqlError::Constraint(m),
        GuestSqlError::Other(m) => SqlError::Other(m),
    }
}
