//! Applying checked [`OrderEvent`]s to the `orders` and `customer_totals` tables.
//!
//! Every statement is a fixed text with `?N` parameters, because the host prepares each text
//! once and caches it. The status rules (only a `created` order can be cancelled or shipped, an
//! order is created once) live in the statements' conditions: an `UPDATE … WHERE status =
//! 'created' RETURNING …` checks and changes an order in one host call, and an event it does
//! not match changes nothing and is logged as ignored.
//!
//! Customer totals are sums, so a batch adds up its changes per customer in memory
//! ([`CustomerTotals`]) and writes each customer once at the end: one statement per customer
//! per batch instead of one per event. Nothing outlives the call, as the contract requires.

use std::collections::BTreeMap;

use projector_sdk::fields::MAX_SAFE_INTEGER;
use projector_sdk::value::{integer_column, text_column};
use projector_sdk::{Error, Sql, Value, log};

use crate::events::OrderEvent;

/// Creates an order unless one with its id exists (a redelivered or duplicated event).
const INSERT_ORDER: &str = "INSERT INTO orders (order_id, customer_id, status, item_count, \
     total_cents, created_at, cancel_reason, last_position) \
     VALUES (?1, ?2, 'created', ?3, ?4, ?5, NULL, ?6) \
     ON CONFLICT (order_id) DO NOTHING";

/// Cancels an order that is still `created`, returning what the customer's row needs.
const CANCEL_ORDER: &str = "UPDATE orders SET status = 'cancelled', cancel_reason = ?2, \
     last_position = ?3 WHERE order_id = ?1 AND status = 'created' \
     RETURNING customer_id, total_cents";

/// Ships an order that is still `created`, returning its customer.
const SHIP_ORDER: &str = "UPDATE orders SET status = 'shipped', last_position = ?2 \
     WHERE order_id = ?1 AND status = 'created' RETURNING customer_id";

/// Adds a batch's changes to a customer's row, creating it on their first order.
const ADD_TO_CUSTOMER: &str = "INSERT INTO customer_totals (customer_id, order_count, \
     cancelled_count, shipped_count, total_cents) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (customer_id) DO UPDATE SET order_count = order_count + ?2, \
     cancelled_count = cancelled_count + ?3, shipped_count = shipped_count + ?4, \
     total_cents = total_cents + ?5";

/// Only used to say why an event was ignored, so it is off the common path.
const ORDER_STATUS: &str = "SELECT status FROM orders WHERE order_id = ?1";

/// One batch's changes to `customer_totals`, by customer.
#[derive(Default)]
pub struct CustomerTotals {
    changes: BTreeMap<String, Change>,
}

/// Counts and cents to add to a customer's row.
#[derive(Default)]
struct Change {
    orders: i64,
    cancelled: i64,
    shipped: i64,
    total_cents: i64,
}

impl CustomerTotals {
    fn change(&mut self, customer: &str) -> &mut Change {
        if !self.changes.contains_key(customer) {
            self.changes.insert(customer.to_owned(), Change::default());
        }
        self.changes.get_mut(customer).expect("inserted above")
    }

    /// Writes every customer's changes, one statement each, in customer order.
    pub fn write(self, sql: &mut impl Sql) -> Result<(), Error> {
        for (customer, change) in self.changes {
            let params = [
                Value::from(customer),
                Value::Integer(change.orders),
                Value::Integer(change.cancelled),
                Value::Integer(change.shipped),
                Value::Integer(change.total_cents),
            ];
            sql.execute(ADD_TO_CUSTOMER, &params)?;
        }
        Ok(())
    }
}

/// Adds `cents` (which may be negative) to `total`, or fails when the batch's change would
/// leave ±(2^53 − 1), the range every language's twin of this plugin passes to the host exactly
/// (a JavaScript number). The host then applies the batch one event at a time, and one event's
/// change always fits.
fn add_cents(total: &mut i64, cents: i64) -> Result<(), Error> {
    match total.checked_add(cents) {
        Some(sum) if sum.abs() <= MAX_SAFE_INTEGER => {
            *total = sum;
            Ok(())
        }
        _ => Err(Error::other(
            "a customer's total_cents change passes 2^53 - 1 in one batch",
        )),
    }
}

/// Applies `event`, recorded at log `position`, to `orders`, and its effect on
/// `customer_totals` to `totals` (written at the end of the batch).
pub fn apply(
    sql: &mut impl Sql,
    event: &OrderEvent,
    position: i64,
    totals: &mut CustomerTotals,
) -> Result<(), Error> {
    match event {
        OrderEvent::Created {
            order_id,
            customer_id,
            item_count,
            total_cents,
            created_at,
        } => {
            let order = [
                Value::from(&**order_id),
                Value::from(&**customer_id),
                Value::Integer(*item_count),
                Value::Integer(*total_cents),
                Value::from(&**created_at),
                Value::Integer(position),
            ];
            if sql.execute(INSERT_ORDER, &order)? == 0 {
                log::warn(&format!(
                    "ignoring OrderCreated for order {order_id}: it exists"
                ));
                return Ok(());
            }
            let change = totals.change(customer_id);
            change.orders += 1;
            add_cents(&mut change.total_cents, *total_cents)
        }
        OrderEvent::Cancelled { order_id, reason } => {
            let params = [(&**order_id).into(), (&**reason).into(), position.into()];
            let Some(order) = sql.query(CANCEL_ORDER, &params)?.pop() else {
                return ignore(sql, "OrderCancelled", order_id);
            };
            let change = totals.change(text_column(&order, 0)?);
            change.cancelled += 1;
            add_cents(&mut change.total_cents, -integer_column(&order, 1)?)
        }
        OrderEvent::Shipped { order_id } => {
            let params = [(&**order_id).into(), position.into()];
            let Some(order) = sql.query(SHIP_ORDER, &params)?.pop() else {
                return ignore(sql, "OrderShipped", order_id);
            };
            totals.change(text_column(&order, 0)?).shipped += 1;
            Ok(())
        }
    }
}

/// Logs why an `event_type` event for `order_id` changed nothing: the order is unknown or no
/// longer `created` (a redelivered event, or one out of step with the order's life).
fn ignore(sql: &mut impl Sql, event_type: &str, order_id: &str) -> Result<(), Error> {
    let status = sql.query(ORDER_STATUS, &[order_id.into()])?;
    let why = match status
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_text)
    {
        Some(status) => format!("it is {status}"),
        None => "no such order".to_owned(),
    };
    log::warn(&format!(
        "ignoring {event_type} for order {order_id}: {why}"
    ));
    Ok(())
}
