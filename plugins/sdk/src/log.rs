//! Writing lines to the host's log.
//!
//! On wasm32 a line goes to the host, which tags it with the projection's name and bounds how
//! many a batch may write. Natively (tests, benchmarks) there is no host: lines are kept in a
//! per-thread buffer instead, so tests can assert on them with [`take_captured`].

use crate::Level;

/// Writes a debugging line.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes an informational line.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes a line about something that looks wrong but that the plugin carried on from, such as
/// an event it ignored.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes a line about something that failed.
pub fn error(message: &str) {
    write(Level::Error, message);
}

/// Writes one line at the given level.
#[cfg(target_arch = "wasm32")]
pub fn write(level: Level, message: &str) {
    crate::bindings::projector::plugin::log::write(level, message);
}

/// Writes one line at the given level (natively: into this thread's capture buffer).
#[cfg(not(target_arch = "wasm32"))]
pub fn write(level: Level, message: &str) {
    native::capture(level, message);
}

/// Returns and clears the lines this thread has logged (native targets only).
#[cfg(not(target_arch = "wasm32"))]
pub fn take_captured() -> Vec<(Level, String)> {
    native::take()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;

    use crate::Level;

    /// Enough for any test; a long native benchmark that ignores many events must not grow the
    /// buffer without bound, so lines past this are dropped.
    const MAX_CAPTURED: usize = 10_000;

    thread_local! {
        static CAPTURED: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn capture(level: Level, message: &str) {
        CAPTURED.with_borrow_mut(|lines| {
            if lines.len() < MAX_CAPTURED {
                lines.push((level, message.to_owned()));
            }
        });
    }

    pub(super) fn take() -> Vec<(Level, String)> {
        CAPTURED.with_borrow_mut(std::mem::take)
    }
}
