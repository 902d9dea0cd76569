"""Parsing an event's JSON data into fixed shapes, with the same error messages as the Rust SDK.

The Rust SDK's `json::parse` is serde_json 1.0 (default features) into a `#[derive(Deserialize)]`
struct, with serde_path_to_error naming the field on failure. Its messages end up in the host's
dead-letter table, so a Python plugin that wants the same dead letters as its Rust twin must say
exactly what serde says, down to the line and column. This module does that for the shapes
plugins declare here: structs of strings, 64-bit integers, sequences and nested structs, with
unknown fields ignored (serde's default).

Two paths, as in the Rust SDK:

- The fast path is CPython's C `json` scanner plus a check of the fields generated per struct. It
  is only taken when it provably agrees with serde: valid UTF-8 with no backslash escapes (so keys
  and strings are what they look like), no `NaN`/`Infinity`, no float where an integer belongs,
  no integer zero that might be `-0`, and no object repeating a declared key (checked by counting
  the data's strings, or each declared key when there are unknown keys).
- Anything else goes to `_Serde`, a byte-by-byte port of serde_json's `SliceRead` deserializer
  (`de.rs`, `read.rs`), which reproduces its acceptance and its errors, positions included.

The fast path covers well-formed events, so the port only runs for bad or unusual data.
"""

import json as _json

__all__ = ["STR", "I64", "Seq", "Struct", "ParseError", "parse"]

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1


class _Str:
    """A text field (Rust `Cow<str>`/`String`): serde expects "a string"."""

    expecting = "a string"


class _I64:
    """A 64-bit signed integer field (Rust `i64`)."""

    expecting = "i64"


STR = _Str()
I64 = _I64()


class Seq:
    """A list of one element shape (Rust `Vec<T>`)."""

    expecting = "a sequence"

    def __init__(self, element):
        self.element = element


_structs = []  # every Struct, by id (the fast path counts instances by id)


class Struct:
    """A struct with named fields, in declaration order, as serde derive sees it.

    `parse` returns a tuple of the field values in this order; a `Seq` of structs gives a list of
    tuples. Unknown keys are ignored; a JSON array is also accepted, positionally, as serde does.
    """

    def __init__(self, name, fields):
        self.name = name
        self.fields = tuple(fields)
        self.names = tuple(name for name, _ in self.fields)
        self.index = {name: i for i, (name, _) in enumerate(self.fields)}
        self.expecting = "struct " + name
        self.id = len(_structs)
        _structs.append(self)
        self.fast = _compile(self)
        self.plan = None  # for a root shape: [(key bytes, struct ids declaring it)], built lazily


class ParseError(Exception):
    """Data that does not fit the shape; `str(error)` is the Rust SDK's message."""


_NO = object()
_SPACE = " \t\n\r"


def _reject_constant(name):
    raise ValueError(name)


# The C scanner behind json.loads, called directly (json.loads adds two regex calls per document).
_scan = _json.JSONDecoder(parse_constant=_reject_constant).scan_once


def parse(shape, data):
    """Parses `data` (bytes) as `shape`, or raises ParseError with serde's message."""
    fast = shape.fast if type(shape) is Struct else None
    if fast is not None and b"\\" not in data and (len(data) < 1000 or not _deep(data)):
        try:
            text = data.decode("utf-8")
            doc, end = _scan(text, 0)
            if end != len(text) and text[end:].strip(_SPACE):
                doc = _NO
        except StopIteration:
            # Leading whitespace (or no value at all): skip the whitespace and try again.
            try:
                doc, end = _scan(text, len(text) - len(text.lstrip(_SPACE)))
                if end != len(text) and text[end:].strip(_SPACE):
                    doc = _NO
            except (ValueError, StopIteration, RecursionError):
                doc = _NO
        except (ValueError, RecursionError):
            doc = _NO
        if doc is not _NO:
            # acc: [strings (keys and text values), objects with unknown keys, integer zeros,
            # then instances per struct id]
            acc = [0, 0, 0] + [0] * len(_structs)
            value = fast(doc, acc)
            if value is not _NO and not (acc[2] and b"-0" in data):  # serde reads -0 as a float
                # No key given twice (the C decoder keeps the last; serde refuses a known one).
                # With no backslash every `"` delimits a string: when no object has unknown keys,
                # the data holds exactly the strings the shape accounts for. Otherwise count
                # each declared key.
                if acc[1] == 0:
                    if data.count(b'"') == 2 * acc[0]:
                        return value
                elif _keys_once(shape, data, acc):
                    return value
    return _Serde(data).parse(shape)


