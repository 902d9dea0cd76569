//! Dead letters collected per projection over a window, so that a burst of bad events becomes
//! one alert with a count instead of one per event.
//!
//! A window is fixed from its first dead letter, never extended by later ones: a projection that
//! dead-letters without pause is still alerted once per window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::message::cut;

/// The open window of each projection that has one.
#[derive(Default)]
pub(super) struct DeadLetterWindows {
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    by_projection: HashMap<String, Window>,
    /// Tells a window from a later one of the same projection, so that a timer that lost a race
    /// with `close_all` cannot close its successor early.
    last_id: u64,
}

/// Dead letters of one projection within one window.
pub(super) struct Window {
    pub projection: String,
    id: u64,
    pub count: u64,
    /// The first error seen in the window, already cut to size.
    pub first_error: String,
    pub since: SystemTime,
}

/// A window was opened: the caller must close it when it ends.
pub(super) struct Opened {
    pub id: u64,
}

impl DeadLetterWindows {
    /// Adds `count` dead letters to `projection`'s window, opening one if there is none.
    pub fn add(
        &self,
        projection: &str,
        count: u64,
        first_error: &str,
        now: SystemTime,
    ) -> Option<Opened> {
        let mut open = self.open.lock().expect("dead-letter windows poisoned");
        if let Some(window) = open.by_projection.get_mut(projection) {
            window.count = window.count.saturating_add(count);
            return None;
        }
        open.last_id += 1;
        let id = open.last_id;
        open.by_projection.insert(
            projection.to_string(),
            Window {
                projection: projection.to_string(),
                id,
                count,
                first_error: cut(first_error).into_owned(),
                since: now,
            },
        );
        Some(Opened { id })
    }

    /// Ends `projection`'s window `id`, if it is still open.
    pub fn close(&self, projection: &str, id: u64) -> Option<Window> {
        let mut open = self.open.lock().expect("dead-letter windows poisoned");
        match open.by_projection.get(projection) {
            Some(window) if window.id == id => open.by_projection.remove(projection),
            _ => None,
        }
    }

    /// Ends every open window.
    pub fn close_all(&self) -> Vec<Window> {
        let mut open = self.open.lock().expect("dead-letter windows poisoned");
        open.by_projection
            .drain()
            .map(|(_, window)| window)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_sums_its_counts_and_keeps_the_first_error() {
        let windows = DeadLetterWindows::default();
        let now = SystemTime::now();
        let opened = windows.add("orders", 2, "first", now).unwrap();
        assert!(windows.add("orders", 3, "second", now).is_none());
        let window = windows.close("orders", opened.id).unwrap();
        assert_eq!((window.count, window.first_error.as_str()), (5, "first"));
        assert!(windows.add("orders", 1, "again", now).is_some());
    }

    #[test]
    fn a_stale_timer_does_not_close_the_next_window() {
        let windows = DeadLetterWindows::default();
        let now = SystemTime::now();
        let first = windows.add("orders", 1, "a", now).unwrap();
        assert_eq!(windows.close_all().len(), 1);
        let second = windows.add("orders", 1, "b", now).unwrap();
        assert!(windows.close("orders", first.id).is_none());
        assert!(windows.close("orders", second.id).is_some());
    }
}
