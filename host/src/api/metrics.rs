//! `GET /metrics`: the process's metrics in the Prometheus text format. The counters are kept
//! by the projections as they work; the gauges are read here, at each scrape, from the same
//! views the status endpoints show.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Shared, refuse, status};
use crate::metrics::{AlertGauges, Gauges, ProjectionGauges, SourceGauges, resident_bytes};

/// The gauges now (blocking: the dead-letter counts open the databases).
fn gauges(shared: &Shared) -> Gauges {
    let views = status::views(shared);
    let counts = shared.dead_letters.get();
    // A run holds its database open from its start to its end: serving runs that have not
    // stopped, and rebuilds.
    let open_databases = views
        .iter()
        .map(|(_, status, _)| {
            let serving = status.serving_run.is_some() && status.stopped.is_none();
            u64::from(serving) + u64::from(status.rebuild.is_some())
        })
        .sum();
    let projections = views
        .into_iter()
        .map(|(name, status, view)| ProjectionGauges {
            dead_letters_pending: counts.get(&name).copied(),
            name,
            state: view.state,
            position: status.checkpoint.map(|p| p.commit),
            head: view.head,
            lag_events: view.lag_events,
            lag_seconds: view.lag_seconds,
            rebuild_progress: status.rebuild.as_ref().and_then(|r| r.progress()),
            events_per_second: view.events_per_second,
        })
        .collect();
    let health = shared.served.status.source_health();
    let described = shared.served.source.as_ref().map(|s| s.describe());
    let sources = described
        .or(health.source)
        .map(|source| SourceGauges {
            source,
            outage_seconds: health.outage.as_secs_f64(),
            down: health.down,
        })
        .into_iter()
        .collect();
    Gauges {
        projections,
        sources,
        resident_bytes: resident_bytes(),
        open_databases,
        cache: shared
            .served
            .runtime
            .as_ref()
            .and_then(|r| r.cache_stats())
            .map(|stats| (stats.hits, stats.misses)),
        alerts: shared.served.alerts.as_ref().map(|alerts| {
            let counts = alerts.snapshot();
            AlertGauges {
                delivered: counts.delivered,
                failed: counts.failed,
                dropped: counts.dropped,
                pending: counts.pending,
            }
        }),
    }
}

/// The Prometheus text, encoded on a blocking thread that holds a status-read slot (the
/// gauges read databases).
pub(super) async fn scrape(State(shared): State<Shared>) -> Response {
    status::reading(shared, |shared| {
        match shared.served.metrics.encode(gauges(shared)) {
            Ok(text) => (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Err(error) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}")),
        }
    })
    .await
}
