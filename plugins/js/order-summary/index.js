// The `order_summary` projection in JavaScript: the same tables, statements, checks and messages
// as the Rust plugin in plugins/order-summary (read that for the reasoning behind each rule).
//
// Orders get one row each (status, item count, total); customers get running totals, added up
// per batch in memory and written once per customer at the end of the batch, in customer order.

import { plugin, log, Other, InvalidEvent } from "../projector/index.js";
import { STR, I64, Seq, Struct, ParseError, parse } from "../projector/json.js";

const EVENT_TYPES = ["OrderCreated", "OrderCancelled", "OrderShipped"];

const SCHEMA = [
  `CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        status TEXT NOT NULL, -- 'created', 'cancelled' or 'shipped'
        item_count INTEGER NOT NULL, -- sum of the items' quantities
        total_cents INTEGER NOT NULL, -- sum of quantity * unitPriceCents
        created_at TEXT NOT NULL, -- the OrderCreated event's timestamp, as written
        cancel_reason TEXT, -- NULL unless cancelled
        last_position INTEGER NOT NULL -- log position of the last event applied to the row
    )`,
  `CREATE TABLE customer_totals (
        customer_id TEXT PRIMARY KEY,
        order_count INTEGER NOT NULL, -- orders created
        cancelled_count INTEGER NOT NULL,
        shipped_count INTEGER NOT NULL,
        total_cents INTEGER NOT NULL -- total of the orders not cancelled
    )`,
];

function manifest() {
  return {
    name: "order_summary",
    version: "1.0.0",
    description: "One row per order with status, item count and total, plus per-customer totals",
    eventTypes: EVENT_TYPES.slice(),
    streamPrefixes: ["order-"],
    schema: SCHEMA.slice(),
  };
}

// The event data, as the Rust structs declare it (field order matters for serde's messages).
const ITEM = Struct("Item", [
  ["sku", STR],
  ["quantity", I64],
  ["unitPriceCents", I64],
]);
const ORDER_CREATED = Struct("OrderCreated", [
  ["orderId", STR],
  ["customerId", STR],
  ["items", Seq(ITEM)],
  ["timestamp", STR],
]);
const ORDER_CANCELLED = Struct("OrderCancelled", [
  ["orderId", STR],
  ["reason", STR],
]);
const ORDER_SHIPPED = Struct("OrderShipped", [["orderId", STR]]);

const INSERT_ORDER =
  "INSERT INTO orders (order_id, customer_id, status, item_count, " +
  "total_cents, created_at, cancel_reason, last_position) " +
  "VALUES (?1, ?2, 'created', ?3, ?4, ?5, NULL, ?6) " +
  "ON CONFLICT (order_id) DO NOTHING";
const CANCEL_ORDER =
  "UPDATE orders SET status = 'cancelled', cancel_reason = ?2, " +
  "last_position = ?3 WHERE order_id = ?1 AND status = 'created' " +
  "RETURNING customer_id, total_cents";
const SHIP_ORDER =
  "UPDATE orders SET status = 'shipped', last_position = ?2 " +
  "WHERE order_id = ?1 AND status = 'created' RETURNING customer_id";
const ADD_TO_CUSTOMER =
  "INSERT INTO customer_totals (customer_id, order_count, " +
  "cancelled_count, shipped_count, total_cents) VALUES (?1, ?2, ?3, ?4, ?5) " +
  "ON CONFLICT (customer_id) DO UPDATE SET order_count = order_count + ?2, " +
  "cancelled_count = cancelled_count + ?3, shipped_count = shipped_count + ?4, " +
  "total_cents = total_cents + ?5";
const ORDER_STATUS = "SELECT status FROM orders WHERE order_id = ?1";

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function nonEmpty(field, text) {
  if (text.length === 0) throw new ParseError(`${field}: must not be empty`);
  return text;
}

function created(data) {
  // Index access rather than destructuring: QuickJS destructures through the iterator protocol.
  const order = parse(ORDER_CREATED, data);
  const orderId = nonEmpty("orderId", order[0]);
  const customerId = nonEmpty("customerId", order[1]);
  const items = order[2];
  const timestamp = nonEmpty("timestamp", order[3]);
  let itemCount = 0;
  let totalCents = 0;
  for (let i = 0; i < items.length; i++) {
    const quantity = items[i][1];
    const price = items[i][2];
    if (typeof quantity !== "number" || typeof price !== "number") {
      [itemCount, totalCents] = bigTotals(items); // from the start, so errors come in order
      break;
    }
    if (quantity < 0) throw new ParseError(`items[${i}].quantity: must not be negative, got ${quantity}`);
    if (price < 0) throw new ParseError(`items[${i}].unitPriceCents: must not be negative, got ${price}`);
    itemCount += quantity;
    totalCents += quantity * price;
    if (!Number.isSafeInteger(itemCount) || !Number.isSafeInteger(totalCents)) {
      [itemCount, totalCents] = bigTotals(items); // Number arithmetic stopped being exact
      break;
    }
  }
  return [orderId, customerId, itemCount, totalCents, timestamp];
}

