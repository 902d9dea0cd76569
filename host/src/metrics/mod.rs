//! Prometheus metrics (the only user of `prometheus-client`): the counters and histograms the
//! projection threads, feeds and supervisor update as they work, and the gauges the scraper reads
//! from the status board and hands to [`Metrics::encode`].
//!
//! Names follow Prometheus conventions: a `projector_` prefix, base units (seconds, bytes),
//! `_total` on counters, a HELP text on every family. Per-projection families carry a
//! `projection` label, and those a rebuild also moves carry `role` (`serving`, `rebuilding`),
//! so a shadow rebuild's work is visible without inflating what the serving version did.
//!
//! The hot path touches only atomics: each run clones its own counter handles once
//! ([`Metrics::run`]) and adds to them per batch.

mod gauges;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use gauges::{AlertGauges, Gauges, ProjectionGauges, STATES, SourceGauges, resident_bytes};

/// Labels of a projection's run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    projection: String,
    role: &'static str,
}

/// Labels of a reload outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    projection: String,
    outcome: String,
}

/// Labels of a source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

type Seconds = Counter<f64, std::sync::atomic::AtomicU64>;

/// Every metric of one process; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    projected: Family<RunLabels, Counter>,
    failed: Family<RunLabels, Counter>,
    batches: Family<RunLabels, Counter>,
    batch_seconds: Family<RunLabels, Histogram>,
    plugin_seconds: Family<RunLabels, Seconds>,
    sqlite_seconds: Family<RunLabels, Seconds>,
    rows_changed: Family<RunLabels, Counter>,
    dead_letters: Family<RunLabels, Counter>,
    stops: Family<RunLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    received: Family<SourceLabels, Counter>,
    reconnects: Family<SourceLabels, Counter>,
    /// What `/metrics` reads at each scrape besides the above.
    gauges: Arc<Mutex<Option<Gauges>>>,
    /// Held from setting a scrape's gauges to encoding them, so scrapes do not mix.
    encoding: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// The handles one run adds to on every batch.
#[derive(Clone, Debug)]
pub struct RunMetrics {
    projected: Counter,
    failed: Counter,
    batches: Counter,
    batch_seconds: Histogram,
    plugin_seconds: Seconds,
    sqlite_seconds: Seconds,
    rows_changed: Counter,
    dead_letters: Counter,
}

/// What one committed batch did, as the metrics count it.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchMetrics {
    /// Events projected.
    pub projected: u64,
    /// Events dead-lettered or skipped.
    pub failed: u64,
    /// Of those, dead-lettered.
    pub dead_lettered: u64,
    /// From taking the batch to its commit.
    pub took: Duration,
    /// Inside the plugin, SQL statements excluded.
    pub plugin: Duration,
    /// Inside SQLite: the plugin's statements and the commit.
    pub sqlite: Duration,
    /// Rows the plugin's statements inserted, updated or deleted.
    pub rows_changed: u64,
}

impl RunMetrics {
    /// Counts a committed batch.
    pub fn batch(&self, batch: &BatchMetrics) {
        self.projected.inc_by(batch.projected);
        self.failed.inc_by(batch.failed);
        self.dead_letters.inc_by(batch.dead_lettered);
        self.batches.inc();
        self.batch_seconds.observe(batch.took.as_secs_f64());
        self.plugin_seconds.inc_by(batch.plugin.as_secs_f64());
        self.sqlite_seconds.inc_by(batch.sqlite.as_secs_f64());
        self.rows_changed.inc_by(batch.rows_changed);
    }
}

