//! Stream ACLs under `require_auth`, through the official client as the default users `admin`
//! (in `$admins`, bypasses ACLs) and `ops` (in `$ops`, an ordinary user to ACLs): `$acl` roles,
//! metadata streams, system streams, `$all`, `$settings`, and no enforcement without the flag.

use eventstore::{
    Acl, Client, DeleteStreamOptions, Error, EventData, PersistentSubscriptionOptions,
    ReadAllOptions, StreamAclBuilder, StreamMetadata, StreamMetadataBuilder, StreamMetadataResult,
    StreamPosition, SubscribeToAllOptions, SubscribeToStreamOptions, Subscription,
    TombstoneStreamOptions,
};

use crate::util::{client_for, config, events, guard, start, stream};
use devstore::{Config, Server};

/// A server requiring credentials, with a client for each default user.
struct Secured {
    server: Server,
    admin: Client,
    ops: Client,
}

impl Secured {
    async fn start() -> anyhow::Result<Secured> {
        let server = Server::start(Config {
            require_auth: true,
            ..config()
        })
        .await?;
        let address = server.local_addr();
        let as_user = |user: &str| {
            client_for(&format!(
                "esdb://{user}:changeit@{address}?tls=false&discoveryInterval=0"
            ))
        };
        Ok(Secured {
            admin: as_user("admin")?,
            ops: as_user("ops")?,
            server,
        })
    }
}

/// Metadata with only an ACL, built by `acl` from an empty builder.
fn acl_metadata(acl: impl FnOnce(StreamAclBuilder) -> StreamAclBuilder) -> StreamMetadata {
    StreamMetadataBuilder::new()
        .acl(Acl::Stream(acl(StreamAclBuilder::new()).build()))
        .build()
}

/// Reads `stream` to the end: how many events, or the error the call or a later message gave.
async fn read(client: &Client, stream: &str) -> Result<usize, Error> {
    let mut read = guard(client.read_stream(stream, &Default::default()))
        .await
        .expect("read within the hang guard")?;
    let mut count = 0;
    while guard(read.next())
        .await
        .expect("next within the hang guard")?
        .is_some()
    {
        count += 1;
    }
    Ok(count)
}

/// Reads `$all` forwards to the end: how many events, or the error.
async fn read_all(client: &Client) -> Result<usize, Error> {
    let mut read = guard(client.read_all(&ReadAllOptions::default()))
        .await
        .expect("read within the hang guard")?;
    let mut count = 0;
    while guard(read.next())
        .await
        .expect("next within the hang guard")?
        .is_some()
    {
        count += 1;
    }
    Ok(count)
}

/// Appends one event to `stream`.
async fn append(client: &Client, stream: &str) -> Result<(), Error> {
    client
        .append_to_stream(stream, &Default::default(), events("E", 1))
        .await
        .map(drop)
}

/// Fails unless `result` is the client's `AccessDenied`; `what` names the attempt.
fn assert_denied<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    assert!(
        matches!(result, Err(Error::AccessDenied)),
        "{what}: {result:?}"
    );
}

/// Reads events off `subscription` until it ends, and returns why.
async fn ended(subscription: &mut Subscription) -> anyhow::Result<Result<(), Error>> {
    loop {
        if let Err(error) = guard(subscription.next()).await? {
            return Ok(Err(error));
        }
    }
}

/// `$r` for `$admins` only: admin reads (and subscribes), ops is refused, while the metadata
/// stays readable to ops through the default `$mr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_acl_refuses_users_it_does_not_name() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    let name = stream("private");
    admin
        .append_to_stream(name.as_str(), &Default::default(), events("E", 2))
        .await?;
    assert_eq!(
        read(&ops, &name).await?,
        2,
        "user streams are open by default"
    );
    let metadata = acl_metadata(|acl| acl.add_read_roles("$admins"));
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &metadata)
        .await?;

    assert_eq!(read(&admin, &name).await?, 2);
    assert_denied(read(&ops, &name).await, "ops reads");
    let mut subscription = ops
        .subscribe_to_stream(name.as_str(), &SubscribeToStreamOptions::default())
        .await;
    assert_denied(guard(subscription.next()).await?, "ops subscribes");
    match ops
        .get_stream_metadata(name.as_str(), &Default::default())
        .await?
    {
        StreamMetadataResult::Success(versioned) => assert_eq!(versioned.metadata(), &metadata),
        other => anyhow::bail!("unexpected metadata result {other:?}"),
    }
    // Naming the user works as well as naming its group.
    let by_name = acl_metadata(|acl| acl.add_read_roles("ops"));
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &by_name)
        .await?;
    assert_eq!(read(&ops, &name).await?, 2);
    server.shutdown().await
}

