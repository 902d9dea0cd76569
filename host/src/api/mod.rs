//! The HTTP API (the only user of axum): the operations surface of a running projector.
//!
//! - `GET /` (and `/console.css`, `/console.js`): the web console (`console.rs`).
//! - `GET /api/projections`, `GET /api/projections/{name}`: each projection's state, version,
//!   position, head, lag in events and seconds, events/s, time to catch up, dead letters, last
//!   error and reload history (`status.rs`, figures from `view.rs`).
//! - `GET /health` (the process answers) and `GET /ready` (every projection caught up or
//!   within `[api] ready_max_lag_seconds`; 503 with the reasons otherwise).
//! - `GET /metrics`: Prometheus text (`metrics.rs`).
//! - `POST /api/projections/{name}/pause|resume|reset|rebuild|rollback` (rollback takes an
//!   optional `{"to": "<version>"}`), and `GET /api/projections/{name}/dead-letters`
//!   (`control.rs`).
//! - `GET /api/query?sql=…` or `POST /api/query` with `{"sql": "…"}`: rows, columns and the
//!   position of each projection read; `min_position` / `fresh` wait until the projections
//!   read have committed that far (`query.rs`).
//!
//! Anyone who can reach it can read every projection and change what runs, so: it listens on
//! loopback unless given a token (`auth.rs`), requests must name this server in `Host`
//! (`host.rs`) and come from its own pages when they change something, and what one request
//! can take is bounded (query deadline, result bounds, `slots.rs`), and so is what a
//! connection can hold (a header-read timeout and a cap on open connections, `serve.rs`). Refusals are JSON
//! `{"error": "…"}`: 400 (the request), 401 (the token), 403 (another site), 404, 421 (the
//! `Host`), 503 (busy, with `Retry-After`) and 504 (a freshness wait that ran out).

mod auth;
mod client;
mod console;
mod control;
mod host;
mod metrics;
mod query;
mod serve;
mod slots;
mod status;
mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::alert::Alerts;
use crate::metrics::Metrics;
use crate::pipeline::{Status, Tail};
use crate::runtime::Runtime;
use crate::source::EventSource;
use crate::store::{QUERY_DEADLINE, ResultBounds};
use crate::supervisor::Operator;

pub use auth::MIN_TOKEN_CHARS;
pub use client::Client;
pub use serve::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};

/// What the API lets its clients ask of it (`[api]` in the config file).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// Where it listens when the command line does not say (`[api] listen`).
    pub listen: Option<SocketAddr>,
    /// The token every request must carry (`Authorization: Bearer …`); required to listen
    /// anywhere but loopback.
    pub token: Option<String>,
    /// What one query may return.
    pub bounds: ResultBounds,
    /// Queries run at once; another waits up to a second for one to end, then gets 503.
    pub max_concurrent_queries: usize,
    /// Longest a query waits for `min_position` / `fresh`.
    pub max_wait: Duration,
    /// Lag (seconds) up to which a projection that is not caught up still counts as ready.
    pub ready_max_lag_seconds: u64,
}

/// Everything but the token, which must not reach a log through a `{:?}`.
impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("bounds", &self.bounds)
            .field("max_concurrent_queries", &self.max_concurrent_queries)
            .field("max_wait", &self.max_wait)
            .field("ready_max_lag_seconds", &self.ready_max_lag_seconds)
            .finish()
    }
}

impl Default for ApiSettings {
    fn default() -> ApiSettings {
        ApiSettings {
            listen: None,
            token: None,
            bounds: ResultBounds {
                max_rows: 10_000,
                max_bytes: 16 << 20,
            },
            max_concurrent_queries: 4,
            max_wait: Duration::from_secs(30),
            ready_max_lag_seconds: 30,
        }
    }
}

/// Where the API listens when nobody says: loopback, on this port.
pub const DEFAULT_PORT: u16 = 7070;

/// Operations (pause, reset, …) and rollbacks in flight at once: each waits for the supervisor.
const OPERATIONS_AT_ONCE: usize = 2;

/// Status reads at once (see `Shared::reads`).
const READS_AT_ONCE: usize = 8;

/// Queries waiting for a position at once; each is a parked task, but not an unbounded number.
const WAITING_QUERIES: usize = 64;

/// How long the API, once told to stop, waits for requests in flight: a query ends by its
/// deadline. Past it the server stops without them, so no request holds the process up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(QUERY_DEADLINE.as_secs() + 1);

