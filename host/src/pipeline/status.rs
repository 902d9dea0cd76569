//! What a running pipeline reports about itself while it runs: each projection's version,
//! position, whether it has caught up, whether its source is reachable, the rebuild running
//! beside it and its last reload outcomes. The `dev` command prints it; the API serves it
//! (`GET /api/projections`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::RunId;
use crate::event::{EventFilter, Position};
use crate::store::HistoryEntry;

/// Reload outcomes kept per projection (and for modules that never said their name).
const RELOADS_KEPT: usize = 10;

/// A projection's state, as last reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectionStatus {
    /// The run that writes this entry: the one whose database queries read.
    pub serving_run: Option<RunId>,
    /// The manifest version serving queries.
    pub version: Option<String>,
    /// The module serving queries (sha256, hex).
    pub sha256: Option<String>,
    /// Why it is not running, if it is not (its plugin file was removed, it faulted).
    pub stopped: Option<String>,
    /// A database being built beside the serving one, if any.
    pub rebuild: Option<Rebuild>,
    /// The last reload outcomes, oldest first.
    pub reloads: VecDeque<HistoryEntry>,
    /// How long the last same-version swap paused the projection: from the old module's last
    /// commit to the new module's first.
    pub last_swap_pause: Option<Duration>,
    /// The committed position.
    pub checkpoint: Option<Position>,
    /// Whether it has delivered everything the source held when the subscription started.
    pub caught_up: bool,
    /// Events projected since the pipeline started.
    pub projected: u64,
    /// Events dead-lettered or skipped since the pipeline started.
    pub failed: u64,
    /// Why its source is unavailable right now, if it is.
    pub source_error: Option<String>,
    /// Why it stopped, if it faulted.
    pub error: Option<String>,
    /// Whether an operator paused it (it keeps its subscription and applies nothing).
    pub paused: bool,
    /// What its serving run subscribes to: what its lag counts.
    pub filter: EventFilter,
    /// When the last event it committed was written (Unix ms), once it has committed one in
    /// this process.
    pub last_event_created_unix_ms: Option<i64>,
    /// Events projected or failed over the last minute.
    pub rate: Rate,
    /// The serving run's progress since it started: its first position and the events it
    /// has met since, for estimating events per unit of position.
    pub run_progress: Option<(u64, u64)>,
}

impl ProjectionStatus {
    /// Events its run met per unit of position, from its progress so far; `None` before it
    /// has moved.
    pub fn events_per_position(&self) -> Option<f64> {
        let (from, events) = self.run_progress?;
        let moved = self.checkpoint?.commit.checked_sub(from)?;
        (moved > 0 && events > 0).then(|| events as f64 / moved as f64)
    }
}

/// Events counted per second over the last minute.
#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    since: Instant,
    /// (second since `since`, events in it), oldest first, at most a minute's worth.
    seconds: VecDeque<(u64, u64)>,
}

/// The window of [`Rate`].
const RATE_WINDOW_SECONDS: u64 = 60;

impl Default for Rate {
    fn default() -> Rate {
        Rate {
            since: Instant::now(),
            seconds: VecDeque::new(),
        }
    }
}

impl Rate {
    /// Counts `events` now.
    pub fn add(&mut self, events: u64) {
        let now = self.since.elapsed().as_secs();
        match self.seconds.back_mut() {
            Some((second, count)) if *second == now => *count += events,
            _ => self.seconds.push_back((now, events)),
        }
        while self
            .seconds
            .front()
            .is_some_and(|(second, _)| second + RATE_WINDOW_SECONDS <= now)
        {
            self.seconds.pop_front();
        }
    }

    /// Events per second over the last minute (or since counting began, when that is less).
    pub fn per_second(&self) -> f64 {
        let elapsed = self.since.elapsed().as_secs_f64();
        let now = elapsed as u64;
        let events: u64 = self
            .seconds
            .iter()
            .filter(|(second, _)| second + RATE_WINDOW_SECONDS > now)
            .map(|(_, count)| count)
            .sum();
        events as f64 / elapsed.clamp(1.0, RATE_WINDOW_SECONDS as f64)
    }
}

