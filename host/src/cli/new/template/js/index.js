// The `{{name}}` projection: how many of each item every shopping cart holds, from the
// `ItemAdded` and `ItemRemoved` events of the `cart-<cartId>` streams.
//
// A starting point written by `projector new`: replace the events, the table and the rules with
// your own, run `projector test` (README.md), and accept the new tables with `--update`.
//
// Build with `npm install && npm run build`; the component is `target/{{name}}.wasm`.

import { plugin, log, InvalidEvent } from "./projector/index.js";
import { DataError, INTEGER, Shape, TEXT } from "./projector/fields.js";

// What this projection is, what it reads and the tables it writes. Bump `version` when the
// schema or the meaning of a column changes: the host then rebuilds it from the start of the log.
function manifest() {
  return {
    name: "{{name}}",
    version: "1.0.0",
    description: "How many of each item every shopping cart holds",
    eventTypes: ["ItemAdded", "ItemRemoved"],
    streamPrefixes: ["cart-"],
    schema: [
      `CREATE TABLE cart_items (
                cart_id TEXT NOT NULL,
                sku TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                last_position INTEGER NOT NULL, -- log position of the last event applied to the row
                PRIMARY KEY (cart_id, sku)
            )`,
    ],
  };
}

// The data of both event types, e.g. {"cartId": "c-1", "sku": "SKU-1", "quantity": 2}. Unknown
// fields are ignored; a missing or mistyped one refuses the event. `read` returns the values in
// this order, and its messages name the field at fault, in the same words as the Rust and Python
// helpers (docs/plugins.md, "Reading event data").
const CART_ITEM = new Shape([
  ["cartId", TEXT],
  ["sku", TEXT],
  ["quantity", INTEGER],
]);

// Adds to a cart's item in one statement: values go in as parameters, never into the text.
const ADD_ITEM =
  "INSERT INTO cart_items (cart_id, sku, quantity, last_position) " +
  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (cart_id, sku) DO UPDATE " +
  "SET quantity = quantity + excluded.quantity, last_position = excluded.last_position";

// Takes from a cart's item only when it holds enough: the rule and the write in one statement.
const REMOVE_ITEM =
  "UPDATE cart_items SET quantity = quantity - ?3, last_position = ?4 " +
  "WHERE cart_id = ?1 AND sku = ?2 AND quantity >= ?3";

// Projects a batch of events, in order. An event that cannot be read is refused as
// invalid-event (the host dead-letters it and projects the rest of the batch).
function handleBatch(sql, events) {
  for (let index = 0; index < events.length; index++) {
    const event = events[index];
    const eventType = event.eventType;
    let item;
    try {
      item = CART_ITEM.read(event.data); // [cartId, sku, quantity]
      if (item[2] <= 0) throw new DataError(`quantity: must be positive, got ${item[2]}`);
      if (eventType !== "ItemAdded" && eventType !== "ItemRemoved") {
        throw new DataError("not a cart event type");
      }
    } catch (error) {
      if (error instanceof DataError) throw new InvalidEvent(index, `${eventType}: ${error.message}`);
      throw error;
    }

    const [cartId, sku, quantity] = item;
    if (eventType === "ItemAdded") {
      sql.execute(ADD_ITEM, cartId, sku, quantity, event.position);
    } else if (sql.execute(REMOVE_ITEM, cartId, sku, quantity, event.position) === 0) {
      // Well formed but out of step with the cart: changes nothing, said in the log.
      log.warn(`ignoring ItemRemoved of ${quantity} x ${sku} from cart ${cartId}: it holds fewer`);
    }
  }
}

export const { describe, handle } = plugin(manifest, handleBatch);
