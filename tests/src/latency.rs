//! Append-to-commit latency, measured from outside a running pipeline: the writer notes when it
//! appended each position, and a thread watching the status board notes when the projection's
//! committed position passed it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use projector::pipeline::Status;

/// Measures how long appended events take to be committed by projection `name`.
pub struct Probe {
    pending: Arc<Mutex<VecDeque<(i64, Instant)>>>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    done: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    /// Starts watching `status` for projection `name`'s committed position.
    pub fn start(status: &Status, name: &str) -> Probe {
        let pending: Arc<Mutex<VecDeque<(i64, Instant)>>> = Arc::default();
        let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (pending, latencies, done) = (
                Arc::clone(&pending),
                Arc::clone(&latencies),
                Arc::clone(&done),
            );
            let (status, name) = (status.clone(), name.to_string());
            std::thread::spawn(move || {
                loop {
                    let committed = status
                        .projections()
                        .get(&name)
                        .and_then(|s| s.checkpoint)
                        .map_or(0, |p| p.commit as i64);
                    let now = Instant::now();
                    let mut queue = pending.lock().unwrap();
                    while queue.front().is_some_and(|(at, _)| *at <= committed) {
                        let (_, appended) = queue.pop_front().unwrap();
                        latencies.lock().unwrap().push(now - appended);
                    }
                    let empty = queue.is_empty();
                    drop(queue);
                    if empty && done.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        };
        Probe {
            pending,
            latencies,
            done,
            watcher: Some(watcher),
        }
    }

    /// Notes that the event at `position` was appended at `at` (just before the append call).
    pub fn appended(&self, position: i64, at: Instant) {
        self.pending.lock().unwrap().push_back((position, at));
    }

    /// The latencies measured so far, taken out (the probe keeps measuring).
    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.latencies.lock().unwrap())
    }

    /// Waits for every noted event to be committed; returns the latencies not taken yet.
    pub fn finish(mut self) -> Vec<Duration> {
        self.done.store(true, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            watcher.join().expect("the latency watcher");
        }
        self.take()
    }
}

/// The `q` quantile (0 to 1) of `durations`, in milliseconds; sorts them.
pub fn quantile_ms(durations: &mut [Duration], q: f64) -> f64 {
    durations.sort();
    if durations.is_empty() {
        return f64::NAN;
    }
    durations[((durations.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
}
