"""Reading an event's JSON data field by field, by the same rules and with the same messages as
the Rust SDK's `projector_sdk::fields` and the JavaScript `projector/fields.js`, so a projection
refuses the same events with the same dead-letter messages in every language.

    from projector import fields
    order = fields.parse(event.data)          # raises fields.DataError
    order_id = order.text("orderId")
    for item in order.objects("items"):
        quantity = item.integer("quantity")

or, for a layout read on every event, a Shape, which checks it with code generated once (several
times faster than a method call per field; same rules, same messages):

    ITEM = fields.Shape([("sku", fields.TEXT), ("quantity", fields.INTEGER)])
    ORDER = fields.Shape([("orderId", fields.TEXT), ("items", [ITEM])])
    order_id, items = ORDER.read(event.data)  # items: a list of (sku, quantity) tuples

The rules (docs/plugins.md, "Reading event data"):
- data nesting deeper than 500 arrays and objects is refused before parsing:
  "data nests deeper than 500 levels";
- data must be UTF-8 JSON text (no NaN or Infinity, no lone surrogates), else
  "data is not valid JSON"; a number too large for a double is valid, and out of range when
  read as an integer;
- the document must be an object: "data: expected an object, got an array";
- a key given twice means its last value;
- integers are numbers without fraction within +/-(2^53 - 1) (`2.0` and `1e2` are integers);
- a field's problem names its path: "items[1].quantity: expected an integer, got text",
  "orderId: missing".

CPython's C scanner does the parsing; the checks that make it agree with the other languages'
parsers (lone surrogates, depth, integers too long for int()) only run when the raw bytes hold
what they look for, so an ordinary event pays for a few byte searches.
"""

import json
import re

MAX_DEPTH = 500
MAX_SAFE_INTEGER = (1 << 53) - 1

_MISSING = object()
_INF = float("inf")


class DataError(Exception):
    """Data that does not follow the rules; `str(error)` is the message."""


def _refuse(_text):
    raise ValueError("not JSON")


def _long_int(text):
    # int() refuses more than 4,300 digits (and would take quadratic time); past 2^53 only the
    # magnitude matters to `integer`, which a float keeps (inf when it overflows).
    return int(text) if len(text) < 20 else float(text)


# strict (the default): control characters inside strings are refused, as JSON says.
_DECODER = json.JSONDecoder(parse_constant=_refuse)
_LONG_INTEGER_DECODER = json.JSONDecoder(parse_constant=_refuse, parse_int=_long_int)
_LONG_DIGITS = re.compile(rb"[0-9]{4300}")
# An escape that may be half of a surrogate pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse(data):
    """The fields of `data`'s top-level object, or DataError saying why it is not one."""
    return Fields(_document(data), "")


def _document(data):
    """`data`'s top-level object, as a dict."""
    if (
        len(data) > MAX_DEPTH
        and data.count(b"[") + data.count(b"{") > MAX_DEPTH
        and nests_deeper_than(data, MAX_DEPTH)
    ):
        raise DataError("data nests deeper than %d levels" % MAX_DEPTH)
    try:
        text = data.decode("utf-8")
        if len(data) >= 4300 and _LONG_DIGITS.search(data):
            document = _LONG_INTEGER_DECODER.decode(text)
        else:
            document = _parse(text)
        if b"\\u" in data and _SURROGATE_ESCAPE.search(data):
            _refuse_lone_surrogates(document)
    except ValueError:  # UnicodeError and JSONDecodeError are ValueErrors
        raise DataError("data is not valid JSON") from None
    if type(document) is not dict:
        raise DataError("data: expected an object, got %s" % kind(document))
    return document


_scan = _DECODER.scan_once
_WHITESPACE = " \t\n\r"


def _parse(text):
    """JSONDecoder.decode without its two regular-expression calls: the C scanner straight."""
    end = len(text)
    start = 0
    while start < end and text[start] in _WHITESPACE:
        start += 1
    try:
        document, stop = _scan(text, start)
    except StopIteration:
        raise ValueError("no JSON value") from None
    while stop < end and text[stop] in _WHITESPACE:
        stop += 1
    if stop != end:
        raise ValueError("more after the JSON value")
    return document


TEXT = "text"
INTEGER = "integer"


class Shape:
    """A layout of fields read in one go: `fields` is a list of (key, TEXT | INTEGER | [Shape])
    read in that order; `read` returns their values as a tuple (a list of tuples for [Shape]),
    or raises the DataError that reading them one by one with Fields would."""

    __slots__ = ("fields", "check")

    def __init__(self, fields):
        self.fields = list(fields)
        self.check = _compile(self.fields)

    def read(self, data):
        """The values of `data`'s fields, or DataError."""
        document = _document(data)
        values = self.check(document)
        if values is None:
            # Something is off (or merely unusual, like 2.0 for an integer): read it field by
            # field, which says what, or gives the values.
            values = self.read_fields(Fields(document, ""))
        return values

    def read_fields(self, fields):
        values = []
        for key, kind_ in self.fields:
            if kind_ is TEXT:
                values.append(fields.text(key))
            elif kind_ is INTEGER:
                values.append(fields.integer(key))
            else:
                values.append([kind_[0].read_fields(item) for item in fields.objects(key)])
        return tuple(values)


