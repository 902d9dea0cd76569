//! The `devstore` command line (also `projector devstore`): flags and the run loop.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;

use crate::config::{Config, DEFAULT_RECENT_BYTES, Storage, Tls};
use crate::server::Server;

/// Flags of `devstore` / `projector devstore`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:2113")]
    pub listen: SocketAddr,
    /// Keep events in DIR/events.db (SQLite) so they survive restarts.
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    pub data: Option<PathBuf>,
    /// Keep events in memory only (the default when --data is not given).
    #[arg(long)]
    pub memory: bool,
    /// Serve TLS with a certificate for localhost generated at start-up.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require the credentials of a default user (admin:changeit or ops:changeit) on every
    /// call, and enforce stream ACLs.
    #[arg(long)]
    pub require_auth: bool,
    /// With --data: MiB of the newest events kept in memory for readers; older events are
    /// read from SQLite.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_RECENT_BYTES >> 20)]
    pub recent_mib: usize,
}

impl Args {
    /// The server configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<Config> {
        let storage = match (&self.data, self.memory) {
            (Some(_), true) => bail!("--data and --memory exclude each other"),
            (Some(dir), false) => Storage::Dir(dir.clone()),
            (None, _) => Storage::Memory,
        };
        let tls = match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), false) => Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (None, None, true) => Tls::SelfSigned,
            (None, None, false) => Tls::None,
            _ => bail!("use either --tls-self-signed or both --tls-cert and --tls-key"),
        };
        Ok(Config {
            listen: self.listen,
            storage,
            tls,
            require_auth: self.require_auth,
            recent_bytes: self.recent_mib.saturating_mul(1 << 20),
        })
    }
}

/// Runs a server until `shutdown` resolves, printing the connection string to use.
pub async fn run(args: Args, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = args.config()?;
    let storage = match &config.storage {
        Storage::Memory => "in memory (lost on exit)".to_owned(),
        Storage::Dir(dir) => format!("in {}", dir.join("events.db").display()),
    };
    let server = Server::start(config).await?;
    println!(
        "devstore {} listening on {}, events kept {storage}",
        crate::grpc::SERVER_VERSION,
        server.local_addr()
    );
    println!("connect with: {}", server.connection_string());
    shutdown.await;
    println!("devstore stopping");
    server.shutdown().await
}
