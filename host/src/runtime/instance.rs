//! One live instance of a plugin: its `Store`, and the calls into it with their limits.
//!
//! A trap poisons a wasmtime store for good, so after any call that kills the instance (a trap
//! or a limit) this module builds a fresh one from the plugin's `ProjectionPre` before
//! returning the error; callers never see a dead instance. If that rebuild fails, the call
//! returns `PluginError::Broken`, which stops the projection.

use std::sync::{Arc, Mutex};

use wasmtime::{Store, Trap};

use super::Runtime;
use super::bindings::{
    Error as GuestError, Event, Manifest as GuestManifest, Projection, ProjectionPre,
};
use super::error::{PluginError, Rejection};
use super::host::{HostState, from_guest_error};
use super::limits::{Limits, MemoryLimitExceeded};
use crate::event::RecordedEvent;
use crate::value::SqlSession;

/// A plugin instance and everything needed to replace it.
pub struct Instance {
    store: Store<HostState>,
    bindings: Projection,
    pre: ProjectionPre<HostState>,
    limits: Limits,
}

impl Instance {
    pub(super) fn new(
        runtime: &Runtime,
        pre: &ProjectionPre<HostState>,
        projection: &str,
        sql: Arc<Mutex<dyn SqlSession>>,
    ) -> anyhow::Result<Instance> {
        let (store, bindings) =
            instantiate(runtime.engine(), pre, projection, sql, runtime.limits())?;
        Ok(Instance {
            store,
            bindings,
            pre: pre.clone(),
            limits: runtime.limits().clone(),
        })
    }

    /// Calls `describe`.
    pub(super) fn describe(&mut self) -> Result<GuestManifest, PluginError> {
        self.before_call();
        let result = self.bindings.call_describe(&mut self.store);
        let outcome = result.map_err(|error| self.classify_trap(error));
        self.finish_call(outcome)
    }

