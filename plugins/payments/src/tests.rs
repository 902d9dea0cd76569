//! Native tests of the projection's logic against an in-memory SQLite, one batch per call as the
//! host would run it. Each shows one rule of the payment domain or of reading untrusted events.

use projector_sdk::native::{Database, json_event};
use projector_sdk::{Error, Event, InvalidEvent, Level, log};

use crate::{handle, manifest};

/// `(event type, data)`; the position is the index in the test's list.
type Spec<'a> = (&'a str, &'a str);

fn events(specs: &[Spec]) -> Vec<Event> {
    let position = |i: usize| i64::try_from(i).unwrap();
    specs
        .iter()
        .enumerate()
        .map(|(i, (event_type, data))| json_event(position(i), "payment-x", event_type, data))
        .collect()
}

fn database() -> Database {
    Database::in_memory(&manifest()).expect("creating the schema")
}

fn payments(db: &mut Database) -> Vec<String> {
    db.lines("SELECT * FROM payments ORDER BY payment_id")
        .unwrap()
}

fn days(db: &mut Database) -> Vec<String> {
    db.lines("SELECT * FROM customer_daily ORDER BY customer_id, day")
        .unwrap()
}

fn warnings() -> Vec<String> {
    log::take_captured()
        .into_iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, message)| message)
        .collect()
}

const AUTHORIZE_P1: Spec = (
    "PaymentAuthorized",
    r#"{"paymentId": "p-1", "orderId": "o-1", "customerId": "c-7", "amountCents": 3000,
        "timestamp": "2026-11-27T10:00:00Z"}"#,
);
const AUTHORIZE_P2: Spec = (
    "PaymentAuthorized",
    r#"{"paymentId": "p-2", "orderId": "o-2", "customerId": "c-7", "amountCents": 500,
        "timestamp": "2026-11-27T23:59:59Z"}"#,
);
const AUTHORIZE_P3: Spec = (
    "PaymentAuthorized",
    r#"{"paymentId": "p-3", "orderId": "o-3", "customerId": "c-8", "amountCents": 100,
        "timestamp": "2026-11-28T00:00:00Z"}"#,
);
const CAPTURE_P1_2000: Spec = (
    "PaymentCaptured",
    r#"{"paymentId": "p-1", "amountCents": 2000, "timestamp": "2026-11-27T12:00:00Z"}"#,
);
const CAPTURE_P1_1000_NEXT_DAY: Spec = (
    "PaymentCaptured",
    r#"{"paymentId": "p-1", "amountCents": 1000, "timestamp": "2026-11-28T09:00:00Z"}"#,
);
const REFUND_P1_2500: Spec = (
    "PaymentRefunded",
    r#"{"paymentId": "p-1", "amountCents": 2500, "reason": "damaged",
        "timestamp": "2026-11-29T09:00:00Z"}"#,
);

#[test]
fn payments_and_customer_days_follow_the_events() -> Result<(), Error> {
    let mut db = database();
    let batch = events(&[
        AUTHORIZE_P1,
        AUTHORIZE_P2,
        AUTHORIZE_P3,
        CAPTURE_P1_2000,
        CAPTURE_P1_1000_NEXT_DAY,
        REFUND_P1_2500,
    ]);
    db.batch(|sql| handle(sql, &batch))?;

    assert_eq!(
        payments(&mut db),
        [
            "p-1|c-7|o-1|3000|3000|2500",
            "p-2|c-7|o-2|500|0|0",
            "p-3|c-8|o-3|100|0|0",
        ]
    );
    // Captures and refunds count on the day they happened; only authorizations count payments.
    assert_eq!(
        days(&mut db),
        [
            "c-7|2026-11-27|3500|2000|0|2",
            "c-7|2026-11-28|0|1000|0|0",
            "c-7|2026-11-29|0|0|2500|0",
            "c-8|2026-11-28|100|0|0|1",
        ]
    );
    assert_eq!(warnings(), Vec::<String>::new());
    Ok(())
}

#[test]
fn a_second_authorization_of_a_payment_is_ignored() -> Result<(), Error> {
    let mut db = database();
    let again = (
        "PaymentAuthorized",
        r#"{"paymentId": "p-1", "orderId": "o-9", "customerId": "c-9", "amountCents": 9,
            "timestamp": "2026-11-30T00:00:00Z"}"#,
    );
    db.batch(|sql| handle(sql, &events(&[AUTHORIZE_P1, again])))?;

    assert_eq!(payments(&mut db), ["p-1|c-7|o-1|3000|0|0"]);
    assert_eq!(days(&mut db), ["c-7|2026-11-27|3000|0|0|1"]);
    assert_eq!(
        warnings(),
        ["ignoring PaymentAuthorized for payment p-1: it exists"]
    );
    Ok(())
}

