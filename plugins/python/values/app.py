"""The `values` test projection in Python: the twin of `plugins/values` (read that for what each
table pins). It records what crossed the boundary for every event and, on a `RoundTrip` event,
binds the edge values through `sql` and records whether each came back the same. A `Bug` event
raises an uncaught exception, as a bug would.
"""

import json
import math
import struct

import projector
from projector import Other

SCHEMA = [
    "CREATE TABLE received (position INTEGER PRIMARY KEY, event_type TEXT NOT NULL, "
    "content_type TEXT NOT NULL, stream_revision INTEGER NOT NULL, created_unix_ms INTEGER NOT NULL, "
    "data_length INTEGER NOT NULL, data BLOB NOT NULL, data_utf8 INTEGER NOT NULL, "
    "json_kind TEXT NOT NULL, metadata_length INTEGER NOT NULL, metadata BLOB NOT NULL)",
    "CREATE TABLE edges (name TEXT PRIMARY KEY, value)",
    "CREATE TABLE round_trips (name TEXT PRIMARY KEY, echoed_type TEXT NOT NULL, "
    "echoed_same INTEGER NOT NULL, stored_type TEXT NOT NULL, stored_same INTEGER NOT NULL, "
    "refused TEXT)",
]

RECEIVE = "INSERT INTO received VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
ECHO = "SELECT ?1, typeof(?1)"
STORE = "INSERT INTO edges (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2"
READ_BACK = "SELECT value, typeof(value) FROM edges WHERE name = ?1"
RECORD = "INSERT OR REPLACE INTO round_trips VALUES (?1, ?2, ?3, ?4, ?5, NULL)"

TWO_53 = 2**53
# The same names and values as the Rust build's `edges()`, in the same order.
EDGES = [
    ("null", None),
    ("int_zero", 0),
    ("int_2p53", TWO_53),
    ("int_neg_2p53", -TWO_53),
    ("int_2p53_plus_1", TWO_53 + 1),
    ("int_neg_2p53_minus_1", -TWO_53 - 1),
    ("int_min", -(2**63)),
    ("int_max", 2**63 - 1),
    ("real_half", 0.5),
    ("real_neg_zero", -0.0),
    ("real_nan", math.nan),
    ("real_inf", math.inf),
    ("real_neg_inf", -math.inf),
    ("real_1e308", 1e308),
    ("text_empty", ""),
    ("text_non_ascii", "héllo – 日本 😀"),
    ("text_nul", "a\0b"),
    ("blob_empty", b""),
    ("blob_bytes", b"\x00\xff\x80\x01"),
]


def manifest():
    return projector.Manifest(
        name="values",
        version="1.0.0",
        description="What crosses the plugin boundary, for the value-model tests",
        event_types=[],
        stream_prefixes=[],
        schema=list(SCHEMA),
    )


def handle(sql, events):
    for event in events:
        try:
            event.data.decode("utf-8")
            utf8 = 1
        except UnicodeDecodeError:
            utf8 = 0
        sql.execute(
            RECEIVE,
            event.position,
            event.event_type,
            event.content_type,
            event.stream_revision,
            event.created_unix_ms,
            len(event.data),
            bytes(event.data),
            utf8,
            json_kind(event.data),
            len(event.metadata),
            bytes(event.metadata),
        )
        if event.event_type == "RoundTrip":
            round_trip(sql)
        elif event.event_type == "Bug":
            raise ValueError("values was told to fail at position %d" % event.position)


def round_trip(sql):
    for name, value in EDGES:
        echoed = first_row(sql.query(ECHO, value))
        sql.execute(STORE, name, value)
        stored = first_row(sql.query(READ_BACK, name))
        sql.execute(RECORD, name, echoed[1], int(same(echoed[0], value)), stored[1], int(same(stored[0], value)))


def first_row(rows):
    if not rows or len(rows[0]) != 2:
        raise Other("expected one row of two columns")
    return rows[0]


def same(got, sent):
    """Exact equality: the same Python type, reals bit for bit (NaN is itself, -0.0 is not 0.0)."""
    if type(got) is not type(sent):
        return False
    if type(sent) is float:
        return struct.pack("<d", got) == struct.pack("<d", sent)
    return got == sent


def _refuse_constant(name):
    raise ValueError(name)  # serde_json refuses NaN and Infinity


def _finite(text):
    value = float(text)
    if math.isinf(value):
        raise ValueError(text)  # serde_json refuses a number out of f64's range
    return value


def json_kind(data):
    """The kind of JSON value the data holds, or `invalid`, as serde_json decides it."""
    try:
        value = json.loads(bytes(data).decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "invalid"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


WitWorld = projector.export(manifest, handle)
