//! A deterministic event-sourced shop: orders and payments, with the occasional duplicate,
//! out-of-order command and malformed event, plus a plain-Rust model of the tables the
//! `order-summary` and `payments` plugins must build from it.
//!
//! The model shares no code with the plugins: it applies the generator's own typed events, not
//! their JSON, so a test comparing the two checks the plugins independently.

use std::collections::BTreeMap;

use projector::value::Value;
use serde_json::json;

/// One generated event: its stream, type and JSON data (or raw bytes when malformed).
#[derive(Clone, Debug)]
pub struct GeneratedEvent {
    /// Stream id, e.g. `order-o17`.
    pub stream: String,
    /// Event type.
    pub event_type: String,
    /// The payload as it will be written.
    pub data: Payload,
    /// What the model does with it.
    action: Action,
}

/// An event's payload.
#[derive(Clone, Debug)]
pub enum Payload {
    /// A JSON document.
    Json(serde_json::Value),
    /// Bytes that are not valid JSON.
    Garbage(String),
}

#[derive(Clone, Debug)]
enum Action {
    Create {
        order: String,
        customer: String,
        items: i64,
        total: i64,
        timestamp: String,
    },
    Cancel {
        order: String,
        reason: String,
    },
    Ship {
        order: String,
    },
    Authorize {
        payment: String,
        order: String,
        customer: String,
        amount: i64,
        day: String,
    },
    Capture {
        payment: String,
        amount: i64,
        day: String,
    },
    Refund {
        payment: String,
        amount: i64,
        day: String,
    },
    /// Malformed: the plugin must refuse it (dead letter) and the model ignores it.
    Malformed,
}

/// A small deterministic pseudo-random generator (xorshift64*), so fixtures need no crate.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Generates `count` events from `seed`, about 4% of them malformed.
pub fn generate(count: usize, seed: u64) -> Vec<GeneratedEvent> {
    generate_with(count, seed, true)
}