def _deep(data):
    """Whether `data` might nest deeper than the C scanner can go on the 1 MiB wasm stack (it
    traps somewhere between 1,000 and 5,000 levels; serde skips unknown values iteratively, at
    any depth). Only asked of data of 1,000 bytes or more: shorter data cannot nest that deep."""
    return data.count(b"[") + data.count(b"{") > 500


def _keys_once(shape, data, acc):
    if shape.plan is None:
        plan = {}

        def visit(shape):
            if type(shape) is Seq:
                visit(shape.element)
            if type(shape) is not Struct:
                return
            for name, field in shape.fields:
                ids = plan.setdefault(('"' + name + '"').encode(), [])
                if shape.id not in ids:
                    ids.append(shape.id)
                visit(field)

        visit(shape)
        shape.plan = list(plan.items())
    for key, ids in shape.plan:
        if data.count(key) != sum(acc[3 + i] for i in ids):
            return False
    return True


def _compile(struct):
    """The fast-path check of `struct`: a function (doc, acc) -> tuple or _NO, generated as
    straight-line code, which CPython runs several times faster than a generic walk."""
    n = len(struct.fields)
    strings = n + sum(1 for _, field in struct.fields if type(field) is _Str)
    lines = [
        "def fast(doc, acc):",
        "    if type(doc) is not dict: return NO",
        "    if len(doc) != %d: acc[1] += 1" % n,
        "    acc[0] += %d" % strings,
        "    acc[%d] += 1" % (3 + struct.id),
    ]
    env = {"NO": _NO, "MIN": I64_MIN, "MAX": I64_MAX}
    for i, (name, field) in enumerate(struct.fields):
        lines.append("    v%d = doc.get(%r, NO)" % (i, name))
        kind = type(field)
        if kind is _Str:
            lines.append("    if type(v%d) is not str: return NO" % i)
        elif kind is _I64:
            lines.append("    if type(v%d) is not int or not MIN <= v%d <= MAX: return NO" % (i, i))
            lines.append("    if v%d == 0: acc[2] += 1" % i)
        elif kind is Struct:
            env["s%d" % i] = field
            lines.append("    v%d = s%d.fast(v%d, acc)" % (i, i, i))
            lines.append("    if v%d is NO: return NO" % i)
        else:  # Seq
            element = field.element
            lines.append("    if type(v%d) is not list: return NO" % i)
            if type(element) is _Str:
                lines.append("    for e in v%d:" % i)
                lines.append("        if type(e) is not str: return NO")
                lines.append("    acc[0] += len(v%d)" % i)
            elif type(element) is _I64:
                lines.append("    for e in v%d:" % i)
                lines.append("        if type(e) is not int or not MIN <= e <= MAX: return NO")
                lines.append("        if e == 0: acc[2] += 1")
            else:
                env["s%d" % i] = element if type(element) is Struct else _Fast(element)
                lines.append("    l%d = []" % i)
                lines.append("    for e in v%d:" % i)
                lines.append("        e = s%d.fast(e, acc)" % i)
                lines.append("        if e is NO: return NO")
                lines.append("        l%d.append(e)" % i)
                lines.append("    v%d = l%d" % (i, i))
    lines.append("    return (%s)" % "".join("v%d, " % i for i in range(n)))
    exec("\n".join(lines), env)
    return env["fast"]


