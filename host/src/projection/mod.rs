//! One projection: a plugin instance writing into its database, batch by batch, with the
//! failure policy deciding what a bad event costs.
//!
//! This is where the runtime and the store meet. Each batch runs in one transaction that also
//! stores the checkpoint; a batch the plugin refuses is rolled back and replayed under
//! savepoints (split around the event the plugin names, or event by event when it names none),
//! so one bad event is dead-lettered and the rest of the batch still commits.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, bail};
use serde::Deserialize;

mod recover;
mod retry;

use recover::Streak;
pub use retry::RetryReport;

use crate::event::{Position, RecordedEvent};
use crate::runtime::{Instance, Plugin, PluginError, Rejection, Runtime};
use crate::store::{Checkpoint, Db, DbLimits, PluginRecord};

/// What happens to an event the plugin cannot project.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorPolicy {
    /// Record it in `_projector_dead_letters` with the error, and carry on.
    #[default]
    DeadLetter,
    /// Log it and carry on.
    Skip,
    /// Stop the projection; the event is retried on the next start.
    Stop,
}

/// How a projection treats failures (`[projections.<name>]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    /// What a failing event costs.
    pub on_error: ErrorPolicy,
    /// Failing events in a row, across batches, after which the plugin is taken for broken and
    /// the projection stopped: refusing events is a plugin's right, failing on every one of
    /// them is a fault, and dead-lettering the whole log would hide it. Default 100.
    pub max_consecutive: u32,
    /// Retries of a batch that met a fault of the database (locked, I/O, full) before the
    /// projection stops with that fault. Default 3.
    pub transient_retries: u32,
    /// Largest the projection's database may grow. Default 64 GiB.
    pub max_database_bytes: u64,
}

impl Default for Failures {
    fn default() -> Failures {
        Failures {
            on_error: ErrorPolicy::default(),
            max_consecutive: 100,
            transient_retries: 3,
            max_database_bytes: crate::store::DEFAULT_MAX_DATABASE_BYTES,
        }
    }
}

impl From<ErrorPolicy> for Failures {
    fn from(on_error: ErrorPolicy) -> Failures {
        Failures {
            on_error,
            ..Failures::default()
        }
    }
}

/// A batch met a fault of the database, not of its events: it must be retried, never
/// dead-lettered (see [`crate::store::fault`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransientFault(String);

/// What a committed batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Events the plugin projected.
    pub projected: usize,
    /// Events dead-lettered or skipped.
    pub failed: usize,
    /// The stored position afterwards.
    pub checkpoint: Option<Position>,
    /// The first dead-lettered event's error, when some were (skipped events are not
    /// anybody's business to act on).
    pub first_dead_letter: Option<String>,
    /// Time inside SQLite: the plugin's statements and the commit.
    pub sqlite_time: std::time::Duration,
    /// Time in the batch outside SQLite: the plugin's calls and the host's work around them.
    pub plugin_time: std::time::Duration,
    /// Rows the plugin's statements changed (those of calls rolled back and replayed
    /// included: it is work done).
    pub rows_changed: u64,
}

impl BatchReport {
    /// Of the failed events, those dead-lettered (the rest were skipped).
    pub fn dead_lettered(&self, policy: ErrorPolicy) -> usize {
        if policy == ErrorPolicy::DeadLetter {
            self.failed
        } else {
            0
        }
    }
}

/// A running projection.
pub struct Projection {
    /// Instantiates the plugin again when a new module of it is swapped in.
    runtime: Runtime,
    /// The plugin module it runs.
    plugin: Plugin,
    /// Its database; shared with the instance's `sql` import, used by one thread at a time.
    db: Arc<Mutex<Db>>,
    /// The live plugin instance; it replaces itself after a trap.
    instance: Instance,
    /// What failures cost.
    failures: Failures,
    /// Failing events in a row up to the last committed batch.
    streak: Streak,
    /// The stored checkpoint, mirrored to skip re-delivered events without a query.
    checkpoint: Option<Checkpoint>,
}