    /// Calls `handle` with `events`, under the batch deadline.
    pub fn handle(&mut self, events: &[RecordedEvent]) -> Result<(), PluginError> {
        let guest_events: Vec<Event> = events.iter().map(to_guest_event).collect();
        self.before_call();
        let result = self.bindings.call_handle(&mut self.store, &guest_events);
        let outcome = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(guest_error)) => Err(PluginError::Rejected(from_guest(guest_error))),
            Err(error) => Err(self.classify_trap(error)),
        };
        self.finish_call(outcome)
    }

    /// Logs the call's output, then replaces the instance if the call killed it. The trap was
    /// classified first, while its stderr (the panic message) was still there to read.
    fn finish_call<T>(&mut self, outcome: Result<T, PluginError>) -> Result<T, PluginError> {
        self.after_call();
        if outcome.as_ref().is_err_and(PluginError::kills_instance)
            && let Err(error) = self.renew()
        {
            // The dead instance stays: every later call would trap at once, which must stop
            // the projection rather than dead-letter event after event.
            let cause = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            return Err(PluginError::Broken(format!(
                "{cause}; and the plugin instance could not be recreated: {error:#}"
            )));
        }
        outcome
    }

    fn before_call(&mut self) {
        self.store.set_epoch_deadline(self.limits.deadline_ticks());
        let deadline = std::time::Instant::now() + self.limits.batch_deadline;
        self.store.data_mut().start_call(deadline);
    }

    /// Copies the call's stdout/stderr output to the log and reports what was dropped. Output
    /// lines share the call's log-line budget with the `log` import: 64 KiB of newlines must not
    /// become 65,536 log lines.
    fn after_call(&mut self) {
        let state = self.store.data_mut();
        let outputs = [
            ("stdout", state.stdout.drain()),
            ("stderr", state.stderr.drain()),
        ];
        let projection = state.projection.clone();
        for (stream, output) in outputs {
            for line in String::from_utf8_lossy(&output.bytes).lines() {
                if state.log_budget == 0 {
                    state.logs_dropped += 1;
                    continue;
                }
                state.log_budget -= 1;
                if stream == "stdout" {
                    tracing::info!(projection, stream, "{line}");
                } else {
                    tracing::warn!(projection, stream, "{line}");
                }
            }
            if output.dropped > 0 {
                tracing::warn!(
                    projection,
                    stream,
                    dropped_bytes = output.dropped,
                    "plugin output over the per-call capture was dropped"
                );
            }
        }
        if state.logs_dropped > 0 {
            tracing::warn!(
                projection,
                dropped = state.logs_dropped,
                "plugin log lines and output lines over the per-call limit were dropped"
            );
        }
    }

    /// Turns a trap into a [`PluginError`].
    fn classify_trap(&self, error: wasmtime::Error) -> PluginError {
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            PluginError::OutOfTime(format!(
                "the plugin ran past its per-batch deadline of {:?} and was stopped",
                self.limits.batch_deadline
            ))
        } else if let Some(memory) = error.downcast_ref::<MemoryLimitExceeded>() {
            PluginError::OutOfMemory(memory.to_string())
        } else {
            // The trap code says what happened; the wasm backtrace (also in the error's chain)
            // is noise to an operator reading a dead letter, so it goes to the debug log only.
            tracing::debug!(error = format!("{error:?}"), "plugin trap");
            let what = match error.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(),
                None => anyhow::Error::from(error).root_cause().to_string(),
            };
            let said = panic_message(&String::from_utf8_lossy(&self.store.data().stderr.peek()));
            PluginError::Trapped(match said {
                Some(said) => format!("{what}; it said: {said}"),
                None => what,
            })
        }
    }

    /// Replaces the store and instance with fresh ones.
    fn renew(&mut self) -> anyhow::Result<()> {
        let state = self.store.data();
        let projection = state.projection.clone();
        let sql = Arc::clone(&state.sql);
        let (store, bindings) = instantiate(
            self.store.engine(),
            &self.pre,
            &projection,
            sql,
            &self.limits,
        )?;
        self.store = store;
        self.bindings = bindings;
        Ok(())
    }
}

fn instantiate(
    engine: &wasmtime::Engine,
    pre: &ProjectionPre<HostState>,
    projection: &str,
    sql: Arc<Mutex<dyn SqlSession>>,
    limits: &Limits,
) -> anyhow::Result<(Store<HostState>, Projection)> {
    let mut store = Store::new(engine, HostState::new(projection, sql, limits));
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(limits.deadline_ticks());
    let bindings = pre.instantiate(&mut store)?;
    Ok((store, bindings))
}

/// What a call wrote to stderr, without Rust's backtrace hint: for a panic, its location and
/// message. Bounded, so a plugin cannot flood a dead letter.
fn panic_message(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let joined = lines.join(" ");
    (!joined.is_empty()).then(|| crate::text::cut(&joined, 1000).into_owned())
}

fn to_guest_event(event: &RecordedEvent) -> Event {
    Event {
        stream_id: event.stream_id.clone(),
        stream_revision: event.stream_revision as i64,
        position: event.position.commit as i64,
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        content_type: event.content_type.clone(),
        created_unix_ms: event.created_unix_ms,
        data: event.data.clone(),
        metadata: event.metadata.clone(),
    }
}

/// Converts the plugin's error, bounding its text: it ends up in logs and dead letters.
fn from_guest(error: GuestError) -> Rejection {
    let bound = |message: &str| crate::text::cut(message, MAX_ERROR_BYTES).into_owned();
    match error {
        GuestError::InvalidEvent(invalid) => Rejection::InvalidEvent {
            index: invalid.index,
            message: bound(&invalid.message),
        },
        GuestError::Sql(sql) => Rejection::Sql(from_guest_error(sql).map_message(bound)),
        GuestError::Other(message) => Rejection::Other(bound(&message)),
    }
}

/// Longest error text kept from a plugin.
const MAX_ERROR_BYTES: usize = 4096;
