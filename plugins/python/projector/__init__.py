"""The Python guest helpers for Projector projection plugins (the Python twin of `plugins/sdk`).

A plugin module defines `manifest()` and `handle(sql, events)` and exports them with
`WitWorld = projector.export(manifest, handle)`; componentize-py looks for a class named
`WitWorld` in the app module. Inside `handle`:

- `sql.execute(statement, *params)` and `sql.query(statement, *params)` take plain Python values
  (None, int, float, str, bytes) and give them back in rows; a failed statement raises
  `SqlFailed`, which the export turns into the WIT `sql` error.
- `raise InvalidEvent(index, message)` refuses one event (the host dead-letters it);
  `raise Other(message)` fails the batch.
- `log.warn(...)` and friends write to the host's log.
- `projector.fields` reads event data by the same rules, with the same messages, as the Rust
  SDK's `projector_sdk::fields` and the JavaScript helpers (`fields.Shape(...).read(data)`, or
  `fields.parse(data)` and a method per field).

Events are the generated `wit_world.imports.types.Event` dataclass (`stream_id`,
`stream_revision`, `position`, `event_id`, `event_type`, `content_type`, `created_unix_ms`,
`data: bytes`, `metadata: bytes`).
"""

from componentize_py_types import Err
from wit_world.imports import log as _log
from wit_world.imports import sql as _sql
from wit_world.imports import types as _types

from . import fields  # noqa: F401  (re-exported: projector.fields)

Event = _types.Event
Manifest = _types.Manifest

_Null = _types.Value_Null
_Integer = _types.Value_Integer
_Real = _types.Value_Real
_Text = _types.Value_Text
_Blob = _types.Value_Blob
_NULL = _Null()
_sql_execute = _sql.execute
_sql_query = _sql.query


def _null(_):
    return _NULL


def _boolean(value):
    return _Integer(int(value))


def _blob(value):
    return _Blob(bytes(value))


# Python type -> the WIT value case that carries it; one dict lookup per parameter.
_VALUE = {
    str: _Text,
    int: _Integer,
    type(None): _null,
    float: _Real,
    bytes: _Blob,
    bytearray: _blob,
    bool: _boolean,
}


def _to_value(value):
    try:
        return _VALUE[type(value)](value)
    except KeyError:
        raise TypeError("cannot bind a %s to an SQL parameter" % type(value).__name__) from None


class SqlFailed(Exception):
    """A statement failed; `error` is the WIT `sql-error` (Denied, Invalid, Constraint, Other)."""

    def __init__(self, error):
        super().__init__("%s: %s" % (type(error).__name__, error.value))
        self.error = error


class InvalidEvent(Exception):
    """Refuses the event at `index` of the batch; the host may dead-letter it."""

    def __init__(self, index, message):
        super().__init__(message)
        self.index, self.message = index, message


class Other(Exception):
    """Fails the whole batch."""


class Sql:
    """SQL over the projection's own tables, in the batch's transaction. Keep statement texts
    fixed and pass values as parameters (`?1`, `?2`, …): the host prepares each text once."""

    __slots__ = ()

    def execute(self, statement, *params):
        """Runs a statement that returns no rows; returns the number of rows it changed."""
        try:
            return _sql_execute(statement, [_VALUE[type(p)](p) for p in params])
        except KeyError:
            [_to_value(p) for p in params]  # raises the TypeError naming the type
        except Err as err:
            raise SqlFailed(err.value) from None

    def query(self, statement, *params):
        """Runs a statement that returns rows; returns them as lists of Python values."""
        try:
            rows = _sql_query(statement, [_VALUE[type(p)](p) for p in params])
        except KeyError:
            [_to_value(p) for p in params]  # raises the TypeError naming the type
        except Err as err:
            raise SqlFailed(err.value) from None
        return [[getattr(v, "value", None) for v in row] for row in rows]


class log:
    """Lines for the host's log, tagged with the projection's name."""

    @staticmethod
    def debug(message):
        _log.write(_log.Level.DEBUG, message)

    @staticmethod
    def info(message):
        _log.write(_log.Level.INFO, message)

    @staticmethod
    def warn(message):
        _log.write(_log.Level.WARN, message)

    @staticmethod
    def error(message):
        _log.write(_log.Level.ERROR, message)


def export(manifest, handle):
    """The `WitWorld` class componentize-py exports: `describe` returns `manifest()`; `handle`
    runs `handle(Sql(), events)` and turns the helpers' exceptions into the WIT errors. Any other
    exception fails the batch as `other` with its type, text and the traceback's last line
    (file, line, function), bounded (a Rust plugin would trap)."""

    sql = Sql()

    class WitWorld:
        def describe(self):
            return manifest()

        def handle(self, events):
            try:
                handle(sql, events)
            except InvalidEvent as refused:
                raise Err(_types.Error_InvalidEvent(_types.InvalidEvent(refused.index, refused.message)))
            except SqlFailed as failed:
                raise Err(_types.Error_Sql(failed.error))
            except Other as other:
                raise Err(_types.Error_Other(str(other)))
            except Exception as error:  # a bug in the plugin
                raise Err(_types.Error_Other(_bug(error)))

    return WitWorld


_MAX_BUG_TEXT = 1000


def _bug(error):
    """`Type: text (at file, line N, in function)`: an uncaught exception with the last line of
    its traceback (where it was raised), bounded: a 10 MB message must not reach the host whole."""
    text = "%s: %s" % (type(error).__name__, error)
    if len(text) > _MAX_BUG_TEXT:
        text = "%s … [cut from %d characters]" % (text[:_MAX_BUG_TEXT], len(text))
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if frame is None:
        return text
    code = frame.tb_frame.f_code
    return "%s (at %s, line %d, in %s)" % (text, code.co_filename[-200:], frame.tb_lineno, code.co_name[:100])
