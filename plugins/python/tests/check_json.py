#!/usr/bin/env python3
"""Checks natively (CPython 3, no wasm) that projector/json.py's fast path and its serde_json port
agree on every event of the given JSONL files (`data_base64` or `data`): the same value, or the
same message. The port itself is checked against the Rust plugin by compare_languages.py.

    python3 plugins/fixtures/make_fuzz.py 11 20000 > /tmp/fuzz.jsonl
    python3 plugins/python/tests/check_json.py /tmp/fuzz.jsonl plugins/fixtures/edge-cases.jsonl
"""

import base64
import importlib.util
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("pj", os.path.join(here, "..", "projector", "json.py"))
pj = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pj)  # only json.py: the package's __init__ needs componentize-py's bindings

ITEM = pj.Struct("Item", [("sku", pj.STR), ("quantity", pj.I64), ("unitPriceCents", pj.I64)])
SHAPES = {
    "OrderCreated": pj.Struct("OrderCreated", [("orderId", pj.STR), ("customerId", pj.STR),
                                               ("items", pj.Seq(ITEM)), ("timestamp", pj.STR)]),
    "OrderCancelled": pj.Struct("OrderCancelled", [("orderId", pj.STR), ("reason", pj.STR)]),
    "OrderShipped": pj.Struct("OrderShipped", [("orderId", pj.STR)]),
}


def outcome(parse, shape, data):
    try:
        return ("ok", parse(shape, data))
    except pj.ParseError as error:
        return ("err", str(error))


cases = accepted = mismatches = 0
for path in sys.argv[1:]:
    for line in open(path, encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        event = json.loads(line)
        shape = SHAPES.get(event["type"])
        if shape is None:
            continue
        if "data_base64" in event:
            data = base64.b64decode(event["data_base64"])
        else:
            data = json.dumps(event.get("data", {}), separators=(",", ":")).encode()
        fast = outcome(pj.parse, shape, data)
        port = outcome(lambda s, d: pj._Serde(d).parse(s), shape, data)
        cases += 1
        accepted += fast[0] == "ok"
        if fast != port:
            mismatches += 1
            if mismatches <= 5:
                print("MISMATCH", data[:300], fast, port)
print("%d passed, %d failed" % (cases - mismatches, mismatches))
print("(%d accepted by the fast path and the port alike)" % accepted)
sys.exit(1 if mismatches else 0)
