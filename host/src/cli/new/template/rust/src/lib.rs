//! The `{{name}}` projection: how many of each item every shopping cart holds, from the
//! `ItemAdded` and `ItemRemoved` events of the `cart-<cartId>` streams.
//!
//! A starting point written by `projector new`: replace the events, the table and the rules with
//! your own, run `projector test` (README.md), and accept the new tables with `--update`.
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the component is
//! `target/wasm32-wasip2/release/{{lib}}.wasm`.

use projector_sdk::{Error, Event, Manifest, Sql, Value, fields, log};

/// What this projection is, what it reads and the tables it writes. Bump `version` when the
/// schema or the meaning of a column changes: the host then rebuilds it from the start of the log.
pub fn manifest() -> Manifest {
    Manifest {
        name: "{{name}}".into(),
        version: "1.0.0".into(),
        description: "How many of each item every shopping cart holds".into(),
        event_types: vec!["ItemAdded".into(), "ItemRemoved".into()],
        stream_prefixes: vec!["cart-".into()],
        schema: vec![
            "CREATE TABLE cart_items (
                cart_id TEXT NOT NULL,
                sku TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                last_position INTEGER NOT NULL, -- log position of the last event applied to the row
                PRIMARY KEY (cart_id, sku)
            )"
            .into(),
        ],
    }
}

/// The data of both event types, e.g. `{"cartId": "c-1", "sku": "SKU-1", "quantity": 2}`.
struct CartItem<'a> {
    cart_id: &'a str,
    sku: &'a str,
    quantity: i64,
}

/// Reads `data` with `fields`, whose rules and messages the Python and JavaScript helpers
/// share: unknown fields are ignored; a missing or mistyped one refuses the event, and the
/// message names it (`quantity: expected an integer, got text`).
fn cart_item<'a>(data: &'a fields::Document) -> Result<CartItem<'a>, String> {
    let fields = data.fields();
    Ok(CartItem {
        cart_id: fields.text("cartId")?,
        sku: fields.text("sku")?,
        quantity: fields.integer("quantity")?,
    })
}

/// Adds to a cart's item in one statement: values go in as parameters, never into the text.
const ADD_ITEM: &str = "INSERT INTO cart_items (cart_id, sku, quantity, last_position) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (cart_id, sku) DO UPDATE \
     SET quantity = quantity + excluded.quantity, last_position = excluded.last_position";

/// Takes from a cart's item only when it holds enough: the rule and the write in one statement.
const REMOVE_ITEM: &str = "UPDATE cart_items SET quantity = quantity - ?3, last_position = ?4 \
     WHERE cart_id = ?1 AND sku = ?2 AND quantity >= ?3";

/// Projects a batch of events, in order. An event that cannot be read is refused as
/// `invalid-event` (the host dead-letters it and projects the rest of the batch).
pub fn handle(sql: &mut impl Sql, events: &[Event]) -> Result<(), Error> {
    for (index, event) in events.iter().enumerate() {
        let refuse = |message: String| {
            Error::invalid_event(index, format!("{}: {message}", event.event_type))
        };
        let data = fields::parse(&event.data).map_err(refuse)?;
        let item = cart_item(&data).map_err(refuse)?;
        if item.quantity <= 0 {
            return Err(refuse(format!(
                "quantity: must be positive, got {}",
                item.quantity
            )));
        }
        let params = [
            Value::from(item.cart_id),
            Value::from(item.sku),
            Value::from(item.quantity),
            Value::from(event.position),
        ];
        match event.event_type.as_str() {
            "ItemAdded" => {
                sql.execute(ADD_ITEM, &params)?;
            }
            "ItemRemoved" => {
                if sql.execute(REMOVE_ITEM, &params)? == 0 {
                    // Well formed but out of step with the cart: changes nothing, said in the log.
                    log::warn(&format!(
                        "ignoring ItemRemoved of {} x {} from cart {}: it holds fewer",
                        item.quantity, item.sku, item.cart_id
                    ));
                }
            }
            _ => return Err(refuse("not a cart event type".into())),
        }
    }
    Ok(())
}

projector_sdk::export_plugin!(manifest, handle);

#[cfg(test)]
mod tests {
    use projector_sdk::native::{Database, json_event};

    use super::*;

    /// An event of `quantity` of item `A` in cart `c-1` at `position`, as the host passes it.
    fn item_event(position: i64, event_type: &str, quantity: i64) -> Event {
        let data = format!(r#"{{"cartId": "c-1", "sku": "A", "quantity": {quantity}}}"#);
        json_event(position, "cart-c-1", event_type, &data)
    }

    #[test]
    fn adding_and_removing_items_keeps_a_count_per_cart_and_sku() -> Result<(), Error> {
        let mut db = Database::in_memory(&manifest()).expect("creating the schema");
        let events = [
            item_event(1, "ItemAdded", 2),
            item_event(2, "ItemAdded", 3),
            item_event(3, "ItemRemoved", 4),
            item_event(4, "ItemRemoved", 2),
        ];
        db.batch(|sql| handle(sql, &events))?;
        assert_eq!(db.lines("SELECT * FROM cart_items")?, ["c-1|A|1|3"]);
        let warnings = log::take_captured();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        Ok(())
    }

    #[test]
    fn an_event_that_is_not_a_cart_item_is_refused_naming_the_field() {
        let mut db = Database::in_memory(&manifest()).expect("creating the schema");
        let data = r#"{"cartId": "c-1", "sku": "A"}"#;
        let events = [json_event(1, "cart-c-1", "ItemAdded", data)];
        let error = db.batch(|sql| handle(sql, &events)).unwrap_err();
        assert!(
            format!("{error:?}").contains("ItemAdded: quantity: missing"),
            "{error:?}"
        );
    }
}