// The Rust plugin's checked i64 arithmetic, exactly (BigInt), for orders whose sums leave ±2^53.
function bigTotals(items) {
  let itemCount = 0n;
  let totalCents = 0n;
  for (let i = 0; i < items.length; i++) {
    const quantity = BigInt(items[i][1]);
    const price = BigInt(items[i][2]);
    if (quantity < 0n) throw new ParseError(`items[${i}].quantity: must not be negative, got ${quantity}`);
    if (price < 0n) throw new ParseError(`items[${i}].unitPriceCents: must not be negative, got ${price}`);
    itemCount += quantity;
    if (itemCount > I64_MAX) throw new ParseError("items: quantities add up to more than 2^63");
    const lineTotal = quantity * price;
    totalCents += lineTotal;
    if (lineTotal > I64_MAX || totalCents > I64_MAX) throw new ParseError("items: total above 2^63 cents");
  }
  const small = (n) => (Number.isSafeInteger(Number(n)) ? Number(n) : n);
  return [small(itemCount), small(totalCents)];
}

function cancelled(data) {
  const order = parse(ORDER_CANCELLED, data);
  nonEmpty("orderId", order[0]);
  return order;
}

function shipped(data) {
  return nonEmpty("orderId", parse(ORDER_SHIPPED, data)[0]);
}

function change(totals, customerId) {
  let entry = totals.get(customerId);
  if (entry === undefined) {
    entry = [0, 0, 0, 0]; // orders, cancelled, shipped, total_cents
    totals.set(customerId, entry);
  }
  return entry;
}

function addCents(entry, cents) {
  if (typeof entry[3] === "number" && typeof cents === "number") {
    const total = entry[3] + cents;
    if (Number.isSafeInteger(total)) {
      entry[3] = total;
      return;
    }
  }
  const exact = BigInt(entry[3]) + BigInt(cents);
  if (exact < I64_MIN || exact > I64_MAX) throw new Other("a customer's total_cents overflows");
  entry[3] = Number.isSafeInteger(Number(exact)) ? Number(exact) : exact;
}

function handleBatch(sql, events) {
  const totals = new Map();
  for (let index = 0; index < events.length; index++) {
    const event = events[index];
    const eventType = event.eventType;
    let order;
    try {
      if (eventType === "OrderCreated") order = created(event.data);
      else if (eventType === "OrderCancelled") order = cancelled(event.data);
      else if (eventType === "OrderShipped") order = shipped(event.data);
      else throw new ParseError("not an order event type");
    } catch (error) {
      if (error instanceof ParseError) throw new InvalidEvent(index, `${eventType}: ${error.message}`);
      throw error;
    }

    const position = event.position;
    if (eventType === "OrderCreated") {
      // order: [orderId, customerId, itemCount, totalCents, createdAt]
      if (sql.execute(INSERT_ORDER, order[0], order[1], order[2], order[3], order[4], position) === 0) {
        log.warn(`ignoring OrderCreated for order ${order[0]}: it exists`);
        continue;
      }
      const entry = change(totals, order[1]);
      entry[0] += 1;
      addCents(entry, order[3]);
    } else if (eventType === "OrderCancelled") {
      const orderId = order[0];
      const rows = sql.query(CANCEL_ORDER, orderId, order[1], position);
      if (rows.length === 0) {
        ignore(sql, eventType, orderId);
        continue;
      }
      const row = rows[rows.length - 1];
      const entry = change(totals, textColumn(row, 0));
      entry[1] += 1;
      const cents = integerColumn(row, 1);
      addCents(entry, -cents);
    } else {
      const orderId = order;
      const rows = sql.query(SHIP_ORDER, orderId, position);
      if (rows.length === 0) {
        ignore(sql, eventType, orderId);
        continue;
      }
      change(totals, textColumn(rows[rows.length - 1], 0))[2] += 1;
    }
  }

  // Sorted like Rust's BTreeMap<String, _>: by UTF-8 bytes, i.e. by code point.
  const customers = Array.from(totals.keys()).sort(byCodePoint);
  for (const customerId of customers) {
    const entry = totals.get(customerId); // orders, cancelled, shipped, total_cents
    sql.execute(ADD_TO_CUSTOMER, customerId, entry[0], entry[1], entry[2], entry[3]);
  }
}

const SURROGATE = /[\uD800-\uDFFF]/;

function byCodePoint(a, b) {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function textColumn(row, column) {
  const value = row[column];
  if (typeof value !== "string") throw new Other(`expected text in result column ${column}`);
  return value;
}

function integerColumn(row, column) {
  const value = row[column];
  if (!Number.isInteger(value) && typeof value !== "bigint") {
    throw new Other(`expected an integer in result column ${column}`);
  }
  return value;
}

function ignore(sql, eventType, orderId) {
  const rows = sql.query(ORDER_STATUS, orderId);
  const status = rows.length > 0 ? rows[0][0] : undefined;
  const why = typeof status === "string" ? `it is ${status}` : "no such order";
  log.warn(`ignoring ${eventType} for order ${orderId}: ${why}`);
}

export const { describe, handle } = plugin(manifest, handleBatch);