/// A rebuild beside the serving version: a new version from the start of the log (a shadow), or
/// a kept version catching up (a rollback).
#[derive(Clone, Debug, PartialEq)]
pub struct Rebuild {
    /// The run doing it.
    pub run: RunId,
    /// `shadow` or `rollback`.
    pub kind: &'static str,
    /// The version being built.
    pub version: String,
    /// Its module (sha256, hex).
    pub sha256: String,
    /// Its committed position.
    pub position: Option<Position>,
    /// The head of the log, as last asked.
    pub head: Option<Position>,
    /// Events it projected so far.
    pub projected: u64,
    /// Events it dead-lettered or skipped so far.
    pub failed: u64,
    /// Recent rate.
    pub events_per_second: f64,
    /// Estimated time to the head at the recent rate.
    pub eta_seconds: Option<f64>,
    /// When it started.
    pub started: Instant,
}

impl Rebuild {
    /// Its share of the log done (0 to 1), when the head is known.
    pub fn progress(&self) -> Option<f64> {
        let head = self.head?.commit;
        let position = self.position.map_or(0, |p| p.commit);
        Some(if head == 0 {
            1.0
        } else {
            (position as f64 / head as f64).min(1.0)
        })
    }
}

/// The status of every projection of a pipeline; cheap to clone and to read.
#[derive(Clone, Debug, Default)]
pub struct Status {
    inner: Arc<Mutex<Board>>,
}

#[derive(Debug, Default)]
struct Board {
    projections: BTreeMap<String, ProjectionStatus>,
    /// Reload outcomes of modules that could not say which projection they are.
    unnamed: VecDeque<HistoryEntry>,
    outage: Option<Outage>,
    /// The source, as described in logs, once some subscription has lost it.
    source: Option<String>,
    /// How long the outages that ended lasted, together.
    outages_past: Duration,
}

/// The source's availability over the process's life (a metric).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceHealth {
    /// The source, as described in logs; `None` while it has never been lost.
    pub source: Option<String>,
    /// Time without it, a current outage included.
    pub outage: Duration,
    /// Whether some subscription is without it now.
    pub down: bool,
}

/// A stretch of time in which at least one subscription could not reach its source.
#[derive(Debug)]
struct Outage {
    since: Instant,
    attempts: u64,
}

impl Status {
    /// A snapshot of every projection's status, by name.
    pub fn projections(&self) -> BTreeMap<String, ProjectionStatus> {
        self.lock().projections.clone()
    }

    /// The committed position of projection `name`'s serving run: cheaper than a snapshot of
    /// everything, for whoever polls it often.
    pub fn checkpoint(&self, name: &str) -> Option<Position> {
        self.lock().projections.get(name).and_then(|s| s.checkpoint)
    }

    /// How available the source has been.
    pub fn source_health(&self) -> SourceHealth {
        let board = self.lock();
        let current = board.outage.as_ref().map(|o| o.since.elapsed());
        SourceHealth {
            source: board.source.clone(),
            outage: board.outages_past + current.unwrap_or_default(),
            down: current.is_some(),
        }
    }

    /// The status of projection `name`.
    pub fn projection(&self, name: &str) -> Option<ProjectionStatus> {
        self.lock().projections.get(name).cloned()
    }

    /// The last reload outcomes of modules that could not say their projection's name.
    pub fn unnamed_reloads(&self) -> VecDeque<HistoryEntry> {
        self.lock().unnamed.clone()
    }

    /// Adds a reload outcome to its projection's entry (or to the unnamed ones).
    pub(crate) fn add_reload(&self, entry: HistoryEntry) {
        let mut board = self.lock();
        let reloads = match &entry.projection {
            Some(name) => &mut board.projections.entry(name.clone()).or_default().reloads,
            None => &mut board.unnamed,
        };
        reloads.push_back(entry);
        while reloads.len() > RELOADS_KEPT {
            reloads.pop_front();
        }
    }

