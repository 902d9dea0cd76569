//! The plugins folder as the watcher knows it: files waiting to settle, and what was last reported
//! for each file.
//!
//! The rules of when a file is settled and whether that is a change worth reporting live here.
//! It neither waits nor receives events (that is `settle`): it is told that something happened
//! at a path, or to look at everything, and asked what has settled by a given instant.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::scan::{self, Presence, Stamp};
use super::{Change, WatchOptions};

/// Pending files and reported verdicts of one folder.
pub(super) struct Folder {
    /// The watched folder, absolute: every path here is one of its children.
    dir: PathBuf,
    debounce: Duration,
    max_file_bytes: u64,
    /// Files that moved recently, looked at again once quiet for `debounce`.
    pending: HashMap<PathBuf, Pending>,
    /// What was last reported per path, so that the same bytes are not reported twice.
    /// A path leaves with its `Removed`, so bytes that come back are reported again.
    known: HashMap<PathBuf, Known>,
}

/// A file waiting to settle.
struct Pending {
    /// The last event for the file, or when it was last seen to change.
    quiet_since: Instant,
    /// What the file looked like then: if it looks different once quiet, it waits again.
    presence: Presence,
}

/// What was reported for a path, and the stamp of the bytes it was decided on.
struct Known {
    stamp: Option<Stamp>,
    verdict: Verdict,
}

#[derive(Clone, PartialEq, Eq)]
enum Verdict {
    Present { sha256: String },
    Unreadable { reason: String },
}

/// What looking at a quiet file came to.
enum Outcome {
    /// Done with the file, with a change to report if it differs from what was reported.
    Settled(Option<Change>),
    /// The file moved while it was read: it waits again, from this look.
    Unsettled(Presence),
}

impl Folder {
    /// An empty view of `dir` (absolute): nothing pending, nothing reported yet.
    pub(super) fn new(dir: PathBuf, options: &WatchOptions) -> Folder {
        Folder {
            dir,
            debounce: options.debounce,
            max_file_bytes: options.max_file_bytes,
            pending: HashMap::new(),
            known: HashMap::new(),
        }
    }

    /// How long a file must be quiet.
    pub(super) fn debounce(&self) -> Duration {
        self.debounce
    }

    /// The watched folder.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Something happened at `path`, a plugin file of this folder: it settles `debounce` after
    /// `now` at the earliest.
    pub(super) fn note_activity(&mut self, path: PathBuf, now: Instant) {
        // Looking now, not only once quiet, lets a file whose last event was seen settle on the
        // first look; the look at the deadline still catches writes that came without events.
        let presence = Presence::of(&path);
        self.wait(path, presence, now);
    }

    /// Compares every plugin file in the folder, and every path reported before, with what was
    /// reported, and makes those that differ pending (the first call is the initial scan).
    ///
    /// Paths reported before are looked at even when the folder cannot be listed, so a folder
    /// that is gone reports its files removed; the listing's error is returned for the log.
    pub(super) fn rescan(&mut self, now: Instant) -> std::io::Result<()> {
        let listing = scan::plugin_files(&self.dir);
        let listed = listing.as_deref().unwrap_or_default().iter().cloned();
        let reported: Vec<PathBuf> = self.known.keys().cloned().collect();
        for path in listed.chain(reported) {
            if self.pending.contains_key(&path) {
                continue;
            }
            let presence = Presence::of(&path);
            let unchanged = match (&presence, self.known.get(&path)) {
                (Presence::File(stamp), Some(known)) => known.stamp == Some(*stamp),
                (Presence::Missing, None) => true,
                _ => false,
            };
            if !unchanged {
                self.wait(path, presence, now);
            }
        }
        listing.map(|_| ())
    }

    /// When the next batch is due, if any file is pending.
    ///
    /// That is the earliest deadline, stretched to every deadline that follows the previous one
    /// within half the debounce, so files copied in one go are reported in one batch; stretched
    /// by one debounce at most, so files that keep coming do not hold the batch back.
    pub(super) fn next_batch_at(&self) -> Option<Instant> {
        let mut deadlines: Vec<Instant> = self
            .pending
            .values()
            .map(|pending| pending.quiet_since + self.debounce)
            .collect();
        deadlines.sort();
        let mut deadlines = deadlines.into_iter();
        let earliest = deadlines.next()?;
        let mut batch_at = earliest;
        for deadline in deadlines {
            if deadline > batch_at + self.debounce / 2 || deadline > earliest + self.debounce {
                break;
            }
            batch_at = deadline;
        }
        Some(batch_at)
    }

