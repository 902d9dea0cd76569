//! The `payments` projection: each payment's authorized, captured and refunded amounts, and the
//! same per customer and day, built from the `PaymentAuthorized`, `PaymentCaptured` and
//! `PaymentRefunded` events of the `payment-<paymentId>` streams.
//!
//! Layout: [`events`] turns an event's JSON into a checked [`events::PaymentEvent`] (nothing in
//! an event is trusted); [`project`] applies one to the tables. This file holds the manifest, the
//! batch loop and the one line that exports both as a component.
//!
//! The logic only sees `&mut impl Sql`, so it also links natively for unit tests.
//!
//! Build with `cargo build --release --target wasm32-wasip2` in `plugins/`; the component is
//! `plugins/target/wasm32-wasip2/release/payments.wasm`.

pub mod events;
pub mod project;

#[cfg(test)]
mod tests;

use projector_sdk::{Error, Event, Manifest, Sql};

use crate::events::PaymentEvent;

/// The tables this projection writes.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        authorized_cents INTEGER NOT NULL,
        captured_cents INTEGER NOT NULL, -- never above authorized_cents
        refunded_cents INTEGER NOT NULL -- never above captured_cents
    )",
    "CREATE TABLE customer_daily (
        customer_id TEXT NOT NULL,
        day TEXT NOT NULL, -- YYYY-MM-DD: the first 10 characters of the event's timestamp
        authorized_cents INTEGER NOT NULL,
        captured_cents INTEGER NOT NULL,
        refunded_cents INTEGER NOT NULL,
        payment_count INTEGER NOT NULL, -- payments authorized that day
        PRIMARY KEY (customer_id, day)
    )",
];

/// What this projection is, what it reads and the tables it writes.
pub fn manifest() -> Manifest {
    Manifest {
        name: "payments".into(),
        version: "1.0.0".into(),
        description: "Authorized, captured and refunded amounts per payment and per customer and \
                      day"
        .into(),
        event_types: events::EVENT_TYPES.map(String::from).to_vec(),
        stream_prefixes: vec!["payment-".into()],
        schema: SCHEMA.map(String::from).to_vec(),
    }
}

/// Projects a batch of payment events, in order.
///
/// Fails with [`Error::InvalidEvent`] at the first event that cannot be read or would capture
/// or refund more than it may, or with [`Error::Sql`] if a statement fails.
pub fn handle(sql: &mut impl Sql, events: &[Event]) -> Result<(), Error> {
    for (index, event) in events.iter().enumerate() {
        let payment_event =
            PaymentEvent::parse(event).map_err(|message| Error::invalid_event(index, message))?;
        project::apply(sql, index, &payment_event)?;
    }
    Ok(())
}

projector_sdk::export_plugin!(manifest, handle);