/// Generates `count` events from `seed`, with or without malformed ones.
pub fn generate_with(count: usize, seed: u64, malformed: bool) -> Vec<GeneratedEvent> {
    let mut random = Random(seed | 1);
    let mut events = Vec::with_capacity(count);
    let mut orders: Vec<(String, String)> = Vec::new();
    let mut payments: Vec<(String, i64)> = Vec::new();
    let start = time::macros::datetime!(2026-11-01 00:00:00 UTC);
    while events.len() < count {
        let step = events.len() as i64;
        let moment = start + time::Duration::seconds(step * 97);
        let timestamp = moment
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let day = timestamp[..10].to_string();
        let roll = random.below(100);
        let event = if orders.is_empty() || roll < 35 {
            let order = format!("o{}", orders.len() + 1);
            let customer = format!("c{}", random.below(40) + 1);
            let lines: Vec<(String, i64, i64)> = (0..random.below(4) + 1)
                .map(|_| {
                    (
                        format!("SKU-{}", random.below(50)),
                        random.below(5) as i64 + 1,
                        random.below(10_000) as i64 + 99,
                    )
                })
                .collect();
            let items = lines.iter().map(|l| l.1).sum();
            let total = lines.iter().map(|l| l.1 * l.2).sum();
            orders.push((order.clone(), customer.clone()));
            GeneratedEvent {
                stream: format!("order-{order}"),
                event_type: "OrderCreated".into(),
                data: Payload::Json(json!({
                    "orderId": order, "customerId": customer, "timestamp": timestamp,
                    "items": lines.iter().map(|(sku, quantity, price)| json!({"sku": sku, "quantity": quantity, "unitPriceCents": price})).collect::<Vec<_>>(),
                })),
                action: Action::Create {
                    order,
                    customer,
                    items,
                    total,
                    timestamp,
                },
            }
        } else if roll < 50 {
            let (order, _) = orders[random.below(orders.len() as u64) as usize].clone();
            let reason = ["customer request", "out of stock", "fraud check"]
                [random.below(3) as usize]
                .to_string();
            GeneratedEvent {
                stream: format!("order-{order}"),
                event_type: "OrderCancelled".into(),
                data: Payload::Json(json!({"orderId": order, "reason": reason})),
                action: Action::Cancel { order, reason },
            }
        } else if roll < 65 {
            let (order, _) = orders[random.below(orders.len() as u64) as usize].clone();
            GeneratedEvent {
                stream: format!("order-{order}"),
                event_type: "OrderShipped".into(),
                data: Payload::Json(json!({"orderId": order})),
                action: Action::Ship { order },
            }
        } else if roll < 78 {
            let (order, customer) = orders[random.below(orders.len() as u64) as usize].clone();
            let payment = format!("p{}", payments.len() + 1);
            let amount = random.below(50_000) as i64 + 100;
            payments.push((payment.clone(), amount));
            GeneratedEvent {
                stream: format!("payment-{payment}"),
                event_type: "PaymentAuthorized".into(),
                data: Payload::Json(
                    json!({"paymentId": payment, "orderId": order, "customerId": customer, "amountCents": amount, "timestamp": timestamp}),
                ),
                action: Action::Authorize {
                    payment,
                    order,
                    customer,
                    amount,
                    day,
                },
            }
        } else if roll < 88 && !payments.is_empty() {
            let (payment, authorized) =
                payments[random.below(payments.len() as u64) as usize].clone();
            let amount = random.below(authorized as u64) as i64 + 1;
            GeneratedEvent {
                stream: format!("payment-{payment}"),
                event_type: "PaymentCaptured".into(),
                data: Payload::Json(
                    json!({"paymentId": payment, "amountCents": amount, "timestamp": timestamp}),
                ),
                action: Action::Capture {
                    payment,
                    amount,
                    day,
                },
            }
        } else if roll < 96 && !payments.is_empty() {
            let (payment, authorized) =
                payments[random.below(payments.len() as u64) as usize].clone();
            let amount = random.below(authorized as u64 / 2 + 1) as i64 + 1;
            GeneratedEvent {
                stream: format!("payment-{payment}"),
                event_type: "PaymentRefunded".into(),
                data: Payload::Json(
                    json!({"paymentId": payment, "amountCents": amount, "reason": "returned", "timestamp": timestamp}),
                ),
                action: Action::Refund {
                    payment,
                    amount,
                    day,
                },
            }
        } else if !malformed {
            continue;
        } else {
            let (order, _) = orders[random.below(orders.len() as u64) as usize].clone();
            let (event_type, data) = if random.below(2) == 0 {
                (
                    "OrderShipped",
                    Payload::Garbage(format!("{{\"orderId\": \"{order}\"")),
                )
            } else {
                (
                    "OrderCreated",
                    Payload::Json(json!({"orderId": order, "customerId": 7, "items": "none"})),
                )
            };
            GeneratedEvent {
                stream: format!("order-{order}"),
                event_type: event_type.into(),
                data,
                action: Action::Malformed,
            }
        };
        events.push(event);
    }
    events
}

