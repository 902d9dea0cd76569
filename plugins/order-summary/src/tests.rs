//! Native tests of the projection's logic against an in-memory SQLite, one batch per call as the
//! host would run it. Each shows one rule of the order domain or of reading untrusted events.

use projector_sdk::native::{Database, json_event};
use projector_sdk::{Error, Event, InvalidEvent, Level, log};

use crate::{handle, manifest};

/// `(event type, data)`; the position is the index in the whole test's list.
type Spec<'a> = (&'a str, &'a str);

fn events(specs: &[Spec]) -> Vec<Event> {
    let position = |i: usize| i64::try_from(i).unwrap();
    specs
        .iter()
        .enumerate()
        .map(|(i, (event_type, data))| json_event(position(i), "order-x", event_type, data))
        .collect()
}

fn database() -> Database {
    Database::in_memory(&manifest()).expect("creating the schema")
}

fn orders(db: &mut Database) -> Vec<String> {
    db.lines("SELECT * FROM orders ORDER BY order_id").unwrap()
}

fn customers(db: &mut Database) -> Vec<String> {
    db.lines("SELECT * FROM customer_totals ORDER BY customer_id")
        .unwrap()
}

fn warnings() -> Vec<String> {
    log::take_captured()
        .into_iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, message)| message)
        .collect()
}

