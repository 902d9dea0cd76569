//! `GET /metrics`: the process's metrics in the Prometheus text format. The counters are kept
//! by the projections as they work; the gauges are read here, at each scrape, from the same
//! views the status endpoints show.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Shared, refuse, slots, status};
use crate::metrics::{AlertGauges, Gauges, ProjectionGauges, SourceGauges, resident_bytes};

/// Tells the metrics where their gauges come from.
pub(super) fn install_gauges(shared: &Shared) {
    let shared_for_gauges = shared.clone();
    shared
        .served
        .metrics
        .set_gauges(move || gauges(&shared_for_gauges));
}

fn gauges(shared: &Shared) -> Gauges {
    let views = status::views(shared);
    // A run holds its database open from its start to its end: serving runs that have not
    // stopped, and rebuilds.
    let open_databases = views
        .iter()
        .map(|(_, status, ..)| {
            let serving = status.serving_run.is_some() && status.stopped.is_none();
            u64::from(serving) + u64::from(status.rebuild.is_some())
        })
        .sum();
    let projections = views
        .into_iter()
        .map(|(name, status, view, dead_letters)| ProjectionGauges {
            name,
            state: view.state,
            position: status.checkpoint.map(|p| p.commit),
            head: view.head,
            lag_events: view.lag_events,
            lag_seconds: view.lag_seconds,
            dead_letters_pending: dead_letters,
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

/// The Prometheus text (encoded off the async threads: the gauges read databases).
pub(super) async fn scrape(State(shared): State<Shared>) -> Response {
    let Some(_slot) = slots::take(&shared.reads).await else {
        return slots::busy("too many status reads at once; retry in a moment".into());
    };
    let metrics = shared.served.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.encode()).await {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(error)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}")),
        Err(error) => refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}
