//! The order events as their JSON data spells them, and the checks that turn one into an
//! [`OrderEvent`] that is safe to apply.
//!
//! Nothing in an event is trusted: any missing, ill-typed or out-of-range field is reported as a
//! message naming the field, which the batch loop turns into `InvalidEvent`. Nothing here
//! touches the database. The data is read with [`projector_sdk::fields`], whose rules and
//! messages the Python and JavaScript twins of this plugin share, so all three dead-letter the
//! same events with the same words.

use projector_sdk::Event;
use projector_sdk::fields::{self, Fields, MAX_SAFE_INTEGER};

/// The event types this projection reads.
pub const EVENT_TYPES: [&str; 3] = ["OrderCreated", "OrderCancelled", "OrderShipped"];

/// An order event whose fields have all been checked.
#[derive(Debug, PartialEq)]
pub enum OrderEvent {
    /// A new order, with its items already summed up.
    Created {
        order_id: String,
        customer_id: String,
        /// The sum of the items' quantities.
        item_count: i64,
        /// The sum of each item's quantity times its unit price.
        total_cents: i64,
        /// The event's `timestamp`, as written.
        created_at: String,
    },
    /// The order was cancelled before it shipped.
    Cancelled { order_id: String, reason: String },
    /// The order left the warehouse.
    Shipped { order_id: String },
}

impl OrderEvent {
    /// Reads and checks `event`, or says what is wrong with it, prefixed with its type (e.g.
    /// `"OrderCreated: items[0].quantity: must not be negative, got -1"`).
    pub fn parse(event: &Event) -> Result<Self, String> {
        let event_type = event.event_type.as_str();
        let parsed = match event_type {
            "OrderCreated" => fields::parse(&event.data).and_then(|d| created(&d.fields())),
            "OrderCancelled" => fields::parse(&event.data).and_then(|d| cancelled(&d.fields())),
            "OrderShipped" => fields::parse(&event.data).and_then(|d| shipped(&d.fields())),
            _ => Err("not an order event type".to_owned()),
        };
        parsed.map_err(|message| format!("{event_type}: {message}"))
    }
}

/// `OrderCreated` data, e.g. `{"orderId": "o-1", "customerId": "c-7", "items": [{"sku":
/// "SKU-1", "quantity": 2, "unitPriceCents": 1299}], "timestamp": "2026-11-27T10:00:00Z"}`.
///
/// Every field is read (in that order, an item's `sku`, `quantity` and `unitPriceCents` in
/// turn) before any is judged, so the first message is the one the Python and JavaScript
/// twins' shape readers give. An item's `sku` must be text but is not stored.
fn created(data: &Fields) -> Result<OrderEvent, String> {
    let order_id = data.text("orderId")?;
    let customer_id = data.text("customerId")?;
    let items = data
        .objects("items")?
        .iter()
        .map(|item| {
            item.text("sku")?;
            Ok((item.integer("quantity")?, item.integer("unitPriceCents")?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let created_at = data.text("timestamp")?;
    let order_id = non_empty("orderId", order_id)?;
    let customer_id = non_empty("customerId", customer_id)?;
    let created_at = non_empty("timestamp", created_at)?;
    let (mut item_count, mut total_cents) = (0i64, 0i64);
    for (i, &(quantity, unit_price_cents)) in items.iter().enumerate() {
        // Formatted only on failure: this loop runs for every item of every order.
        let negative = |field, n| format!("items[{i}].{field}: must not be negative, got {n}");
        if quantity < 0 {
            return Err(negative("quantity", quantity));
        }
        if unit_price_cents < 0 {
            return Err(negative("unitPriceCents", unit_price_cents));
        }
        // Both factors are below 2^53, so the product fits an i128; the sums stay within
        // 2^53 - 1 so that every language's twin stores them exactly.
        let line_total = i128::from(quantity) * i128::from(unit_price_cents);
        item_count += quantity;
        if item_count > MAX_SAFE_INTEGER {
            return Err("items: quantities add up to more than 2^53 - 1".to_owned());
        }
        total_cents = match i64::try_from(i128::from(total_cents) + line_total) {
            Ok(total) if total <= MAX_SAFE_INTEGER => total,
            _ => return Err("items: total above 2^53 - 1 cents".to_owned()),
        };
    }
    Ok(OrderEvent::Created {
        order_id,
        customer_id,
        item_count,
        total_cents,
        created_at,
    })
}

/// `OrderCancelled` data, e.g. `{"orderId": "o-1", "reason": "customer request"}`.
fn cancelled(data: &Fields) -> Result<OrderEvent, String> {
    let (order_id, reason) = (data.text("orderId")?, data.text("reason")?);
    Ok(OrderEvent::Cancelled {
        order_id: non_empty("orderId", order_id)?,
        reason: reason.to_owned(),
    })
}

/// `OrderShipped` data, e.g. `{"orderId": "o-1"}`.
fn shipped(data: &Fields) -> Result<OrderEvent, String> {
    Ok(OrderEvent::Shipped {
        order_id: non_empty("orderId", data.text("orderId")?)?,
    })
}

fn non_empty(field: &str, text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    Ok(text.to_owned())
}