impl Metrics {
    /// A registry with every family registered and nothing counted yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("projector");
        let batch_seconds =
            Family::<RunLabels, Histogram>::new_with_constructor(new_batch_histogram as fn() -> _);
        let inner = Inner {
            projected: Family::default(),
            failed: Family::default(),
            batches: Family::default(),
            batch_seconds,
            plugin_seconds: Family::default(),
            sqlite_seconds: Family::default(),
            rows_changed: Family::default(),
            dead_letters: Family::default(),
            stops: Family::default(),
            reloads: Family::default(),
            received: Family::default(),
            reconnects: Family::default(),
            gauges: Arc::default(),
            encoding: Mutex::new(()),
            registry: Registry::default(),
        };
        // `_total` is added by the encoder to counters.
        registry.register(
            "events_projected",
            "Events the plugin projected and committed",
            inner.projected.clone(),
        );
        registry.register(
            "events_failed",
            "Events dead-lettered or skipped (by the projection's on_error policy)",
            inner.failed.clone(),
        );
        registry.register("batches", "Batches committed", inner.batches.clone());
        registry.register_with_unit(
            "batch_duration",
            "Time from taking a batch to committing it",
            prometheus_client::registry::Unit::Seconds,
            inner.batch_seconds.clone(),
        );
        registry.register_with_unit(
            "plugin",
            "Time spent inside the plugin's handle calls, its SQL statements excluded",
            prometheus_client::registry::Unit::Seconds,
            inner.plugin_seconds.clone(),
        );
        registry.register_with_unit(
            "sqlite",
            "Time spent in SQLite on a batch: the plugin's statements and the commit",
            prometheus_client::registry::Unit::Seconds,
            inner.sqlite_seconds.clone(),
        );
        registry.register(
            "rows_changed",
            "Rows the plugin's statements inserted, updated or deleted",
            inner.rows_changed.clone(),
        );
        registry.register(
            "dead_letters",
            "Events sent to the dead-letter table",
            inner.dead_letters.clone(),
        );
        registry.register(
            "projection_stops",
            "Times a projection stopped on an error",
            inner.stops.clone(),
        );
        registry.register(
            "reloads",
            "Reload outcomes by kind: started, swapped, shadow-started, cut-over, refused, \
             abandoned, rolled-back, reset, paused, resumed, …",
            inner.reloads.clone(),
        );
        registry.register(
            "source_events_received",
            "Events received from the source, over every projection's subscription",
            inner.received.clone(),
        );
        registry.register(
            "source_reconnects",
            "Subscriptions to the source that broke and were retried",
            inner.reconnects.clone(),
        );
        registry.register_collector(Box::new(gauges::Collector(Arc::clone(&inner.gauges))));
        Metrics {
            inner: Arc::new(Inner { registry, ..inner }),
        }
    }

    /// The handles a run of `projection` in `role` counts its batches with.
    pub fn run(&self, projection: &str, role: &'static str) -> RunMetrics {
        let labels = RunLabels {
            projection: projection.to_string(),
            role,
        };
        let inner = &self.inner;
        RunMetrics {
            projected: inner.projected.get_or_create(&labels).clone(),
            failed: inner.failed.get_or_create(&labels).clone(),
            batches: inner.batches.get_or_create(&labels).clone(),
            batch_seconds: inner.batch_seconds.get_or_create(&labels).clone(),
            plugin_seconds: inner.plugin_seconds.get_or_create(&labels).clone(),
            sqlite_seconds: inner.sqlite_seconds.get_or_create(&labels).clone(),
            rows_changed: inner.rows_changed.get_or_create(&labels).clone(),
            dead_letters: inner.dead_letters.get_or_create(&labels).clone(),
        }
    }

    /// Counts a stop of a run of `projection` in `role` on an error.
    pub fn stopped(&self, projection: &str, role: &'static str) {
        let labels = RunLabels {
            projection: projection.to_string(),
            role,
        };
        self.inner.stops.get_or_create(&labels).inc();
    }

    /// Counts a reload outcome (a history entry) of `projection` (`-` when unknown).
    pub fn reload(&self, projection: Option<&str>, outcome: &str) {
        let labels = ReloadLabels {
            projection: projection.unwrap_or("-").to_string(),
            outcome: outcome.to_string(),
        };
        self.inner.reloads.get_or_create(&labels).inc();
    }

    /// The counter of events received from `source`, for a feed to add to.
    pub fn received(&self, source: &str) -> Counter {
        let labels = SourceLabels {
            source: source.to_string(),
        };
        self.inner.received.get_or_create(&labels).clone()
    }

    /// Counts a broken subscription to `source`.
    pub fn reconnected(&self, source: &str) {
        let labels = SourceLabels {
            source: source.to_string(),
        };
        self.inner.reconnects.get_or_create(&labels).inc();
    }

    /// Everything as OpenMetrics text (what `prometheus-client` writes; Prometheus reads it):
    /// the counters, and `gauges` as the scraper read them just now.
    pub fn encode(&self, gauges: Gauges) -> anyhow::Result<String> {
        let _one_at_a_time = self
            .inner
            .encoding
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *self.inner.gauges.lock().unwrap_or_else(|e| e.into_inner()) = Some(gauges);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }
}

/// Batch durations from 1 ms to about 33 s.
fn new_batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_are_encoded_with_help_and_units() {
        let metrics = Metrics::new();
        let run = metrics.run("orders", "serving");
        run.batch(&BatchMetrics {
            projected: 7,
            failed: 1,
            dead_lettered: 1,
            took: Duration::from_millis(3),
            plugin: Duration::from_millis(1),
            sqlite: Duration::from_millis(2),
            rows_changed: 9,
        });
        metrics.reload(Some("orders"), "started");
        let text = metrics
            .encode(Gauges {
                projections: vec![ProjectionGauges {
                    name: "orders".into(),
                    state: "running",
                    position: Some(42),
                    head: Some(50),
                    lag_events: Some(3),
                    lag_seconds: Some(0.5),
                    dead_letters_pending: Some(1),
                    rebuild_progress: None,
                    events_per_second: 10.0,
                }],
                ..Gauges::default()
            })
            .unwrap();
        for expected in [
            "# HELP projector_events_projected Events the plugin projected",
            "projector_events_projected_total{projection=\"orders\",role=\"serving\"} 7",
            "projector_rows_changed_total{projection=\"orders\",role=\"serving\"} 9",
            "projector_batch_duration_seconds_count{projection=\"orders\",role=\"serving\"} 1",
            "projector_reloads_total{projection=\"orders\",outcome=\"started\"} 1",
            "projector_projection_position{projection=\"orders\"} 42",
            "projector_projection_lag_events{projection=\"orders\"} 3",
            "projector_projection_state{projection=\"orders\",state=\"running\"} 1",
            "projector_projection_state{projection=\"orders\",state=\"stopped\"} 0",
            "projector_dead_letters_pending{projection=\"orders\"} 1",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