def _compile(layout):
    """A function of a dict giving the tuple of its values in `layout`, or None when any is not
    plainly what it should be. Straight-line code, nested layouts inlined: a loop over the layout,
    or a call per nested object, costs several times more in the interpreter."""
    lines = ["def check(d):"]
    count = [0]

    def emit(layout, source, indent):
        values = []
        for key, kind_ in layout:
            n = count[0]
            count[0] += 1
            v = "v%d" % n
            lines.append("%s%s = %s.get(%r)" % (indent, v, source, key))
            if kind_ is TEXT:
                lines.append("%sif type(%s) is not str: return None" % (indent, v))
            elif kind_ is INTEGER:
                lines.append("%sif type(%s) is not int or not -M <= %s <= M: return None" % (indent, v, v))
            else:
                e, out = "e%d" % n, "l%d" % n
                lines.extend([
                    "%sif type(%s) is not list: return None" % (indent, v),
                    "%s%s = []" % (indent, out),
                    "%sfor %s in %s:" % (indent, e, v),
                    "%s    if type(%s) is not dict: return None" % (indent, e),
                ])
                inner = emit(kind_[0].fields, e, indent + "    ")
                lines.append("%s    %s.append(%s)" % (indent, out, inner))
                v = out
            values.append(v)
        return "(%s)" % "".join(v + ", " for v in values)

    lines.append("    return " + emit(layout, "d", "    "))
    names = {"M": MAX_SAFE_INTEGER}
    exec("\n".join(lines), names)
    return names["check"]


def _refuse_lone_surrogates(value):
    """Raises ValueError when a string or key holds half a surrogate pair (UTF-8 cannot)."""
    if type(value) is str:
        value.encode("utf-8")
    elif type(value) is list:
        for element in value:
            _refuse_lone_surrogates(element)
    elif type(value) is dict:
        for key, element in value.items():
            key.encode("utf-8")
            _refuse_lone_surrogates(element)


class Fields:
    """The fields of one object of a document, and where it sits in it (for messages)."""

    __slots__ = ("_map", "_path")

    def __init__(self, mapping, path):
        self._map = mapping
        self._path = path

    def text(self, key):
        """The text field `key`."""
        value = self._map.get(key, _MISSING)
        if type(value) is str:
            return value
        raise DataError(self._expected(key, "text", value))

    def integer(self, key):
        """The integer field `key` (a number without fraction within +/-(2^53 - 1))."""
        value = self._map.get(key, _MISSING)
        if type(value) is int:
            if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                return value
        elif type(value) is float:
            if value != value or value in (_INF, -_INF):
                pass  # too large for a double: out of range below
            elif not value.is_integer():
                raise DataError("%s: expected an integer, got a fraction" % self._at(key))
            if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                return int(value)
        else:
            raise DataError(self._expected(key, "an integer", value))
        raise DataError("%s: integer beyond \u00b1(2^53 - 1)" % self._at(key))

    def objects(self, key):
        """The field `key`, an array of objects, as a list of Fields."""
        value = self._map.get(key, _MISSING)
        if type(value) is not list:
            raise DataError(self._expected(key, "an array", value))
        path = self._at(key)
        out = []
        for index, element in enumerate(value):
            if type(element) is not dict:
                raise DataError("%s[%d]: expected an object, got %s" % (path, index, kind(element)))
            out.append(Fields(element, "%s[%d]" % (path, index)))
        return out

    def _expected(self, key, wanted, value):
        if value is _MISSING:
            return "%s: missing" % self._at(key)
        return "%s: expected %s, got %s" % (self._at(key), wanted, kind(value))

    def _at(self, key):
        return "%s.%s" % (self._path, key) if self._path else key


def kind(value):
    """How messages name a JSON value's kind."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) in (int, float):
        return "a number"
    if type(value) is str:
        return "text"
    if type(value) is list:
        return "an array"
    return "an object"


def nests_deeper_than(data, limit):
    """Whether `data` opens more than `limit` arrays and objects at once, brackets inside
    strings aside: the same scan as the Rust and JavaScript helpers, valid data or not."""
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x5B or byte == 0x7B:  # [ {
            depth += 1
            if depth > limit:
                return True
        elif (byte == 0x5D or byte == 0x7D) and depth > 0:  # ] }
            depth -= 1
    return False
