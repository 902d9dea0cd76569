//! The demo workload of `projector dev`: a shop's order and payment events, the ones the
//! example plugins project, appended to an EventStoreDB-compatible server at a steady rate.
//!
//! Each run numbers its orders and payments under a prefix of its own (the start time), so a
//! second run against the same store adds to the first instead of colliding with it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::source::EsdbSource;

/// Orders and payments the workload keeps around to cancel, ship, capture or refund.
const REMEMBERED: usize = 500;

/// One event to append: stream, type, JSON data.
pub type DemoEvent = (String, String, Value);

/// Makes up a plausible stream of shop events: orders are cancelled or shipped once, payments
/// capture at most what was authorized and refund at most what was captured, except for about
/// one event in fifty that breaks a rule on purpose, so the dead letters and the plugins'
/// "ignoring" logs have something to show.
pub struct Shop {
    run: String,
    next_order: u64,
    next_payment: u64,
    orders: VecDeque<Order>,
    payments: VecDeque<Payment>,
    random: fastrand::Rng,
}

struct Order {
    id: String,
    customer: String,
    open: bool,
}

struct Payment {
    id: String,
    authorized: i64,
    captured: i64,
    refunded: i64,
}

impl Shop {
    /// A shop whose ids start with `run`, drawing from `seed`.
    pub fn new(run: &str, seed: u64) -> Shop {
        Shop {
            run: run.to_string(),
            next_order: 0,
            next_payment: 0,
            orders: VecDeque::new(),
            payments: VecDeque::new(),
            random: fastrand::Rng::with_seed(seed),
        }
    }

    /// The next event.
    pub fn next_event(&mut self) -> DemoEvent {
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let rule_breaker = self.random.u32(0..50) == 0;
        let roll = self.random.u32(0..100);
        if roll < 35 || self.orders.is_empty() {
            return self.create_order(timestamp);
        }
        if roll < 62 {
            let open: Vec<usize> = (0..self.orders.len())
                .filter(|&i| self.orders[i].open != rule_breaker)
                .collect();
            if let Some(&index) = open.get(self.random.usize(0..open.len().max(1))) {
                let order = &mut self.orders[index];
                order.open = false;
                let id = order.id.clone();
                return if roll < 45 {
                    let reasons = ["customer request", "out of stock", "fraud check"];
                    let reason = reasons[self.random.usize(0..reasons.len())];
                    (
                        format!("order-{id}"),
                        "OrderCancelled".into(),
                        json!({"orderId": id, "reason": reason}),
                    )
                } else {
                    (
                        format!("order-{id}"),
                        "OrderShipped".into(),
                        json!({"orderId": id}),
                    )
                };
            }
        }
        if roll < 80 || self.payments.is_empty() {
            return self.authorize(timestamp);
        }
        let index = self.random.usize(0..self.payments.len());
        let payment = &mut self.payments[index];
        let id = payment.id.clone();
        let (left, event_type) = if roll < 93 {
            (payment.authorized - payment.captured, "PaymentCaptured")
        } else {
            (payment.captured - payment.refunded, "PaymentRefunded")
        };
        let left = left.max(0);
        let amount = match (rule_breaker, left) {
            (true, _) => left + 1,
            (false, 0) => return self.authorize(timestamp),
            (false, _) => self.random.i64(1..=left),
        };
        let data = if event_type == "PaymentCaptured" {
            payment.captured += amount;
            json!({"paymentId": id, "amountCents": amount, "timestamp": timestamp})
        } else {
            payment.refunded += amount;
            json!({"paymentId": id, "amountCents": amount, "reason": "returned",
                   "timestamp": timestamp})
        };
        (format!("payment-{id}"), event_type.into(), data)
    }

