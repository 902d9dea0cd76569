//! A durable devstore brings its groups back after a restart, each from its checkpoint.

use devstore::{Config, Server, Storage};
use eventstore::{PersistentSubscriptionOptions, StreamPosition};

use super::{eventually, next, revision};
use crate::util::{client, config, events, guard, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_durable_devstore_resumes_each_group_after_its_checkpoint() -> anyhow::Result<()>
{
    let data = tempfile::tempdir()?;
    let durable = || Config {
        storage: Storage::Dir(data.path().to_owned()),
        ..config()
    };
    let orders = stream("orders");

    let server = Server::start(durable()).await?;
    let first = client(&server)?;
    first
        .append_to_stream(orders.as_str(), &Default::default(), events("Placed", 10))
        .await?;
    // A checkpoint after every ack, so the one for revision 6 is written before the restart.
    let options = PersistentSubscriptionOptions::default()
        .start_from(StreamPosition::Start)
        .checkpoint_lower_bound(1)
        .checkpoint_upper_bound(1);
    first
        .create_persistent_subscription(orders.as_str(), "billing", &options)
        .await?;
    let mut consumer = first
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    for expected in 0..7 {
        let (event, _) = next(&mut consumer).await?;
        assert_eq!(revision(&event), expected);
        consumer.ack(event).await?;
    }
    eventually(|| async {
        let info = first
            .get_persistent_subscription_info(orders.as_str(), "billing", &Default::default())
            .await?;
        Ok(info.stats.last_checkpointed_event_revision == Some(6))
    })
    .await?;
    drop(consumer);
    guard(server.shutdown()).await??;

    let server = Server::start(durable()).await?;
    let second = client(&server)?;
    let info = second
        .get_persistent_subscription_info(orders.as_str(), "billing", &Default::default())
        .await?;
    assert_eq!(info.stats.last_checkpointed_event_revision, Some(6));
    let mut consumer = second
        .subscribe_to_persistent_subscription(orders.as_str(), "billing", &Default::default())
        .await?;
    for expected in 7..10 {
        let (event, retry_count) = next(&mut consumer).await?;
        assert_eq!((revision(&event), retry_count), (expected, 0));
        consumer.ack(event).await?;
    }
    guard(server.shutdown()).await?
}
