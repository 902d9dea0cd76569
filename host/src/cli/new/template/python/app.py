"""The `{{name}}` projection: how many of each item every shopping cart holds, from the
`ItemAdded` and `ItemRemoved` events of the `cart-<cartId>` streams.

A starting point written by `projector new`: replace the events, the table and the rules with
your own, run `projector test` (README.md), and accept the new tables with `--update`.

Build with `./build.sh`; the component is `target/{{name}}.wasm`.
"""

import projector
from projector import InvalidEvent, log
from projector.fields import INTEGER, TEXT, DataError, Shape


def manifest():
    """What this projection is, what it reads and the tables it writes. Bump `version` when the
    schema or the meaning of a column changes: the host then rebuilds it from the start of the log.
    """
    return projector.Manifest(
        name="{{name}}",
        version="1.0.0",
        description="How many of each item every shopping cart holds",
        event_types=["ItemAdded", "ItemRemoved"],
        stream_prefixes=["cart-"],
        schema=[
            """CREATE TABLE cart_items (
                cart_id TEXT NOT NULL,
                sku TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                last_position INTEGER NOT NULL, -- log position of the last event applied to the row
                PRIMARY KEY (cart_id, sku)
            )"""
        ],
    )


# The data of both event types, e.g. {"cartId": "c-1", "sku": "SKU-1", "quantity": 2}. Unknown
# fields are ignored; a missing or mistyped one refuses the event. `read` returns the values in
# this order, and its messages name the field at fault, in the same words as the Rust and
# JavaScript helpers (docs/plugins.md, "Reading event data").
CART_ITEM = Shape([("cartId", TEXT), ("sku", TEXT), ("quantity", INTEGER)])

# Adds to a cart's item in one statement: values go in as parameters, never into the text.
ADD_ITEM = (
    "INSERT INTO cart_items (cart_id, sku, quantity, last_position) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (cart_id, sku) DO UPDATE "
    "SET quantity = quantity + excluded.quantity, last_position = excluded.last_position"
)

# Takes from a cart's item only when it holds enough: the rule and the write in one statement.
REMOVE_ITEM = (
    "UPDATE cart_items SET quantity = quantity - ?3, last_position = ?4 "
    "WHERE cart_id = ?1 AND sku = ?2 AND quantity >= ?3"
)


def handle(sql, events):
    """Projects a batch of events, in order. An event that cannot be read is refused as
    invalid-event (the host dead-letters it and projects the rest of the batch)."""
    for index, event in enumerate(events):
        event_type = event.event_type
        try:
            cart_id, sku, quantity = CART_ITEM.read(event.data)
            if quantity <= 0:
                raise DataError("quantity: must be positive, got %d" % quantity)
            if event_type not in ("ItemAdded", "ItemRemoved"):
                raise DataError("not a cart event type")
        except DataError as error:
            raise InvalidEvent(index, "%s: %s" % (event_type, error)) from None

        if event_type == "ItemAdded":
            sql.execute(ADD_ITEM, cart_id, sku, quantity, event.position)
        elif sql.execute(REMOVE_ITEM, cart_id, sku, quantity, event.position) == 0:
            # Well formed but out of step with the cart: changes nothing, said in the log.
            log.warn(
                "ignoring ItemRemoved of %d x %s from cart %s: it holds fewer"
                % (quantity, sku, cart_id)
            )


WitWorld = projector.export(manifest, handle)
