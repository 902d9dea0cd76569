//! The sending side of a server-streaming call (reads, subscriptions, batch appends).
//!
//! Responses go through a bounded channel to tonic, which gives back-pressure: a slow client
//! slows its own producer task and nothing else. Every wait on the channel also watches the
//! server's shutdown signal, so a stuck client cannot hold up shutdown.

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::status;

/// Responses buffered per call before the producer waits for the client.
const CAPACITY: usize = 256;

/// Why a producer must stop.
#[derive(Debug)]
pub enum Stop {
    /// The client went away (cancelled the call or disconnected).
    ClientGone,
    /// The server is shutting down; the client was told.
    ShuttingDown,
    /// The call failed; the client was sent its error status.
    Failed,
}

/// Sends responses of type `T` to one call.
pub struct Sink<T> {
    sender: mpsc::Sender<Result<T, Status>>,
    shutdown: watch::Receiver<bool>,
}

impl<T: Send + 'static> Sink<T> {
    /// A sink and the stream to hand to tonic as the call's response.
    pub fn new(shutdown: watch::Receiver<bool>) -> (Sink<T>, ReceiverStream<Result<T, Status>>) {
        let (sender, receiver) = mpsc::channel(CAPACITY);
        (Sink { sender, shutdown }, ReceiverStream::new(receiver))
    }

    /// Sends one response, waiting while the client is behind.
    pub async fn send(&mut self, response: T) -> Result<(), Stop> {
        match self.sender.try_send(Ok(response)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Stop::ClientGone),
            Err(mpsc::error::TrySendError::Full(response)) => {
                tokio::select! {
                    sent = self.sender.send(response) => sent.map_err(|_| Stop::ClientGone),
                    _ = wait_for_shutdown(&mut self.shutdown) => Err(self.shut_down()),
                }
            }
        }
    }

    /// Ends the call with an error status (best effort: the client may be gone); the producer
    /// returns the [`Stop`] it gives.
    pub async fn fail(&self, error: Status) -> Stop {
        let _ = self.sender.send(Err(error)).await;
        Stop::Failed
    }

    /// Waits until `changed` resolves, the client goes away, or the server shuts down.
    pub async fn wait<F: std::future::Future>(&mut self, changed: F) -> Result<F::Output, Stop> {
        tokio::select! {
            output = changed => Ok(output),
            _ = self.sender.closed() => Err(Stop::ClientGone),
            _ = wait_for_shutdown(&mut self.shutdown) => Err(self.shut_down()),
        }
    }

    /// Tells the client the server is stopping; it may reconnect to a new one.
    fn shut_down(&self) -> Stop {
        let _ = self.sender.try_send(Err(status::shutting_down()));
        Stop::ShuttingDown
    }
}

/// Resolves once the shutdown flag is (or already was) raised.
pub async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    // An error means the server dropped the sender, which only happens when it has stopped.
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}