const CREATE_O1: Spec = (
    "OrderCreated",
    r#"{"orderId": "o-1", "customerId": "c-7", "timestamp": "2026-11-27T10:00:00Z",
        "items": [{"sku": "SKU-1", "quantity": 2, "unitPriceCents": 1299},
                  {"sku": "SKU-2", "quantity": 1, "unitPriceCents": 500}]}"#,
);
const CREATE_O2: Spec = (
    "OrderCreated",
    r#"{"orderId": "o-2", "customerId": "c-7", "timestamp": "2026-11-27T11:00:00Z",
        "items": [{"sku": "SKU-3", "quantity": 3, "unitPriceCents": 100}]}"#,
);
const CREATE_O3: Spec = (
    "OrderCreated",
    r#"{"orderId": "o-3", "customerId": "c-8", "timestamp": "2026-11-27T12:00:00Z", "items": []}"#,
);
const CANCEL_O1: Spec = (
    "OrderCancelled",
    r#"{"orderId": "o-1", "reason": "customer request"}"#,
);
const SHIP_O1: Spec = ("OrderShipped", r#"{"orderId": "o-1"}"#);
const SHIP_O2: Spec = ("OrderShipped", r#"{"orderId": "o-2"}"#);

#[test]
fn orders_and_customer_totals_follow_the_events() -> Result<(), Error> {
    let mut db = database();
    let batch = events(&[CREATE_O1, CREATE_O2, CREATE_O3, CANCEL_O1, SHIP_O2]);
    db.batch(|sql| handle(sql, &batch))?;

    assert_eq!(
        orders(&mut db),
        [
            "o-1|c-7|cancelled|3|3098|2026-11-27T10:00:00Z|customer request|3",
            "o-2|c-7|shipped|3|300|2026-11-27T11:00:00Z|NULL|4",
            "o-3|c-8|created|0|0|2026-11-27T12:00:00Z|NULL|2",
        ]
    );
    assert_eq!(customers(&mut db), ["c-7|2|1|1|300", "c-8|1|0|0|0"]);
    assert_eq!(warnings(), Vec::<String>::new());
    Ok(())
}

#[test]
fn batches_build_on_earlier_batches() -> Result<(), Error> {
    let mut db = database();
    let all = events(&[CREATE_O1, SHIP_O1]);
    db.batch(|sql| handle(sql, &all[..1]))?;
    db.batch(|sql| handle(sql, &all[1..]))?;
    assert_eq!(
        orders(&mut db),
        ["o-1|c-7|shipped|3|3098|2026-11-27T10:00:00Z|NULL|1"]
    );
    assert_eq!(customers(&mut db), ["c-7|1|0|1|3098"]);
    Ok(())
}

#[test]
fn a_second_order_created_for_an_existing_order_is_ignored() -> Result<(), Error> {
    let mut db = database();
    let duplicate = (
        "OrderCreated",
        r#"{"orderId": "o-1", "customerId": "c-9", "timestamp": "2026-11-28T00:00:00Z",
            "items": [{"sku": "SKU-9", "quantity": 9, "unitPriceCents": 9}]}"#,
    );
    db.batch(|sql| handle(sql, &events(&[CREATE_O1, duplicate])))?;

    assert_eq!(
        orders(&mut db),
        ["o-1|c-7|created|3|3098|2026-11-27T10:00:00Z|NULL|0"]
    );
    assert_eq!(customers(&mut db), ["c-7|1|0|0|3098"]);
    assert_eq!(
        warnings(),
        ["ignoring OrderCreated for order o-1: it exists"]
    );
    Ok(())
}

#[test]
fn only_a_created_order_can_be_cancelled_or_shipped() -> Result<(), Error> {
    let mut db = database();
    let cancel_o2 = ("OrderCancelled", r#"{"orderId": "o-2", "reason": "late"}"#);
    let ship_o9 = ("OrderShipped", r#"{"orderId": "o-9"}"#);
    let cancel_o9 = ("OrderCancelled", r#"{"orderId": "o-9", "reason": "?"}"#);
    let batch = events(&[
        CREATE_O1, CREATE_O2, SHIP_O1, SHIP_O1, CANCEL_O1, cancel_o2, cancel_o2, SHIP_O2, ship_o9,
        cancel_o9,
    ]);
    db.batch(|sql| handle(sql, &batch))?;

    assert_eq!(
        orders(&mut db),
        [
            "o-1|c-7|shipped|3|3098|2026-11-27T10:00:00Z|NULL|2",
            "o-2|c-7|cancelled|3|300|2026-11-27T11:00:00Z|late|5",
        ]
    );
    assert_eq!(customers(&mut db), ["c-7|2|1|1|3098"]);
    assert_eq!(
        warnings(),
        [
            "ignoring OrderShipped for order o-1: it is shipped",
            "ignoring OrderCancelled for order o-1: it is shipped",
            "ignoring OrderCancelled for order o-2: it is cancelled",
            "ignoring OrderShipped for order o-2: it is cancelled",
            "ignoring OrderShipped for order o-9: no such order",
            "ignoring OrderCancelled for order o-9: no such order",
        ]
    );
    Ok(())
}

#[test]
fn text_with_json_escapes_is_unescaped() -> Result<(), Error> {
    let mut db = database();
    let created = (
        "OrderCreated",
        r#"{"orderId": "o-\u00e9", "customerId": "c-\"7\"", "timestamp": "t", "items": []}"#,
    );
    db.batch(|sql| handle(sql, &events(&[created])))?;
    assert_eq!(orders(&mut db), ["o-é|c-\"7\"|created|0|0|t|NULL|0"]);
    Ok(())
}

/// Runs `[CREATE_O1, bad]` as one batch and returns the error, checking that the batch left
/// nothing behind (the host rolls a failed batch back the same way).
fn reject(bad: Spec) -> InvalidEvent {
    let mut db = database();
    let result = db.batch(|sql| handle(sql, &events(&[CREATE_O1, bad])));
    assert_eq!(orders(&mut db), Vec::<String>::new());
    match result {
        Err(Error::InvalidEvent(invalid)) => invalid,
        other => panic!("expected InvalidEvent for {bad:?}, got {other:?}"),
    }
}

#[test]
fn malformed_events_are_invalid_with_their_index_and_field() {
    let cases = [
        (
            ("OrderCreated", "not json"),
            "OrderCreated: data is not valid JSON",
        ),
        (
            ("OrderCreated", r#"{"orderId": "o-2"}"#),
            "OrderCreated: customerId: missing",
        ),
        (
            (
                "OrderCreated",
                r#"{"orderId": 2, "customerId": "c", "timestamp": "t", "items": []}"#,
            ),
            "OrderCreated: orderId: expected text, got a number",
        ),
        (
            (
                "OrderCreated",
                r#"{"orderId": "o-2", "customerId": "c", "timestamp": "t",
                    "items": [{"sku": "S", "quantity": 1.5, "unitPriceCents": 1}]}"#,
            ),
            "OrderCreated: items[0].quantity: expected an integer, got a fraction",
        ),
        (
            (
                "OrderCreated",
                r#"{"orderId": "o-2", "customerId": "c", "timestamp": "t",
                    "items": [{"sku": "S", "quantity": 1, "unitPriceCents": 1},
                              {"sku": "S", "quantity": -1, "unitPriceCents": 1}]}"#,
            ),
            "OrderCreated: items[1].quantity: must not be negative, got -1",
        ),
        (
            (
                "OrderCreated",
                r#"{"orderId": "o-2", "customerId": "c", "timestamp": "t",
                    "items": [{"quantity": 1, "unitPriceCents": 1}]}"#,
            ),
            "OrderCreated: items[0].sku: missing",
        ),
        (
            (
                "OrderCreated",
                r#"{"orderId": "", "customerId": "c", "timestamp": "t", "items": []}"#,
            ),
            "OrderCreated: orderId: must not be empty",
        ),
        (
            ("OrderCancelled", r#"{"orderId": "o-1"}"#),
            "OrderCancelled: reason: missing",
        ),
        (
            ("OrderCancelled", "[]"),
            "OrderCancelled: data: expected an object, got an array",
        ),
        (
            ("OrderShipped", r#"{"orderId": null}"#),
            "OrderShipped: orderId: expected text, got null",
        ),
        (
            ("OrderShipped", "{\"orderId\": \"o-1\""),
            "OrderShipped: data is not valid JSON",
        ),
        (
            ("OrderRefunded", r#"{"orderId": "o-1"}"#),
            "OrderRefunded: not an order event type",
        ),
    ];
    for (bad, expected) in cases {
        let invalid = reject(bad);
        assert_eq!(invalid.index, 1, "{bad:?}");
        assert_eq!(invalid.message, expected, "{bad:?}");
    }
}

#[test]
fn totals_past_2_to_the_53_are_invalid_rather_than_a_panic() {
    let order = |items: &str| {
        let data = format!(
            r#"{{"orderId": "o-2", "customerId": "c", "timestamp": "t", "items": [{items}]}}"#
        );
        reject(("OrderCreated", Box::leak(data.into_boxed_str()))).message
    };
    assert_eq!(
        order(r#"{"sku": "S", "quantity": 4503599627370496, "unitPriceCents": 2}"#),
        "OrderCreated: items: total above 2^53 - 1 cents"
    );
    assert_eq!(
        order(r#"{"sku": "S", "quantity": 9007199254740991, "unitPriceCents": 9007199254740991}"#),
        "OrderCreated: items: total above 2^53 - 1 cents"
    );
    assert_eq!(
        order(
            r#"{"sku": "S", "quantity": 9007199254740991, "unitPriceCents": 0},
               {"sku": "S", "quantity": 1, "unitPriceCents": 0}"#
        ),
        "OrderCreated: items: quantities add up to more than 2^53 - 1"
    );
    assert_eq!(
        order(r#"{"sku": "S", "quantity": 9007199254740992, "unitPriceCents": 1}"#),
        "OrderCreated: items[0].quantity: integer beyond ±(2^53 - 1)"
    );
}