class _Fast:
    """The fast-path check of any shape, for sequences of sequences and the like."""

    def __init__(self, shape):
        self.shape = shape

    def fast(self, value, acc):
        shape = self.shape
        kind = type(shape)
        if kind is Struct:
            return shape.fast(value, acc)
        if kind is _Str:
            if type(value) is not str:
                return _NO
            acc[0] += 1
            return value
        if kind is _I64:
            if type(value) is not int or not I64_MIN <= value <= I64_MAX:
                return _NO
            if value == 0:
                acc[2] += 1
            return value
        if type(value) is not list:
            return _NO
        inner = _Fast(shape.element)
        out = []
        for element in value:
            element = inner.fast(element, acc)
            if element is _NO:
                return _NO
            out.append(element)
        return out


# --- The port of serde_json's deserializer ---------------------------------------------------

_SYNTAX, _DATA = "syntax", "data"


class _Error(Exception):
    """A serde_json error: its text, kind, position (line 0: not yet placed) and path."""

    def __init__(self, text, kind, line=0, column=0, path=None):
        super().__init__(text)
        self.text, self.kind, self.line, self.column, self.path = text, kind, line, column, path

    def display(self):
        if self.line == 0:
            return self.text
        return "%s at line %d column %d" % (self.text, self.line, self.column)


_WHITESPACE = b" \n\t\r"
_DIGITS = b"0123456789"
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
_POW10 = [float("1e%d" % i) for i in range(309)]