    fn create_order(&mut self, timestamp: String) -> DemoEvent {
        self.next_order += 1;
        let id = format!("o{}-{}", self.run, self.next_order);
        let customer = format!("c{}", self.random.u32(1..=40));
        let items: Vec<Value> = (0..self.random.u32(1..=4))
            .map(|_| {
                json!({"sku": format!("SKU-{}", self.random.u32(0..50)),
                       "quantity": self.random.u32(1..=5),
                       "unitPriceCents": self.random.u32(99..10_099)})
            })
            .collect();
        let event = (
            format!("order-{id}"),
            "OrderCreated".into(),
            json!({"orderId": id, "customerId": customer, "timestamp": timestamp,
                   "items": items}),
        );
        remember(
            &mut self.orders,
            Order {
                id,
                customer,
                open: true,
            },
        );
        event
    }

    fn authorize(&mut self, timestamp: String) -> DemoEvent {
        let order = &self.orders[self.random.usize(0..self.orders.len())];
        let (order_id, customer) = (order.id.clone(), order.customer.clone());
        self.next_payment += 1;
        let id = format!("p{}-{}", self.run, self.next_payment);
        let amount = self.random.i64(100..50_000);
        remember(
            &mut self.payments,
            Payment {
                id: id.clone(),
                authorized: amount,
                captured: 0,
                refunded: 0,
            },
        );
        (
            format!("payment-{id}"),
            "PaymentAuthorized".into(),
            json!({"paymentId": id, "orderId": order_id, "customerId": customer,
                   "amountCents": amount, "timestamp": timestamp}),
        )
    }
}

fn remember<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == REMEMBERED {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// Appends `backlog` events as fast as the server takes them, logging progress.
pub async fn append_backlog(
    store: &EsdbSource,
    shop: &mut Shop,
    backlog: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    for written in 1..=backlog {
        let (stream, event_type, data) = shop.next_event();
        store.append(&stream, &[(event_type, data)]).await?;
        if last_report.elapsed() >= Duration::from_secs(2) {
            tracing::info!(written, of = backlog, "appending the demo backlog");
            last_report = Instant::now();
        }
    }
    tracing::info!(
        events = backlog,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "demo backlog appended"
    );
    Ok(())
}

/// Appends events at `rate` per second until cancelled. A failed append is logged and the
/// workload carries on at the same rate; it never tries to catch up a burst it missed.
pub async fn append_steadily(store: &EsdbSource, shop: &mut Shop, rate: u32) {
    if rate == 0 {
        return std::future::pending().await;
    }
    // Timers are not finer than a millisecond: above 1,000 events/s, several per tick.
    let (period, per_tick) = if rate <= 1000 {
        (Duration::from_secs_f64(1.0 / f64::from(rate)), 1)
    } else {
        (Duration::from_millis(1), rate.div_ceil(1000))
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        for _ in 0..per_tick {
            let (stream, event_type, data) = shop.next_event();
            match store.append(&stream, &[(event_type, data)]).await {
                Ok(_) if failing => {
                    tracing::info!("demo workload appending again");
                    failing = false;
                }
                Ok(_) => {}
                Err(error) if !failing => {
                    tracing::warn!(error = format!("{error:#}"), "demo workload cannot append");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_refer_to_earlier_orders_and_payments() {
        let mut shop = Shop::new("t", 7);
        let mut created = std::collections::HashSet::new();
        let mut authorized = std::collections::HashSet::new();
        for _ in 0..50_000 {
            let (stream, event_type, data) = shop.next_event();
            match event_type.as_str() {
                "OrderCreated" => assert!(created.insert(data["orderId"].to_string())),
                "PaymentAuthorized" => {
                    assert!(created.contains(&data["orderId"].to_string()));
                    assert!(authorized.insert(data["paymentId"].to_string()));
                }
                "PaymentCaptured" | "PaymentRefunded" => {
                    assert!(authorized.contains(&data["paymentId"].to_string()))
                }
                _ => assert!(created.contains(&data["orderId"].to_string()), "{stream}"),
            }
        }
    }
}
