//! What the benchmark programs share: the median of their runs, and timing a `$all`
//! catch-up through the official client.

// Each example uses only part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use eventstore::{Client, SubscribeToAllOptions, SubscriptionEvent};

/// The median of `values` (sorts them).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Events per second delivered to one `$all` subscription from the start until `caught_up`,
/// and how many were delivered; each event must come within `patience`.
pub async fn catch_up(client: &Client, patience: Duration) -> anyhow::Result<(f64, usize)> {
    let mut subscription = client
        .subscribe_to_all(&SubscribeToAllOptions::default())
        .await;
    let started = Instant::now();
    let mut delivered = 0usize;
    loop {
        let event =
            tokio::time::timeout(patience, subscription.next_subscription_event()).await??;
        match event {
            SubscriptionEvent::EventAppeared(_) => delivered += 1,
            SubscriptionEvent::CaughtUp => break,
            _ => {}
        }
    }
    Ok((
        delivered as f64 / started.elapsed().as_secs_f64(),
        delivered,
    ))
}
