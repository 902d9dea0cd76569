//! Accepting connections: plain HTTP/2 (h2c) or TLS with ALPN `h2`, and the certificates.
//!
//! TLS handshakes run in their own tasks so that a slow or broken client cannot stall the accept
//! loop, and each has a deadline so that a client that connects and never finishes its handshake
//! cannot hold a socket and a task forever. The rustls crypto provider is passed explicitly rather than installed process-wide: the
//! `eventstore` client installs its own default provider and panics if one is already set, and
//! devstore often shares a process with it (tests, `projector dev`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::Stream;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::config::Tls;

#[cfg(test)]
mod tests;

/// An accepted client connection.
pub enum Connection {
    /// h2c.
    Plain(TcpStream),
    /// TLS; boxed because the TLS state is large.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The TLS acceptor for a configuration, None for plain HTTP/2.
pub fn tls_acceptor(tls: &Tls) -> anyhow::Result<Option<TlsAcceptor>> {
    let (certificates, key) = match tls {
        Tls::None => return Ok(None),
        Tls::SelfSigned => self_signed()?,
        Tls::Files { cert, key } => {
            let cert_pem =
                std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
            let key_pem =
                std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
            let certificates = rustls_pemfile::certs(&mut &cert_pem[..])
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parsing certificates in {}", cert.display()))?;
            if certificates.is_empty() {
                bail!("no certificate found in {}", cert.display());
            }
            let key = rustls_pemfile::private_key(&mut &key_pem[..])
                .with_context(|| format!("parsing private key in {}", key.display()))?
                .with_context(|| format!("no private key found in {}", key.display()))?;
            (certificates, key)
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("loading the TLS certificate and key")?;
    // gRPC clients only speak HTTP/2 and insist on negotiating it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// A certificate for `localhost` and `127.0.0.1`, valid for this run only.
fn self_signed() -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .context("generating a self-signed certificate")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    Ok((vec![certified.cert.der().clone()], key))
}

/// The stream of accepted connections that tonic serves. Ends when the listener fails. A TLS
/// client that has not completed its handshake `handshake_timeout` after connecting is dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    handshake_timeout: Duration,
) -> impl Stream<Item = io::Result<Connection>> + Send + 'static {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            // Stop listening as soon as tonic drops the stream (shutdown), freeing the port.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = sender.closed() => return,
            };
            let (tcp, _) = match accepted {
                Ok(accepted) => accepted,
                // Per-connection failures (the client reset before accept, too many open
                // files) must not stop the server.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            match &acceptor {
                None => {
                    if sender.send(Ok(Connection::Plain(tcp))).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let sender = sender.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => {
                                let _ = sender.send(Ok(Connection::Tls(Box::new(tls)))).await;
                            }
                            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                            Err(_) => tracing::debug!(
                                timeout = ?handshake_timeout,
                                "TLS handshake not completed in time; connection dropped"
                            ),
                        }
                    });
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}

impl Connected for Connection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl Connection {
    fn tcp(&self) -> &TcpStream {
        match self {
            Connection::Plain(tcp) => tcp,
            Connection::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let connection = self.get_mut();
        let filled = buffer.filled().len();
        let poll = match connection {
            Connection::Plain(tcp) => Pin::new(tcp).poll_read(context, buffer),
            Connection::Tls(tls) => Pin::new(tls.as_mut()).poll_read(context, buffer),
        };
        if matches!(poll, Poll::Ready(Ok(()))) && buffer.filled().len() > filled {
            acknowledge_now(connection.tcp());
        }
        poll
    }
}

/// Asks the kernel to acknowledge received data at once instead of delaying the ACK.
///
/// The official Rust client does not disable Nagle's algorithm, so it holds back the small
/// frames of a client-streaming append until the previous segment is acknowledged. With the
/// server's delayed ACK (40 ms on Linux) every append would stall for 40 ms. Linux clears the
/// quick-ACK flag on its own, so it is set again after every read.
fn acknowledge_now(tcp: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tcp;
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(tcp) => Pin::new(tcp).poll_write(context, buffer),
            Connection::Tls(tls) => Pin::new(tls.as_mut()).poll_write(context, buffer),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(tcp) => Pin::new(tcp).poll_write_vectored(context, buffers),
            Connection::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(context, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(tcp) => tcp.is_write_vectored(),
            Connection::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(tcp) => Pin::new(tcp).poll_flush(context),
            Connection::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(tcp) => Pin::new(tcp).poll_shutdown(context),
            Connection::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(context),
        }
    }
}
