//! `POST /api/projections/{name}/pause|resume|reset|rebuild|rollback` and
//! `GET /api/projections/{name}/dead-letters`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Shared, blocking, refuse, slots};
use crate::store::DataDir;
use crate::supervisor::Operation;

/// The optional body of an operation: a rollback's target.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Body {
    to: Option<String>,
}

/// Hands the operation to the supervisor and answers with what it did (200) or why not (400).
pub(super) async fn operate(
    State(shared): State<Shared>,
    Path((name, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(mut operation) = Operation::named(&action) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("no operation {action:?}: pause, resume, reset, rebuild or rollback"),
        );
    };
    // An empty body is no body; anything else must be the body an operation takes. A body
    // that does not parse is refused, never read as "no target" (a rollback would then go to
    // another version than the one asked for).
    let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(error) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not {{}} or {{\"to\": \"<version>\"}}: {error}"),
                );
            }
        }
    };
    match (&mut operation, body.to) {
        (Operation::Rollback { to }, target) => *to = target,
        (_, Some(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("{action} takes no \"to\"; only rollback does"),
            );
        }
        (_, None) => {}
    }
    let Some(operator) = shared.served.operator.clone() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "this process does not run projections it could change",
        );
    };
    let Some(_slot) = slots::take(&shared.operations).await else {
        return slots::busy(
            "other operations are waiting for their answers; retry in a moment".into(),
        );
    };
    match operator.ask(&name, operation).await {
        Ok(message) => Json(json!({ "message": message })).into_response(),
        Err(error) => refuse(StatusCode::BAD_REQUEST, format!("{error:#}")),
    }
}

/// Most dead letters one listing returns.
const MAX_LISTED: usize = 1_000;

/// How many to list.
#[derive(Deserialize)]
pub(super) struct Listing {
    limit: Option<usize>,
}

/// The first dead letters of a projection (log order, without payloads) and how many there are.
pub(super) async fn dead_letters(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    Query(listing): Query<Listing>,
) -> Response {
    let limit = listing.limit.unwrap_or(100).min(MAX_LISTED);
    let Some(slot) = slots::take(&shared.queries).await else {
        return slots::busy("every query slot is taken; retry in a moment".into());
    };
    let data_dir = shared.served.data_dir.clone();
    blocking(slot, move || {
        let databases = DataDir::existing(&data_dir).current_databases()?;
        let Some((_, path)) = databases.into_iter().find(|(n, _)| *n == name) else {
            anyhow::bail!("no projection is named {name:?} in this data directory");
        };
        let (total, first) = crate::store::first_dead_letters(&path, limit)?;
        let listed: Vec<serde_json::Value> = first
            .iter()
            .map(|letter| {
                json!({
                    "id": letter.id,
                    "stream": letter.stream_id,
                    "revision": letter.stream_revision,
                    "event_id": letter.event_id,
                    "event_type": letter.event_type,
                    "attempts": letter.attempts,
                    "first_error": letter.first_error,
                    "last_error": letter.last_error,
                    "first_failed_unix_ms": letter.first_failed_unix_ms,
                    "last_failed_unix_ms": letter.last_failed_unix_ms,
                    "data_bytes": letter.data_bytes,
                })
            })
            .collect();
        Ok(json!({ "total": total, "dead_letters": listed }))
    })
    .await
}
