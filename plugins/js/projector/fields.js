// Reading an event's JSON data field by field, by the same rules and with the same messages as
// the Rust SDK's `projector_sdk::fields` and the Python `projector.fields`, so a projection
// refuses the same events with the same dead-letter messages in every language.
//
//     import { parse, DataError } from "../projector/fields.js";
//     const order = parse(event.data);          // throws DataError
//     const orderId = order.text("orderId");
//     for (const item of order.objects("items")) item.integer("quantity");
//
// or, for a layout read on every event, a Shape, which checks it with code generated once
// (several times faster than a method call per field under QuickJS; same rules, same messages):
//
//     const ITEM = new Shape([["sku", TEXT], ["quantity", INTEGER]]);
//     const ORDER = new Shape([["orderId", TEXT], ["items", [ITEM]]]);
//     const order = ORDER.read(event.data); // [orderId, [[sku, quantity], ...]]
//
// The rules (docs/plugins.md, "Reading event data"):
// - data nesting deeper than 500 arrays and objects is refused before parsing:
//   "data nests deeper than 500 levels" (QuickJS's JSON.parse would exhaust the wasm stack);
// - data must be UTF-8 JSON text (no lone surrogates), else "data is not valid JSON"; a number
//   too large for a double is valid, and out of range when read as an integer;
// - the document must be an object: "data: expected an object, got an array";
// - a key given twice means its last value;
// - integers are numbers without fraction within ±(2^53 - 1) (`2.0` and `1e2` are integers),
//   which a JS number holds exactly;
// - a field's problem names its path: "items[1].quantity: expected an integer, got text",
//   "orderId: missing".
//
// The engine's JSON.parse does the parsing. What makes it agree with the other languages'
// parsers costs one regular-expression scan of an ordinary event (QuickJS interprets; every
// scan of the text costs about as much as JSON.parse itself): text shorter than 500 bytes
// cannot nest 500 deep, and only bytes beyond ASCII (decoded as UTF-8) or a `\u` escape (half
// a surrogate pair?) need a second look. Plain loops, no destructuring.

export const MAX_DEPTH = 500;
export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // 2^53 - 1

// Data that does not follow the rules; `message` says how.
export class DataError extends Error {}

const HAS_OWN = Object.prototype.hasOwnProperty;
const UNUSUAL = /[\x80-\xff]|\\u/;
const NON_ASCII = /[\x80-\xff]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// The fields of `data`'s (a Uint8Array) top-level object; throws DataError when it is not one.
export function parse(data) {
  return new Fields(documentOf(data), null, "", 0);
}

// `data`'s top-level object.
function documentOf(data) {
  let text = latin1(data);
  if (text.length > MAX_DEPTH && nestsDeeperThan(text, MAX_DEPTH)) {
    throw new DataError(`data nests deeper than ${MAX_DEPTH} levels`);
  }
  let escapes = false;
  if (UNUSUAL.test(text)) {
    escapes = text.indexOf("\\u") >= 0;
    // Raw UTF-8 cannot hold half a surrogate pair: utf8 refuses one.
    if (NON_ASCII.test(text)) text = utf8(text);
    if (text === null) throw new DataError("data is not valid JSON");
  }
  let document;
  try {
    document = JSON.parse(text);
  } catch (_) {
    throw new DataError("data is not valid JSON");
  }
  if (escapes && !whole(document)) throw new DataError("data is not valid JSON");
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    throw new DataError(`data: expected an object, got ${kind(document)}`);
  }
  return document;
}

export const TEXT = "text";
export const INTEGER = "integer";

// A layout of fields read in one go: `fields` is an array of [key, TEXT | INTEGER | [Shape]]
// read in that order; `read` returns their values as an array (an array of arrays for
// [Shape]), or throws the DataError that reading them one by one with Fields would.
export class Shape {
  constructor(fields) {
    this.fields = fields;
    this.check = compile(fields);
  }

  read(data) {
    const document = documentOf(data);
    const values = this.check(document);
    // Something is off (or merely unusual, like 2.0 for an integer): read it field by field,
    // which says what, or gives the values.
    return values !== null ? values : this.readFields(new Fields(document, null, "", 0));
  }

  readFields(fields) {
    const values = new Array(this.fields.length);
    for (let i = 0; i < this.fields.length; i++) {
      const key = this.fields[i][0];
      const kind = this.fields[i][1];
      if (kind === TEXT) values[i] = fields.text(key);
      else if (kind === INTEGER) values[i] = fields.integer(key);
      else {
        const items = fields.objects(key);
        for (let j = 0; j < items.length; j++) items[j] = kind[0].readFields(items[j]);
        values[i] = items;
      }
    }
    return values;
  }
}

