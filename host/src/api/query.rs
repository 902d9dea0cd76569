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
use std::sync::Arc;
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
    let target = asked.min_position;
    let fresh = asked.fresh == Some(true);
    if target.is_none() && !fresh {
        return match answer(&shared, sql).await {
            Ok((response, _)) | Err(response) => response,
        };
    }
    // Waiting queries are bounded before anything else is done for them (a head query to
    // the event store included).
    let Ok(_waiting) = shared.waiting.clone().try_acquire_owned() else {
        return slots::busy(
            "too many queries are waiting for a position; retry in a moment".into(),
        );
    };
    let mut target = target.unwrap_or(0);
    if fresh {
        match head(&shared).await {
            Ok(head) => target = target.max(head.unwrap_or(0)),
            Err(error) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("fresh=true needs the source's head, and it did not answer: {error:#}"),
                );
            }
        }
    }
    let wait = asked
        .wait_ms
        .map_or(shared.settings.max_wait, Duration::from_millis)
        .min(shared.settings.max_wait);
    let deadline = Instant::now() + wait;
    loop {
        if let Err(behind) = wait_for(&shared, &sql, target, deadline).await {
            return timed_out(&shared, target, wait, behind);
        }
        // The positions the answer reflects are the authority: a cut-over between the wait
        // and the query may have switched to a database a little behind.
        let (answer, positions) = match answer(&shared, sql.clone()).await {
            Ok(answered) => answered,
            Err(response) => return response,
        };
        let behind = not_covered(&shared, &positions, target);
        if behind.is_empty() {
            return answer;
        }
        if Instant::now() >= deadline {
            return timed_out(&shared, target, wait, behind);
        }
    }
}

/// Runs `sql` once a query slot is free: the answer, and the positions it reflects.
async fn answer(
    shared: &Shared,
    sql: String,
) -> Result<(Response, BTreeMap<String, Option<u64>>), Response> {
    let Some(slot) = slots::take(&shared.queries).await else {
        return Err(slots::busy(format!(
            "{} queries are running, the most the API runs at once ([api] \
             max_concurrent_queries); retry in a moment",
            shared.settings.max_concurrent_queries
        )));
    };
    let bounds = shared.settings.bounds;
    let data_dir = shared.served.data_dir.clone();
    let positions = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let seen = Arc::clone(&positions);
    let response = blocking(slot, move || {
        let result = Reader::open(&data_dir)?
            .bounded(bounds)
            .query(&sql)
            .map_err(name_the_setting)?;
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = result.positions.clone();
        Ok(json!({
            "columns": result.columns,
            "rows": result.to_json(),
            "positions": result.positions,
        }))
    })
    .await;
    if response.status() != StatusCode::OK {
        return Err(response);
    }
    let positions = std::mem::take(&mut *positions.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((response, positions))
}

/// The projections of `positions` that do not reflect the log up to `target`, with their
/// positions.
fn not_covered(
    shared: &Shared,
    positions: &BTreeMap<String, Option<u64>>,
    target: u64,
) -> BTreeMap<String, Option<u64>> {
    positions
        .iter()
        .filter(|(name, position)| !covers(shared, name, **position, target))
        .map(|(name, position)| (name.clone(), *position))
        .collect()
}

/// Whether projection `name` at `position` reflects the log up to `target`.
fn covers(shared: &Shared, name: &str, position: Option<u64>, target: u64) -> bool {
    if position.is_some_and(|p| p >= target) {
        return true;
    }
    let Some(status) = shared.served.status.projection(name) else {
        return false;
    };
    shared
        .served
        .tail
        .as_ref()
        .and_then(|tail| tail.covers(position, &status.filter, target))
        .unwrap_or(false)
}

/// The 504 of a wait that ran out.
fn timed_out(
    shared: &Shared,
    target: u64,
    wait: Duration,
    behind: BTreeMap<String, Option<u64>>,
) -> Response {
    (
        StatusCode::GATEWAY_TIMEOUT,
        Json(json!({
            "error": format!(
                "waited {} ms and the projections read have not reached position {target}; \
                 ask again, or with a longer wait_ms (at most {} ms)",
                wait.as_millis(),
                shared.settings.max_wait.as_millis()
            ),
            "min_position": target,
            "positions": behind,
        })),
    )
        .into_response()
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

/// Waits until every projection `sql` reads reflects the log up to `target` (as the status
/// board shows them), or `deadline`: then the projections still behind.
async fn wait_for(
    shared: &Shared,
    sql: &str,
    target: u64,
    deadline: Instant,
) -> Result<(), BTreeMap<String, Option<u64>>> {
    let data_dir = shared.served.data_dir.clone();
    let owned = sql.to_string();
    let read =
        tokio::task::spawn_blocking(move || Reader::open(&data_dir).map(|r| r.read_by(&owned)))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
    loop {
        let positions: BTreeMap<String, Option<u64>> = read
            .iter()
            .map(|name| {
                let status = shared.served.status.projection(name);
                let position = status.and_then(|s| s.checkpoint).map(|p| p.commit);
                (name.clone(), position)
            })
            .collect();
        let behind = not_covered(shared, &positions, target);
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(behind);
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