    /// If the batch is due, settles every file that has been quiet for `debounce` by `now`: the
    /// changes to report, sorted by path. Reads files, so it blocks.
    pub(super) fn settle(&mut self, now: Instant) -> Vec<Change> {
        if self.next_batch_at().is_none_or(|batch_at| batch_at > now) {
            return Vec::new();
        }
        let due: Vec<PathBuf> = (self.pending.iter())
            .filter(|(_, pending)| pending.quiet_since + self.debounce <= now)
            .map(|(path, _)| path.clone())
            .collect();
        let mut changes = Vec::new();
        for path in due {
            let Some(pending) = self.pending.remove(&path) else {
                continue;
            };
            let presence = Presence::of(&path);
            let outcome = if presence == pending.presence {
                self.conclude(&path, presence)
            } else {
                // It changed without an event (polling, or a lost event): it is not quiet yet.
                Outcome::Unsettled(presence)
            };
            match outcome {
                Outcome::Settled(change) => changes.extend(change),
                Outcome::Unsettled(presence) => self.wait(path, presence, Instant::now()),
            }
        }
        changes.sort_by(|a, b| a.path().cmp(b.path()));
        changes
    }

    /// Makes `path`, which looks like `presence`, wait to be quiet from `quiet_since`.
    fn wait(&mut self, path: PathBuf, presence: Presence, quiet_since: Instant) {
        let pending = Pending {
            quiet_since,
            presence,
        };
        self.pending.insert(path, pending);
    }

    /// Decides what a quiet file holds, reading it unless it is too large.
    fn conclude(&mut self, path: &Path, presence: Presence) -> Outcome {
        let stamp = match presence {
            Presence::Missing => {
                let removed = self
                    .known
                    .remove(path)
                    .map(|_| Change::Removed { path: path.into() });
                return Outcome::Settled(removed);
            }
            Presence::Unknown(reason) => {
                return Outcome::Settled(self.unreadable(path, None, reason));
            }
            Presence::File(stamp) => stamp,
        };
        // Even with the stamp of the last verdict the file is read again: an event says it was
        // written, and on filesystems with coarse timestamps a rewrite of the same size can
        // keep every time. The hash tells whether the bytes changed.
        if stamp.len() > self.max_file_bytes {
            let reason = format!(
                "{} bytes, more than the limit of {} bytes",
                stamp.len(),
                self.max_file_bytes
            );
            return Outcome::Settled(self.unreadable(path, Some(stamp), reason));
        }
        let read = scan::read(path, stamp.len(), self.max_file_bytes);
        // A writer that resumes while the file is read is caught here: the bytes read are only
        // used if the file did not move meanwhile.
        let after = Presence::of(path);
        if after != Presence::File(stamp) {
            return Outcome::Unsettled(after);
        }
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(error) => {
                let reason = format!("{error:#}");
                return Outcome::Settled(self.unreadable(path, Some(stamp), reason));
            }
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let verdict = Verdict::Present {
            sha256: sha256.clone(),
        };
        let change = self
            .remember(path, Some(stamp), verdict)
            .then(|| Change::Present {
                path: path.into(),
                wasm: Arc::from(bytes),
                sha256,
            });
        Outcome::Settled(change)
    }

    fn unreadable(&mut self, path: &Path, stamp: Option<Stamp>, reason: String) -> Option<Change> {
        let verdict = Verdict::Unreadable {
            reason: reason.clone(),
        };
        (self.remember(path, stamp, verdict)).then(|| Change::Unreadable {
            path: path.into(),
            reason,
        })
    }

    /// Records the verdict on `path`; true if it differs from the one reported before.
    fn remember(&mut self, path: &Path, stamp: Option<Stamp>, verdict: Verdict) -> bool {
        let known = Known {
            stamp,
            verdict: verdict.clone(),
        };
        let previous = self.known.insert(path.into(), known);
        previous.is_none_or(|previous| previous.verdict != verdict)
    }
}
