//! Starting and stopping a devstore server.
//!
//! [`Server::start`] opens the store, binds the listener and serves in a background task;
//! [`Server::shutdown`] stops accepting, ends open subscriptions with `Unavailable` so clients
//! can reconnect, waits for in-flight calls, and closes the store. Every acknowledged append
//! was committed before it was acknowledged, so nothing acknowledged is lost.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Tls};
use crate::grpc::{self, Context};
use crate::limits::TLS_HANDSHAKE_TIMEOUT;
use crate::store::Store;
use crate::transport;

/// How long shutdown waits for in-flight calls before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running server.
pub struct Server {
    /// The bound address (the real port when the configuration asked for port 0).
    local_addr: SocketAddr,
    /// Whether clients must connect with TLS.
    tls: bool,
    /// Kept to close it after the gRPC server stopped.
    store: Store,
    /// Stopped before the store closes, so each group's last checkpoint is written.
    groups: grpc::Groups,
    /// Raising it stops the gRPC server and every long-running call (also raised by an
    /// `Operations/Shutdown` call).
    shutdown: std::sync::Arc<watch::Sender<bool>>,
    /// The gRPC server task.
    serving: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Server {
    /// Opens the store, binds `config.listen` and starts serving in the background.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let storage = config.storage.clone();
        let recent_bytes = config.recent_bytes;
        let store = tokio::task::spawn_blocking(move || Store::open(&storage, recent_bytes))
            .await
            .context("store task failed")?
            .context("opening the event store")?;
        let acceptor = transport::tls_acceptor(&config.tls)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let local_addr = listener.local_addr().context("reading the bound address")?;
        let (shutdown, shutdown_signal) = watch::channel(false);
        let groups = grpc::Groups::load(store.clone())
            .await
            .context("starting the persistent subscription groups")?;
        let context = Context {
            store: store.clone(),
            shutdown: shutdown_signal.clone(),
            groups: groups.clone(),
        };
        let shutdown = std::sync::Arc::new(shutdown);
        let routes = grpc::routes(
            context,
            local_addr,
            config.require_auth,
            std::sync::Arc::clone(&shutdown),
        );
        let routes = crate::http::add(routes, shutdown_signal.clone());
        // However the server is stopped (`shutdown` or an `Operations/Shutdown` call), the
        // groups end their consumers' calls, which the gRPC server waits for.
        let mut stopping_groups = shutdown_signal.clone();
        let stopped_groups = groups.clone();
        tokio::spawn(async move {
            let _ = stopping_groups.wait_for(|stopping| *stopping).await;
            stopped_groups.stop().await;
        });
        let mut stopping = shutdown_signal;
        let serving = tokio::spawn(
            tonic::transport::Server::builder()
                // Answer client keep-alive PINGs promptly; idle connections stay open.
                .http2_keepalive_interval(Some(Duration::from_secs(30)))
                .tcp_nodelay(true)
                // HTTP/1.1 too, for the HTTP endpoints (`curl`, health checkers).
                .accept_http1(true)
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    transport::incoming(listener, acceptor, TLS_HANDSHAKE_TIMEOUT),
                    async move {
                        let _ = stopping.wait_for(|stopping| *stopping).await;
                    },
                ),
        );
        tracing::info!(address = %local_addr, tls = config.tls != Tls::None, "devstore listening");
        Ok(Server {
            local_addr,
            tls: config.tls != Tls::None,
            store,
            groups,
            shutdown,
            serving,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The connection string for EventStoreDB clients, e.g. `esdb://127.0.0.1:2113?tls=false`.
    pub fn connection_string(&self) -> String {
        let address = self.local_addr;
        let host = if address.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else if address.is_ipv6() {
            format!("[{}]", address.ip())
        } else {
            address.ip().to_string()
        };
        if self.tls {
            format!(
                "esdb://{host}:{}?tls=true&tlsVerifyCert=false",
                address.port()
            )
        } else {
            format!("esdb://{host}:{}?tls=false", address.port())
        }
    }

    /// Stops serving and closes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        // Before the calls drain: the groups end their consumers' calls.
        self.groups.stop().await;
        let mut serving = self.serving;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut serving).await {
            Ok(joined) => joined
                .context("server task failed")?
                .context("serving gRPC")?,
            Err(_) => {
                tracing::warn!(
                    "calls still running after the shutdown grace period; dropping them"
                );
                serving.abort();
            }
        }
        let store = self.store;
        tokio::task::spawn_blocking(move || store.close())
            .await
            .context("store task failed")?
            .context("closing the event store")
    }
}