/// A persistent subscription's consumer needs read access to the group's stream; managing
/// groups needs only credentials (both default users are `$admins` or `$ops`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_subscription_consumers_need_read_access() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    let name = stream("private");
    admin
        .append_to_stream(name.as_str(), &Default::default(), events("E", 1))
        .await?;
    admin
        .set_stream_metadata(
            name.as_str(),
            &Default::default(),
            &acl_metadata(|acl| acl.add_read_roles("$admins")),
        )
        .await?;
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Start);
    ops.create_persistent_subscription(name.as_str(), "billing", &options)
        .await?;
    let refused = ops
        .subscribe_to_persistent_subscription(name.as_str(), "billing", &Default::default())
        .await;
    assert_denied(refused.map(drop), "ops consumes a stream it may not read");
    let mut consumer = admin
        .subscribe_to_persistent_subscription(name.as_str(), "billing", &Default::default())
        .await?;
    let event = guard(consumer.next()).await??;
    assert_eq!(event.get_original_event().revision, 0);
    let info = ops
        .get_persistent_subscription_info(name.as_str(), "billing", &Default::default())
        .await?;
    assert_eq!(info.connections[0].username, "admin");
    server.shutdown().await
}

/// `$w` decides appends, through `Append` and `BatchAppend` alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_acl_decides_appends() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    let name = stream("guarded");
    let admins_only = acl_metadata(|acl| acl.add_write_roles("$admins"));
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &admins_only)
        .await?;
    assert_denied(append(&ops, &name).await, "ops appends");
    let batch = ops.batch_append(&Default::default()).await?;
    let refused = guard(batch.append_to_stream(
        name.as_str(),
        eventstore::ExpectedRevision::Any,
        events("E", 1),
    ))
    .await?;
    assert!(
        matches!(&refused, Err(Error::Grpc { code, message })
            if *code == tonic::Code::PermissionDenied && message == "AccessDenied"),
        "{refused:?}"
    );
    append(&admin, &name).await?;

    let with_ops = acl_metadata(|acl| acl.add_write_roles("$admins").add_write_roles("ops"));
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &with_ops)
        .await?;
    append(&ops, &name).await?;
    assert_eq!(read(&admin, &name).await?, 2);
    server.shutdown().await
}

/// `$mr` and `$mw` decide reading and writing `$$<stream>`, whatever `$r` and `$w` say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_acls_decide_metadata_reads_and_writes() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    let name = stream("meta");
    // By default any user may set a user stream's metadata.
    let open = StreamMetadataBuilder::new().max_count(5).build();
    ops.set_stream_metadata(name.as_str(), &Default::default(), &open)
        .await?;
    let closed = acl_metadata(|acl| {
        acl.add_meta_read_roles("$admins")
            .add_meta_write_roles("$admins")
    });
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &closed)
        .await?;
    assert_denied(
        ops.get_stream_metadata(name.as_str(), &Default::default())
            .await,
        "ops reads metadata",
    );
    assert_denied(
        ops.set_stream_metadata(name.as_str(), &Default::default(), &open)
            .await,
        "ops writes metadata",
    );
    append(&ops, &name).await?;
    assert_eq!(read(&ops, &name).await?, 1);
    assert!(matches!(
        admin
            .get_stream_metadata(name.as_str(), &Default::default())
            .await?,
        StreamMetadataResult::Success(_)
    ));
    server.shutdown().await
}

/// `$d` decides soft deletes and tombstones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_acl_decides_deletes_and_tombstones() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    let name = stream("kept");
    append(&admin, &name).await?;
    let admins_only = acl_metadata(|acl| acl.add_delete_roles("$admins"));
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &admins_only)
        .await?;
    assert_denied(
        ops.delete_stream(name.as_str(), &DeleteStreamOptions::default())
            .await,
        "ops deletes",
    );
    assert_denied(
        ops.tombstone_stream(name.as_str(), &TombstoneStreamOptions::default())
            .await,
        "ops tombstones",
    );
    assert_eq!(read(&ops, &name).await?, 1, "still there");
    admin
        .tombstone_stream(name.as_str(), &TombstoneStreamOptions::default())
        .await?;

    let open = stream("open");
    append(&admin, &open).await?;
    ops.delete_stream(open.as_str(), &DeleteStreamOptions::default())
        .await?;
    server.shutdown().await
}

