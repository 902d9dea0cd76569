"""Native checks of projector/fields.py under the machine's CPython (seconds, no component):
the rules' messages on hand-picked data, and Shape.read agreeing with reading field by field on
every event of the given files (the fast generated check and the slow path must never differ).

    python3 plugins/python/tests/test_fields.py [EVENTS.jsonl...]
"""

import base64
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("fields", os.path.join(HERE, "..", "projector", "fields.py"))
fields = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fields)

ITEM = fields.Shape([("sku", fields.TEXT), ("quantity", fields.INTEGER), ("unitPriceCents", fields.INTEGER)])
ORDER = fields.Shape([("orderId", fields.TEXT), ("customerId", fields.TEXT), ("items", [ITEM]), ("timestamp", fields.TEXT)])

CASES = [
    (b"", "data is not valid JSON"),
    (b'{"a":NaN}', "data is not valid JSON"),
    (b'{"a":"\\ud800"}', "data is not valid JSON"),
    (b"[1]", "data: expected an object, got an array"),
    (b"{}", "orderId: missing"),
    (b'{"orderId":7}', "orderId: expected text, got a number"),
    (b'{"orderId":"o","customerId":null}', "customerId: expected text, got null"),
    (b'{"orderId":"o","customerId":"c","items":[true]}', "items[0]: expected an object, got a boolean"),
    (b'{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":2.5}]}', "items[0].quantity: expected an integer, got a fraction"),
    (b'{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":1e400}]}', "items[0].quantity: integer beyond \u00b1(2^53 - 1)"),
    (b'{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":9007199254740992}]}', "items[0].quantity: integer beyond \u00b1(2^53 - 1)"),
    (b'{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":1,"unitPriceCents":"2"}]}', "items[0].unitPriceCents: expected an integer, got text"),
    (b'{"a":' + b"[" * 500 + b"]" * 500 + b"}", "data nests deeper than 500 levels"),
]


def message(read, data):
    try:
        read(data)
    except fields.DataError as error:
        return str(error)
    return None


def main():
    failures = 0
    for data, expected in CASES:
        for name, read in (("shape", ORDER.read), ("fields", lambda d: ORDER.read_fields(fields.parse(d)))):
            got = message(read, data)
            if got != expected:
                failures += 1
                print("%s %r: %r, expected %r" % (name, data[:80], got, expected))
    ok = ORDER.read(b'{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":2.0,"unitPriceCents":1e2}],"timestamp":"t","x":1e400}')
    if ok != ("o", "c", [("s", 2, 100)], "t"):
        failures += 1
        print("unusual but valid data read as %r" % (ok,))
    checked = 0
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                event = json.loads(line)
                data = base64.b64decode(event["data_base64"]) if "data_base64" in event else json.dumps(event.get("data")).encode()
                slow = fast = None
                try:
                    slow = ORDER.read_fields(fields.parse(data))
                except fields.DataError as error:
                    slow = str(error)
                try:
                    fast = ORDER.read(data)
                except fields.DataError as error:
                    fast = str(error)
                checked += 1
                if slow != fast:
                    failures += 1
                    print("%s: shape %r, fields %r" % (path, fast, slow))
    print("python fields: %d cases, %d events compared, %d failures" % (len(CASES), checked, failures))
    sys.exit(1 if failures else 0)


main()
