//! `Operations` and `Monitoring` through the official client's operations API, as a single
//! node answers them: a scavenge starts (and is over at once, so stopping it is not found),
//! the administrative calls succeed, statistics stream, and `Shutdown` stops the server.

use std::time::Duration;

use eventstore::operations::{
    Client as Operations, OperationalOptions, ScavengeStatus, StatsOptions,
};
use eventstore::{ClientSettings, Error};

use crate::util::{guard, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_and_statistics_answer_as_a_single_node() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let settings: ClientSettings =
        format!("{}&discoveryInterval=0", server.connection_string()).parse()?;
    let operations = Operations::new(settings);
    let options = OperationalOptions::default();
    let scavenge = guard(operations.start_scavenge(1, 0, &options)).await??;
    assert_eq!(scavenge.status(), ScavengeStatus::Started);
    assert!(
        uuid::Uuid::parse_str(scavenge.id()).is_ok(),
        "{}",
        scavenge.id()
    );
    let stop = guard(operations.stop_scavenge(scavenge.id(), &options)).await?;
    assert!(
        matches!(stop, Err(Error::ResourceNotFound)),
        "{:?}",
        stop.map(|r| r.status())
    );
    guard(operations.merge_indexes(&options)).await??;
    guard(operations.resign_node(&options)).await??;
    guard(operations.set_node_priority(3, &options)).await??;
    guard(operations.restart_persistent_subscriptions(&options)).await??;

    client
        .append_to_stream("counted", &Default::default(), crate::util::events("E", 3))
        .await?;
    let stats_options = StatsOptions::default().refresh_time(Duration::from_millis(100));
    let mut stats = guard(operations.stats(&stats_options)).await??;
    let first = guard(stats.next()).await??;
    let second = guard(stats.next()).await??;
    for snapshot in [&first.0, &second.0] {
        assert!(snapshot.contains_key("proc-startTime"), "{snapshot:?}");
        assert_eq!(snapshot["proc-id"], std::process::id().to_string());
    }
    assert!(first.0["es-checksum"].parse::<u64>()? >= 3, "{:?}", first.0);

    // Shutdown stops the node: new calls find nobody.
    guard(operations.shutdown(&options)).await??;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = tokio::net::TcpStream::connect(server.local_addr()).await;
    assert!(after.is_err(), "the server still accepts connections");
    server.shutdown().await
}