class _Serde:
    def __init__(self, data):
        self.data = data
        self.index = 0
        self.path = []

    # Positions and errors (read.rs `position_of_index`, de.rs `error`/`peek_error`).
    def _position(self, i):
        start = self.data.rfind(b"\n", 0, i) + 1
        return 1 + self.data.count(b"\n", 0, start), i - start

    def error(self, text, kind=_SYNTAX):
        line, column = self._position(self.index)
        return _Error(text, kind, line, column)

    def peek_error(self, text, kind=_SYNTAX):
        line, column = self._position(min(len(self.data), self.index + 1))
        return _Error(text, kind, line, column)

    def fix(self, error):
        if error.line == 0:
            error.line, error.column = self._position(self.index)
        return error

    def data_error(self, text):
        """An error a visitor raises: positioned later, by the deserializer it passes through."""
        return _Error(text, _DATA, path=list(self.path))

    def peek(self):
        i = self.index
        return self.data[i] if i < len(self.data) else None

    def next(self):
        i = self.index
        if i < len(self.data):
            self.index = i + 1
            return self.data[i]
        return None

    def whitespace(self):
        data, i = self.data, self.index
        while i < len(data) and data[i] in _WHITESPACE:
            i += 1
        self.index = i
        return data[i] if i < len(data) else None

    # The entry point: `from_slice` then the SDK's `explain`.
    def parse(self, shape):
        try:
            value = self.value(shape)
            if self.whitespace() is not None:
                raise self.peek_error("trailing characters")
            return value
        except _Error as error:
            if error.kind == _SYNTAX:
                raise ParseError("data is not valid JSON: " + error.display()) from None
            if error.path:
                raise ParseError(_path(error.path) + ": " + error.display()) from None
            raise ParseError("data: " + error.display()) from None

    def value(self, shape):
        kind = type(shape)
        if kind is _Str:
            return self.string(shape)
        if kind is _I64:
            return self.i64(shape)
        if kind is Seq:
            return self.seq(shape)
        return self.struct(shape)

    # deserialize_str with serde's string visitor.
    def string(self, shape):
        peek = self.whitespace()
        if peek is None:
            raise self.peek_error("EOF while parsing a value")
        if peek == 0x22:
            self.index += 1
            return self.parse_str()
        raise self.fix(self.invalid_type(shape))

    # deserialize_i64: deserialize_number with serde's i64 visitor.
    def i64(self, shape):
        peek = self.whitespace()
        if peek is None:
            raise self.peek_error("EOF while parsing a value")
        if peek == 0x2D:
            self.index += 1
            number = self.parse_integer(False)
        elif peek in _DIGITS:
            number = self.parse_integer(True)
        else:
            raise self.fix(self.invalid_type(shape))
        if type(number) is float:
            error = self.data_error("invalid type: floating point `%s`, expected i64" % _float(number))
            raise self.fix(error)
        if number > I64_MAX:
            raise self.fix(self.data_error("invalid value: integer `%d`, expected i64" % number))
        return number

    # deserialize_seq with serde's Vec visitor.
    def seq(self, shape):
        peek = self.whitespace()
        if peek is None:
            raise self.peek_error("EOF while parsing a value")
        if peek != 0x5B:
            raise self.fix(self.invalid_type(shape))
        self.index += 1
        out, error = [], None
        try:
            first = True
            while self.has_next_element(first):
                first = False
                self.path.append(len(out))
                try:
                    out.append(self.value(shape.element))
                finally:
                    self.path.pop()
        except _Error as raised:
            error = raised
        end = self.end_seq()
        if error is not None:
            raise self.fix(error)
        if end is not None:
            raise end
        return out

    # deserialize_struct with serde derive's visitor (visit_map for `{`, visit_seq for `[`).
    def struct(self, shape):
        peek = self.whitespace()
        if peek is None:
            raise self.peek_error("EOF while parsing a value")
        if peek == 0x7B:
            self.index += 1
            visit, end = self.visit_map, self.end_map
        elif peek == 0x5B:
            self.index += 1
            visit, end = self.visit_seq, self.end_seq
        else:
            raise self.fix(self.invalid_type(shape))
        try:
            value = visit(shape)
        except _Error as error:
            end()
            raise self.fix(error) from None
        error = end()
        if error is not None:
            raise error
        return value

    def visit_map(self, shape):
        values = [_NO] * len(shape.fields)
        first = True
        while self.has_next_key(first):
            first = False
            self.index += 1
            key = self.parse_str()
            i = shape.index.get(key)
            if i is not None and values[i] is not _NO:
                raise self.data_error("duplicate field `%s`" % key)
            self.object_colon()
            self.path.append(key)
            try:
                if i is None:
                    self.ignore_value()
                else:
                    values[i] = self.value(shape.fields[i][1])
            finally:
                self.path.pop()
        for name, value in zip(shape.names, values):
            if value is _NO:
                raise self.data_error("missing field `%s`" % name)
        return tuple(values)

    def visit_seq(self, shape):
        values = []
        first = True
        for _, field in shape.fields:
            if not self.has_next_element(first):
                raise self.data_error(
                    "invalid length %d, expected struct %s with %d elements"
                    % (len(values), shape.name, len(shape.fields))
                )
            first = False
            self.path.append(len(values))
            try:
                values.append(self.value(field))
            finally:
                self.path.pop()
        return tuple(values)

    # SeqAccess / MapAccess and the ends of both.
    def has_next_element(self, first):
        peek = self.whitespace()
        if peek is None:
            raise self.peek_error("EOF while parsing a list")
        if peek == 0x5D:
            return False
        if first:
            return True
        if peek == 0x2C:
            self.index += 1
            peek = self.whitespace()
            if peek == 0x5D:
                raise self.peek_error("trailing comma")
            if peek is None:
                raise self.peek_error("EOF while parsing a value")
            return True
        raise self.peek_error("expected `,` or `]`")

    def has_next_key(self, first):
        peek = self.whitespace()
        if peek is None:
            raise self.peek_error("EOF while parsing an object")
        if peek == 0x7D:
            return False
        if first:
            if peek == 0x22:
                return True
            raise self.peek_error("key must be a string")
        if peek == 0x2C:
            self.index += 1
            peek = self.whitespace()
            if peek == 0x22:
                return True
            if peek == 0x7D:
                raise self.peek_error("trailing comma")
            if peek is None:
                raise self.peek_error("EOF while parsing a value")
            raise self.peek_error("key must be a string")
        raise self.peek_error("expected `,` or `}`")

    def object_colon(self):
        peek = self.whitespace()
        if peek == 0x3A:
            self.index += 1
        elif peek is None:
            raise self.peek_error("EOF while parsing an object")
        else:
            raise self.peek_error("expected `:`")

    def end_seq(self):
        """Returns (not raises) the error, as serde_json prefers the visitor's own."""
        peek = self.whitespace()
        if peek == 0x5D:
            self.index += 1
            return None
        if peek == 0x2C:
            self.index += 1
            if self.whitespace() == 0x5D:
                return self.peek_error("trailing comma")
            return self.peek_error("trailing characters")
        if peek is None:
            return self.peek_error("EOF while parsing a list")
        return self.peek_error("trailing characters")

    def end_map(self):
        peek = self.whitespace()
        if peek == 0x7D:
            self.index += 1
            return None
        if peek == 0x2C:
            return self.peek_error("trailing comma")
        if peek is None:
            return self.peek_error("EOF while parsing an object")
        return self.peek_error("trailing characters")

    # peek_invalid_type: what serde says it found instead.
    def invalid_type(self, shape):
        peek = self.peek()
        if peek == 0x6E:
            self.index += 1
            self.ident(b"ull")
            found = "null"
        elif peek == 0x74:
            self.index += 1
            self.ident(b"rue")
            found = "boolean `true`"
        elif peek == 0x66:
            self.index += 1
            self.ident(b"alse")
            found = "boolean `false`"
        elif peek == 0x2D or (peek is not None and peek in _DIGITS):
            if peek == 0x2D:
                self.index += 1
            number = self.parse_integer(peek != 0x2D)
            if type(number) is float:
                found = "floating point `%s`" % _float(number)
            else:
                found = "integer `%d`" % number
        elif peek == 0x22:
            self.index += 1
            found = "string " + _rust_debug(self.parse_str())
        elif peek == 0x5B:
            found = "sequence"
        elif peek == 0x7B:
            found = "map"
        else:
            return self.peek_error("expected value")
        return self.data_error("invalid type: %s, expected %s" % (found, shape.expecting))

    def ident(self, rest):
        for expected in rest:
            byte = self.next()
            if byte is None:
                raise self.error("EOF while parsing a value")
            if byte != expected:
                raise self.error("expected ident")

    # Numbers: an int (u64 or negative i64) or a float, exactly as serde_json computes them.
    def parse_integer(self, positive):
        byte = self.next()
        if byte is None:
            raise self.error("EOF while parsing a value")
        if byte == 0x30:
            peek = self.peek()
            if peek is not None and peek in _DIGITS:
                raise self.peek_error("invalid number")
            return self.parse_number(positive, 0)
        if byte in b"123456789":
            significand = byte - 0x30
            while True:
                peek = self.peek()
                if peek is None or peek not in _DIGITS:
                    return self.parse_number(positive, significand)
                digit = peek - 0x30
                if _overflow(significand, digit, U64_MAX):
                    return self.parse_long_integer(positive, significand)
                self.index += 1
                significand = significand * 10 + digit
        raise self.error("invalid number")

    def parse_number(self, positive, significand):
        peek = self.peek()
        if peek == 0x2E:
            return self.parse_decimal(positive, significand, 0)
        if peek in (0x65, 0x45):
            return self.parse_exponent(positive, significand, 0)
        if positive:
            return significand
        if significand == 0 or significand > 1 << 63:
            return -float(significand)
        return -significand

    def parse_long_integer(self, positive, significand):
        exponent = 0
        while True:
            peek = self.peek()
            if peek is not None and peek in _DIGITS:
                self.index += 1
                exponent += 1
            elif peek == 0x2E:
                return self.parse_decimal(positive, significand, exponent)
            elif peek in (0x65, 0x45):
                return self.parse_exponent(positive, significand, exponent)
            else:
                return self.f64_from_parts(positive, significand, exponent)

    def parse_decimal(self, positive, significand, exponent_before):
        self.index += 1
        after = 0
        while True:
            peek = self.peek()
            if peek is None or peek not in _DIGITS:
                break
            digit = peek - 0x30
            if _overflow(significand, digit, U64_MAX):
                while self.peek() is not None and self.peek() in _DIGITS:
                    self.index += 1
                if self.peek() in (0x65, 0x45):
                    return self.parse_exponent(positive, significand, exponent_before + after)
                return self.f64_from_parts(positive, significand, exponent_before + after)
            self.index += 1
            significand = significand * 10 + digit
            after -= 1
        if after == 0:
            if self.peek() is not None:
                raise self.peek_error("invalid number")
            raise self.peek_error("EOF while parsing a value")
        if self.peek() in (0x65, 0x45):
            return self.parse_exponent(positive, significand, exponent_before + after)
        return self.f64_from_parts(positive, significand, exponent_before + after)

    def parse_exponent(self, positive, significand, starting):
        self.index += 1
        positive_exp = True
        peek = self.peek()
        if peek == 0x2B:
            self.index += 1
        elif peek == 0x2D:
            self.index += 1
            positive_exp = False
        byte = self.next()
        if byte is None:
            raise self.error("EOF while parsing a value")
        if byte not in _DIGITS:
            raise self.error("invalid number")
        exp = byte - 0x30
        while True:
            peek = self.peek()
            if peek is None or peek not in _DIGITS:
                break
            self.index += 1
            digit = peek - 0x30
            if _overflow(exp, digit, (1 << 31) - 1):
                if significand != 0 and positive_exp:
                    raise self.error("number out of range")
                while self.peek() is not None and self.peek() in _DIGITS:
                    self.index += 1
                return 0.0 if positive else -0.0
            exp = exp * 10 + digit
        final = starting + exp if positive_exp else starting - exp
        final = max(-(1 << 31), min((1 << 31) - 1, final))  # i32 saturating
        return self.f64_from_parts(positive, significand, final)

    def f64_from_parts(self, positive, significand, exponent):
        f = float(significand)
        while True:
            if abs(exponent) < len(_POW10):
                if exponent >= 0:
                    f *= _POW10[exponent]
                    if f == float("inf"):
                        raise self.error("number out of range")
                else:
                    f /= _POW10[-exponent]
                break
            if f == 0.0:
                break
            if exponent >= 0:
                raise self.error("number out of range")
            f /= 1e308
            exponent += 308
        return f if positive else -f

    # Strings (read.rs `parse_str_bytes`, `parse_escape`, `parse_unicode_escape`, `as_str`).
    def parse_str(self):
        data, start, parts = self.data, self.index, []
        while True:
            i = start
            while i < len(data) and data[i] != 0x22 and data[i] != 0x5C and data[i] >= 0x20:
                i += 1
            self.index = i
            if i == len(data):
                raise self.error("EOF while parsing a string")
            byte = data[i]
            if byte == 0x22:
                parts.append(data[start:i])
                self.index = i + 1
                raw = b"".join(parts)
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError as bad:
                    line, column = self._position(self.index)
                    column = max(0, column - (len(raw) - bad.start))
                    raise _Error("invalid unicode code point", _SYNTAX, line, column) from None
            if byte == 0x5C:
                parts.append(data[start:i])
                self.index = i + 1
                parts.append(self.parse_escape())
                start = self.index
                continue
            self.index = i + 1
            raise self.error("control character (\\u0000-\\u001F) found while parsing a string")

    def next_or_eof(self):
        byte = self.next()
        if byte is None:
            raise self.error("EOF while parsing a string")
        return byte

    def parse_escape(self):
        byte = self.next_or_eof()
        simple = _ESCAPES.get(byte)
        if simple is not None:
            return simple
        if byte != 0x75:
            raise self.error("invalid escape")
        n = self.hex_escape()
        if 0xDC00 <= n <= 0xDFFF:
            raise self.error("lone leading surrogate in hex escape")
        if not 0xD800 <= n <= 0xDBFF:
            return chr(n).encode("utf-8")
        if self.peek() is None:
            raise self.error("EOF while parsing a string")
        if self.peek() != 0x5C:
            self.index += 1
            raise self.error("unexpected end of hex escape")
        self.index += 1
        if self.peek() is None:
            raise self.error("EOF while parsing a string")
        if self.peek() != 0x75:
            self.index += 1
            raise self.error("unexpected end of hex escape")
        self.index += 1
        n2 = self.hex_escape()
        if not 0xDC00 <= n2 <= 0xDFFF:
            raise self.error("lone leading surrogate in hex escape")
        return chr((((n - 0xD800) << 10) | (n2 - 0xDC00)) + 0x10000).encode("utf-8")

    def hex_escape(self):
        data, i = self.data, self.index
        if i + 4 > len(data):
            self.index = len(data)
            raise self.error("EOF while parsing a string")
        self.index = i + 4
        n = 0
        for byte in data[i : i + 4]:
            digit = _HEX.get(byte)
            if digit is None:
                raise self.error("invalid escape")
            n = n * 16 + digit
        return n

    # Skipping an unknown field's value (de.rs `ignore_value` and friends, read.rs `ignore_str`).
    def ignore_value(self):
        stack = []
        enclosing = None
        while True:
            peek = self.whitespace()
            if peek is None:
                raise self.peek_error("EOF while parsing a value")
            frame = None
            if peek == 0x6E:
                self.index += 1
                self.ident(b"ull")
            elif peek == 0x74:
                self.index += 1
                self.ident(b"rue")
            elif peek == 0x66:
                self.index += 1
                self.ident(b"alse")
            elif peek == 0x2D:
                self.index += 1
                self.ignore_integer()
            elif peek in _DIGITS:
                self.ignore_integer()
            elif peek == 0x22:
                self.index += 1
                self.ignore_str()
            elif peek in (0x5B, 0x7B):
                if enclosing is not None:
                    stack.append(enclosing)
                    enclosing = None
                self.index += 1
                frame = peek
            else:
                raise self.peek_error("expected value")
            if frame is not None:
                accept_comma = False
            elif enclosing is not None:
                accept_comma, frame, enclosing = True, enclosing, None
            elif stack:
                accept_comma, frame = True, stack.pop()
            else:
                return
            while True:
                peek = self.whitespace()
                if peek == 0x2C and accept_comma:
                    self.index += 1
                    break
                if (peek == 0x5D and frame == 0x5B) or (peek == 0x7D and frame == 0x7B):
                    pass
                elif peek is not None:
                    if accept_comma:
                        raise self.peek_error(
                            "expected `,` or `]`" if frame == 0x5B else "expected `,` or `}`"
                        )
                    break
                else:
                    raise self.peek_error(
                        "EOF while parsing a list" if frame == 0x5B else "EOF while parsing an object"
                    )
                self.index += 1
                if not stack:
                    return
                frame = stack.pop()
                accept_comma = True
            if frame == 0x7B:
                peek = self.whitespace()
                if peek == 0x22:
                    self.index += 1
                elif peek is None:
                    raise self.peek_error("EOF while parsing an object")
                else:
                    raise self.peek_error("key must be a string")
                self.ignore_str()
                peek = self.whitespace()
                if peek == 0x3A:
                    self.index += 1
                elif peek is None:
                    raise self.peek_error("EOF while parsing an object")
                else:
                    raise self.peek_error("expected `:`")
            enclosing = frame

    def ignore_integer(self):
        byte = self.next()
        if byte == 0x30:
            peek = self.peek()
            if peek is not None and peek in _DIGITS:
                raise self.peek_error("invalid number")
        elif byte is not None and byte in b"123456789":
            while self.peek() is not None and self.peek() in _DIGITS:
                self.index += 1
        else:
            raise self.error("invalid number")
        peek = self.peek()
        if peek == 0x2E:
            self.ignore_decimal()
        elif peek in (0x65, 0x45):
            self.ignore_exponent()

    def ignore_decimal(self):
        self.index += 1
        digits = False
        while self.peek() is not None and self.peek() in _DIGITS:
            self.index += 1
            digits = True
        if not digits:
            raise self.peek_error("invalid number")
        if self.peek() in (0x65, 0x45):
            self.ignore_exponent()

    def ignore_exponent(self):
        self.index += 1
        if self.peek() in (0x2B, 0x2D):
            self.index += 1
        byte = self.next()
        if byte is None or byte not in _DIGITS:
            raise self.error("invalid number")
        while self.peek() is not None and self.peek() in _DIGITS:
            self.index += 1

    def ignore_str(self):
        data = self.data
        while True:
            i = self.index
            while i < len(data) and data[i] != 0x22 and data[i] != 0x5C and data[i] >= 0x20:
                i += 1
            self.index = i
            if i == len(data):
                raise self.error("EOF while parsing a string")
            byte = data[i]
            if byte == 0x22:
                self.index = i + 1
                return
            if byte == 0x5C:
                self.index = i + 1
                byte = self.next_or_eof()
                if byte == 0x75:
                    self.hex_escape()
                elif byte not in _ESCAPES:
                    raise self.error("invalid escape")
                continue
            raise self.error("control character (\\u0000-\\u001F) found while parsing a string")