#[test]
fn captures_and_refunds_of_unknown_payments_are_ignored() -> Result<(), Error> {
    let mut db = database();
    db.batch(|sql| handle(sql, &events(&[CAPTURE_P1_2000, REFUND_P1_2500])))?;

    assert_eq!(payments(&mut db), Vec::<String>::new());
    assert_eq!(days(&mut db), Vec::<String>::new());
    assert_eq!(
        warnings(),
        [
            "ignoring PaymentCaptured for payment p-1: no such payment",
            "ignoring PaymentRefunded for payment p-1: no such payment",
        ]
    );
    Ok(())
}

/// Runs `before` then `bad` as one batch and returns the error, checking that the batch left
/// nothing behind (the host rolls a failed batch back the same way).
fn reject(before: &[Spec], bad: Spec) -> InvalidEvent {
    let mut db = database();
    let batch = events(&[before, &[bad]].concat());
    let result = db.batch(|sql| handle(sql, &batch));
    assert_eq!(payments(&mut db), Vec::<String>::new());
    match result {
        Err(Error::InvalidEvent(invalid)) => {
            assert_eq!(
                usize::try_from(invalid.index).unwrap(),
                before.len(),
                "{bad:?}"
            );
            invalid
        }
        other => panic!("expected InvalidEvent for {bad:?}, got {other:?}"),
    }
}

#[test]
fn capturing_more_than_authorized_is_invalid() {
    let too_much = (
        "PaymentCaptured",
        r#"{"paymentId": "p-1", "amountCents": 1001, "timestamp": "2026-11-27T12:00:00Z"}"#,
    );
    let invalid = reject(&[AUTHORIZE_P1, CAPTURE_P1_2000], too_much);
    assert_eq!(
        invalid.message,
        "PaymentCaptured: amountCents: capturing 1001 more would exceed the 3000 authorized (2000 \
         already captured)"
    );
}

#[test]
fn refunding_more_than_captured_is_invalid() {
    let invalid = reject(&[AUTHORIZE_P1, CAPTURE_P1_2000], REFUND_P1_2500);
    assert_eq!(
        invalid.message,
        "PaymentRefunded: amountCents: refunding 2500 more would exceed the 2000 captured (0 \
         already refunded)"
    );
}

#[test]
fn malformed_events_are_invalid_with_their_index_and_field() {
    let cases = [
        (
            ("PaymentAuthorized", "{"),
            "PaymentAuthorized: data is not valid JSON",
        ),
        (
            (
                "PaymentAuthorized",
                r#"{"paymentId": "p-2", "orderId": "o-2", "customerId": "c-7"}"#,
            ),
            "PaymentAuthorized: data: missing field `amountCents`",
        ),
        (
            (
                "PaymentAuthorized",
                r#"{"paymentId": "p-2", "orderId": "o-2", "customerId": "c-7",
                    "amountCents": "500", "timestamp": "2026-11-27T10:00:00Z"}"#,
            ),
            "PaymentAuthorized: amountCents: invalid type: string \"500\"",
        ),
        (
            (
                "PaymentAuthorized",
                r#"{"paymentId": "p-2", "orderId": "o-2", "customerId": "c-7",
                    "amountCents": 500, "timestamp": "yesterday"}"#,
            ),
            "PaymentAuthorized: timestamp: expected an RFC 3339 time, got \"yesterday\"",
        ),
        (
            (
                "PaymentCaptured",
                r#"{"paymentId": "p-1", "amountCents": -5, "timestamp": "2026-11-27T12:00:00Z"}"#,
            ),
            "PaymentCaptured: amountCents: must not be negative, got -5",
        ),
        (
            (
                "PaymentCaptured",
                r#"{"paymentId": "", "amountCents": 5, "timestamp": "2026-11-27"}"#,
            ),
            "PaymentCaptured: paymentId: must not be empty",
        ),
        (
            (
                "PaymentRefunded",
                r#"{"paymentId": "p-1", "amountCents": 5, "timestamp": "2026-11-27"}"#,
            ),
            "PaymentRefunded: data: missing field `reason`",
        ),
        (
            ("PaymentRefunded", "null"),
            "PaymentRefunded: data: invalid type: null",
        ),
        (
            ("PaymentVoided", "{}"),
            "PaymentVoided: not a payment event type",
        ),
    ];
    for (bad, expected) in cases {
        let invalid = reject(&[AUTHORIZE_P1], bad);
        assert!(
            invalid.message.starts_with(expected),
            "{bad:?}: {}",
            invalid.message
        );
    }
}
