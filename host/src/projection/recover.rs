//! What a refused batch costs: the batch is replayed to find the events that fail (split
//! around the event the plugin names, or event by event when it names none), the failure
//! policy is applied to them, and the streak of failures in a row decides when a plugin is
//! broken rather than fed bad events.

use anyhow::bail;

use super::{BatchReport, ErrorPolicy, Projection};
use crate::event::RecordedEvent;
use crate::runtime::{PluginError, Rejection};

/// Failing events in a row, carried across batches.
#[derive(Clone, Debug, Default)]
pub(super) struct Streak {
    pub(super) count: u32,
    /// Where it began and the first error, for the stop's reason.
    pub(super) first: Option<(crate::event::Position, String)>,
}

impl Projection {
    /// Finds the events of a refused batch that fail, applies the failure policy to them and
    /// projects the rest; leaves the batch transaction open for the caller to commit.
    ///
    /// When the plugin names the invalid event, the events before it and after it are retried
    /// as two calls, so a bad event costs two extra calls, not one per event of the batch.
    /// Otherwise (a trap, an `other` error) the batch is replayed event by event.
    pub(super) fn recover(
        &mut self,
        events: &[RecordedEvent],
        error: PluginError,
    ) -> anyhow::Result<(BatchReport, Streak)> {
        let range = describe_range(events);
        if let PluginError::OutOfTime(_) | PluginError::Broken(_) = error {
            bail!("projection {} stopped at {range}: {error}", self.name());
        }
        if self.failures.on_error == ErrorPolicy::Stop {
            bail!(
                "projection {} stopped at {range} (on-error = stop): {error}",
                self.name()
            );
        }
        tracing::debug!(projection = self.name(), events = %range, error = %error, "batch refused; finding the failing events");
        self.db().begin()?;
        // The write lock was let go between the two transactions.
        self.check_checkpoint_is_ours()?;
        let mut failures = Vec::new();
        let mut rest = events;
        let mut pending = Some(error);
        while let Some(error) = pending.take() {
            let index = match &error {
                PluginError::Rejected(Rejection::InvalidEvent { index, .. })
                    if (*index as usize) < rest.len() =>
                {
                    *index as usize
                }
                _ => {
                    self.one_by_one(rest, &mut failures)?;
                    break;
                }
            };
            if index > 0
                && let Err(before) = self.try_handle(&rest[..index])?
            {
                tracing::debug!(projection = self.name(), error = %before, "events before a refused one failed too");
                self.one_by_one(&rest[..index], &mut failures)?;
            }
            failures.push((&rest[index], error));
            rest = &rest[index + 1..];
            if !rest.is_empty() {
                pending = self.try_handle(rest)?.err();
            }
        }
        let streak = self.extend_streak(events, &failures)?;
        for (event, error) in &failures {
            let mut message = error.to_string();
            if let PluginError::OutOfMemory(_) = error {
                message.push_str(&format!(
                    " (on an event of {} bytes of data and metadata; if the event is what is \
                     too large, raise [limits] memory_mib and retry it from the dead letters)",
                    event.data.len() + event.metadata.len()
                ));
            }
            let outcome = if self.failures.on_error == ErrorPolicy::DeadLetter {
                "dead-lettered"
            } else {
                "skipped"
            };
            tracing::warn!(
                projection = self.name(),
                position = %event.position,
                stream = event.stream_id,
                event_type = event.event_type,
                error = message,
                "event not projected; {outcome}"
            );
            if self.failures.on_error == ErrorPolicy::DeadLetter {
                let sha256 = self.plugin.sha256.clone();
                self.db().dead_letter(event, &message, &sha256, 2)?;
            }
        }
        let report = BatchReport {
            projected: events.len() - failures.len(),
            failed: failures.len(),
            checkpoint: None,
            first_dead_letter: failures
                .first()
                .filter(|_| self.failures.on_error == ErrorPolicy::DeadLetter)
                .map(|(_, error)| error.to_string()),
            ..BatchReport::default()
        };
        Ok((report, streak))
    }

    /// The streak of failing events after this batch; stops the projection (the batch rolled
    /// back) when it reaches the bound.
    fn extend_streak(
        &mut self,
        events: &[RecordedEvent],
        failures: &[(&RecordedEvent, PluginError)],
    ) -> anyhow::Result<Streak> {
        let mut streak = self.streak.clone();
        let mut failed = failures.iter().peekable();
        for event in events {
            let Some((_, error)) = failed.next_if(|(f, _)| f.position == event.position) else {
                streak = Streak::default();
                continue;
            };
            streak.count += 1;
            let first = streak
                .first
                .get_or_insert_with(|| (event.position, error.to_string()));
            if streak.count >= self.failures.max_consecutive {
                let (since, first_error) = first.clone();
                bail!(
                    "projection {} stopped at position {}: the plugin failed on {} events in a \
                     row (since position {since}, across batches), which looks like a broken \
                     plugin rather than bad events; fix it and deploy it again. First error: \
                     {first_error}; last error: {error}",
                    self.name(),
                    event.position,
                    streak.count
                );
            }
        }
        Ok(streak)
    }

    /// Calls the plugin on `events` under a savepoint: kept on success, undone on failure.
    /// Running out of time, or an instance that cannot be rebuilt, stops the projection.
    pub(super) fn try_handle(
        &mut self,
        events: &[RecordedEvent],
    ) -> anyhow::Result<Result<(), PluginError>> {
        self.db().savepoint()?;
        let outcome = self.call(events)?;
        self.check_fault()?;
        match outcome {
            Ok(()) => {
                self.db().release_savepoint()?;
                Ok(Ok(()))
            }
            Err(error @ (PluginError::OutOfTime(_) | PluginError::Broken(_))) => {
                bail!(
                    "projection {} stopped at {}: {error}",
                    self.name(),
                    describe_range(events)
                );
            }
            Err(error) => {
                self.db().rollback_to_savepoint()?;
                Ok(Err(error))
            }
        }
    }

    /// Calls the plugin on each event alone and collects the ones that fail.
    fn one_by_one<'e>(
        &mut self,
        events: &'e [RecordedEvent],
        failures: &mut Vec<(&'e RecordedEvent, PluginError)>,
    ) -> anyhow::Result<()> {
        let before = failures.len();
        for event in events {
            if let Err(error) = self.try_handle(std::slice::from_ref(event))? {
                failures.push((event, error));
            }
        }
        // Refusing each event as invalid is a plugin's right; trapping or failing on every one
        // of them is a broken plugin, and dead-lettering the whole log would hide it.
        let new = &failures[before..];
        let all_broken = new.len() == events.len()
            && events.len() > 1
            && !new.iter().any(|(_, e)| {
                // Refusals are the plugin's right; running out of memory is the events' size.
                matches!(
                    e,
                    PluginError::Rejected(Rejection::InvalidEvent { .. })
                        | PluginError::OutOfMemory(_)
                )
            });
        if all_broken {
            bail!(
                "projection {} stopped at {}: the plugin failed on every event of the batch, which \
                 looks like a fault in the plugin rather than bad events; first error: {}",
                self.name(),
                describe_range(events),
                new[0].1
            );
        }
        Ok(())
    }
}

fn describe_range(events: &[RecordedEvent]) -> String {
    match (events.first(), events.last()) {
        (Some(first), Some(last)) if first.position != last.position => {
            format!("positions {}..={}", first.position, last.position)
        }
        (Some(first), _) => format!("position {}", first.position),
        _ => "an empty batch".to_string(),
    }
}
