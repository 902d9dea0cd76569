//! The node's HTTP endpoints, served on the gRPC port as the real server serves them beside
//! gRPC: what health checks, orchestrators and client test harnesses call.
//!
//! - `GET|HEAD /health/live`: 204 while the node serves (or the status `?liveCode=N` asks
//!   for), 503 once it is shutting down.
//! - `GET /info`: `{"dbVersion", "esVersion", "state": "leader", "features", "authentication"}`
//!   as a single node answers; every optional feature (projections, user management, AtomPub)
//!   is off, since devstore serves none of them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;
use tonic::service::Routes;

use crate::grpc::SERVER_VERSION;

/// The status a live node answers `/health/live` with unless asked for another.
const LIVE: StatusCode = StatusCode::NO_CONTENT;

/// `routes` with the HTTP endpoints added; `shutdown` turns true when the node stops.
pub fn add(routes: Routes, shutdown: watch::Receiver<bool>) -> Routes {
    let endpoints = axum::Router::new()
        .route("/health/live", get(live).head(live))
        .route("/info", get(info))
        .with_state(shutdown);
    let router = routes.into_axum_router().merge(endpoints).fallback(unknown);
    Routes::from(router)
}

/// A path nothing serves: for a gRPC call, the `UNIMPLEMENTED` status clients detect missing
/// features by (what tonic answers); for anything else, 404 as the real server's HTTP does.
async fn unknown(headers: HeaderMap) -> axum::response::Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        tonic::Status::unimplemented("").into_http().into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn live(State(shutdown): State<watch::Receiver<bool>>, uri: Uri) -> StatusCode {
    if *shutdown.borrow() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    // `?liveCode=200` for checkers that only accept 200; anything unusable is ignored.
    uri.query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("liveCode="))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(LIVE)
}

async fn info() -> impl IntoResponse {
    let body = serde_json::json!({
        "dbVersion": SERVER_VERSION,
        "esVersion": SERVER_VERSION,
        "state": "leader",
        "features": {
            "projections": false,
            "userManagement": false,
            "atomPub": false,
        },
        "authentication": null,
    });
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
}