impl Projection {
    /// Opens (or creates) the projection's database at `database` and instantiates the plugin
    /// on it. Where the file lives is [`crate::store::DataDir`]'s business.
    pub fn open(
        runtime: &Runtime,
        plugin: Plugin,
        database: &Path,
        failures: Failures,
    ) -> anyhow::Result<Projection> {
        let manifest = &plugin.manifest;
        let record = PluginRecord {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            schema: manifest.schema.clone(),
            wasm_sha256: plugin.sha256.clone(),
        };
        let limits = DbLimits {
            statement_deadline: runtime.limits().batch_deadline,
            max_result_bytes: runtime.limits().memory_bytes,
            max_database_bytes: failures.max_database_bytes,
        };
        let db = Db::open(database, &record, limits)
            .with_context(|| format!("opening the database of projection {}", manifest.name))?;
        let checkpoint = db.checkpoint()?;
        let db = Arc::new(Mutex::new(db));
        let instance = runtime.instantiate(&plugin, db.clone())?;
        Ok(Projection {
            runtime: runtime.clone(),
            plugin,
            db,
            instance,
            failures,
            streak: Streak::default(),
            checkpoint,
        })
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.plugin.manifest.name
    }

    /// The plugin it runs.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// What failures cost.
    pub fn failures(&self) -> Failures {
        self.failures
    }

    /// The fault of the database behind `error`, told for an operator, when `error` is one
    /// that a retry of the batch may clear.
    pub fn transient_fault(&self, error: &anyhow::Error) -> Option<String> {
        let fault = error
            .chain()
            .find_map(|cause| cause.downcast_ref::<TransientFault>().map(|f| f.0.clone()))
            .or_else(|| crate::store::fault::transient(error))?;
        Some(self.db().explain_fault(&fault))
    }