    /// Changes the status of projection `name`.
    pub(crate) fn update(&self, name: &str, change: impl FnOnce(&mut ProjectionStatus)) {
        change(self.lock().projections.entry(name.to_string()).or_default());
    }

    /// Records that projection `name` lost its source. The first failure of an outage is
    /// logged with its cause; later ones (other projections, retries) only count.
    pub(crate) fn source_failed(&self, name: &str, source: &str, cause: &anyhow::Error) {
        let mut board = self.lock();
        board
            .projections
            .entry(name.to_string())
            .or_default()
            .source_error = Some(format!("{cause:#}"));
        match &mut board.outage {
            Some(outage) => outage.attempts += 1,
            None => {
                board.source = Some(source.to_string());
                tracing::warn!(
                    source,
                    cause = format!("{cause:#}"),
                    "source unavailable; reconnecting with backoff from the committed positions"
                );
                board.outage = Some(Outage {
                    since: Instant::now(),
                    attempts: 1,
                });
            }
        }
    }

    /// Records that projection `name` hears from its source again; the outage ends (and is
    /// logged with its duration) when no projection is left without its source.
    pub(crate) fn source_back(&self, name: &str, source: &str) {
        let mut board = self.lock();
        let entry = board.projections.entry(name.to_string()).or_default();
        entry.source_error = None;
        // Whoever no longer runs cannot hear the source again (it stopped, its plugin was
        // removed, or a restart cleared its entry): it does not keep the outage going.
        let still_failing = board
            .projections
            .values()
            .any(|p| p.source_error.is_some() && p.stopped.is_none());
        if still_failing {
            return;
        }
        if let Some(outage) = board.outage.take() {
            let lasted: Duration = outage.since.elapsed();
            board.outages_past += lasted;
            tracing::info!(
                source,
                seconds = format!("{:.1}", lasted.as_secs_f64()),
                failed_attempts = outage.attempts,
                "source available again"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        // A panic while holding the lock leaves plain data behind; keep reporting.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_ends_when_every_projection_has_its_source_back() {
        let status = Status::default();
        let cause = anyhow::anyhow!("connection refused");
        status.source_failed("a", "esdb://x", &cause);
        status.source_failed("b", "esdb://x", &cause);
        assert!(status.lock().outage.is_some());
        status.source_back("a", "esdb://x");
        assert!(
            status.lock().outage.is_some(),
            "b is still without its source"
        );
        status.source_back("b", "esdb://x");
        assert!(status.lock().outage.is_none());
        assert_eq!(status.projections()["a"].source_error, None);
        let health = status.source_health();
        assert_eq!(health.source.as_deref(), Some("esdb://x"));
        assert!(!health.down && health.outage > Duration::ZERO);
    }

    #[test]
    fn a_projection_that_stopped_or_restarted_does_not_keep_an_outage_going() {
        let status = Status::default();
        let cause = anyhow::anyhow!("connection refused");
        status.source_failed("a", "esdb://x", &cause);
        status.source_failed("b", "esdb://x", &cause);
        status.source_failed("c", "esdb://x", &cause);
        // b stopped during the outage; c was restarted (its entry starts afresh).
        status.update("b", |s| s.stopped = Some("faulted".into()));
        status.update("c", |s| *s = ProjectionStatus::default());
        status.source_back("a", "esdb://x");
        assert!(!status.source_health().down);
    }

    #[test]
    fn the_rate_is_over_the_last_minute() {
        let mut rate = Rate {
            since: Instant::now() - Duration::from_secs(120),
            seconds: VecDeque::from([(10, 1_000)]),
        };
        assert_eq!(rate.per_second(), 0.0, "two minutes old");
        rate.add(600);
        assert!((rate.per_second() - 10.0).abs() < 1e-9);
        assert_eq!(rate.seconds.len(), 1, "the old second was dropped");
    }
}
