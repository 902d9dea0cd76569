"""The `order_summary` projection in Python: the same tables, statements, checks and messages as
the Rust plugin in `plugins/order-summary` (read that for the reasoning behind each rule).

Orders get one row each (status, item count, total); customers get running totals, added up per
batch in memory and written once per customer at the end of the batch, in customer order.
"""

import projector
from projector import InvalidEvent, Other, log
from projector.json import I64, STR, ParseError, Seq, Struct, parse

EVENT_TYPES = ["OrderCreated", "OrderCancelled", "OrderShipped"]

SCHEMA = [
    """CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        status TEXT NOT NULL, -- 'created', 'cancelled' or 'shipped'
        item_count INTEGER NOT NULL, -- sum of the items' quantities
        total_cents INTEGER NOT NULL, -- sum of quantity * unitPriceCents
        created_at TEXT NOT NULL, -- the OrderCreated event's timestamp, as written
        cancel_reason TEXT, -- NULL unless cancelled
        last_position INTEGER NOT NULL -- log position of the last event applied to the row
    )""",
    """CREATE TABLE customer_totals (
        customer_id TEXT PRIMARY KEY,
        order_count INTEGER NOT NULL, -- orders created
        cancelled_count INTEGER NOT NULL,
        shipped_count INTEGER NOT NULL,
        total_cents INTEGER NOT NULL -- total of the orders not cancelled
    )""",
]


def manifest():
    return projector.Manifest(
        name="order_summary",
        version="1.0.0",
        description="One row per order with status, item count and total, plus per-customer totals",
        event_types=list(EVENT_TYPES),
        stream_prefixes=["order-"],
        schema=list(SCHEMA),
    )


# The event data, as the Rust structs declare it (field order matters for serde's messages).
ITEM = Struct("Item", [("sku", STR), ("quantity", I64), ("unitPriceCents", I64)])
ORDER_CREATED = Struct(
    "OrderCreated",
    [("orderId", STR), ("customerId", STR), ("items", Seq(ITEM)), ("timestamp", STR)],
)
ORDER_CANCELLED = Struct("OrderCancelled", [("orderId", STR), ("reason", STR)])
ORDER_SHIPPED = Struct("OrderShipped", [("orderId", STR)])

INSERT_ORDER = (
    "INSERT INTO orders (order_id, customer_id, status, item_count, "
    "total_cents, created_at, cancel_reason, last_position) "
    "VALUES (?1, ?2, 'created', ?3, ?4, ?5, NULL, ?6) "
    "ON CONFLICT (order_id) DO NOTHING"
)
CANCEL_ORDER = (
    "UPDATE orders SET status = 'cancelled', cancel_reason = ?2, "
    "last_position = ?3 WHERE order_id = ?1 AND status = 'created' "
    "RETURNING customer_id, total_cents"
)
SHIP_ORDER = (
    "UPDATE orders SET status = 'shipped', last_position = ?2 "
    "WHERE order_id = ?1 AND status = 'created' RETURNING customer_id"
)
ADD_TO_CUSTOMER = (
    "INSERT INTO customer_totals (customer_id, order_count, "
    "cancelled_count, shipped_count, total_cents) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (customer_id) DO UPDATE SET order_count = order_count + ?2, "
    "cancelled_count = cancelled_count + ?3, shipped_count = shipped_count + ?4, "
    "total_cents = total_cents + ?5"
)
ORDER_STATUS = "SELECT status FROM orders WHERE order_id = ?1"

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1


def _non_empty(field, text):
    if not text:
        raise ParseError(field + ": must not be empty")
    return text


def _created(data):
    order_id, customer_id, items, timestamp = parse(ORDER_CREATED, data)
    if not (order_id and customer_id and timestamp):  # the checks in Rust's order, on failure
        _non_empty("orderId", order_id)
        _non_empty("customerId", customer_id)
        _non_empty("timestamp", timestamp)
    item_count = total_cents = 0
    for _sku, quantity, price in items:
        if quantity < 0 or price < 0:
            i = items.index((_sku, quantity, price))
            if quantity < 0:
                raise ParseError("items[%d].quantity: must not be negative, got %d" % (i, quantity))
            raise ParseError("items[%d].unitPriceCents: must not be negative, got %d" % (i, price))
        item_count += quantity
        total_cents += quantity * price
        if total_cents > I64_MAX or item_count > I64_MAX:
            return _overflow(items)
    return order_id, customer_id, item_count, total_cents, timestamp


