//! Persistent subscriptions with the official Rust client: consumers of one group share the
//! work, nacks park and replay, timeouts and departures redeliver, checkpoints survive a
//! restart, and management calls answer as the real server's do.

mod durability;
mod edges;
mod management;
mod redelivery;
mod sharing;

use eventstore::{PersistentSubscription, PersistentSubscriptionEvent, ResolvedEvent};

use crate::util::guard;

/// The next event of a consumer, with its retry count.
pub async fn next(
    subscription: &mut PersistentSubscription,
) -> anyhow::Result<(ResolvedEvent, usize)> {
    loop {
        match guard(subscription.next_subscription_event()).await?? {
            PersistentSubscriptionEvent::EventAppeared { event, retry_count } => {
                return Ok((event, retry_count));
            }
            PersistentSubscriptionEvent::Confirmed(_) => continue,
        }
    }
}

/// Polls `check` every 20 ms until it holds (the hang guard fails the test otherwise): acks
/// travel on the consumer's call and info on another, so an info call may overtake them.
pub async fn eventually<F, Fut>(mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    guard(async {
        loop {
            if check().await? {
                return anyhow::Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await?
}

/// How many messages `group` of `stream` has parked now.
pub async fn parked(
    client: &eventstore::Client,
    stream: &str,
    group: &str,
) -> anyhow::Result<usize> {
    let info = client
        .get_persistent_subscription_info(stream, group, &Default::default())
        .await?;
    Ok(info.stats.parked_message_count)
}

/// The revision of the event a message carries (the resolved event, not the link).
pub fn revision(event: &ResolvedEvent) -> u64 {
    event.event.as_ref().expect("a resolved event").revision
}
