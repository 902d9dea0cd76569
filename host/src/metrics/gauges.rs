//! The metrics read at each scrape rather than counted as work happens: positions, lag, state,
//! pending dead letters, and the process's memory and compile cache. Whoever serves `/metrics`
//! reads them from the status board and the store and hands them to [`super::Metrics::encode`].

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Every state a projection reports; exactly one is 1 in `projector_projection_state`.
pub const STATES: [&str; 6] = [
    "running",
    "catching up",
    "rebuilding",
    "paused",
    "stopped",
    "not running",
];

/// What a scrape reads.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    /// One per projection.
    pub projections: Vec<ProjectionGauges>,
    /// One per source.
    pub sources: Vec<SourceGauges>,
    /// The process's resident memory, where the platform tells.
    pub resident_bytes: Option<u64>,
    /// Projection databases open for writing.
    pub open_databases: u64,
    /// Compile cache loads served from the cache and compiled, when a cache is used.
    pub cache: Option<(u64, u64)>,
    /// Webhook alerts, when alerts are on.
    pub alerts: Option<AlertGauges>,
}

/// What became of the webhook's alerts.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlertGauges {
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub pending: u64,
}

/// One projection's gauges.
#[derive(Clone, Debug, Default)]
pub struct ProjectionGauges {
    pub name: String,
    /// One of [`STATES`].
    pub state: &'static str,
    /// The committed position (commit part).
    pub position: Option<u64>,
    /// The head of the log, as last seen.
    pub head: Option<u64>,
    /// Events its filter selects that it has not committed yet.
    pub lag_events: Option<u64>,
    /// How long the oldest of them has waited.
    pub lag_seconds: Option<f64>,
    /// Rows in its dead-letter table.
    pub dead_letters_pending: Option<u64>,
    /// A rebuild's share of the log done (0 to 1).
    pub rebuild_progress: Option<f64>,
    /// Events per second over the last minute.
    pub events_per_second: f64,
}

/// One source's gauges.
#[derive(Clone, Debug, Default)]
pub struct SourceGauges {
    pub source: String,
    /// Seconds without the source, over the process's life (a current outage included).
    pub outage_seconds: f64,
    /// Whether some subscription is without it now.
    pub down: bool,
}

/// Encodes the gauges of the scrape under way.
pub(super) struct Collector(pub Arc<Mutex<Option<Gauges>>>);

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gauges")
    }
}

/// One family: its descriptor, then one sample per label set.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A family of one unlabelled sample.
fn single<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: M,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, unit, value.metric_type())?;
    value.encode(metric)
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(gauges) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let encoder = &mut encoder;
        let projections = &gauges.projections;
        let each = |value: fn(&ProjectionGauges) -> Option<f64>| {
            projections.iter().filter_map(move |p| {
                value(p).map(|v| ([("projection", p.name.as_str())], ConstGauge::new(v)))
            })
        };
        family(
            encoder,
            "projection_state",
            "1 for the projection's current state, 0 for the others",
            None,
            MetricType::Gauge,
            projections.iter().flat_map(|p| {
                STATES.iter().map(|state| {
                    let labels = [("projection", p.name.as_str()), ("state", state)];
                    (labels, ConstGauge::new(i64::from(p.state == *state)))
                })
            }),
        )?;
        family(
            encoder,
            "projection_position",
            "The committed position in the log (commit part) of the version serving queries",
            None,
            MetricType::Gauge,
            each(|p| p.position.map(|v| v as f64)),
        )?;
        family(
            encoder,
            "projection_head_position",
            "The position of the last event in the log, as last seen",
            None,
            MetricType::Gauge,
            each(|p| p.head.map(|v| v as f64)),
        )?;
        family(
            encoder,
            "projection_lag_events",
            "Events the projection's filter selects that it has not committed yet",
            None,
            MetricType::Gauge,
            each(|p| p.lag_events.map(|v| v as f64)),
        )?;
        family(
            encoder,
            "projection_lag",
            "How long the oldest event the projection has not committed has waited",
            Some(&Unit::Seconds),
            MetricType::Gauge,
            each(|p| p.lag_seconds),
        )?;
        family(
            encoder,
            "projection_events_per_second",
            "Events projected or failed per second over the last minute",
            None,
            MetricType::Gauge,
            each(|p| Some(p.events_per_second)),
        )?;
        family(
            encoder,
            "dead_letters_pending",
            "Rows in the projection's dead-letter table, waiting for a retry or a drop",
            None,
            MetricType::Gauge,
            each(|p| p.dead_letters_pending.map(|v| v as f64)),
        )?;
        family(
            encoder,
            "rebuild_progress",
            "Share of the log a rebuild beside the serving version has done (0 to 1)",
            Some(&Unit::Other("ratio".into())),
            MetricType::Gauge,
            each(|p| p.rebuild_progress),
        )?;
        family(
            encoder,
            "source_outage",
            "Time some subscription was without its source",
            Some(&Unit::Seconds),
            MetricType::Counter,
            gauges.sources.iter().map(|s| {
                (
                    [("source", s.source.as_str())],
                    ConstCounter::new(s.outage_seconds),
                )
            }),
        )?;
        family(
            encoder,
            "source_up",
            "1 when every subscription hears from the source, 0 during an outage",
            None,
            MetricType::Gauge,
            gauges.sources.iter().map(|s| {
                (
                    [("source", s.source.as_str())],
                    ConstGauge::new(i64::from(!s.down)),
                )
            }),
        )?;
        if let Some(bytes) = gauges.resident_bytes {
            single(
                encoder,
                "process_resident_memory",
                "Resident memory of the projector process",
                Some(&Unit::Bytes),
                ConstGauge::new(bytes as i64),
            )?;
        }
        single(
            encoder,
            "open_databases",
            "Projection databases open for writing",
            None,
            ConstGauge::new(gauges.open_databases as i64),
        )?;
        if let Some(alerts) = gauges.alerts {
            family(
                encoder,
                "alerts",
                "Webhook alerts by outcome: delivered, failed (given up) or dropped (queue full)",
                None,
                MetricType::Counter,
                [
                    ("delivered", alerts.delivered),
                    ("failed", alerts.failed),
                    ("dropped", alerts.dropped),
                ]
                .map(|(outcome, count)| ([("outcome", outcome)], ConstCounter::new(count))),
            )?;
            single(
                encoder,
                "alerts_pending",
                "Webhook alerts queued or being delivered",
                None,
                ConstGauge::new(alerts.pending as i64),
            )?;
        }
        if let Some((hits, misses)) = gauges.cache {
            single(
                encoder,
                "compile_cache_hits",
                "Plugin loads served from the compile cache",
                None,
                ConstCounter::new(hits),
            )?;
            single(
                encoder,
                "compile_cache_misses",
                "Plugin loads that compiled the module",
                None,
                ConstCounter::new(misses),
            )?;
        }
        Ok(())
    }
}

/// The process's resident memory, from `/proc/self/statm` (Linux); `None` elsewhere.
#[cfg(target_os = "linux")]
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The process's resident memory: not read on this platform.
#[cfg(not(target_os = "linux"))]
pub fn resident_bytes() -> Option<u64> {
    None
}
