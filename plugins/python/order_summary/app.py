"""The `order_summary` projection in Python: the same tables, statements, checks and messages as
the Rust plugin in `plugins/order-summary` (read that for the reasoning behind each rule).

Orders get one row each (status, item count, total); customers get running totals, added up per
batch in memory and written once per customer at the end of the batch, in customer order.
"""

import projector
from projector import InvalidEvent, Other, log
from projector.fields import INTEGER, MAX_SAFE_INTEGER, TEXT, DataError, Shape

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

def _non_empty(field, text):
    if not text:
        raise DataError(field + ": must not be empty")
    return text


# The event data, read in the Rust plugin's order (every field before any is judged).
ITEM = Shape([("sku", TEXT), ("quantity", INTEGER), ("unitPriceCents", INTEGER)])
ORDER_CREATED = Shape(
    [("orderId", TEXT), ("customerId", TEXT), ("items", [ITEM]), ("timestamp", TEXT)]
)
ORDER_CANCELLED = Shape([("orderId", TEXT), ("reason", TEXT)])
ORDER_SHIPPED = Shape([("orderId", TEXT)])


def _created(data):
    """`OrderCreated`: checked, its items summed up."""
    order_id, customer_id, items, timestamp = ORDER_CREATED.read(data)
    if not (order_id and customer_id and timestamp):  # the checks in Rust's order, on failure
        _non_empty("orderId", order_id)
        _non_empty("customerId", customer_id)
        _non_empty("timestamp", timestamp)
    item_count = total_cents = 0
    for i, (_sku, quantity, price) in enumerate(items):
        if quantity < 0:
            raise DataError("items[%d].quantity: must not be negative, got %d" % (i, quantity))
        if price < 0:
            raise DataError("items[%d].unitPriceCents: must not be negative, got %d" % (i, price))
        item_count += quantity
        if item_count > MAX_SAFE_INTEGER:
            raise DataError("items: quantities add up to more than 2^53 - 1")
        total_cents += quantity * price
        if total_cents > MAX_SAFE_INTEGER:
            raise DataError("items: total above 2^53 - 1 cents")
    return order_id, customer_id, item_count, total_cents, timestamp


def _cancelled(data):
    order_id, reason = ORDER_CANCELLED.read(data)
    return _non_empty("orderId", order_id), reason


def _shipped(data):
    (order_id,) = ORDER_SHIPPED.read(data)
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
                raise DataError("not an order event type")
        except DataError as error:
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
    """The Rust plugin's rule: a batch's change to one customer stays within +/-(2^53 - 1)."""
    total = change[3] + cents
    if not -MAX_SAFE_INTEGER <= total <= MAX_SAFE_INTEGER:
        raise Other("a customer's total_cents change passes 2^53 - 1 in one batch")
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
