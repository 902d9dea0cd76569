//! Bounds on the work the API takes on at once. A query holds a blocking thread, and up to its
//! result bounds in memory, until it ends; an operation waits for the supervisor's answer.
//! A request that finds every slot taken waits a little, then is told to come back (503 with
//! `Retry-After`), so a burst of requests queues neither threads nor memory.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request waits for a slot before it is refused.
pub(super) const SLOT_WAIT: Duration = Duration::from_secs(1);

/// Seconds a refused client is asked to wait before it retries.
const RETRY_AFTER_SECONDS: u64 = 1;

/// A slot of `slots`, if one frees up within [`SLOT_WAIT`]. Holding it holds the slot.
pub(super) async fn take(slots: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout(SLOT_WAIT, Arc::clone(slots).acquire_owned())
        .await
        .ok()?
        .ok()
}

/// The answer to a request that found no slot: 503, `Retry-After`, and `message`.
pub(super) fn busy(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())],
        Json(json!({ "error": message })),
    )
        .into_response()
}
