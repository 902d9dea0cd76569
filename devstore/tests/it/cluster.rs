//! The handshake and cluster surface: server features, gossip (`esdb+discover://`), the seeded
//! `$users` stream, TLS and authentication.

use devstore::{Config, Server, Tls};
use eventstore::{ClientSettings, Credentials, Error, ReadStreamOptions, StreamPosition};

use crate::util::{client, client_for, collect, config, events, start, stream};

/// The handshake advertises a version with `caught_up` support and batch append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_features_handshake() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let info = client.server_info().await?;
    assert!(info.version() >= (23, 10));
    assert!(info.contains_features(eventstore::operations::Features::BATCH_APPEND));
    server.shutdown().await
}

/// `esdb+discover://` asks gossip for the leader, which is devstore itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_through_gossip() -> anyhow::Result<()> {
    let server = Server::start(config()).await?;
    let address = server.local_addr();
    let client = client_for(&format!(
        "esdb+discover://{address}?tls=false&discoveryInterval=0"
    ))?;
    let name = stream("discovered");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 2))
        .await?;
    assert_eq!(
        collect(
            client
                .read_stream(name.as_str(), &Default::default())
                .await?
        )
        .await?
        .len(),
        2
    );
    server.shutdown().await
}

/// A fresh node has the default admin user's `$UserCreated` event in `$users`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_node_has_the_admin_user() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let read = collect(
        client
            .read_stream("$users", &ReadStreamOptions::default())
            .await?,
    )
    .await?;
    assert_eq!(read.len(), 1);
    let event = read[0].get_original_event();
    assert_eq!(
        (event.event_type.as_str(), &event.data[..]),
        ("$UserCreated", &b"admin"[..])
    );
    server.shutdown().await
}

/// TLS with a self-signed certificate, which the client accepts with `tlsVerifyCert=false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_self_signed_certificate() -> anyhow::Result<()> {
    let server = Server::start(Config {
        tls: Tls::SelfSigned,
        ..config()
    })
    .await?;
    assert!(
        server
            .connection_string()
            .contains("tls=true&tlsVerifyCert=false")
    );
    let client = client(&server)?;
    let name = stream("secure");
    client
        .append_to_stream(name.as_str(), &Default::default(), events("E", 1))
        .await?;
    assert_eq!(
        collect(
            client
                .read_stream(name.as_str(), &Default::default())
                .await?
        )
        .await?
        .len(),
        1
    );
    server.shutdown().await
}

/// With `require_auth`, calls need a default user's credentials (`acl.rs` covers `ops`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_auth_checks_credentials() -> anyhow::Result<()> {
    let server = Server::start(Config {
        require_auth: true,
        ..config()
    })
    .await?;
    let anonymous = client(&server)?;
    let denied = anonymous
        .append_to_stream(stream("x").as_str(), &Default::default(), events("E", 1))
        .await;
    assert!(matches!(denied, Err(Error::AccessDenied)), "{denied:?}");

    let address = server.local_addr();
    let wrong: ClientSettings =
        format!("esdb://admin:wrong@{address}?tls=false&discoveryInterval=0").parse()?;
    let wrong = eventstore::Client::new(wrong)?;
    let refused = wrong
        .append_to_stream(stream("x").as_str(), &Default::default(), events("E", 1))
        .await;
    assert!(matches!(refused, Err(Error::AccessDenied)), "{refused:?}");

    let admin = client_for(&format!(
        "esdb://admin:changeit@{address}?tls=false&discoveryInterval=0"
    ))?;
    let name = stream("authorised");
    admin
        .append_to_stream(name.as_str(), &Default::default(), events("E", 1))
        .await?;
    // Per-call credentials work too.
    let options = ReadStreamOptions::default()
        .position(StreamPosition::Start)
        .authenticated(Credentials::new("admin", "changeit"));
    assert_eq!(
        collect(anonymous.read_stream(name.as_str(), &options).await?)
            .await?
            .len(),
        1
    );
    server.shutdown().await
}
