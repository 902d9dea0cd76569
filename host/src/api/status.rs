//! `GET /api/projections`, `GET /api/projections/{name}`, `GET /health` and `GET /ready`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::view::{View, view};
use super::{Shared, refuse, slots};
use crate::pipeline::ProjectionStatus;
use crate::store::{DataDir, now_unix_ms};

/// How long a count of dead letters is reused: a scrape or a console refresh per second must
/// not open every database each time.
const COUNTS_FRESH_FOR: Duration = Duration::from_secs(1);

/// Dead letters per projection, counted from the current databases and reused for a second.
pub(super) struct DeadLetterCounts {
    data_dir: PathBuf,
    counted: Mutex<Option<(Instant, BTreeMap<String, u64>)>>,
}

impl DeadLetterCounts {
    pub fn new(data_dir: PathBuf) -> DeadLetterCounts {
        DeadLetterCounts {
            data_dir,
            counted: Mutex::new(None),
        }
    }

    /// The counts, at most a second old (blocking: call off the async threads). A database
    /// that cannot be read is left out.
    pub fn get(&self) -> BTreeMap<String, u64> {
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, counts)) = counted.as_ref()
            && at.elapsed() < COUNTS_FRESH_FOR
        {
            return counts.clone();
        }
        let databases = DataDir::existing(&self.data_dir)
            .current_databases()
            .unwrap_or_default();
        let counts: BTreeMap<String, u64> = databases
            .into_iter()
            .filter(|(_, path)| path.is_file())
            .filter_map(|(name, path)| {
                let (total, _) = crate::store::first_dead_letters(&path, 0).ok()?;
                Some((name, total))
            })
            .collect();
        *counted = Some((Instant::now(), counts.clone()));
        counts
    }
}

/// Every projection's status and view, by name: no I/O, only the status board and the tail.
pub(super) fn views(shared: &Shared) -> Vec<(String, ProjectionStatus, View)> {
    let now = now_unix_ms();
    shared
        .served
        .status
        .projections()
        .into_iter()
        .map(|(name, status)| {
            let view = view(&status, shared.served.tail.as_ref(), now);
            (name, status, view)
        })
        .collect()
}

/// Runs `work`, which reads every database (the dead-letter counts), on a blocking thread
/// that holds one of the status-read slots until it ends, even if the client has gone.
pub(super) async fn reading(
    shared: Shared,
    work: impl FnOnce(&Shared) -> Response + Send + 'static,
) -> Response {
    let Some(slot) = slots::take(&shared.reads).await else {
        return slots::busy("too many status reads at once; retry in a moment".into());
    };
    let answer = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work(&shared)
    })
    .await;
    answer.unwrap_or_else(|error| refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

/// One projection as JSON.
fn to_json(
    name: &str,
    status: &ProjectionStatus,
    view: &View,
    dead_letters: Option<u64>,
) -> serde_json::Value {
    let rebuild = status.rebuild.as_ref().map(|r| {
        json!({
            "kind": r.kind,
            "version": r.version,
            "sha256": r.sha256,
            "position": r.position.map(|p| p.commit),
            "head": r.head.map(|p| p.commit),
            "progress": r.progress(),
            "projected": r.projected,
            "failed": r.failed,
            "events_per_second": r.events_per_second.round(),
            "eta_seconds": r.eta_seconds.map(f64::round),
            "running_seconds": r.started.elapsed().as_secs(),
        })
    });
    json!({
        "name": name,
        "version": status.version,
        "sha256": status.sha256,
        "state": view.state,
        "paused": status.paused,
        "stopped": status.stopped,
        "position": status.checkpoint.map(|p| p.commit),
        "head": view.head,
        "lag_events": view.lag_events,
        "lag_events_exact": view.lag_exact,
        "lag_seconds": view.lag_seconds.map(|s| (s * 1000.0).round() / 1000.0),
        "events_per_second": (view.events_per_second * 10.0).round() / 10.0,
        "eta_seconds": view.eta_seconds.map(|s| (s * 10.0).round() / 10.0),
        "caught_up": status.caught_up,
        "projected": status.projected,
        "failed": status.failed,
        "dead_letters": dead_letters,
        "source_error": status.source_error,
        "error": status.error,
        "rebuild": rebuild,
        "last_swap_pause_ms": status.last_swap_pause.map(|p| p.as_secs_f64() * 1e3),
        "reloads": status.reloads,
    })
}

/// `GET /api/projections`.
pub(super) async fn projections(State(shared): State<Shared>) -> Response {
    reading(shared, |shared| {
        let counts = shared.dead_letters.get();
        let projections: Vec<serde_json::Value> = views(shared)
            .iter()
            .map(|(name, status, view)| to_json(name, status, view, counts.get(name).copied()))
            .collect();
        Json(json!({
            "projections": projections,
            "unnamed_reloads": shared.served.status.unnamed_reloads(),
            "head": shared.served.tail.as_ref().and_then(|t| t.head()),
        }))
        .into_response()
    })
    .await
}

/// `GET /api/projections/{name}`.
pub(super) async fn projection(State(shared): State<Shared>, Path(name): Path<String>) -> Response {
    let Some(status) = shared.served.status.projection(&name) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("no projection is named {name:?} here (GET /api/projections lists them)"),
        );
    };
    reading(shared, move |shared| {
        let view = view(&status, shared.served.tail.as_ref(), now_unix_ms());
        let dead_letters = shared.dead_letters.get().get(&name).copied();
        Json(to_json(&name, &status, &view, dead_letters)).into_response()
    })
    .await
}

/// `GET /health`: the process answers.
pub(super) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive" }))
}

/// `GET /ready`: 200 when every projection is caught up or within the configured lag; 503
/// with the reasons otherwise.
pub(super) async fn ready(State(shared): State<Shared>) -> Response {
    // A probe polled often: the status board only, no database opened.
    let max_lag = shared.settings.ready_max_lag_seconds as f64;
    let views = views(&shared);
    let mut reasons = Vec::new();
    if views.is_empty() {
        reasons.push("no projection is running yet".to_string());
    }
    for (name, status, view) in &views {
        match view.state {
            "stopped" => reasons.push(format!(
                "{name} stopped: {}",
                status.stopped.as_deref().unwrap_or("?")
            )),
            "not running" => reasons.push(format!("{name} is not running")),
            _ => match view.lag_seconds {
                Some(lag) if lag > max_lag => reasons.push(format!(
                    "{name} is {lag:.1} s behind (more than [api] ready_max_lag_seconds = \
                     {max_lag})"
                )),
                None if !status.caught_up => reasons.push(format!("{name} has not caught up yet")),
                _ => {}
            },
        }
    }
    if reasons.is_empty() {
        return Json(json!({ "ready": true })).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "ready": false, "reasons": reasons })),
    )
        .into_response()
}