/// Renders events as the JSONL fixture format; an event's position is its 1-based line.
pub fn to_jsonl(events: &[GeneratedEvent]) -> String {
    let mut out = String::new();
    for event in events {
        let line = match &event.data {
            Payload::Json(data) => {
                json!({"stream": event.stream, "type": event.event_type, "data": data})
            }
            Payload::Garbage(text) => {
                use base64::Engine as _;
                json!({"stream": event.stream, "type": event.event_type, "data_base64": base64::engine::general_purpose::STANDARD.encode(text)})
            }
        };
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// The tables the plugins must build, as rows ordered by all columns (as `tables::rows` reads
/// them), plus the positions of the events they must refuse.
#[derive(Debug, Default)]
pub struct Expected {
    /// `order_summary.orders`.
    pub orders: Vec<Vec<Value>>,
    /// `order_summary.customer_totals`.
    pub customer_totals: Vec<Vec<Value>>,
    /// `payments.payments`.
    pub payments: Vec<Vec<Value>>,
    /// `payments.customer_daily`.
    pub customer_daily: Vec<Vec<Value>>,
    /// Positions of events `order_summary` must dead-letter.
    pub order_dead_letters: Vec<i64>,
    /// Positions of events `payments` must dead-letter.
    pub payment_dead_letters: Vec<i64>,
}

struct Order {
    customer: String,
    status: &'static str,
    items: i64,
    total: i64,
    created_at: String,
    cancel_reason: Option<String>,
    last_position: i64,
}

/// Applies the rules of docs/plugins.md's example projections to `events`, the first of which
/// is at log position 1 (as in a JSONL file).
pub fn expected(events: &[GeneratedEvent]) -> Expected {
    expected_from(events, 1)
}

/// [`expected`] for events written one after another from log position `first` on (as in an
/// event store that holds other events before them).
pub fn expected_from(events: &[GeneratedEvent], first: i64) -> Expected {
    let mut expected = Expected::default();
    let mut orders: BTreeMap<String, Order> = BTreeMap::new();
    // customer -> (orders, cancelled, shipped, total)
    let mut customers: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    // payment -> (customer, order, authorized, captured, refunded)
    let mut payments: BTreeMap<String, (String, String, i64, i64, i64)> = BTreeMap::new();
    // (customer, day) -> (authorized, captured, refunded, count)
    let mut daily: BTreeMap<(String, String), (i64, i64, i64, i64)> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        let position = index as i64 + first;
        match &event.action {
            Action::Create {
                order,
                customer,
                items,
                total,
                timestamp,
            } => {
                if orders.contains_key(order) {
                    continue;
                }
                orders.insert(
                    order.clone(),
                    Order {
                        customer: customer.clone(),
                        status: "created",
                        items: *items,
                        total: *total,
                        created_at: timestamp.clone(),
                        cancel_reason: None,
                        last_position: position,
                    },
                );
                let entry = customers.entry(customer.clone()).or_default();
                entry.0 += 1;
                entry.3 += total;
            }
            Action::Cancel { order, reason } => {
                if let Some(o) = orders.get_mut(order).filter(|o| o.status == "created") {
                    o.status = "cancelled";
                    o.cancel_reason = Some(reason.clone());
                    o.last_position = position;
                    let entry = customers.get_mut(&o.customer).unwrap();
                    entry.1 += 1;
                    entry.3 -= o.total;
                }
            }
            Action::Ship { order } => {
                if let Some(o) = orders.get_mut(order).filter(|o| o.status == "created") {
                    o.status = "shipped";
                    o.last_position = position;
                    customers.get_mut(&o.customer).unwrap().2 += 1;
                }
            }
            Action::Authorize {
                payment,
                order,
                customer,
                amount,
                day,
            } => {
                if payments.contains_key(payment) {
                    continue;
                }
                payments.insert(
                    payment.clone(),
                    (customer.clone(), order.clone(), *amount, 0, 0),
                );
                let entry = daily.entry((customer.clone(), day.clone())).or_default();
                entry.0 += amount;
                entry.3 += 1;
            }
            Action::Capture {
                payment,
                amount,
                day,
            } => {
                let Some(p) = payments.get_mut(payment) else {
                    continue;
                };
                if p.3 + amount > p.2 {
                    expected.payment_dead_letters.push(position);
                    continue;
                }
                p.3 += amount;
                daily.entry((p.0.clone(), day.clone())).or_default().1 += amount;
            }
            Action::Refund {
                payment,
                amount,
                day,
            } => {
                let Some(p) = payments.get_mut(payment) else {
                    continue;
                };
                if p.4 + amount > p.3 {
                    expected.payment_dead_letters.push(position);
                    continue;
                }
                p.4 += amount;
                daily.entry((p.0.clone(), day.clone())).or_default().2 += amount;
            }
            Action::Malformed => expected.order_dead_letters.push(position),
        }
    }
    let text = |s: &str| Value::Text(s.to_string());
    expected.orders = orders
        .iter()
        .map(|(id, o)| {
            vec![
                text(id),
                text(&o.customer),
                text(o.status),
                Value::Integer(o.items),
                Value::Integer(o.total),
                text(&o.created_at),
                o.cancel_reason.as_deref().map_or(Value::Null, text),
                Value::Integer(o.last_position),
            ]
        })
        .collect();
    expected.customer_totals = customers
        .iter()
        .map(|(c, t)| {
            vec![
                text(c),
                Value::Integer(t.0),
                Value::Integer(t.1),
                Value::Integer(t.2),
                Value::Integer(t.3),
            ]
        })
        .collect();
    expected.payments = payments
        .iter()
        .map(|(id, p)| {
            vec![
                text(id),
                text(&p.0),
                text(&p.1),
                Value::Integer(p.2),
                Value::Integer(p.3),
                Value::Integer(p.4),
            ]
        })
        .collect();
    expected.customer_daily = daily
        .iter()
        .map(|((c, d), t)| {
            vec![
                text(c),
                text(d),
                Value::Integer(t.0),
                Value::Integer(t.1),
                Value::Integer(t.2),
                Value::Integer(t.3),
            ]
        })
        .collect();
    expected
}
