//! The settings a [`crate::Server`] starts with.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How a devstore server is started.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (see [`crate::Server::local_addr`]).
    pub listen: SocketAddr,
    /// Where the event log lives.
    pub storage: Storage,
    /// Plain HTTP/2 (h2c) or TLS.
    pub tls: Tls,
    /// Reject calls that do not carry the basic credentials of a default user (`admin:changeit`
    /// or `ops:changeit`), and enforce stream ACLs.
    pub require_auth: bool,
    /// With [`Storage::Dir`]: how many bytes of the newest events (payloads and bookkeeping)
    /// stay in memory for readers, so live subscribers do not each read them from SQLite.
    /// Older events are read from SQLite. In memory every event is kept and this is unused.
    pub recent_bytes: usize,
}

/// The default [`Config::recent_bytes`]: about 70,000 events of 300 bytes, seconds of appends
/// at full speed, which is as far behind as a live subscriber usually gets.
pub const DEFAULT_RECENT_BYTES: usize = 32 << 20;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 2113)),
            storage: Storage::Memory,
            tls: Tls::None,
            require_auth: false,
            recent_bytes: DEFAULT_RECENT_BYTES,
        }
    }
}

/// Where the event log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Only in memory: everything is gone when the server stops.
    Memory,
    /// A SQLite database `events.db` inside this directory (created if missing); survives
    /// restarts.
    Dir(PathBuf),
}

/// Transport security of the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// HTTP/2 with prior knowledge (h2c): clients connect with `?tls=false`.
    None,
    /// TLS with a certificate for `localhost`/`127.0.0.1` generated at start-up: clients connect
    /// with `?tls=true&tlsVerifyCert=false`.
    SelfSigned,
    /// TLS with a PEM certificate chain and private key from files.
    Files {
        /// PEM file with the certificate chain, leaf first.
        cert: PathBuf,
        /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}
