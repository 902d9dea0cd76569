//! The HTTP API (the only user of axum): read-only SQL over the projection databases, and
//! the live status of each projection.
//!
//! - `GET /api/projections`: every projection's version and module hash, state (`running`,
//!   `rebuilding` with the rebuild's progress, `stopped` with the reason), position, whether it
//!   has caught up, counts, why its source is failing if it is, and its last reload outcomes.
//! - `POST /api/projections/{name}/rollback` (optional body `{"to": "<version>"}`): the same as
//!   `projector rollback`.
//! - `GET /api/query?sql=…` or `POST /api/query` with `{"sql": "…"}`: the rows as JSON
//!   objects, as `projector query --format json` prints them. Statements that write are
//!   refused by the same read-only authorizer as `projector query`, and so is a text holding
//!   more than one statement.
//!
//! It listens only where `--api` tells it to (there is no default) and has no authentication:
//! bind it to 127.0.0.1 or a trusted network. Anyone who can reach it can run queries, so
//! what one request can take is bounded: each query is stopped after
//! [`crate::store::QUERY_DEADLINE`], its result is bounded in rows and bytes
//! ([`ApiSettings::bounds`]), queries and rollbacks run a few at a time (`slots`), and
//! requests must name this server in `Host` (`host`). Refusals are 400 (the query), 421 (the
//! `Host`) and 503 (no slot free, with `Retry-After`), each with `{"error": "…"}`.

mod host;
mod slots;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::pipeline::Status;
use crate::store::{DataDir, QUERY_DEADLINE, Reader, ResultBounds, ResultCut};
use crate::supervisor::{RollbackRequest, request_rollback};

/// What the API lets its clients ask of it (`[api]` in the config file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    /// What one query may return.
    pub bounds: ResultBounds,
    /// Queries run at once; another waits up to a second for one to end, then gets 503.
    pub max_concurrent_queries: usize,
}

impl Default for ApiSettings {
    fn default() -> ApiSettings {
        ApiSettings {
            bounds: ResultBounds {
                max_rows: 10_000,
                max_bytes: 16 << 20,
            },
            max_concurrent_queries: 4,
        }
    }
}

/// Rollback requests in flight at once: each holds a thread until the supervisor answers.
const ROLLBACKS_AT_ONCE: usize = 1;

/// How long the API, once told to stop, waits for requests in flight: a query ends by its
/// deadline. Past it the server stops without them, so no request holds the process up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(QUERY_DEADLINE.as_secs() + 1);

/// What the handlers share.
#[derive(Clone)]
struct Shared {
    data_dir: PathBuf,
    status: Status,
    settings: ApiSettings,
    queries: Arc<Semaphore>,
    rollbacks: Arc<Semaphore>,
}

/// A running API server.
pub struct Api {
    /// Where it listens (the port is known even when 0 was asked for).
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Api {
    /// Binds `listen` and serves until `shutdown` resolves.
    pub async fn start(
        listen: SocketAddr,
        data_dir: PathBuf,
        status: Status,
        settings: ApiSettings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Api> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the API to {listen}"))?;
        let local_addr = listener.local_addr()?;
        let router = Router::new()
            .route("/api/projections", get(projections))
            .route("/api/projections/:name/rollback", post(rollback))
            .route("/api/query", get(query_get).post(query_post))
            .layer(axum::middleware::from_fn(host::check))
            .with_state(Shared {
                data_dir,
                status,
                settings,
                queries: Arc::new(Semaphore::new(settings.max_concurrent_queries)),
                rollbacks: Arc::new(Semaphore::new(ROLLBACKS_AT_ONCE)),
            });
        let service = router.into_make_service_with_connect_info::<host::Reached>();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %error, "the API stopped");
            }
        });
        Ok(Api { local_addr, task })
    }

    /// Waits for the server to finish the requests in flight after its shutdown signal, for
    /// at most [`SHUTDOWN_GRACE`]; then stops it without them (a client that never finishes
    /// its request, a rollback still waiting for its answer).
    pub async fn stopped(mut self) {
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "the API still had requests in flight; stopping without them"
            );
            self.task.abort();
        }
    }
}

