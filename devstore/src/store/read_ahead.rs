//! Read-ahead for scans of `$all` from SQLite: while a reader sends one page, the next is read.
//!
//! A subscription catching up reads `$all` a page at a time and only asks for the next page
//! once it has handed this one to its client, so without read-ahead the SQLite read and the
//! sending take turns. When a page read from disk is a run of positions, the page after it is
//! started on a blocking thread at once; the reader's next call finds it (by its first position
//! and length) read or being read. A few such pages are kept, one per concurrent scan; a scan
//! that stops leaves one page behind, which the next started page pushes out.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::task::JoinHandle;

use super::event::RecordedEvent;

/// Pages read ahead at once, across all scans; past it the oldest is dropped.
const PAGES: usize = 4;

/// The pages being read ahead.
#[derive(Default)]
pub struct ReadAhead {
    /// Oldest first.
    pages: Mutex<VecDeque<Page>>,
}

/// A page being read ahead.
struct Page {
    /// Its first position.
    first: u64,
    /// How many events it has, at positions `first..first + len`.
    len: usize,
    /// The read.
    loading: JoinHandle<anyhow::Result<Vec<RecordedEvent>>>,
}

impl ReadAhead {
    /// The read of the run of `len` events from `first`, if it was started ahead.
    pub fn take(
        &self,
        first: u64,
        len: usize,
    ) -> Option<JoinHandle<anyhow::Result<Vec<RecordedEvent>>>> {
        let mut pages = self.lock();
        let slot = pages
            .iter()
            .position(|page| page.first == first && page.len == len)?;
        pages.remove(slot).map(|page| page.loading)
    }

    /// Keeps `loading`, the read of the run of `len` events from `first`, for a later
    /// [`ReadAhead::take`].
    pub fn put(
        &self,
        first: u64,
        len: usize,
        loading: JoinHandle<anyhow::Result<Vec<RecordedEvent>>>,
    ) {
        let mut pages = self.lock();
        if pages.len() == PAGES {
            // Its result is dropped when the read ends; a started SQLite read cannot be
            // stopped, and is short.
            pages.pop_front();
        }
        pages.push_back(Page {
            first,
            len,
            loading,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Page>> {
        self.pages
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
