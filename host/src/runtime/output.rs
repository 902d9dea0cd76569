//! A plugin's stdout and stderr: a bounded capture that never refuses a write.
//!
//! Printing is allowed, so it must never cost an event. WASI's own memory pipe traps a write
//! that does not fit ("failed printing to stdout") and reports itself closed once full, which
//! turned a plugin printing 100 KB in one call into a dead letter. This capture keeps what fits
//! in its bound, counts the rest as dropped, and always accepts more; the instance drains it
//! into the log after every call, so each call starts with the whole bound free.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much of the end of a call's output is remembered even past the bound: a trap's panic
/// message is the last thing a plugin writes, often after the bound was used up.
const TAIL_BYTES: usize = 4 << 10;

/// How much the guest may write per `write` call; any positive figure works, since writes
/// over the bound are accepted and dropped, but a large one saves the guest round trips.
const WRITE_PERMIT: usize = 64 << 10;

/// One output stream of an instance, shared between the WASI context and the host.
#[derive(Clone)]
pub(super) struct Capture(Arc<Mutex<Captured>>);

struct Captured {
    bytes: Vec<u8>,
    capacity: usize,
    dropped: u64,
    /// The last [`TAIL_BYTES`] written since the last drain, kept or dropped.
    tail: Vec<u8>,
}

/// What a call wrote, as drained after it.
pub(super) struct Drained {
    /// The bytes kept (at most the capture's bound).
    pub bytes: Vec<u8>,
    /// Bytes written beyond the bound and dropped.
    pub dropped: u64,
}

impl Capture {
    /// A capture that keeps at most `capacity` bytes between drains.
    pub fn new(capacity: usize) -> Capture {
        Capture(Arc::new(Mutex::new(Captured {
            bytes: Vec::new(),
            capacity,
            dropped: 0,
            tail: Vec::new(),
        })))
    }

    /// Takes everything captured since the last drain.
    pub fn drain(&self) -> Drained {
        let mut captured = self.lock();
        captured.tail.clear();
        Drained {
            bytes: std::mem::take(&mut captured.bytes),
            dropped: std::mem::take(&mut captured.dropped),
        }
    }

    /// What was captured since the last drain, left in place (for a trap's panic message):
    /// the beginning (up to the bound) and the end (the last few KiB, written past the bound or
    /// not).
    pub fn peek(&self) -> (Vec<u8>, Vec<u8>) {
        let captured = self.lock();
        (captured.bytes.clone(), captured.tail.clone())
    }

    fn keep(&self, bytes: &[u8]) {
        let mut captured = self.lock();
        let room = captured.capacity.saturating_sub(captured.bytes.len());
        let kept = bytes.len().min(room);
        captured.bytes.extend_from_slice(&bytes[..kept]);
        captured.dropped += (bytes.len() - kept) as u64;
        let recent = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        captured.tail.extend_from_slice(recent);
        let excess = captured.tail.len().saturating_sub(TAIL_BYTES);
        captured.tail.drain(..excess);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        // A panic while holding this lock cannot leave the buffer inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.keep(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_fits_and_counts_the_rest() {
        let mut capture = Capture::new(10);
        capture
            .write(bytes::Bytes::from_static(b"0123456"))
            .unwrap();
        capture.write(bytes::Bytes::from_static(b"789abc")).unwrap();
        assert_eq!(capture.check_write().unwrap(), WRITE_PERMIT);
        let drained = capture.drain();
        assert_eq!(drained.bytes, b"0123456789");
        assert_eq!(drained.dropped, 3);
        // A drain frees the whole bound again.
        capture.write(bytes::Bytes::from_static(b"x")).unwrap();
        let drained = capture.drain();
        assert_eq!((drained.bytes.as_slice(), drained.dropped), (&b"x"[..], 0));
    }

    /// The end of the output survives a flood past the bound, itself bounded.
    #[test]
    fn remembers_the_end_past_the_bound() {
        let mut capture = Capture::new(10);
        capture
            .write(bytes::Bytes::from(vec![b'.'; 1 << 20]))
            .unwrap();
        capture
            .write(bytes::Bytes::from_static(b"the end"))
            .unwrap();
        let (head, tail) = capture.peek();
        assert_eq!(head, b"..........");
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail.ends_with(b".the end"));
        capture.drain();
        assert_eq!(capture.peek(), (Vec::new(), Vec::new()));
    }
}
