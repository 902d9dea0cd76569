//! The `order_summary` projection: one row per order of an event-sourced shop (status, item
//! count, total) and running totals per customer, built from the `OrderCreated`,
//! `OrderCancelled` and `OrderShipped` events of the `order-<orderId>` streams.
//!
//! Layout: [`events`] turns an event's JSON into a checked [`events::OrderEvent`] (nothing in an
//! event is trusted); [`project`] applies one to the tables. This file holds the manifest, the
//! batch loop and the one line that exports both as a component.
//!
//! The logic only sees `&mut impl Sql`, so it also links natively: unit tests run it against an
//! in-memory SQLite, and the host's benchmark runs it as the native ceiling for the wasm build.
//!
//! Build with `cargo build --release --target wasm32-wasip2` in `plugins/`; the component is
//! `plugins/target/wasm32-wasip2/release/order_summary.wasm`.

pub mod events;
pub mod project;

#[cfg(test)]
mod tests;

use projector_sdk::{Error, Event, Manifest, Sql};

use crate::events::OrderEvent;

/// The tables this projection writes: exactly these, the host's tests compare them with an
/// independent model.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        status TEXT NOT NULL, -- 'created', 'cancelled' or 'shipped'
        item_count INTEGER NOT NULL, -- sum of the items' quantities
        total_cents INTEGER NOT NULL, -- sum of quantity * unitPriceCents
        created_at TEXT NOT NULL, -- the OrderCreated event's timestamp, as written
        cancel_reason TEXT, -- NULL unless cancelled
        last_position INTEGER NOT NULL -- log position of the last event applied to the row
    )",
    "CREATE TABLE customer_totals (
        customer_id TEXT PRIMARY KEY,
        order_count INTEGER NOT NULL, -- orders created
        cancelled_count INTEGER NOT NULL,
        shipped_count INTEGER NOT NULL,
        total_cents INTEGER NOT NULL -- total of the orders not cancelled
    )",
];

/// What this projection is, what it reads and the tables it writes.
pub fn manifest() -> Manifest {
    Manifest {
        name: "order_summary".into(),
        version: "1.0.0".into(),
        description: "One row per order with status, item count and total, plus per-customer \
                      totals"
            .into(),
        event_types: events::EVENT_TYPES.map(String::from).to_vec(),
        stream_prefixes: vec!["order-".into()],
        schema: SCHEMA.map(String::from).to_vec(),
    }
}

/// Projects a batch of order events, in order.
///
/// Fails with [`Error::InvalidEvent`] at the first event that cannot be read (the host then
/// dead-letters it and replays the rest), or with [`Error::Sql`] if a statement fails.
pub fn handle(sql: &mut impl Sql, events: &[Event]) -> Result<(), Error> {
    let mut totals = project::CustomerTotals::default();
    for (index, event) in events.iter().enumerate() {
        let order_event =
            OrderEvent::parse(event).map_err(|message| Error::invalid_event(index, message))?;
        project::apply(sql, &order_event, event.position, &mut totals)?;
    }
    totals.write(sql)
}

projector_sdk::export_plugin!(manifest, handle);