/// System streams are for admins by default, `$all` among them (its ACL is `$$$all`'s);
/// writing `$all` or deleting a metadata stream is refused to everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_streams_and_all_are_for_admins() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    assert_eq!(read(&admin, "$users").await?, 1);
    assert_denied(read(&ops, "$users").await, "ops reads $users");
    assert_denied(append(&ops, "$system-thing").await, "ops appends");
    append(&admin, "$system-thing").await?;
    assert!(read_all(&admin).await? >= 2);
    assert_denied(read_all(&ops).await, "ops reads $all");
    let mut subscription = ops
        .subscribe_to_all(&SubscribeToAllOptions::default())
        .await;
    assert_denied(guard(subscription.next()).await?, "ops subscribes to $all");

    let readable = acl_metadata(|acl| acl.add_read_roles("$ops"));
    admin
        .set_stream_metadata("$all", &Default::default(), &readable)
        .await?;
    assert!(read_all(&ops).await? >= 3);
    assert_denied(append(&admin, "$all").await, "admin appends to $all");
    let name = stream("with-metadata");
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &readable)
        .await?;
    assert_denied(
        admin
            .delete_stream(
                format!("$${name}").as_str(),
                &DeleteStreamOptions::default(),
            )
            .await,
        "admin deletes a metadata stream",
    );
    server.shutdown().await
}

/// `$settings` replaces the built-in defaults for streams whose own ACL says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_the_defaults() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    let name = stream("defaulted");
    append(&admin, &name).await?;
    let settings = EventData::json(
        "$settings",
        &serde_json::json!({"$userStreamAcl": {"$r": "$admins"}}),
    )?;
    assert_denied(
        ops.append_to_stream("$settings", &Default::default(), settings.clone())
            .await,
        "ops changes the settings",
    );
    admin
        .append_to_stream("$settings", &Default::default(), settings)
        .await?;
    assert_denied(read(&ops, &name).await, "ops reads");
    append(&ops, &name).await?;
    // A stream's own `$r` still wins over the settings.
    let own = acl_metadata(|acl| acl.add_read_roles("$all"));
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &own)
        .await?;
    assert_eq!(read(&ops, &name).await?, 2);
    server.shutdown().await
}

/// A subscription ends with access denied once a new ACL takes its read access away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_read_access_ends_a_subscription() -> anyhow::Result<()> {
    let Secured { server, admin, ops } = Secured::start().await?;
    let name = stream("revoked");
    append(&admin, &name).await?;
    let from_start = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = ops.subscribe_to_stream(name.as_str(), &from_start).await;
    guard(subscription.next()).await??;
    let metadata = acl_metadata(|acl| acl.add_read_roles("$admins"));
    admin
        .set_stream_metadata(name.as_str(), &Default::default(), &metadata)
        .await?;
    append(&admin, &name).await?;
    assert_denied(ended(&mut subscription).await?, "the stream subscription");

    // The same for `$all`, whose ACL is `$$$all`'s.
    let ops_reads = acl_metadata(|acl| acl.add_read_roles("$ops"));
    admin
        .set_stream_metadata("$all", &Default::default(), &ops_reads)
        .await?;
    let from_start = SubscribeToAllOptions::default().position(StreamPosition::Start);
    let mut all = ops.subscribe_to_all(&from_start).await;
    guard(all.next()).await??;
    let admins_read = acl_metadata(|acl| acl.add_read_roles("$admins"));
    admin
        .set_stream_metadata("$all", &Default::default(), &admins_read)
        .await?;
    assert_denied(ended(&mut all).await?, "the $all subscription");
    server.shutdown().await
}

/// Unknown users and wrong passwords are refused before any ACL is looked at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_default_users_with_their_password_get_in() -> anyhow::Result<()> {
    let Secured { server, .. } = Secured::start().await?;
    let address = server.local_addr();
    for credentials in ["ops:wrong", "alice:changeit"] {
        let client = client_for(&format!(
            "esdb://{credentials}@{address}?tls=false&discoveryInterval=0"
        ))?;
        assert_denied(append(&client, &stream("x")).await, credentials);
    }
    server.shutdown().await
}

/// Without `require_auth`, ACLs are stored and returned but nothing is enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_require_auth_nothing_is_enforced() -> anyhow::Result<()> {
    let (server, anonymous) = start().await?;
    let name = stream("unenforced");
    append(&anonymous, &name).await?;
    let closed = acl_metadata(|acl| {
        acl.add_read_roles("$admins")
            .add_write_roles("$admins")
            .add_meta_read_roles("$admins")
    });
    anonymous
        .set_stream_metadata(name.as_str(), &Default::default(), &closed)
        .await?;
    append(&anonymous, &name).await?;
    assert_eq!(read(&anonymous, &name).await?, 2);
    assert!(read_all(&anonymous).await? >= 3);
    assert_eq!(read(&anonymous, "$users").await?, 1);
    // A default user's credentials change nothing either.
    let address = server.local_addr();
    let ops = client_for(&format!(
        "esdb://ops:changeit@{address}?tls=false&discoveryInterval=0"
    ))?;
    assert!(matches!(
        ops.get_stream_metadata(name.as_str(), &Default::default())
            .await?,
        StreamMetadataResult::Success(_)
    ));
    server.shutdown().await
}
