// The `order_summary` projection in JavaScript: the same tables, statements, checks and messages
// as the Rust plugin in plugins/order-summary (read that for the reasoning behind each rule).
//
// Orders get one row each (status, item count, total); customers get running totals, added up
// per batch in memory and written once per customer at the end of the batch, in customer order.

import { plugin, log, Other, InvalidEvent } from "../projector/index.js";
import { DataError, INTEGER, MAX_SAFE_INTEGER, Shape, TEXT } from "../projector/fields.js";

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

function nonEmpty(field, text) {
  if (text.length === 0) throw new DataError(`${field}: must not be empty`);
  return text;
}

// The event data, read in the Rust plugin's order (every field before any is judged).
const ITEM = new Shape([
  ["sku", TEXT],
  ["quantity", INTEGER],
  ["unitPriceCents", INTEGER],
]);
const ORDER_CREATED = new Shape([
  ["orderId", TEXT],
  ["customerId", TEXT],
  ["items", [ITEM]],
  ["timestamp", TEXT],
]);
const ORDER_CANCELLED = new Shape([
  ["orderId", TEXT],
  ["reason", TEXT],
]);
const ORDER_SHIPPED = new Shape([["orderId", TEXT]]);

// `OrderCreated`: checked, its items summed up.
function created(data) {
  const order = ORDER_CREATED.read(data);
  const orderId = nonEmpty("orderId", order[0]);
  const customerId = nonEmpty("customerId", order[1]);
  const items = order[2];
  const timestamp = nonEmpty("timestamp", order[3]);
  let itemCount = 0;
  let totalCents = 0;
  for (let i = 0; i < items.length; i++) {
    const quantity = items[i][1];
    const price = items[i][2];
    if (quantity < 0) throw new DataError(`items[${i}].quantity: must not be negative, got ${quantity}`);
    if (price < 0) throw new DataError(`items[${i}].unitPriceCents: must not be negative, got ${price}`);
    itemCount += quantity; // both below 2^53: the sum is exact up to 2^54
    if (itemCount > MAX_SAFE_INTEGER) throw new DataError("items: quantities add up to more than 2^53 - 1");
    const line = quantity * price;
    // A product past 2^53 may be rounded, but then it is past the limit either way.
    if (line > MAX_SAFE_INTEGER || totalCents + line > MAX_SAFE_INTEGER) {
      throw new DataError("items: total above 2^53 - 1 cents");
    }
    totalCents += line;
  }
  return [orderId, customerId, itemCount, totalCents, timestamp];
}

function cancelled(data) {
  const order = ORDER_CANCELLED.read(data);
  return [nonEmpty("orderId", order[0]), order[1]];
}

function shipped(data) {
  return nonEmpty("orderId", ORDER_SHIPPED.read(data)[0]);
}

function change(totals, customerId) {
  let entry = totals.get(customerId);
  if (entry === undefined) {
    entry = [0, 0, 0, 0]; // orders, cancelled, shipped, total_cents
    totals.set(customerId, entry);
  }
  return entry;
}

// The Rust plugin's rule: a batch's change to one customer stays within ±(2^53 - 1), so it is
// exact here and passes to the host as an s64.
function addCents(entry, cents) {
  const total = entry[3] + cents;
  if (total > MAX_SAFE_INTEGER || total < -MAX_SAFE_INTEGER) {
    throw new Other("a customer's total_cents change passes 2^53 - 1 in one batch");
  }
  entry[3] = total;
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
      else throw new DataError("not an order event type");
    } catch (error) {
      if (error instanceof DataError) throw new InvalidEvent(index, `${eventType}: ${error.message}`);
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
