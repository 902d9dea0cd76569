//! What the status endpoints, `/ready` and the metrics say about one projection, computed in
//! one place from its status entry and the log's tail: its state, lag in events and seconds,
//! rate and time to catch up.

use crate::pipeline::{ProjectionStatus, Tail};

/// One projection as the operations surface shows it.
#[derive(Clone, Debug)]
pub(super) struct View {
    /// `running`, `catching up`, `rebuilding`, `paused`, `stopped` or `not running`.
    pub state: &'static str,
    /// The head of the log, as last seen.
    pub head: Option<u64>,
    /// Events its filter selects past its position.
    pub lag_events: Option<u64>,
    /// Whether `lag_events` is a count, not an estimate.
    pub lag_exact: bool,
    /// How long the oldest of those events has waited.
    pub lag_seconds: Option<f64>,
    /// Events per second over the last minute.
    pub events_per_second: f64,
    /// At that rate, seconds until it has caught up.
    pub eta_seconds: Option<f64>,
}

/// The view of `status` now (`now_unix_ms`), with `tail` when the process follows the log.
pub(super) fn view(status: &ProjectionStatus, tail: Option<&Tail>, now_unix_ms: i64) -> View {
    let state = if status.stopped.is_some() {
        "stopped"
    } else if status.serving_run.is_none() {
        "not running"
    } else if status.paused {
        "paused"
    } else if status.rebuild.is_some() {
        "rebuilding"
    } else if !status.caught_up {
        "catching up"
    } else {
        "running"
    };
    let position = status.checkpoint.map(|p| p.commit);
    // A tail that is down (or has not found the head yet) knows nothing current: lag unknown,
    // rather than a stale 0.
    let tail = tail.filter(|tail| tail.error().is_none() && tail.head().is_some());
    let behind =
        tail.map(|tail| tail.behind(position, &status.filter, status.events_per_position()));
    let lag_events = behind.and_then(|b| b.events);
    let lag_seconds = match (lag_events, behind) {
        (Some(0), _) => Some(0.0),
        (None, _) => None,
        (_, Some(behind)) => behind
            .oldest_waiting_unix_ms
            // Before the window: the last event it committed is at most as old as the first
            // it has not, so this bounds the wait from above.
            .or(status.last_event_created_unix_ms)
            .map(|created| (now_unix_ms - created).max(0) as f64 / 1000.0),
        _ => None,
    };
    let events_per_second = status.rate.per_second();
    // Only a projection that moves catches up: paused, stopped or not running, it never will.
    let moving = matches!(state, "running" | "catching up" | "rebuilding");
    let eta_seconds = match lag_events {
        Some(0) => Some(0.0),
        Some(lag) if moving && events_per_second > 0.0 => Some(lag as f64 / events_per_second),
        _ => None,
    };
    View {
        state,
        head: tail.and_then(Tail::head),
        lag_events,
        lag_exact: behind.is_some_and(|b| b.exact),
        lag_seconds,
        events_per_second,
        eta_seconds,
    }
}
