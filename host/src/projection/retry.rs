//! Retrying dead letters: the projection's current plugin gets each selected dead letter's
//! event again, in log order, inside one transaction with the projection's writes; projected
//! ones leave the dead-letter table, refused ones stay with the new error and build.
//!
//! A retried event is applied now, on top of the tables as they are, not at its place in the
//! log: the events after it were projected without it. For a projection where order matters
//! (a state machine per entity, a running balance) the outcome can differ from a replay of the
//! log; a rebuild (a new version of the plugin) replays everything in order instead.

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::Projection;
use crate::event::Position;
use crate::runtime::PluginError;
use crate::store::{Payloads, Selection};

/// What a retry of dead letters did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryReport {
    /// Dead letters given to the plugin again.
    pub retried: usize,
    /// Of those, projected this time (and so no longer dead letters).
    pub projected: usize,
    /// Of those, refused again (kept, with the new error and build).
    pub refused: usize,
    /// Dead letters recorded before their events were kept, which cannot be retried.
    pub without_payload: usize,
    /// Selected ids that are not dead letters (any more).
    pub missing: Vec<u64>,
}

impl std::fmt::Display for RetryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} retried: {} projected, {} refused again",
            self.retried, self.projected, self.refused
        )?;
        if self.without_payload > 0 {
            write!(
                f,
                "; {} recorded without their events cannot be retried (drop them, or rebuild)",
                self.without_payload
            )?;
        }
        if !self.missing.is_empty() {
            write!(f, "; not dead letters: {:?}", self.missing)?;
        }
        Ok(())
    }
}

impl Projection {
    /// Retries the selected dead letters on the current plugin; see the module's doc. An error
    /// (a broken instance, a fault of the database) leaves every dead letter as it was.
    pub fn retry_dead_letters(&mut self, selection: &Selection) -> anyhow::Result<RetryReport> {
        let Some(checkpoint) = self.checkpoint else {
            // Nothing was ever committed, so nothing was dead-lettered.
            return Ok(RetryReport::default());
        };
        self.db().begin()?;
        let retried = self.retry_begun(selection);
        let committed = retried.and_then(|report| {
            self.db().commit(checkpoint)?;
            Ok(report)
        });
        if committed.is_err() {
            self.rollback_after_error();
        }
        let report = committed?;
        if report.retried > 0 {
            tracing::info!(projection = self.name(), report = %report, "dead letters retried");
        }
        Ok(report)
    }

    /// The retry inside the open transaction: the selection is read there too, so a dead
    /// letter dropped meanwhile is neither projected nor brought back.
    fn retry_begun(&mut self, selection: &Selection) -> anyhow::Result<RetryReport> {
        self.check_checkpoint_is_ours()?;
        // The list without payloads; each event is read when its turn comes, so a retry of
        // thousands of large events holds one at a time.
        let letters = self.db().dead_letters(selection, Payloads::Without)?;
        let mut report = RetryReport::default();
        if let Selection::Positions(ids) = selection {
            let found: std::collections::HashSet<u64> = letters.iter().map(|l| l.id).collect();
            report.missing = ids
                .iter()
                .filter(|id| !found.contains(id))
                .copied()
                .collect();
        }
        let sha256 = self.plugin.sha256.clone();
        for letter in letters {
            let position = Position {
                commit: letter.id,
                prepare: letter.prepare_position,
            };
            let whole = self.db().dead_letter_at(position)?;
            let Some(event) = whole.and_then(|l| l.event) else {
                report.without_payload += 1;
                continue;
            };
            report.retried += 1;
            self.db().savepoint()?;
            let outcome = self.call(std::slice::from_ref(&event))?;
            self.check_fault()?;
            match outcome {
                Ok(()) => {
                    self.db().release_savepoint()?;
                    self.db().resolve_dead_letter(event.position)?;
                    report.projected += 1;
                }
                // No instance left to call: the retry ends, nothing of it kept.
                Err(error @ PluginError::Broken(_)) => {
                    bail!("retrying the dead letter at {}: {error}", event.position)
                }
                // Running out of time on one event is its refusal too: recorded, so this build
                // does not retry it at every start.
                Err(error) => {
                    self.db().rollback_to_savepoint()?;
                    self.db()
                        .dead_letter(&event, &error.to_string(), &sha256, 1)?;
                    report.refused += 1;
                }
            }
        }
        Ok(report)
    }
}