_ESCAPES = {
    0x22: b'"',
    0x5C: b"\\",
    0x2F: b"/",
    0x62: b"\x08",
    0x66: b"\x0c",
    0x6E: b"\n",
    0x72: b"\r",
    0x74: b"\t",
}


def _overflow(a, b, c):
    return a > c // 10 or (a == c // 10 and b > c % 10)


def _path(segments):
    """serde_path_to_error's display: `items[0].quantity`."""
    out = ""
    for i, segment in enumerate(segments):
        if type(segment) is int:
            out += "[%d]" % segment
        else:
            out += ("." if i else "") + segment
    return out


def _float(f):
    """A float as serde_json 1.0.154 prints it (the zmij crate): shortest round-trip digits,
    plain notation for decimal exponents -5..=15 (`1.0`, `0.00001`), else `1e+16`, `1.5e-7`."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "inf" if f > 0 else "-inf"
    sign = "-" if str(f).startswith("-") else ""
    if f == 0:
        return sign + "0.0"
    mantissa, _, exp = repr(abs(f)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = int(exp or 0) + len(whole) - 1
    if whole == "0":  # e.g. 0.00123: digits start after the leading zeros of the fraction
        exponent = -(len(fraction) - len(fraction.lstrip("0"))) - 1
    digits = digits.rstrip("0") or "0"
    if -5 <= exponent <= 15:
        if exponent >= len(digits) - 1:
            return sign + digits + "0" * (exponent - len(digits) + 1) + ".0"
        if exponent >= 0:
            return sign + digits[: exponent + 1] + "." + digits[exponent + 1 :]
        return sign + "0." + "0" * (-exponent - 1) + digits
    text = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return "%s%se%s%d" % (sign, text, "+" if exponent >= 0 else "-", abs(exponent))


def _rust_debug(text):
    """A str as Rust's `{:?}` prints it. Close, not exact: Rust's printable and grapheme-extend
    tables are approximated by Unicode categories (Mn/Me for grapheme extenders)."""
    import unicodedata

    out = ['"']
    for ch in text:
        if ch in _DEBUG_ESCAPES:
            out.append(_DEBUG_ESCAPES[ch])
            continue
        category = unicodedata.category(ch)
        if (
            (category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or (category == "Zs" and ch != " "))
            or category in ("Mn", "Me")
        ):
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_DEBUG_ESCAPES = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"'}