// A function of an object giving the array of its values in `layout`, or null when any is not
// plainly what it should be. Straight-line code with nested layouts inlined, generated once (and
// snapshotted with the engine at build time): QuickJS interprets, and a loop over the layout or
// a call per nested object costs several times more.
function compile(layout) {
  const lines = [];
  let count = 0;
  const emit = (layout, source, indent) => {
    const values = [];
    for (let i = 0; i < layout.length; i++) {
      const n = count++;
      let v = `v${n}`;
      const kind = layout[i][1];
      lines.push(`${indent}const ${v} = ${source}[${JSON.stringify(layout[i][0])}];`);
      if (kind === TEXT) {
        lines.push(`${indent}if (typeof ${v} !== "string") return null;`);
      } else if (kind === INTEGER) {
        lines.push(`${indent}if (typeof ${v} !== "number" || ${v} % 1 !== 0 || ${v} > M || ${v} < -M) return null;`);
        v = `${v} + 0`; // -0 is 0
      } else {
        const e = `e${n}`;
        const out = `l${n}`;
        lines.push(
          `${indent}if (!Array.isArray(${v})) return null;`,
          `${indent}const ${out} = new Array(${v}.length);`,
          `${indent}for (let j${n} = 0; j${n} < ${v}.length; j${n}++) {`,
          `${indent}  const ${e} = ${v}[j${n}];`,
          `${indent}  if (${e} === null || typeof ${e} !== "object" || Array.isArray(${e})) return null;`,
        );
        const inner = emit(kind[0].fields, e, indent + "  ");
        lines.push(`${indent}  ${out}[j${n}] = ${inner};`, `${indent}}`);
        v = out;
      }
      values.push(v);
    }
    return `[${values.join(", ")}]`;
  };
  const result = emit(layout, "d", "");
  const body = `return function (d) {\n${lines.join("\n")}\nreturn ${result};\n};`;
  return new Function("M", body)(MAX_SAFE_INTEGER);
}

// Whether no string or key of a parsed document holds half a surrogate pair (which the other
// languages' parsers refuse, since UTF-8 cannot hold one).
function whole(value) {
  if (typeof value === "string") return !LONE_SURROGATE.test(value);
  if (value === null || typeof value !== "object") return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!whole(value[i])) return false;
    return true;
  }
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    if (LONE_SURROGATE.test(keys[i]) || !whole(value[keys[i]])) return false;
  }
  return true;
}

// The fields of one object of a document, and where it sits in it (for messages: the path is
// only spelled out when something is wrong, so reading costs no string building).
export class Fields {
  constructor(object, parent, key, index) {
    this.object = object;
    this.parent = parent; // the Fields holding the array this object is in, or null at the top
    this.key = key; // the array's key in the parent
    this.index = index; // this object's index in the array
  }

  // The text field `key`.
  text(key) {
    const value = this.object[key];
    if (typeof value === "string") return value;
    throw new DataError(this.expected(key, "text"));
  }

  // The integer field `key` (a number without fraction within ±(2^53 - 1)).
  integer(key) {
    const value = this.object[key];
    if (typeof value === "number" && value % 1 === 0 && value <= MAX_SAFE_INTEGER && value >= -MAX_SAFE_INTEGER) {
      return value + 0; // -0 is 0
    }
    if (typeof value !== "number") throw new DataError(this.expected(key, "an integer"));
    if (Number.isFinite(value) && value % 1 !== 0) {
      throw new DataError(`${this.at(key)}: expected an integer, got a fraction`);
    }
    throw new DataError(`${this.at(key)}: integer beyond ±(2^53 - 1)`);
  }

  // The field `key`, an array of objects, as an array of Fields.
  objects(key) {
    const value = this.object[key];
    if (!Array.isArray(value)) throw new DataError(this.expected(key, "an array"));
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const element = value[i];
      if (element === null || typeof element !== "object" || Array.isArray(element)) {
        throw new DataError(`${this.at(key)}[${i}]: expected an object, got ${kind(element)}`);
      }
      out[i] = new Fields(element, this, key, i);
    }
    return out;
  }

  // The message for field `key` when it is missing or not `wanted`. JSON.parse makes plain
  // objects, so a key the object lacks may still answer from Object.prototype (`constructor`).
  expected(key, wanted) {
    const own = HAS_OWN.call(this.object, key);
    if (!own) return `${this.at(key)}: missing`;
    return `${this.at(key)}: expected ${wanted}, got ${kind(this.object[key])}`;
  }

  at(key) {
    if (this.parent === null) return key;
    return `${this.parent.at(this.key)}[${this.index}].${key}`;
  }
}

// How messages name a JSON value's kind.
export function kind(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return "a boolean";
    case "number":
      return "a number";
    case "string":
      return "text";
    default:
      return Array.isArray(value) ? "an array" : "an object";
  }
}

// Whether `text` (one character per byte) opens more than `limit` arrays and objects at once,
// brackets inside strings aside: the same scan as the Rust and Python helpers, valid data or
// not. `parse` only calls it for text longer than the limit.
export function nestsDeeperThan(text, limit) {
  if (text.split("[").length + text.split("{").length - 2 <= limit) return false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > limit) return true;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return false;
}

// One character per byte (QuickJS has no TextDecoder).
export function latin1(bytes) {
  if (bytes.length <= 8192) return String.fromCharCode.apply(null, bytes);
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  }
  return text;
}

// The UTF-8 decoding of a string of bytes (see latin1), or null when they are not UTF-8.
export function utf8(text) {
  try {
    // escape() turns each byte above 0x7f into %XX; decodeURIComponent decodes UTF-8 and throws
    // on invalid sequences (overlongs and surrogates included).
    return decodeURIComponent(escape(text));
  } catch (_) {
    return null;
  }
}
