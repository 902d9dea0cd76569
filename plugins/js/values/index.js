// The `values` test projection in JavaScript: the twin of plugins/values (read that for what each
// table pins). It records what crossed the boundary for every event and, on a `RoundTrip` event,
// binds the edge values through `sql` and records whether each came back the same. A `Bug` event
// throws an uncaught exception, as a bug would.
//
// Where this engine cannot pass a value (QuickJS: an s64 beyond ±2^53, which the helpers refuse
// with `Other`), the refusal is recorded in `round_trips.refused` instead of the round trip, so the
// difference shows in the tables (plugins/values/expected-quickjs).

import { plugin, Other } from "../projector/index.js";

const SCHEMA = [
  "CREATE TABLE received (position INTEGER PRIMARY KEY, event_type TEXT NOT NULL, " +
    "content_type TEXT NOT NULL, stream_revision INTEGER NOT NULL, created_unix_ms INTEGER NOT NULL, " +
    "data_length INTEGER NOT NULL, data BLOB NOT NULL, data_utf8 INTEGER NOT NULL, " +
    "json_kind TEXT NOT NULL, metadata_length INTEGER NOT NULL, metadata BLOB NOT NULL)",
  "CREATE TABLE edges (name TEXT PRIMARY KEY, value)",
  "CREATE TABLE round_trips (name TEXT PRIMARY KEY, echoed_type TEXT NOT NULL, " +
    "echoed_same INTEGER NOT NULL, stored_type TEXT NOT NULL, stored_same INTEGER NOT NULL, " +
    "refused TEXT)",
];

const RECEIVE = "INSERT INTO received VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const ECHO = "SELECT ?1, typeof(?1)";
const STORE =
  "INSERT INTO edges (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2";
const READ_BACK = "SELECT value, typeof(value) FROM edges WHERE name = ?1";
const RECORD = "INSERT OR REPLACE INTO round_trips VALUES (?1, ?2, ?3, ?4, ?5, NULL)";
const REFUSED = "INSERT OR REPLACE INTO round_trips VALUES (?1, 'refused', 0, 'refused', 0, ?2)";

// The same names and values as the Rust build's `edges()`, in the same order. Integers beyond
// ±2^53 are BigInt: a Number cannot hold them.
const TWO_53 = 2 ** 53;
const EDGES = [
  ["null", null],
  ["int_zero", 0],
  ["int_2p53", TWO_53],
  ["int_neg_2p53", -TWO_53],
  ["int_2p53_plus_1", 2n ** 53n + 1n],
  ["int_neg_2p53_minus_1", -(2n ** 53n) - 1n],
  ["int_min", -(2n ** 63n)],
  ["int_max", 2n ** 63n - 1n],
  ["real_half", 0.5],
  ["real_neg_zero", -0],
  ["real_nan", NaN],
  ["real_inf", Infinity],
  ["real_neg_inf", -Infinity],
  ["real_1e308", 1e308],
  ["text_empty", ""],
  ["text_non_ascii", "héllo – 日本 😀"],
  ["text_nul", "a\0b"],
  ["blob_empty", new Uint8Array([])],
  ["blob_bytes", new Uint8Array([0x00, 0xff, 0x80, 0x01])],
];

function manifest() {
  return {
    name: "values",
    version: "1.0.0",
    description: "What crosses the plugin boundary, for the value-model tests",
    eventTypes: [],
    streamPrefixes: [],
    schema: SCHEMA,
  };
}

function handleBatch(sql, events) {
  for (const event of events) {
    const text = decodeUtf8(event.data);
    sql.execute(
      RECEIVE,
      event.position,
      event.eventType,
      event.contentType,
      event.streamRevision,
      event.createdUnixMs,
      event.data.length,
      event.data,
      text === null ? 0 : 1,
      jsonKind(text),
      event.metadata.length,
      event.metadata,
    );
    if (event.eventType === "RoundTrip") roundTrip(sql);
    if (event.eventType === "Bug") throw new TypeError(`values was told to fail at position ${event.position}`);
  }
}

function roundTrip(sql) {
  for (const [name, value] of EDGES) {
    let echoed;
    try {
      echoed = firstRow(sql.query(ECHO, value));
    } catch (error) {
      if (!(error instanceof Other)) throw error;
      sql.execute(REFUSED, name, error.message);
      continue;
    }
    sql.execute(STORE, name, value);
    const stored = firstRow(sql.query(READ_BACK, name));
    sql.execute(RECORD, name, echoed[1], same(echoed[0], value) ? 1 : 0, stored[1], same(stored[0], value) ? 1 : 0);
  }
}

function firstRow(rows) {
  if (rows.length === 0 || rows[0].length !== 2) throw new Other("expected one row of two columns");
  return rows[0];
}

// Exact equality: numbers by Object.is (NaN is itself, -0 is not 0), BigInts by value, bytes by
// content.
function same(got, sent) {
  if (sent instanceof Uint8Array) {
    if (!(got instanceof Uint8Array) || got.length !== sent.length) return false;
    for (let i = 0; i < sent.length; i++) if (got[i] !== sent[i]) return false;
    return true;
  }
  if (typeof sent === "bigint" || typeof got === "bigint") {
    return typeof got !== "object" && typeof sent !== "object" && BigInt(got) === BigInt(sent);
  }
  return Object.is(got, sent);
}

// The bytes as a string when they are valid UTF-8 (what Rust's from_utf8 accepts), else null.
// QuickJS has no TextDecoder.
function decodeUtf8(bytes) {
  const codePoints = [];
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    const [n, min] = b < 0x80 ? [0, 0] : b >= 0xc2 && b < 0xe0 ? [1, 0x80] : b >= 0xe0 && b < 0xf0 ? [2, 0x800] : b >= 0xf0 && b < 0xf5 ? [3, 0x10000] : [-1, 0];
    if (n < 0) return null;
    let cp = n === 0 ? b : b & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return null;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return null;
    codePoints.push(cp);
    i += n + 1;
  }
  let text = "";
  for (let i = 0; i < codePoints.length; i += 4096) {
    text += String.fromCodePoint.apply(null, codePoints.slice(i, i + 4096));
  }
  return text;
}

// The kind of JSON value the text holds, or `invalid` (JSON.parse, which refuses what serde_json
// refuses for the bodies in the fixture; it reads 1e400 as Infinity where serde refuses it).
function jsonKind(text) {
  if (text === null) return "invalid";
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return "invalid";
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  switch (typeof value) {
    case "object":
      return "object";
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    default:
      return Number.isFinite(value) ? "number" : "invalid";
  }
}

export const { describe, handle } = plugin(manifest, handleBatch);