async fn projections(State(shared): State<Shared>) -> Json<serde_json::Value> {
    let projections: Vec<serde_json::Value> = shared
        .status
        .projections()
        .into_iter()
        .map(|(name, status)| {
            // Entries come from the history too (projections not started in this process).
            let state = if status.stopped.is_some() {
                "stopped"
            } else if status.serving_run.is_none() {
                "not running"
            } else if status.rebuild.is_some() {
                "rebuilding"
            } else {
                "running"
            };
            let rebuild = status.rebuild.as_ref().map(|r| {
                json!({
                    "kind": r.kind,
                    "version": r.version,
                    "sha256": r.sha256,
                    "position": r.position.map(|p| p.commit),
                    "head": r.head.map(|p| p.commit),
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
                "state": state,
                "stopped": status.stopped,
                "position": status.checkpoint.map(|p| p.commit),
                "caught_up": status.caught_up,
                "projected": status.projected,
                "failed": status.failed,
                "source_error": status.source_error,
                "error": status.error,
                "rebuild": rebuild,
                "last_swap_pause_ms": status.last_swap_pause.map(|p| p.as_secs_f64() * 1e3),
                "reloads": status.reloads,
            })
        })
        .collect();
    Json(json!({
        "projections": projections,
        "unnamed_reloads": shared.status.unnamed_reloads(),
    }))
}

/// The body of a rollback request.
#[derive(Default, Deserialize)]
struct RollbackBody {
    to: Option<String>,
}

/// Asks the supervisor (through its control folder, as `projector rollback` does) to roll
/// `name` back, on a blocking thread (it waits for the answer); a refusal is a 400 with the
/// reason.
async fn rollback(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    body: Option<Json<RollbackBody>>,
) -> Response {
    let Some(slot) = slots::take(&shared.rollbacks).await else {
        return slots::busy(
            "another rollback request is waiting for its answer; retry when it has one".into(),
        );
    };
    let to = body.and_then(|Json(body)| body.to);
    let data = DataDir::existing(&shared.data_dir);
    let request = RollbackRequest {
        projection: name,
        to,
    };
    blocking(slot, move || {
        let message = request_rollback(&data, request, Duration::from_secs(30))?;
        Ok(json!({ "message": message }))
    })
    .await
}

/// The query of `GET /api/query?sql=…` and of a `POST` body.
#[derive(Deserialize)]
struct Sql {
    sql: String,
}

async fn query_get(State(shared): State<Shared>, Query(sql): Query<Sql>) -> Response {
    run_query(shared, sql.sql).await
}

async fn query_post(State(shared): State<Shared>, Json(sql): Json<Sql>) -> Response {
    run_query(shared, sql.sql).await
}

/// Runs `sql` on a blocking thread (SQLite is synchronous) once a query slot is free; a
/// refused or failing statement, or a result past the bounds, is a 400 with the reason.
async fn run_query(shared: Shared, sql: String) -> Response {
    let Some(slot) = slots::take(&shared.queries).await else {
        return slots::busy(format!(
            "{} queries are running, the most the API runs at once ([api] \
             max_concurrent_queries); retry in a moment",
            shared.settings.max_concurrent_queries
        ));
    };
    let bounds = shared.settings.bounds;
    blocking(slot, move || {
        let result = Reader::open(&shared.data_dir)?
            .bounded(bounds)
            .query(&sql)
            .map_err(name_the_setting)?;
        Ok(result.to_json())
    })
    .await
}

/// A [`ResultCut`] with the setting that bounds it, so whoever runs the API knows what to
/// change; other errors as they are.
fn name_the_setting(error: anyhow::Error) -> anyhow::Error {
    let setting = match error.downcast_ref::<ResultCut>() {
        Some(ResultCut::Rows(_)) => "max_result_rows",
        Some(ResultCut::Bytes(_) | ResultCut::Value(_)) => "max_result_mib",
        None => return error,
    };
    anyhow::format_err!("{error} (the API's bound: [api] {setting})")
}

/// Runs `work` on a blocking thread, holding `slot` until it ends (even if the client has
/// gone): its JSON is a 200, its error a 400 with the reason, and a panic a 500.
async fn blocking(
    slot: OwnedSemaphorePermit,
    work: impl FnOnce() -> anyhow::Result<serde_json::Value> + Send + 'static,
) -> Response {
    let work = move || {
        let _slot = slot;
        work()
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(error)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("{error:#}") })),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}