    /// The stored checkpoint: the source resumes after it.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint
    }

    /// Replaces the plugin with `plugin`, a new module of the same name and version (a code
    /// fix), between two batches: the next batch runs the new code from the same checkpoint.
    /// On an error the old plugin keeps running.
    pub fn swap(&mut self, plugin: Plugin) -> anyhow::Result<()> {
        let (old, new) = (&self.plugin.manifest, &plugin.manifest);
        if old.name != new.name || old.version != new.version {
            bail!(
                "a swap keeps the name and version ({} {}), but the new module declares {} {}",
                old.name,
                old.version,
                new.name,
                new.version
            );
        }
        let instance = self.runtime.instantiate(&plugin, self.db.clone())?;
        self.db().set_wasm_sha256(&plugin.sha256)?;
        self.instance = instance;
        self.plugin = plugin;
        // New code starts with a clean record.
        self.streak = Streak::default();
        Ok(())
    }

    /// Projects `events` (in log order) and commits them with the checkpoint: `read_to` when
    /// the source has read that far past them, else the last event's position. An error means
    /// the projection must stop: nothing of the batch was committed, and a restart retries it.
    pub fn apply(
        &mut self,
        events: &[RecordedEvent],
        read_to: Option<Position>,
    ) -> anyhow::Result<BatchReport> {
        let stored = self.checkpoint.map(|c| c.position);
        // Events at or before the stored position were committed already: a source that
        // re-delivers them (after a reconnect, say) must not apply them twice.
        let first_new = events.partition_point(|e| stored.is_some_and(|s| e.position <= s));
        let events = &events[first_new..];
        let position = read_to
            .into_iter()
            .chain(events.last().map(|e| e.position))
            .max();
        let Some(position) = position.filter(|p| stored.is_none_or(|s| *p > s)) else {
            return Ok(BatchReport {
                checkpoint: stored,
                ..BatchReport::default()
            });
        };
        let handled = self.checkpoint.map_or(0, |c| c.events_handled) + events.len() as u64;
        let checkpoint = Checkpoint {
            position,
            events_handled: handled,
            last_event: events
                .last()
                .map(|e| e.position)
                .or(self.checkpoint.and_then(|c| c.last_event)),
        };
        // A batch with no new events (only a server checkpoint) goes through the same
        // transaction and the same check, without calling the plugin.
        let started = std::time::Instant::now();
        self.db().take_work();
        self.db().begin()?;
        let applied = self.apply_begun(events, position, checkpoint);
        if applied.is_err() {
            // Whatever failed after `begin`, nothing of the batch may stay open: the next
            // attempt begins afresh (a rollback of a rolled-back batch does nothing).
            self.rollback_after_error();
        }
        let mut report = applied?;
        let work = self.db().take_work();
        report.sqlite_time += work.time;
        report.plugin_time = started.elapsed().saturating_sub(report.sqlite_time);
        report.rows_changed = work.rows_changed;
        Ok(report)
    }

    /// Rolls the open batch back after an error, which stays the one reported: a rollback
    /// that fails too is logged, and the next `begin` ends what it left.
    fn rollback_after_error(&self) {
        if let Err(error) = self.db().rollback() {
            tracing::warn!(
                projection = self.name(),
                error = format!("{error:#}"),
                "rolling back a failed batch failed too; the next batch starts by ending it"
            );
        }
    }

    /// Checks that the checkpoint is still this projection's, inside the write transaction:
    /// otherwise another process writes this database too, and applying a batch on a stale
    /// position would apply events twice.
    fn check_checkpoint_is_ours(&self) -> anyhow::Result<()> {
        let current = self.db().checkpoint()?;
        if current != self.checkpoint {
            bail!(
                "the checkpoint of projection {} moved from {:?} to {:?} behind this process's back; \
                 is another projector writing {}?",
                self.name(),
                self.checkpoint.map(|c| c.position.to_string()),
                current.map(|c| c.position.to_string()),
                self.db().path().display()
            );
        }
        Ok(())
    }

    /// The body of [`Projection::apply`] once the batch transaction is open; the caller rolls
    /// it back on any error.
    fn apply_begun(
        &mut self,
        events: &[RecordedEvent],
        position: Position,
        checkpoint: Checkpoint,
    ) -> anyhow::Result<BatchReport> {
        self.check_checkpoint_is_ours()?;
        let outcome = if events.is_empty() {
            Ok(())
        } else {
            self.call(events)?
        };
        self.check_fault()?;
        let (report, streak) = match outcome {
            Ok(()) => {
                let streak = if events.is_empty() {
                    self.streak.clone()
                } else {
                    Streak::default()
                };
                let report = BatchReport {
                    projected: events.len(),
                    checkpoint: Some(position),
                    ..BatchReport::default()
                };
                (report, streak)
            }
            Err(error) => {
                self.db().rollback()?;
                let (report, streak) = self.recover(events, error)?;
                let report = BatchReport {
                    checkpoint: Some(position),
                    ..report
                };
                (report, streak)
            }
        };
        let committing = std::time::Instant::now();
        self.db().commit(checkpoint)?;
        self.checkpoint = Some(checkpoint);
        self.streak = streak;
        Ok(BatchReport {
            sqlite_time: committing.elapsed(),
            ..report
        })
    }

    /// Fails the batch (rolled back) when a plugin statement met a fault of the database,
    /// whatever the plugin made of the error: the batch is retried, never dead-lettered or
    /// committed without the write that failed.
    fn check_fault(&mut self) -> anyhow::Result<()> {
        let Some(fault) = self.db().take_fault() else {
            return Ok(());
        };
        // The caller (`apply`, `retry_dead_letters`) rolls the batch back on any error.
        Err(TransientFault(fault).into())
    }

    /// Calls the plugin's `handle`; a call that left a table at the largest rowid is refused
    /// as a constraint (see `store::rowid_guard`), for the caller to roll back.
    fn call(&mut self, events: &[RecordedEvent]) -> anyhow::Result<Result<(), PluginError>> {
        let outcome = self.instance.handle(events);
        if outcome.is_ok()
            && let Some(reason) = self.db().rowid_at_limit()?
        {
            return Ok(Err(PluginError::Rejected(Rejection::Sql(
                crate::value::SqlError::Constraint(reason),
            ))));
        }
        Ok(outcome)
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}
