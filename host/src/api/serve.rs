//! The API's accept loop: axum's router on hyper's HTTP/1.1 connections, with the bounds
//! `axum::serve` does not set. A client that opens connections and sends nothing (or a header
//! a byte at a time) is cut off after [`HEADER_READ_TIMEOUT`]; past [`MAX_CONNECTIONS`] open
//! at once, new ones are closed at once, so no client holds every file descriptor the process
//! (and SQLite) needs. On shutdown the listener closes and connections in flight finish their
//! request (bounded by the caller, `Api::stopped`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::host::Reached;

/// Longest a client may take to send a request's header (the first one, and each one after
/// on a kept-alive connection): long enough for any real client, short for an idle one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 512;

/// Pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown`, then waits for the connections in flight.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut refused = 0u64;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(error = %error, "the API could not accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    open = MAX_CONNECTIONS,
                    refused,
                    "the API has as many connections open as it serves; closing new ones"
                );
            }
            continue;
        };
        // Without its own address a connection can name nothing: `host::check` refuses it.
        let reached = Reached(
            stream
                .local_addr()
                .unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
        );
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(reached));
            router.clone().oneshot(request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _open = permit;
            // A client that goes away mid-request is its own business.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
