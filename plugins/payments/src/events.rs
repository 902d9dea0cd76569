//! The payment events as their JSON data spells them, and the checks that turn one into a
//! [`PaymentEvent`] that is safe to apply.
//!
//! Nothing in an event is trusted: any missing, ill-typed or out-of-range field is reported as a
//! message naming the field, which the batch loop turns into `InvalidEvent`. Whether an amount
//! fits the payment's history is for [`crate::project`] to say: that needs the tables.

use std::borrow::Cow;

use projector_sdk::{Event, json};
use serde::Deserialize;

/// The event types this projection reads.
pub const EVENT_TYPES: [&str; 3] = ["PaymentAuthorized", "PaymentCaptured", "PaymentRefunded"];

/// A payment event whose fields have all been checked. Text borrows from the event's data
/// unless it had JSON escapes.
#[derive(Debug, PartialEq)]
pub enum PaymentEvent<'a> {
    /// The customer's card was authorized for `amount_cents` on `day`.
    Authorized {
        payment_id: Cow<'a, str>,
        order_id: Cow<'a, str>,
        customer_id: Cow<'a, str>,
        amount_cents: i64,
        day: Cow<'a, str>,
    },
    /// Part or all of the authorized amount was taken.
    Captured {
        payment_id: Cow<'a, str>,
        amount_cents: i64,
        day: Cow<'a, str>,
    },
    /// Part or all of the captured amount was given back.
    Refunded {
        payment_id: Cow<'a, str>,
        amount_cents: i64,
        day: Cow<'a, str>,
    },
}

impl<'a> PaymentEvent<'a> {
    /// Reads and checks `event`, or says what is wrong with it, prefixed with its type (e.g.
    /// `"PaymentCaptured: amountCents: must not be negative, got -5"`).
    pub fn parse(event: &'a Event) -> Result<Self, String> {
        let event_type = event.event_type.as_str();
        let parsed = match event_type {
            "PaymentAuthorized" => json::parse(&event.data).and_then(PaymentAuthorized::check),
            "PaymentCaptured" => json::parse(&event.data).and_then(PaymentCaptured::check),
            "PaymentRefunded" => json::parse(&event.data).and_then(PaymentRefunded::check),
            _ => Err("not a payment event type".to_owned()),
        };
        parsed.map_err(|message| format!("{event_type}: {message}"))
    }
}

/// `PaymentAuthorized` data, e.g. `{"paymentId": "p-1", "orderId": "o-1", "customerId": "c-7",
/// "amountCents": 2598, "timestamp": "2026-11-27T10:00:05Z"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentAuthorized<'a> {
    #[serde(borrow)]
    payment_id: Cow<'a, str>,
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    customer_id: Cow<'a, str>,
    amount_cents: i64,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

/// `PaymentCaptured` data, e.g. `{"paymentId": "p-1", "amountCents": 2598, "timestamp": "…"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentCaptured<'a> {
    #[serde(borrow)]
    payment_id: Cow<'a, str>,
    amount_cents: i64,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

/// `PaymentRefunded` data, e.g. `{"paymentId": "p-1", "amountCents": 500, "reason": "damaged",
/// "timestamp": "…"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentRefunded<'a> {
    #[serde(borrow)]
    payment_id: Cow<'a, str>,
    amount_cents: i64,
    /// Required to be text, but not stored.
    #[serde(borrow, rename = "reason")]
    _reason: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

impl<'a> PaymentAuthorized<'a> {
    fn check(self) -> Result<PaymentEvent<'a>, String> {
        Ok(PaymentEvent::Authorized {
            payment_id: non_empty("paymentId", self.payment_id)?,
            order_id: non_empty("orderId", self.order_id)?,
            customer_id: non_empty("customerId", self.customer_id)?,
            amount_cents: non_negative("amountCents", self.amount_cents)?,
            day: day_of(self.timestamp)?,
        })
    }
}

impl<'a> PaymentCaptured<'a> {
    fn check(self) -> Result<PaymentEvent<'a>, String> {
        Ok(PaymentEvent::Captured {
            payment_id: non_empty("paymentId", self.payment_id)?,
            amount_cents: non_negative("amountCents", self.amount_cents)?,
            day: day_of(self.timestamp)?,
        })
    }
}

impl<'a> PaymentRefunded<'a> {
    fn check(self) -> Result<PaymentEvent<'a>, String> {
        Ok(PaymentEvent::Refunded {
            payment_id: non_empty("paymentId", self.payment_id)?,
            amount_cents: non_negative("amountCents", self.amount_cents)?,
            day: day_of(self.timestamp)?,
        })
    }
}

/// The `YYYY-MM-DD` a timestamp such as `2026-11-27T10:00:05Z` starts with.
fn day_of(timestamp: Cow<'_, str>) -> Result<Cow<'_, str>, String> {
    let is_day = |day: &[u8]| {
        day.len() == 10
            && day.iter().enumerate().all(|(i, &byte)| match i {
                4 | 7 => byte == b'-',
                _ => byte.is_ascii_digit(),
            })
    };
    // Checked on bytes, so the slice below can only cut at an ASCII boundary.
    if !timestamp.as_bytes().get(..10).is_some_and(is_day) {
        return Err(format!(
            "timestamp: expected an RFC 3339 time, got {timestamp:?}"
        ));
    }
    Ok(match timestamp {
        Cow::Borrowed(timestamp) => Cow::Borrowed(&timestamp[..10]),
        Cow::Owned(timestamp) => Cow::Owned(timestamp[..10].to_owned()),
    })
}

fn non_empty<'a>(field: &str, text: Cow<'a, str>) -> Result<Cow<'a, str>, String> {
    if text.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    Ok(text)
}

fn non_negative(field: &str, number: i64) -> Result<i64, String> {
    if number < 0 {
        return Err(format!("{field}: must not be negative, got {number}"));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::day_of;

    #[test]
    fn the_day_is_the_date_a_timestamp_starts_with() {
        assert_eq!(
            day_of("2026-11-27T10:00:05Z".into()).as_deref(),
            Ok("2026-11-27")
        );
        assert_eq!(day_of("2026-11-27".into()).as_deref(), Ok("2026-11-27"));
        for bad in [
            "",
            "2026-11-2",
            "2026/11/27T10:00:00Z",
            "20261127T100000Z",
            "2026-11-2éT",
        ] {
            assert!(day_of(bad.into()).is_err(), "{bad}");
        }
    }
}
