//! A client that connects and never speaks TLS is dropped after the handshake timeout, while
//! other clients complete their handshakes; these talk to the listener directly, since no gRPC
//! client can be made to stall its handshake.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::{Connection, incoming, tls_acceptor};
use crate::config::Tls;

/// Short so the test is quick; the hang guard below is what keeps a regression from hanging.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);

/// Far above [`HANDSHAKE_TIMEOUT`]: only there so that a server that never drops the silent
/// client fails the test instead of hanging it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A certificate for `localhost` in PEM files, and a connector that trusts only it.
fn certificate(dir: &std::path::Path) -> (Tls, TlsConnector) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("cert written");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("key written");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(certified.cert.der().to_vec()))
        .expect("trusted");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    (
        Tls::Files { cert, key },
        TlsConnector::from(Arc::new(config)),
    )
}

async fn handshake(connector: &TlsConnector, address: std::net::SocketAddr) {
    let tcp = TcpStream::connect(address).await.expect("connected");
    let name = ServerName::try_from("localhost").expect("server name");
    connector.connect(name, tcp).await.expect("handshake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_completes_the_handshake_is_dropped_and_others_are_served() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (tls, connector) = certificate(dir.path());
    let acceptor = tls_acceptor(&tls)
        .expect("acceptor")
        .expect("TLS configured");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let address = listener.local_addr().expect("address");
    let mut connections = pin!(incoming(listener, Some(acceptor), HANDSHAKE_TIMEOUT));

    let mut silent = TcpStream::connect(address).await.expect("connected");
    handshake(&connector, address).await;
    let served = tokio::time::timeout(HANG_GUARD, connections.next())
        .await
        .expect("a handshake while the silent client waits");
    assert!(matches!(served, Some(Ok(Connection::Tls(_)))));

    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(HANG_GUARD, silent.read(&mut buffer))
        .await
        .expect("the server never dropped the silent client");
    // Closed by the server: end of stream, or a reset.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    handshake(&connector, address).await;
    let served = tokio::time::timeout(HANG_GUARD, connections.next())
        .await
        .expect("a handshake after the silent client was dropped");
    assert!(matches!(served, Some(Ok(Connection::Tls(_)))));
}
