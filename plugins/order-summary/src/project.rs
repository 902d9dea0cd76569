//! Applying one checked [`OrderEvent`] to the `orders` and `customer_totals` tables.
//!
//! Every statement is a fixed text with `?N` parameters, because the host prepares each text
//! once and caches it. The status rules (only a `created` order can be cancelled or shipped, an
//! order is created once) live in the statements' conditions: an `UPDATE … WHERE status =
//! 'created' RETURNING …` checks and changes an order in one host call, and an event it does
//! not match changes nothing and is logged as ignored.

use projector_sdk::value::{integer_column, text_column};
use projector_sdk::{Error, Sql, Value, log};

use crate::events::OrderEvent;

/// Creates an order unless one with its id exists (a redelivered or duplicated event).
const INSERT_ORDER: &str = "INSERT INTO orders (order_id, customer_id, status, item_count, \
     total_cents, created_at, cancel_reason, last_position) \
     VALUES (?1, ?2, 'created', ?3, ?4, ?5, NULL, ?6) \
     ON CONFLICT (order_id) DO NOTHING";

/// Counts a new order towards its customer, creating the customer's row on their first order.
const ADD_CUSTOMER_ORDER: &str = "INSERT INTO customer_totals (customer_id, order_count, \
     cancelled_count, shipped_count, total_cents) VALUES (?1, 1, 0, 0, ?2) \
     ON CONFLICT (customer_id) DO UPDATE SET order_count = order_count + 1, \
     total_cents = total_cents + excluded.total_cents";

/// Cancels an order that is still `created`, returning what the customer's row needs.
const CANCEL_ORDER: &str = "UPDATE orders SET status = 'cancelled', cancel_reason = ?2, \
     last_position = ?3 WHERE order_id = ?1 AND status = 'created' \
     RETURNING customer_id, total_cents";

/// Takes a cancelled order's total off its customer's.
const CANCEL_CUSTOMER_ORDER: &str = "UPDATE customer_totals SET cancelled_count = \
     cancelled_count + 1, total_cents = total_cents - ?2 WHERE customer_id = ?1";

/// Ships an order that is still `created`, returning its customer.
const SHIP_ORDER: &str = "UPDATE orders SET status = 'shipped', last_position = ?2 \
     WHERE order_id = ?1 AND status = 'created' RETURNING customer_id";

/// Counts a shipped order towards its customer.
const SHIP_CUSTOMER_ORDER: &str =
    "UPDATE customer_totals SET shipped_count = shipped_count + 1 WHERE customer_id = ?1";

/// Only used to say why an event was ignored, so it is off the common path.
const ORDER_STATUS: &str = "SELECT status FROM orders WHERE order_id = ?1";

/// Applies `event`, recorded at log `position`, to the tables.
pub fn apply(sql: &mut impl Sql, event: &OrderEvent, position: i64) -> Result<(), Error> {
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
            create(sql, order_id, order)
        }
        OrderEvent::Cancelled { order_id, reason } => cancel(sql, order_id, reason, position),
        OrderEvent::Shipped { order_id } => ship(sql, order_id, position),
    }
}

/// `order` is the parameters of [`INSERT_ORDER`].
fn create(sql: &mut impl Sql, order_id: &str, order: [Value; 6]) -> Result<(), Error> {
    if sql.execute(INSERT_ORDER, &order)? == 0 {
        log::warn(&format!(
            "ignoring OrderCreated for order {order_id}: it exists"
        ));
        return Ok(());
    }
    let [_, customer, _, total, ..] = order;
    sql.execute(ADD_CUSTOMER_ORDER, &[customer, total])?;
    Ok(())
}

fn cancel(sql: &mut impl Sql, order_id: &str, reason: &str, position: i64) -> Result<(), Error> {
    let params = [order_id.into(), reason.into(), position.into()];
    let Some(order) = sql.query(CANCEL_ORDER, &params)?.pop() else {
        return ignore(sql, "OrderCancelled", order_id);
    };
    let customer = [
        text_column(&order, 0)?.into(),
        integer_column(&order, 1)?.into(),
    ];
    update_customer(sql, CANCEL_CUSTOMER_ORDER, &customer)
}

fn ship(sql: &mut impl Sql, order_id: &str, position: i64) -> Result<(), Error> {
    let params = [order_id.into(), position.into()];
    let Some(order) = sql.query(SHIP_ORDER, &params)?.pop() else {
        return ignore(sql, "OrderShipped", order_id);
    };
    update_customer(sql, SHIP_CUSTOMER_ORDER, &[text_column(&order, 0)?.into()])
}

/// Runs an update of the row of a customer who has an order, which must exist: its first order
/// created it.
fn update_customer(sql: &mut impl Sql, statement: &str, params: &[Value]) -> Result<(), Error> {
    match sql.execute(statement, params)? {
        1 => Ok(()),
        _ => Err(Error::other(
            "an order's customer has no customer_totals row",
        )),
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