/// What the API serves: the process's parts it reports on and acts through.
#[derive(Clone)]
pub struct Served {
    /// The data directory queries read.
    pub data_dir: PathBuf,
    /// The projections' status board.
    pub status: Status,
    /// The log's tail (lag, freshness); without it lag is unknown and waits use positions.
    pub tail: Option<Tail>,
    /// What `/metrics` encodes.
    pub metrics: Metrics,
    /// Where operations go; without it they are refused.
    pub operator: Option<Operator>,
    /// The plugin runtime (its compile cache's figures).
    pub runtime: Option<Runtime>,
    /// The source (`fresh=true` asks it for its head).
    pub source: Option<Arc<dyn EventSource>>,
    /// The alerts (their delivery counts).
    pub alerts: Option<Alerts>,
}

/// What the handlers share.
#[derive(Clone)]
struct Shared {
    served: Served,
    settings: Arc<ApiSettings>,
    queries: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    operations: Arc<Semaphore>,
    /// Status reads (`/api/projections`, `/ready`, `/metrics`) at once: each runs on a
    /// blocking thread and may open every database to count dead letters.
    reads: Arc<Semaphore>,
    dead_letters: Arc<status::DeadLetterCounts>,
}

/// A running API server.
pub struct Api {
    /// Where it listens (the port is known even when 0 was asked for).
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Api {
    /// Binds `listen` and serves until `shutdown` resolves. Listening anywhere but loopback
    /// without a token is refused.
    pub async fn start(
        listen: SocketAddr,
        served: Served,
        settings: ApiSettings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Api> {
        auth::check_settings(listen, settings.token.as_deref())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the API to {listen}"))?;
        let local_addr = listener.local_addr()?;
        let shared = Shared {
            dead_letters: Arc::new(status::DeadLetterCounts::new(served.data_dir.clone())),
            served,
            queries: Arc::new(Semaphore::new(settings.max_concurrent_queries)),
            waiting: Arc::new(Semaphore::new(WAITING_QUERIES)),
            operations: Arc::new(Semaphore::new(OPERATIONS_AT_ONCE)),
            reads: Arc::new(Semaphore::new(READS_AT_ONCE)),
            settings: Arc::new(settings),
        };
        let router = Router::new()
            .route("/", get(console::page))
            .route("/console.css", get(console::style))
            .route("/console.js", get(console::script))
            .route("/health", get(status::health))
            .route("/ready", get(status::ready))
            .route("/metrics", get(metrics::scrape))
            .route("/api/projections", get(status::projections))
            .route("/api/projections/:name", get(status::projection))
            .route(
                "/api/projections/:name/dead-letters",
                get(control::dead_letters),
            )
            .route("/api/projections/:name/:action", post(control::operate))
            .route("/api/query", get(query::get).post(query::post))
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                auth::check,
            ))
            .layer(axum::middleware::from_fn(errors_as_json))
            .layer(axum::middleware::from_fn(host::check))
            .with_state(shared);
        let task = tokio::spawn(serve::serve(listener, router, shutdown));
        Ok(Api { local_addr, task })
    }

    /// Waits for the server to finish the requests in flight after its shutdown signal, for
    /// at most [`SHUTDOWN_GRACE`]; then stops it without them (a client that never finishes
    /// its request, an operation still waiting for its answer).
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

/// Parses an `--api` value: `HOST:PORT`, or a bare `PORT` on loopback.
pub fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    match text.parse::<SocketAddr>() {
        Ok(address) => Ok(address),
        Err(_) => bail!(
            "{text:?} is not an address to listen on: give HOST:PORT (127.0.0.1:{DEFAULT_PORT}) \
             or a port ({DEFAULT_PORT}, on 127.0.0.1)"
        ),
    }
}

/// Most of a non-JSON error body read to rewrap it.
const MAX_ERROR_BYTES: usize = 4096;

/// Turns the error answers axum writes itself (a query string or body that does not parse, a
/// missing content type, an unknown path) into `{"error": …}` like every other refusal.
async fn errors_as_json(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), MAX_ERROR_BYTES)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        text
    };
    refuse(status, message)
}

/// An error answer: `status` with `{"error": message}`.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
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
        Ok(Err(error)) => refuse(StatusCode::BAD_REQUEST, format!("{error:#}")),
        Err(error) => refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}