def _overflow(items):
    """Says which of Rust's checked sums overflowed first (both only grow: no item is negative)."""
    item_count = total_cents = 0
    for _sku, quantity, price in items:
        item_count += quantity
        if item_count > I64_MAX:
            raise ParseError("items: quantities add up to more than 2^63")
        line_total = quantity * price
        total_cents += line_total
        if line_total > I64_MAX or total_cents > I64_MAX:
            raise ParseError("items: total above 2^63 cents")
    raise AssertionError("a sum overflowed")


def _cancelled(data):
    order_id, reason = parse(ORDER_CANCELLED, data)
    return _non_empty("orderId", order_id), reason


def _shipped(data):
    (order_id,) = parse(ORDER_SHIPPED, data)
    return _non_empty("orderId", order_id)


def handle(sql, events):
    # Per customer: [orders, cancelled, shipped, total_cents] to add at the end of the batch.
    totals = {}
    for index, event in enumerate(events):
        event_type = event.event_type
        try:
            if event_type == "OrderCreated":
                order_id, customer_id, item_count, total_cents, created_at = _created(event.data)
            elif event_type == "OrderCancelled":
                order_id, reason = _cancelled(event.data)
            elif event_type == "OrderShipped":
                order_id = _shipped(event.data)
            else:
                raise ParseError("not an order event type")
        except ParseError as error:
            raise InvalidEvent(index, "%s: %s" % (event_type, error)) from None

        position = event.position
        if event_type == "OrderCreated":
            changed = sql.execute(
                INSERT_ORDER, order_id, customer_id, item_count, total_cents, created_at, position
            )
            if changed == 0:
                log.warn("ignoring OrderCreated for order %s: it exists" % order_id)
                continue
            change = totals.get(customer_id)
            if change is None:
                change = totals[customer_id] = [0, 0, 0, 0]
            change[0] += 1
            _add_cents(change, total_cents)
        elif event_type == "OrderCancelled":
            rows = sql.query(CANCEL_ORDER, order_id, reason, position)
            if not rows:
                _ignore(sql, event_type, order_id)
                continue
            customer_id, total_cents = _text(rows[-1], 0), _integer(rows[-1], 1)
            change = totals.get(customer_id)
            if change is None:
                change = totals[customer_id] = [0, 0, 0, 0]
            change[1] += 1
            _add_cents(change, -total_cents)
        else:
            rows = sql.query(SHIP_ORDER, order_id, position)
            if not rows:
                _ignore(sql, event_type, order_id)
                continue
            customer_id = _text(rows[-1], 0)
            change = totals.get(customer_id)
            if change is None:
                change = totals[customer_id] = [0, 0, 0, 0]
            change[2] += 1

    # Sorted like Rust's BTreeMap<String, _>: by UTF-8 bytes, which is code point order.
    for customer_id in sorted(totals):
        orders, cancelled, shipped, cents = totals[customer_id]
        sql.execute(ADD_TO_CUSTOMER, customer_id, orders, cancelled, shipped, cents)


def _add_cents(change, cents):
    total = change[3] + cents
    if not I64_MIN <= total <= I64_MAX:
        raise Other("a customer's total_cents overflows")
    change[3] = total


def _text(row, column):
    value = row[column] if column < len(row) else None
    if type(value) is not str:
        raise Other("expected text in result column %d" % column)
    return value


def _integer(row, column):
    value = row[column] if column < len(row) else None
    if type(value) is not int:
        raise Other("expected an integer in result column %d" % column)
    return value


def _ignore(sql, event_type, order_id):
    rows = sql.query(ORDER_STATUS, order_id)
    status = rows[0][0] if rows and rows[0] else None
    why = "it is %s" % status if type(status) is str else "no such order"
    log.warn("ignoring %s for order %s: %s" % (event_type, order_id, why))


WitWorld = projector.export(manifest, handle)
