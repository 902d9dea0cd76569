//! Applying one checked [`PaymentEvent`] to the `payments` and `customer_daily` tables.
//!
//! Captures and refunds read the payment's row first and decide in Rust (read, check, write
//! inside the batch's transaction), which keeps the money rules in one readable place. Every
//! statement is a fixed text with `?N` parameters, because the host prepares each text once.

use projector_sdk::value::{integer_column, text_column};
use projector_sdk::{Error, Sql, Value, log};

use crate::events::PaymentEvent;

/// Records a new payment unless one with its id exists (a redelivered or duplicated event).
const INSERT_PAYMENT: &str = "INSERT INTO payments (payment_id, customer_id, order_id, \
     authorized_cents, captured_cents, refunded_cents) VALUES (?1, ?2, ?3, ?4, 0, 0) \
     ON CONFLICT (payment_id) DO NOTHING";

/// Reads what a capture or refund must check against.
const SELECT_PAYMENT: &str = "SELECT customer_id, authorized_cents, captured_cents, \
     refunded_cents FROM payments WHERE payment_id = ?1";

/// Stores a payment's new captured and refunded amounts.
const UPDATE_PAYMENT: &str =
    "UPDATE payments SET captured_cents = ?2, refunded_cents = ?3 WHERE payment_id = ?1";

/// Adds amounts to a customer's day, creating the day's row on its first event.
const ADD_TO_DAY: &str = "INSERT INTO customer_daily (customer_id, day, authorized_cents, \
     captured_cents, refunded_cents, payment_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (customer_id, day) DO UPDATE SET \
     authorized_cents = authorized_cents + excluded.authorized_cents, \
     captured_cents = captured_cents + excluded.captured_cents, \
     refunded_cents = refunded_cents + excluded.refunded_cents, \
     payment_count = payment_count + excluded.payment_count";

/// Applies `event`, the batch's event number `index`, to the tables.
///
/// A capture above what is left of the authorized amount, or a refund above what is left of the
/// captured amount, is an invalid event: the payment's history does not allow it.
pub fn apply(sql: &mut impl Sql, index: usize, event: &PaymentEvent) -> Result<(), Error> {
    match event {
        PaymentEvent::Authorized {
            payment_id,
            order_id,
            customer_id,
            amount_cents,
            day,
        } => authorize(sql, payment_id, order_id, customer_id, *amount_cents, day),
        PaymentEvent::Captured {
            payment_id,
            amount_cents,
            day,
        } => capture(sql, index, payment_id, *amount_cents, day),
        PaymentEvent::Refunded {
            payment_id,
            amount_cents,
            day,
        } => refund(sql, index, payment_id, *amount_cents, day),
    }
}

fn authorize(
    sql: &mut impl Sql,
    payment_id: &str,
    order_id: &str,
    customer_id: &str,
    amount_cents: i64,
    day: &str,
) -> Result<(), Error> {
    let payment = [
        payment_id.into(),
        customer_id.into(),
        order_id.into(),
        amount_cents.into(),
    ];
    if sql.execute(INSERT_PAYMENT, &payment)? == 0 {
        log::warn(&format!(
            "ignoring PaymentAuthorized for payment {payment_id}: it exists"
        ));
        return Ok(());
    }
    let [_, customer, ..] = payment;
    let added = DayAmounts {
        authorized_cents: amount_cents,
        payment_count: 1,
        ..Default::default()
    };
    add_to_day(sql, customer, day, added)
}

fn capture(
    sql: &mut impl Sql,
    index: usize,
    payment_id: &str,
    amount_cents: i64,
    day: &str,
) -> Result<(), Error> {
    let Some(payment) = select_payment(sql, "PaymentCaptured", payment_id)? else {
        return Ok(());
    };
    let captured = payment.captured_cents.checked_add(amount_cents);
    let Some(captured) = captured.filter(|&captured| captured <= payment.authorized_cents) else {
        let message = format!(
            "PaymentCaptured: amountCents: capturing {amount_cents} more would exceed the {} \
             authorized ({} already captured)",
            payment.authorized_cents, payment.captured_cents
        );
        return Err(Error::invalid_event(index, message));
    };
    let params = [
        payment_id.into(),
        captured.into(),
        payment.refunded_cents.into(),
    ];
    sql.execute(UPDATE_PAYMENT, &params)?;
    let added = DayAmounts {
        captured_cents: amount_cents,
        ..Default::default()
    };
    add_to_day(sql, payment.customer_id, day, added)
}

fn refund(
    sql: &mut impl Sql,
    index: usize,
    payment_id: &str,
    amount_cents: i64,
    day: &str,
) -> Result<(), Error> {
    let Some(payment) = select_payment(sql, "PaymentRefunded", payment_id)? else {
        return Ok(());
    };
    let refunded = payment.refunded_cents.checked_add(amount_cents);
    let Some(refunded) = refunded.filter(|&refunded| refunded <= payment.captured_cents) else {
        let message = format!(
            "PaymentRefunded: amountCents: refunding {amount_cents} more would exceed the {} \
             captured ({} already refunded)",
            payment.captured_cents, payment.refunded_cents
        );
        return Err(Error::invalid_event(index, message));
    };
    let params = [
        payment_id.into(),
        payment.captured_cents.into(),
        refunded.into(),
    ];
    sql.execute(UPDATE_PAYMENT, &params)?;
    let added = DayAmounts {
        refunded_cents: amount_cents,
        ..Default::default()
    };
    add_to_day(sql, payment.customer_id, day, added)
}

/// A payment's row, as a capture or refund needs it.
struct Payment {
    customer_id: Value,
    authorized_cents: i64,
    captured_cents: i64,
    refunded_cents: i64,
}

/// Reads the payment an `event_type` event refers to; `None`, logged as ignored, when there is
/// no such payment (its authorization was never seen).
fn select_payment(
    sql: &mut impl Sql,
    event_type: &str,
    payment_id: &str,
) -> Result<Option<Payment>, Error> {
    let Some(row) = sql.query(SELECT_PAYMENT, &[payment_id.into()])?.pop() else {
        log::warn(&format!(
            "ignoring {event_type} for payment {payment_id}: no such payment"
        ));
        return Ok(None);
    };
    Ok(Some(Payment {
        customer_id: text_column(&row, 0)?.into(),
        authorized_cents: integer_column(&row, 1)?,
        captured_cents: integer_column(&row, 2)?,
        refunded_cents: integer_column(&row, 3)?,
    }))
}

/// What one event adds to a customer's row for a day.
#[derive(Default)]
struct DayAmounts {
    authorized_cents: i64,
    captured_cents: i64,
    refunded_cents: i64,
    payment_count: i64,
}

/// Adds `amounts` to the customer's row for `day`.
fn add_to_day(
    sql: &mut impl Sql,
    customer: Value,
    day: &str,
    amounts: DayAmounts,
) -> Result<(), Error> {
    let params = [
        customer,
        day.into(),
        amounts.authorized_cents.into(),
        amounts.captured_cents.into(),
        amounts.refunded_cents.into(),
        amounts.payment_count.into(),
    ];
    sql.execute(ADD_TO_DAY, &params)?;
    Ok(())
}
