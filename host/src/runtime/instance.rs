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
            let frames = trap_frames(&error);
            let what = match error.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(),
                None => anyhow::Error::from(error).root_cause().to_string(),
            };
            let (head, tail) = self.store.data().stderr.peek();
            let said = panic_message(
                &String::from_utf8_lossy(&head),
                &String::from_utf8_lossy(&tail),
            );
            let said = said.or_else(|| frames.map(|frames| format!("in {frames}")));
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

/// What a call wrote to stderr before it trapped, bounded, so a plugin cannot flood a dead
/// letter: from the last Rust panic (`panicked at <file>:<line>:<column>:` and its message, the
/// thread's name and the backtrace hint left out), found in the end of the output or else in its
/// beginning; or, without a panic, the end of the output, where the trap's cause is likeliest.
fn panic_message(head: &str, tail: &str) -> Option<String> {
    if let Some(panic) = last_panic(tail).or_else(|| last_panic(head)) {
        let lines: Vec<&str> = panic
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        return Some(crate::text::cut(&lines.join(" "), MAX_SAID_BYTES).into_owned());
    }
    let lines: Vec<&str> = tail
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let joined = lines.join(" ");
    let start = joined.ceil_char_boundary(joined.len().saturating_sub(MAX_SAID_BYTES));
    match start {
        0 => (!joined.is_empty()).then_some(joined),
        _ => Some(format!("… {}", &joined[start..])),
    }
}

/// The last panic in `stderr`, from its `panicked at`: Rust's panic hook starts a panic's
/// report with a line `thread '<name>' panicked at <file>:<line>:<column>:`.
fn last_panic(stderr: &str) -> Option<&str> {
    let mut found = None;
    let mut offset = 0;
    for line in stderr.split_inclusive('\n') {
        if line.starts_with("thread '")
            && let Some(at) = line.find(" panicked at ")
        {
            found = Some(offset + at + 1);
        }
        offset += line.len();
    }
    found.map(|start| &stderr[start..])
}

/// The innermost named functions of a trap's wasm backtrace, when the module kept a name
/// section (release builds often strip it) and the plugin said nothing itself: a few bounded
/// names, so a trap in a hostile module with endless names stays short.
fn trap_frames(error: &wasmtime::Error) -> Option<String> {
    let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>()?;
    let names: Vec<String> = backtrace
        .frames()
        .iter()
        .filter_map(|frame| frame.func_name())
        .take(MAX_FRAMES)
        .map(|name| crate::text::cut(name, MAX_FRAME_NAME_BYTES).into_owned())
        .collect();
    (!names.is_empty()).then(|| names.join(" ← "))
}

/// Longest text kept from what a trapping plugin wrote to stderr.
const MAX_SAID_BYTES: usize = 1000;
/// How many named frames of a trap's backtrace are shown, and how much of each name.
const MAX_FRAMES: usize = 3;
const MAX_FRAME_NAME_BYTES: usize = 120;

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

#[cfg(test)]
mod tests {
    use super::*;

    const PANIC: &str = "thread '<unnamed>' (1) panicked at src/lib.rs:7:9:\nbad event\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";

    /// The panic's location and message, not what the plugin printed before it.
    #[test]
    fn a_panic_is_found_after_other_output() {
        let stderr = format!("debug line one\nthread 'x' said nothing\n{PANIC}");
        assert_eq!(
            panic_message(&stderr, &stderr).as_deref(),
            Some("panicked at src/lib.rs:7:9: bad event")
        );
    }

    /// A panic written after the capture filled up is read from the remembered end; a huge
    /// panic message found in the beginning is cut, its location kept.
    #[test]
    fn a_panic_past_the_bound_or_a_huge_one_is_bounded() {
        let flood = "x".repeat(100);
        assert_eq!(
            panic_message(&flood, PANIC).as_deref(),
            Some("panicked at src/lib.rs:7:9: bad event")
        );
        let huge = format!(
            "thread '<unnamed>' panicked at src/lib.rs:1:1:\n{}",
            "y".repeat(1 << 20)
        );
        let said = panic_message(&huge, "yyyy").unwrap();
        assert!(
            said.starts_with("panicked at src/lib.rs:1:1: yyy"),
            "{said}"
        );
        assert!(said.len() <= MAX_SAID_BYTES, "{}", said.len());
    }

    /// Without a panic, the end of the output is what is kept.
    #[test]
    fn without_a_panic_the_end_is_kept() {
        assert_eq!(panic_message("", ""), None);
        let tail = format!("{}\nlast words\n", "z".repeat(5000));
        let said = panic_message("", &tail).unwrap();
        assert!(
            said.starts_with("… zzz") && said.ends_with("z last words"),
            "{said}"
        );
        assert!(said.len() <= MAX_SAID_BYTES + 4, "{}", said.len());
    }
}
