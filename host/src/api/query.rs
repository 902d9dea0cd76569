//! `GET /api/query?sql=…` and `POST /api/query` (`{"sql": "…"}`): one read-only statement over
//! the projections, answered as `{"columns", "rows", "positions"}`, where `positions` gives
//! each projection the query read and the committed position its rows reflect.
//!
//! Read your own writes: with `min_position=P` the query waits, up to `wait_ms` (at most
//! `[api]`'s bound), until every projection it reads reflects the log up to P: its position
//! is there, or nothing its filter selects lies between (the log's tail tells). `fresh=true`
//! asks the source for its head when the query arrives and waits for that. A wait that runs
//! out is a 504 naming what each projection had reached; a paused or stopped projection is
//! waited for like any other, so the bound matters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Shared, blocking, refuse, slots};
use crate::store::{Reader, ResultCut};

/// How often a waiting query looks again.
const POLL: Duration = Duration::from_millis(10);

/// Longest the head of the source is asked for (`fresh=true`).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// A query and how fresh its answer must be.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Asked {
    sql: Option<String>,
    min_position: Option<u64>,
    fresh: Option<bool>,
    wait_ms: Option<u64>,
}

pub(super) async fn get(State(shared): State<Shared>, Query(asked): Query<Asked>) -> Response {
    run(shared, asked).await
}

pub(super) async fn post(
    State(shared): State<Shared>,
    Query(mut asked): Query<Asked>,
    Json(body): Json<Asked>,
) -> Response {
    asked.sql = body.sql.or(asked.sql);
    asked.min_position = body.min_position.or(asked.min_position);
    asked.fresh = body.fresh.or(asked.fresh);
    asked.wait_ms = body.wait_ms.or(asked.wait_ms);
    run(shared, asked).await
}

async fn run(shared: Shared, asked: Asked) -> Response {
    let Some(sql) = asked.sql else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "no query: give one statement as `sql` (a query parameter, or in the JSON body)",
        );
    };
    let mut target = asked.min_position;
    if asked.fresh == Some(true) {
        match head(&shared).await {
            Ok(head) => target = target.max(head),
            Err(error) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("fresh=true needs the source's head, and it did not answer: {error:#}"),
                );
            }
        }
    }
    if let Some(target) = target {
        let Ok(_waiting) = shared.waiting.clone().try_acquire_owned() else {
            return slots::busy(
                "too many queries are waiting for a position; retry in a moment".into(),
            );
        };
        let wait = asked
            .wait_ms
            .map_or(shared.settings.max_wait, Duration::from_millis)
            .min(shared.settings.max_wait);
        if let Err(response) = wait_for(&shared, &sql, target, wait).await {
            return response;
        }
    }
    let Some(slot) = slots::take(&shared.queries).await else {
        return slots::busy(format!(
            "{} queries are running, the most the API runs at once ([api] \
             max_concurrent_queries); retry in a moment",
            shared.settings.max_concurrent_queries
        ));
    };
    let bounds = shared.settings.bounds;
    let data_dir = shared.served.data_dir.clone();
    blocking(slot, move || {
        let result = Reader::open(&data_dir)?
            .bounded(bounds)
            .query(&sql)
            .map_err(name_the_setting)?;
        Ok(json!({
            "columns": result.columns,
            "rows": result.to_json(),
            "positions": result.positions,
        }))
    })
    .await
}

/// The head of the log: the source's own answer.
async fn head(shared: &Shared) -> anyhow::Result<Option<u64>> {
    let Some(source) = &shared.served.source else {
        return Ok(shared.served.tail.as_ref().and_then(|t| t.head()));
    };
    let head = tokio::time::timeout(HEAD_TIMEOUT, source.head())
        .await
        .map_err(|_| anyhow::format_err!("no answer within {} s", HEAD_TIMEOUT.as_secs()))??;
    Ok(head.map(|h| h.commit))
}

/// Waits until every projection `sql` reads reflects the log up to `target`, for at most
/// `wait`; the refusal to send otherwise.
async fn wait_for(shared: &Shared, sql: &str, target: u64, wait: Duration) -> Result<(), Response> {
    let data_dir = shared.served.data_dir.clone();
    let owned = sql.to_string();
    let read =
        tokio::task::spawn_blocking(move || Reader::open(&data_dir).map(|r| r.read_by(&owned)))
            .await
            .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    let deadline = Instant::now() + wait;
    loop {
        let mut behind = BTreeMap::new();
        for name in &read {
            let Some(status) = shared.served.status.projection(name) else {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the query reads {name}, which this process does not run, so it cannot \
                         wait for its position; query without min_position or fresh"
                    ),
                ));
            };
            let position = status.checkpoint.map(|p| p.commit);
            let covered = position.is_some_and(|p| p >= target)
                || shared
                    .served
                    .tail
                    .as_ref()
                    .and_then(|tail| tail.covers(position, &status.filter, target))
                    .unwrap_or(false);
            if !covered {
                behind.insert(name.clone(), position);
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err((
                StatusCode::GATEWAY_TIMEOUT,
                Json(json!({
                    "error": format!(
                        "waited {} ms and the projections read have not reached position \
                         {target}; ask again, or with a longer wait_ms (at most {} ms)",
                        wait.as_millis(),
                        shared.settings.max_wait.as_millis()
                    ),
                    "min_position": target,
                    "positions": behind,
                })),
            )
                .into_response());
        }
        tokio::time::sleep(POLL).await;
    }
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
