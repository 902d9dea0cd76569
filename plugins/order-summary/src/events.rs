//! The order events as their JSON data spells them, and the checks that turn one into an
//! [`OrderEvent`] that is safe to apply.
//!
//! Nothing in an event is trusted: any missing, ill-typed or out-of-range field is reported as a
//! message naming the field, which the batch loop turns into `InvalidEvent`. Nothing here
//! touches the database.

use std::borrow::Cow;

use projector_sdk::{Event, json};
use serde::Deserialize;

/// The event types this projection reads.
pub const EVENT_TYPES: [&str; 3] = ["OrderCreated", "OrderCancelled", "OrderShipped"];

/// An order event whose fields have all been checked. Text borrows from the event's data
/// unless it had JSON escapes.
#[derive(Debug, PartialEq)]
pub enum OrderEvent<'a> {
    /// A new order, with its items already summed up.
    Created {
        order_id: Cow<'a, str>,
        customer_id: Cow<'a, str>,
        /// The sum of the items' quantities.
        item_count: i64,
        /// The sum of each item's quantity times its unit price.
        total_cents: i64,
        /// The event's `timestamp`, as written.
        created_at: Cow<'a, str>,
    },
    /// The order was cancelled before it shipped.
    Cancelled {
        order_id: Cow<'a, str>,
        reason: Cow<'a, str>,
    },
    /// The order left the warehouse.
    Shipped { order_id: Cow<'a, str> },
}

impl<'a> OrderEvent<'a> {
    /// Reads and checks `event`, or says what is wrong with it, prefixed with its type (e.g.
    /// `"OrderCreated: items[0].quantity: must not be negative, got -1"`).
    pub fn parse(event: &'a Event) -> Result<Self, String> {
        let event_type = event.event_type.as_str();
        let parsed = match event_type {
            "OrderCreated" => json::parse(&event.data).and_then(OrderCreated::check),
            "OrderCancelled" => json::parse(&event.data).and_then(OrderCancelled::check),
            "OrderShipped" => json::parse(&event.data).and_then(OrderShipped::check),
            _ => Err("not an order event type".to_owned()),
        };
        parsed.map_err(|message| format!("{event_type}: {message}"))
    }
}

/// `OrderCreated` data, e.g. `{"orderId": "o-1", "customerId": "c-7", "items": [{"sku":
/// "SKU-1", "quantity": 2, "unitPriceCents": 1299}], "timestamp": "2026-11-27T10:00:00Z"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderCreated<'a> {
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    customer_id: Cow<'a, str>,
    #[serde(borrow)]
    items: Vec<Item<'a>>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

/// One line of an order.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    /// Required to be text, but not stored.
    #[serde(borrow, rename = "sku")]
    _sku: Cow<'a, str>,
    quantity: i64,
    unit_price_cents: i64,
}

/// `OrderCancelled` data, e.g. `{"orderId": "o-1", "reason": "customer request"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderCancelled<'a> {
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
}

/// `OrderShipped` data, e.g. `{"orderId": "o-1"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderShipped<'a> {
    #[serde(borrow)]
    order_id: Cow<'a, str>,
}

impl<'a> OrderCreated<'a> {
    fn check(self) -> Result<OrderEvent<'a>, String> {
        let order_id = non_empty("orderId", self.order_id)?;
        let customer_id = non_empty("customerId", self.customer_id)?;
        let created_at = non_empty("timestamp", self.timestamp)?;
        let (mut item_count, mut total_cents) = (0i64, 0i64);
        for (i, item) in self.items.iter().enumerate() {
            // Formatted only on failure: this loop runs for every item of every order.
            let negative = |field, n| format!("items[{i}].{field}: must not be negative, got {n}");
            if item.quantity < 0 {
                return Err(negative("quantity", item.quantity));
            }
            if item.unit_price_cents < 0 {
                return Err(negative("unitPriceCents", item.unit_price_cents));
            }
            let line_total = item.quantity.checked_mul(item.unit_price_cents);
            item_count = item_count
                .checked_add(item.quantity)
                .ok_or("items: quantities add up to more than 2^63")?;
            total_cents = line_total
                .and_then(|line_total| total_cents.checked_add(line_total))
                .ok_or("items: total above 2^63 cents")?;
        }
        Ok(OrderEvent::Created {
            order_id,
            customer_id,
            item_count,
            total_cents,
            created_at,
        })
    }
}

impl<'a> OrderCancelled<'a> {
    fn check(self) -> Result<OrderEvent<'a>, String> {
        Ok(OrderEvent::Cancelled {
            order_id: non_empty("orderId", self.order_id)?,
            reason: self.reason,
        })
    }
}

impl<'a> OrderShipped<'a> {
    fn check(self) -> Result<OrderEvent<'a>, String> {
        Ok(OrderEvent::Shipped {
            order_id: non_empty("orderId", self.order_id)?,
        })
    }
}

fn non_empty<'a>(field: &str, text: Cow<'a, str>) -> Result<Cow<'a, str>, String> {
    if text.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    Ok(text)
}
