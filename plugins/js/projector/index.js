// The JavaScript guest helpers for Projector projection plugins (the JS twin of plugins/sdk and
// plugins/python/projector).
//
// A plugin's entry module writes `manifest()` and `handle(sql, events)` and exports them with
//
//     export const { describe, handle } = projector.plugin(manifest, handleBatch);
//
// Inside `handle`:
// - `sql.execute(statement, ...params)` / `sql.query(statement, ...params)` take plain values
//   (null, number, string, Uint8Array; integers within ±2^53 become `integer`, other numbers
//   (fractions, -0, NaN, ±Infinity, 1e308) `real`; BigInts `integer`) and give
//   rows of plain values back; a failed statement throws SqlFailed.
// - `throw new InvalidEvent(index, message)` refuses one event; `throw new Other(message)`
//   fails the batch.
// - `log.warn(...)` and friends write to the host's log.
// - `fields` (./fields.js) reads event data by the same rules, with the same messages, as the
//   Rust SDK's `projector_sdk::fields` and the Python helpers (`new Shape(...).read(data)`, or
//   `parse(data)` and a method per field).
//
// Events are what the component binding gives: { streamId, streamRevision, position, eventId,
// eventType, contentType, createdUnixMs, data: Uint8Array, metadata: Uint8Array }.
//
// s64 values: componentize-qjs (QuickJS) maps s64 to Number and traps on a BigInt, so integers
// must stay within ±2^53 to be exact; StarlingMonkey (componentize-js) maps s64 to BigInt. The
// helpers pick the representation from the first event's `position` and convert both ways.

import { execute as hostExecute, query as hostQuery } from "projector:plugin/sql@0.1.0";
import { write as hostLog } from "projector:plugin/log@0.1.0";

export * as fields from "./fields.js";

let bigints = false; // whether this engine maps s64 to BigInt

const NULL = { tag: "null" };

function toValue(value) {
  switch (typeof value) {
    case "string":
      return { tag: "text", val: value };
    case "number":
      // An integer only when it is one exactly: -0 and integers past ±2^53 (1e308, say) are
      // reals, which is what a Number holds (QuickJS traps on an s64 past i64's range).
      // Operators rather than Number.isInteger and Object.is: no calls, for the interpreter.
      if (value % 1 === 0 && value <= 2 ** 53 && value >= -(2 ** 53) && (value !== 0 || 1 / value > 0)) {
        return { tag: "integer", val: bigints ? BigInt(value) : value };
      }
      return { tag: "real", val: value };
    case "bigint":
      if (bigints) return { tag: "integer", val: value };
      if (value >= -(2n ** 53n) && value <= 2n ** 53n) return { tag: "integer", val: Number(value) };
      throw new Other(`the integer ${value} is beyond 2^53, which this engine cannot pass as an s64`);
    case "boolean":
      return { tag: "integer", val: bigints ? BigInt(value) : Number(value) };
    default:
      if (value === null || value === undefined) return NULL;
      if (value instanceof Uint8Array) return { tag: "blob", val: value };
      throw new TypeError(`cannot bind ${typeof value} to an SQL parameter`);
  }
}

// Converts `params` (the rest array of a call, not the caller's) in place. Plain loops: QuickJS
// interprets, and a closure call per value costs.
function toValues(params) {
  const n = params.length;
  for (let i = 0; i < n; i++) params[i] = toValue(params[i]);
  return params;
}

function fromValue(value) {
  const v = value.val;
  if (typeof v === "bigint") {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  return v === undefined ? null : v;
}

// A statement failed; `error` is the WIT sql-error ({ tag: "denied" | "invalid" |
// "constraint" | "other", val: message }).
export class SqlFailed extends Error {
  constructor(error) {
    super(`${error.tag}: ${error.val}`);
    this.error = error;
  }
}

// Refuses the event at `index` of the batch; the host may dead-letter it.
export class InvalidEvent extends Error {
  constructor(index, message) {
    super(message);
    this.index = index;
  }
}

// Fails the whole batch.
export class Other extends Error {}

function sqlError(error) {
  // componentize-qjs throws an Error whose `payload` is the err value; others throw the value.
  const payload = error && error.payload !== undefined ? error.payload : error;
  if (payload && typeof payload.tag === "string") return new SqlFailed(payload);
  return error;
}

// SQL over the projection's own tables, in the batch's transaction. Keep statement texts fixed
// and pass values as parameters (?1, ?2, …): the host prepares each text once.
export const sql = {
  execute(statement, ...params) {
    let changed;
    try {
      changed = hostExecute(statement, toValues(params));
    } catch (error) {
      throw sqlError(error);
    }
    return Number(changed);
  },

  query(statement, ...params) {
    let rows;
    try {
      rows = hostQuery(statement, toValues(params));
    } catch (error) {
      throw sqlError(error);
    }
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      for (let c = 0; c < row.length; c++) row[c] = fromValue(row[c]);
    }
    return rows;
  },
};

export const log = {
  debug: (message) => hostLog("debug", message),
  info: (message) => hostLog("info", message),
  warn: (message) => hostLog("warn", message),
  error: (message) => hostLog("error", message),
};

// The world's `describe` and `handle` exports: `describe` returns `manifest()`; `handle` runs
// `handleBatch(sql, events)` and turns the helpers' errors into the WIT error variant. Any other
// exception fails the batch as `other` with its text and the top of its stack, bounded (a Rust
// plugin would trap instead).
export function plugin(manifest, handleBatch) {
  return {
    describe: manifest,
    handle(events) {
      if (events.length > 0) bigints = typeof events[0].position === "bigint";
      try {
        handleBatch(sql, events);
      } catch (error) {
        if (error instanceof InvalidEvent) {
          throw { tag: "invalid-event", val: { index: error.index, message: error.message } };
        }
        if (error instanceof SqlFailed) throw { tag: "sql", val: error.error };
        if (error instanceof Other) throw { tag: "other", val: error.message };
        throw { tag: "other", val: bug(error) };
      }
    },
  };
}

const MAX_BUG_TEXT = 1000;
const MAX_STACK_LINES = 5;

function cut(text, limit) {
  return text.length <= limit ? text : `${text.slice(0, limit)} … [cut from ${text.length} characters]`;
}

// An uncaught exception as `Type: text` and the first lines of its stack (where it was thrown),
// each bounded: a 10 MB message or a stack thousands of frames deep must not reach the host whole.
function bug(error) {
  let text;
  try {
    text = cut(String(error), MAX_BUG_TEXT);
  } catch {
    text = "an exception that cannot be shown as text";
  }
  const stack = error !== null && typeof error === "object" && typeof error.stack === "string" ? error.stack : "";
  const frames = [];
  for (const line of stack.split("\n")) {
    if (frames.length === MAX_STACK_LINES) break;
    const frame = line.trim();
    // V8 repeats the message on the stack's first line; QuickJS and SpiderMonkey do not.
    if (frame !== "" && !text.startsWith(frame)) frames.push(cut(frame, 200));
  }
  return frames.length === 0 ? text : `${text}\n${frames.join("\n")}`;
}
