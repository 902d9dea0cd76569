// Parsing an event's JSON data into fixed shapes, with the same error messages as the Rust SDK.
//
// The JavaScript twin of plugins/python/projector/json.py (read that for the reasoning). The
// Rust SDK's `json::parse` is serde_json 1.0 into a `#[derive(Deserialize)]` struct, with
// serde_path_to_error naming the field; its messages end up in the dead-letter table. This
// module says exactly what serde says, positions included, for structs of strings, 64-bit
// integers, sequences and nested structs, with unknown fields ignored.
//
// - The fast path is the engine's native JSON.parse plus a type check of the fields, taken only
//   when it provably agrees with serde: the data is UTF-8 without backslash escapes, has no
//   number with a fraction or exponent anywhere (so `2.0` is not silently an integer), every
//   integer field is a safe integer (so it was exact) and not `-0`, and no object repeats a
//   declared key (checked by counting strings or keys in the raw text).
// - Anything else goes to the Serde class, a byte-by-byte port of serde_json's deserializer.
//
// Integers: a parsed i64 is a Number when it is a safe integer, else a BigInt (the slow path
// keeps them exact). Plugins decide what to do with a BigInt (QuickJS components cannot pass one
// as an s64 to the host).

const I64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

export const STR = { kind: "str", expecting: "a string" };
export const I64 = { kind: "i64", expecting: "i64" };

export function Seq(element) {
  return { kind: "seq", element, expecting: "a sequence" };
}

let structs = 0; // Struct ids: the fast path counts instances in counts[2 + id]

// A struct's fields in declaration order (it matters for serde's messages); `parse` returns an
// array of the field values in this order.
export function Struct(name, fields) {
  const names = fields.map((field) => field[0]);
  return {
    kind: "struct",
    id: structs++,
    name,
    fields,
    names,
    // The fast path's view: 0 text, 1 integer, 2 anything else (checked recursively).
    index: new Map(names.map((field, i) => [field, i])),
    expecting: "struct " + name,
    plan: null, // for a root shape: [key text, ids of the structs declaring it], built lazily
    fast: null, // the generated fast-path check: (value, counts) => array of field values or NO
  };
}

// Data that does not fit the shape; `message` is the Rust SDK's message.
export class ParseError extends Error {}

const NO = Symbol("no");
// A fraction or exponent anywhere (JSON.parse reads `2.0` as the integer 2; serde as a float).
// Integers of 16 digits or more need no check: past 2^53 they fail Number.isSafeInteger.
const SUSPICIOUS_NUMBER = /[0-9][.eE]/;
const NON_ASCII = /[^\x00-\x7f]/;
const UNUSUAL = /[^\x00-\x7f]|[0-9][.eE]/;

// Parses `data` (a Uint8Array) as `shape`, or throws ParseError with serde's message.
//
// Written for QuickJS, an interpreter: no destructuring, iterators or closures on this path.
export function parse(shape, data) {
  let text = latin1(data);
  // One scan for the common case (ASCII, no fraction or exponent); the rare rest is sorted out
  // after it.
  if (UNUSUAL.test(text)) text = SUSPICIOUS_NUMBER.test(text) ? null : utf8(text);
  if (text !== null && text.indexOf("\\") < 0 && !deep(text)) {
    let doc = NO;
    try {
      doc = JSON.parse(text);
    } catch (_) {
      doc = NO;
    }
    if (doc !== NO) {
      // counts[0]: strings (keys and text values); counts[1]: objects with keys other than
      // their struct's; counts[2 + id]: instances of each struct.
      const counts = new Array(structs + 2).fill(0);
      const value = fastCheck(shape)(doc, counts);
      if (value !== NO) {
        // No key was given twice (JSON.parse keeps the last, serde refuses a known one). Cheap
        // check: with no backslash, every `"` in the text delimits a string, so when no object
        // has unknown keys the text must hold exactly the strings the shape accounts for. With
        // unknown keys, count each declared key's occurrences instead.
        if (counts[1] === 0) {
          if (text.split('"').length - 1 === 2 * counts[0]) return value;
        } else if (keysOnce(shape, text, counts)) {
          return value;
        }
      }
    }
  }
  return new Serde(data).parse(shape);
}

// `parse` without the fast path: the serde port alone (for tests comparing the two).
export function parseWithPort(shape, data) {
  return new Serde(data).parse(shape);
}

// Whether `text` might nest deeper than the engine's JSON.parse can go on the 1 MiB wasm stack
// (QuickJS traps between 5,000 and 50,000 levels, StarlingMonkey runs out of memory; serde skips
// unknown values iteratively, at any depth). Only long text can nest deep: short events pay one
// length check.
function deep(text) {
  return text.length >= 1000 && text.split("[").length + text.split("{").length > 502;
}

// The UTF-8 text of `bytes`, or null when it is not valid UTF-8 (then the slow path decides).
export function decodeUtf8(bytes) {
  const text = latin1(bytes);
  return NON_ASCII.test(text) ? utf8(text) : text;
}

// One character per byte (QuickJS has no TextDecoder).
function latin1(bytes) {
  if (bytes.length <= 8192) return String.fromCharCode.apply(null, bytes);
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  }
  return text;
}

// The UTF-8 decoding of a string of bytes (see latin1), or null when they are not UTF-8.
function utf8(text) {
  try {
    // escape() turns each byte above 0x7f into %XX; decodeURIComponent decodes UTF-8 and throws
    // on invalid sequences (overlongs and surrogates included).
    return decodeURIComponent(escape(text));
  } catch (_) {
    return null;
  }
}

// The fast-path check of `shape`: for a struct, straight-line code generated once (QuickJS
// interprets, and a generic walk over field descriptions costs several times more).
function fastCheck(shape) {
  if (shape.kind === "struct") {
    if (shape.fast === null) shape.fast = compile(shape);
    return shape.fast;
  }
  if (shape.kind === "str") {
    return (value, counts) => {
      if (typeof value !== "string") return NO;
      counts[0]++;
      return value;
    };
  }
  if (shape.kind === "i64") return (value) => (isInteger(value) ? value : NO);
  const element = fastCheck(shape.element);
  return (value, counts) => {
    if (!Array.isArray(value)) return NO;
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const inner = element(value[i], counts);
      if (inner === NO) return NO;
      out[i] = inner;
    }
    return out;
  };
}

// Safe integers only (the raw-text guard keeps them exact); -0 is a float to serde.
function isInteger(value) {
  return Number.isSafeInteger(value) && !(value === 0 && 1 / value < 0);
}

function compile(struct) {
  const fields = struct.fields;
  const strings = fields.length + fields.filter((field) => field[1].kind === "str").length;
  const lines = [
    "if (value === null || typeof value !== 'object' || Array.isArray(value)) return NO;",
    // A missing key reads undefined (or an Object.prototype member): the checks refuse both.
    `if (Object.keys(value).length !== ${fields.length}) counts[1]++;`,
    `counts[0] += ${strings};`,
    `counts[${2 + struct.id}]++;`,
  ];
  const inner = [];
  fields.forEach(([name, field], i) => {
    lines.push(`const v${i} = value[${JSON.stringify(name)}];`);
    if (field.kind === "str") {
      lines.push(`if (typeof v${i} !== "string") return NO;`);
    } else if (field.kind === "i64") {
      lines.push(`if (!Number.isSafeInteger(v${i}) || (v${i} === 0 && 1 / v${i} < 0)) return NO;`);
    } else if (field.kind === "seq") {
      inner.push(fastCheck(field.element));
      const check = `f${inner.length - 1}`;
      lines.push(
        `if (!Array.isArray(v${i})) return NO;`,
        `const l${i} = new Array(v${i}.length);`,
        `for (let i = 0; i < v${i}.length; i++) {`,
        `  const e = ${check}(v${i}[i], counts);`,
        "  if (e === NO) return NO;",
        `  l${i}[i] = e;`,
        "}",
      );
    } else {
      inner.push(fastCheck(field));
      lines.push(`const l${i} = f${inner.length - 1}(v${i}, counts);`, `if (l${i} === NO) return NO;`);
    }
  });
  const values = fields.map((field, i) => (field[1].kind === "seq" || field[1].kind === "struct" ? `l${i}` : `v${i}`));
  lines.push(`return [${values.join(", ")}];`);
  const names = inner.map((_, i) => `f${i}`);
  const make = new Function("NO", ...names, `return function (value, counts) {\n${lines.join("\n")}\n};`);
  return make(NO, ...inner);
}

// Whether each declared key occurs in the raw text exactly as often as the objects that declare
// it (so none was duplicated: JSON.parse keeps the last, serde refuses).
function keysOnce(shape, text, counts) {
  let plan = shape.plan;
  if (plan === null) plan = shape.plan = keyPlan(shape);
  for (let p = 0; p < plan.length; p++) {
    const key = plan[p][0];
    const ids = plan[p][1];
    let expected = 0;
    for (let j = 0; j < ids.length; j++) expected += counts[2 + ids[j]];
    let n = 0;
    for (let at = text.indexOf(key); at >= 0; at = text.indexOf(key, at + key.length)) {
      if (++n > expected) return false;
    }
    if (n !== expected) return false;
  }
  return true;
}

function keyPlan(root) {
  const byKey = new Map();
  const visit = (shape) => {
    if (shape.kind === "seq") visit(shape.element);
    if (shape.kind !== "struct") return;
    for (const [name, field] of shape.fields) {
      const key = '"' + name + '"';
      if (!byKey.has(key)) byKey.set(key, []);
      if (!byKey.get(key).includes(shape.id)) byKey.get(key).push(shape.id);
      visit(field);
    }
  };
  visit(root);
  return Array.from(byKey.entries());
}

// --- The port of serde_json's deserializer (de.rs, read.rs) ----------------------------------

class SerdeError {
  constructor(text, kind, line = 0, column = 0, path = null) {
    this.text = text;
    this.kind = kind; // "syntax" or "data"
    this.line = line;
    this.column = column;
    this.path = path;
  }

  display() {
    return this.line === 0 ? this.text : `${this.text} at line ${this.line} column ${this.column}`;
  }
}

const isDigit = (b) => b !== undefined && b >= 0x30 && b <= 0x39;
const isWhitespace = (b) => b === 0x20 || b === 0x0a || b === 0x09 || b === 0x0d;
const ESCAPES = new Map([
  [0x22, '"'],
  [0x5c, "\\"],
  [0x2f, "/"],
  [0x62, "\b"],
  [0x66, "\f"],
  [0x6e, "\n"],
  [0x72, "\r"],
  [0x74, "\t"],
]);
const POW10 = Array.from({ length: 309 }, (_, i) => Number("1e" + i));

function overflow(a, b, c) {
  return a > c / 10n || (a === c / 10n && b > c % 10n);
}

class Serde {
  constructor(data) {
    this.data = data;
    this.index = 0;
    this.path = [];
  }

  position(i) {
    const data = this.data;
    let start = i;
    while (start > 0 && data[start - 1] !== 0x0a) start--;
    let line = 1;
    for (let j = 0; j < start; j++) if (data[j] === 0x0a) line++;
    return [line, i - start];
  }

  error(text) {
    const [line, column] = this.position(this.index);
    return new SerdeError(text, "syntax", line, column);
  }

  peekError(text) {
    const [line, column] = this.position(Math.min(this.data.length, this.index + 1));
    return new SerdeError(text, "syntax", line, column);
  }

  fix(error) {
    if (error.line === 0) [error.line, error.column] = this.position(this.index);
    return error;
  }

  dataError(text) {
    return new SerdeError(text, "data", 0, 0, this.path.slice());
  }

  peek() {
    return this.data[this.index];
  }

  next() {
    const byte = this.data[this.index];
    if (byte !== undefined) this.index++;
    return byte;
  }

  whitespace() {
    const data = this.data;
    let i = this.index;
    while (i < data.length && isWhitespace(data[i])) i++;
    this.index = i;
    return data[i];
  }

  parse(shape) {
    try {
      const value = this.value(shape);
      if (this.whitespace() !== undefined) throw this.peekError("trailing characters");
      return value;
    } catch (error) {
      if (!(error instanceof SerdeError)) throw error;
      if (error.kind === "syntax") throw new ParseError("data is not valid JSON: " + error.display());
      if (error.path.length > 0) throw new ParseError(pathText(error.path) + ": " + error.display());
      throw new ParseError("data: " + error.display());
    }
  }

  value(shape) {
    switch (shape.kind) {
      case "str":
        return this.string(shape);
      case "i64":
        return this.i64(shape);
      case "seq":
        return this.seq(shape);
      default:
        return this.struct(shape);
    }
  }

  string(shape) {
    const peek = this.whitespace();
    if (peek === undefined) throw this.peekError("EOF while parsing a value");
    if (peek === 0x22) {
      this.index++;
      return this.parseStr();
    }
    throw this.fix(this.invalidType(shape));
  }

  i64(shape) {
    const peek = this.whitespace();
    if (peek === undefined) throw this.peekError("EOF while parsing a value");
    let number;
    if (peek === 0x2d) {
      this.index++;
      number = this.parseInteger(false);
    } else if (isDigit(peek)) {
      number = this.parseInteger(true);
    } else {
      throw this.fix(this.invalidType(shape));
    }
    if (typeof number === "number") {
      throw this.fix(this.dataError(`invalid type: floating point \`${formatFloat(number)}\`, expected i64`));
    }
    if (number > I64_MAX) {
      throw this.fix(this.dataError(`invalid value: integer \`${number}\`, expected i64`));
    }
    const small = Number(number);
    return Number.isSafeInteger(small) ? small : number;
  }

  seq(shape) {
    const peek = this.whitespace();
    if (peek === undefined) throw this.peekError("EOF while parsing a value");
    if (peek !== 0x5b) throw this.fix(this.invalidType(shape));
    this.index++;
    const out = [];
    let error = null;
    try {
      let first = true;
      while (this.hasNextElement(first)) {
        first = false;
        this.path.push(out.length);
        try {
          out.push(this.value(shape.element));
        } finally {
          this.path.pop();
        }
      }
    } catch (raised) {
      if (!(raised instanceof SerdeError)) throw raised;
      error = raised;
    }
    const end = this.endSeq();
    if (error !== null) throw this.fix(error);
    if (end !== null) throw end;
    return out;
  }

  struct(shape) {
    const peek = this.whitespace();
    if (peek === undefined) throw this.peekError("EOF while parsing a value");
    let map;
    if (peek === 0x7b) map = true;
    else if (peek === 0x5b) map = false;
    else throw this.fix(this.invalidType(shape));
    this.index++;
    let value;
    try {
      value = map ? this.visitMap(shape) : this.visitSeq(shape);
    } catch (error) {
      if (!(error instanceof SerdeError)) throw error;
      if (map) this.endMap();
      else this.endSeq();
      throw this.fix(error);
    }
    const end = map ? this.endMap() : this.endSeq();
    if (end !== null) throw end;
    return value;
  }

  visitMap(shape) {
    const values = new Array(shape.fields.length).fill(NO);
    let first = true;
    while (this.hasNextKey(first)) {
      first = false;
      this.index++;
      const key = this.parseStr();
      const i = shape.index.get(key);
      if (i !== undefined && values[i] !== NO) throw this.dataError(`duplicate field \`${key}\``);
      this.objectColon();
      this.path.push(key);
      try {
        if (i === undefined) this.ignoreValue();
        else values[i] = this.value(shape.fields[i][1]);
      } finally {
        this.path.pop();
      }
    }
    for (let i = 0; i < values.length; i++) {
      if (values[i] === NO) throw this.dataError(`missing field \`${shape.names[i]}\``);
    }
    return values;
  }

  visitSeq(shape) {
    const values = [];
    let first = true;
    for (const [, field] of shape.fields) {
      if (!this.hasNextElement(first)) {
        throw this.dataError(
          `invalid length ${values.length}, expected struct ${shape.name} with ${shape.fields.length} elements`,
        );
      }
      first = false;
      this.path.push(values.length);
      try {
        values.push(this.value(field));
      } finally {
        this.path.pop();
      }
    }
    return values;
  }

  hasNextElement(first) {
    let peek = this.whitespace();
    if (peek === undefined) throw this.peekError("EOF while parsing a list");
    if (peek === 0x5d) return false;
    if (first) return true;
    if (peek === 0x2c) {
      this.index++;
      peek = this.whitespace();
      if (peek === 0x5d) throw this.peekError("trailing comma");
      if (peek === undefined) throw this.peekError("EOF while parsing a value");
      return true;
    }
    throw this.peekError("expected `,` or `]`");
  }

  hasNextKey(first) {
    let peek = this.whitespace();
    if (peek === undefined) throw this.peekError("EOF while parsing an object");
    if (peek === 0x7d) return false;
    if (first) {
      if (peek === 0x22) return true;
      throw this.peekError("key must be a string");
    }
    if (peek === 0x2c) {
      this.index++;
      peek = this.whitespace();
      if (peek === 0x22) return true;
      if (peek === 0x7d) throw this.peekError("trailing comma");
      if (peek === undefined) throw this.peekError("EOF while parsing a value");
      throw this.peekError("key must be a string");
    }
    throw this.peekError("expected `,` or `}`");
  }

  objectColon() {
    const peek = this.whitespace();
    if (peek === 0x3a) this.index++;
    else if (peek === undefined) throw this.peekError("EOF while parsing an object");
    else throw this.peekError("expected `:`");
  }

  // Returns (does not throw) its error: serde_json prefers the visitor's own.
  endSeq() {
    const peek = this.whitespace();
    if (peek === 0x5d) {
      this.index++;
      return null;
    }
    if (peek === 0x2c) {
      this.index++;
      if (this.whitespace() === 0x5d) return this.peekError("trailing comma");
      return this.peekError("trailing characters");
    }
    if (peek === undefined) return this.peekError("EOF while parsing a list");
    return this.peekError("trailing characters");
  }

  endMap() {
    const peek = this.whitespace();
    if (peek === 0x7d) {
      this.index++;
      return null;
    }
    if (peek === 0x2c) return this.peekError("trailing comma");
    if (peek === undefined) return this.peekError("EOF while parsing an object");
    return this.peekError("trailing characters");
  }

  invalidType(shape) {
    const peek = this.peek();
    let found;
    if (peek === 0x6e) {
      this.index++;
      this.ident("ull");
      found = "null";
    } else if (peek === 0x74) {
      this.index++;
      this.ident("rue");
      found = "boolean `true`";
    } else if (peek === 0x66) {
      this.index++;
      this.ident("alse");
      found = "boolean `false`";
    } else if (peek === 0x2d || isDigit(peek)) {
      if (peek === 0x2d) this.index++;
      const number = this.parseInteger(peek !== 0x2d);
      found = typeof number === "number" ? `floating point \`${formatFloat(number)}\`` : `integer \`${number}\``;
    } else if (peek === 0x22) {
      this.index++;
      found = "string " + rustDebug(this.parseStr());
    } else if (peek === 0x5b) {
      found = "sequence";
    } else if (peek === 0x7b) {
      found = "map";
    } else {
      return this.peekError("expected value");
    }
    return this.dataError(`invalid type: ${found}, expected ${shape.expecting}`);
  }

  ident(rest) {
    for (let i = 0; i < rest.length; i++) {
      const byte = this.next();
      if (byte === undefined) throw this.error("EOF while parsing a value");
      if (byte !== rest.charCodeAt(i)) throw this.error("expected ident");
    }
  }

  // Numbers: a BigInt (u64, or negative i64) or a Number (serde's f64), as serde_json computes.
  parseInteger(positive) {
    const byte = this.next();
    if (byte === undefined) throw this.error("EOF while parsing a value");
    if (byte === 0x30) {
      if (isDigit(this.peek())) throw this.peekError("invalid number");
      return this.parseNumber(positive, 0n);
    }
    if (byte >= 0x31 && byte <= 0x39) {
      let significand = BigInt(byte - 0x30);
      for (;;) {
        const peek = this.peek();
        if (!isDigit(peek)) return this.parseNumber(positive, significand);
        const digit = BigInt(peek - 0x30);
        if (overflow(significand, digit, U64_MAX)) return this.parseLongInteger(positive, significand);
        this.index++;
        significand = significand * 10n + digit;
      }
    }
    throw this.error("invalid number");
  }

  parseNumber(positive, significand) {
    const peek = this.peek();
    if (peek === 0x2e) return this.parseDecimal(positive, significand, 0);
    if (peek === 0x65 || peek === 0x45) return this.parseExponent(positive, significand, 0);
    if (positive) return significand;
    if (significand === 0n || significand > 1n << 63n) return -Number(significand);
    return -significand;
  }

  parseLongInteger(positive, significand) {
    let exponent = 0;
    for (;;) {
      const peek = this.peek();
      if (isDigit(peek)) {
        this.index++;
        exponent++;
      } else if (peek === 0x2e) {
        return this.parseDecimal(positive, significand, exponent);
      } else if (peek === 0x65 || peek === 0x45) {
        return this.parseExponent(positive, significand, exponent);
      } else {
        return this.f64FromParts(positive, significand, exponent);
      }
    }
  }

  parseDecimal(positive, significand, before) {
    this.index++;
    let after = 0;
    for (;;) {
      const peek = this.peek();
      if (!isDigit(peek)) break;
      const digit = BigInt(peek - 0x30);
      if (overflow(significand, digit, U64_MAX)) {
        while (isDigit(this.peek())) this.index++;
        const next = this.peek();
        if (next === 0x65 || next === 0x45) return this.parseExponent(positive, significand, before + after);
        return this.f64FromParts(positive, significand, before + after);
      }
      this.index++;
      significand = significand * 10n + digit;
      after--;
    }
    if (after === 0) {
      if (this.peek() !== undefined) throw this.peekError("invalid number");
      throw this.peekError("EOF while parsing a value");
    }
    const next = this.peek();
    if (next === 0x65 || next === 0x45) return this.parseExponent(positive, significand, before + after);
    return this.f64FromParts(positive, significand, before + after);
  }

  parseExponent(positive, significand, starting) {
    this.index++;
    let positiveExp = true;
    const sign = this.peek();
    if (sign === 0x2b) this.index++;
    else if (sign === 0x2d) {
      this.index++;
      positiveExp = false;
    }
    const byte = this.next();
    if (byte === undefined) throw this.error("EOF while parsing a value");
    if (!isDigit(byte)) throw this.error("invalid number");
    let exp = byte - 0x30;
    for (;;) {
      const peek = this.peek();
      if (!isDigit(peek)) break;
      this.index++;
      const digit = peek - 0x30;
      if (exp > 214748364 || (exp === 214748364 && digit > 7)) {
        if (significand !== 0n && positiveExp) throw this.error("number out of range");
        while (isDigit(this.peek())) this.index++;
        return positive ? 0 : -0;
      }
      exp = exp * 10 + digit;
    }
    let final = positiveExp ? starting + exp : starting - exp;
    final = Math.max(-2147483648, Math.min(2147483647, final));
    return this.f64FromParts(positive, significand, final);
  }

  f64FromParts(positive, significand, exponent) {
    let f = Number(significand);
    for (;;) {
      if (Math.abs(exponent) < POW10.length) {
        if (exponent >= 0) {
          f *= POW10[exponent];
          if (f === Infinity) throw this.error("number out of range");
        } else {
          f /= POW10[-exponent];
        }
        break;
      }
      if (f === 0) break;
      if (exponent >= 0) throw this.error("number out of range");
      f /= 1e308;
      exponent += 308;
    }
    return positive ? f : -f;
  }

  parseStr() {
    const data = this.data;
    let start = this.index;
    const parts = [];
    for (;;) {
      let i = start;
      while (i < data.length && data[i] !== 0x22 && data[i] !== 0x5c && data[i] >= 0x20) i++;
      this.index = i;
      if (i === data.length) throw this.error("EOF while parsing a string");
      const byte = data[i];
      if (byte === 0x22) {
        parts.push(data.subarray(start, i));
        this.index = i + 1;
        return this.asStr(parts);
      }
      if (byte === 0x5c) {
        parts.push(data.subarray(start, i));
        this.index = i + 1;
        parts.push(this.parseEscape());
        start = this.index;
        continue;
      }
      this.index = i + 1;
      throw this.error("control character (\\u0000-\\u001F) found while parsing a string");
    }
  }

  asStr(parts) {
    let length = 0;
    for (const part of parts) length += part.length;
    const raw = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      raw.set(part, at);
      at += part.length;
    }
    const text = decodeUtf8(raw);
    if (text !== null) return text;
    const [line, column] = this.position(this.index);
    throw new SerdeError(
      "invalid unicode code point",
      "syntax",
      line,
      Math.max(0, column - (raw.length - validUpTo(raw))),
    );
  }

  nextOrEof() {
    const byte = this.next();
    if (byte === undefined) throw this.error("EOF while parsing a string");
    return byte;
  }

  parseEscape() {
    const byte = this.nextOrEof();
    const simple = ESCAPES.get(byte);
    if (simple !== undefined) return encodeUtf8(simple.codePointAt(0));
    if (byte !== 0x75) throw this.error("invalid escape");
    const n = this.hexEscape();
    if (n >= 0xdc00 && n <= 0xdfff) throw this.error("lone leading surrogate in hex escape");
    if (n < 0xd800 || n > 0xdbff) return encodeUtf8(n);
    if (this.peek() === undefined) throw this.error("EOF while parsing a string");
    if (this.peek() !== 0x5c) {
      this.index++;
      throw this.error("unexpected end of hex escape");
    }
    this.index++;
    if (this.peek() === undefined) throw this.error("EOF while parsing a string");
    if (this.peek() !== 0x75) {
      this.index++;
      throw this.error("unexpected end of hex escape");
    }
    this.index++;
    const n2 = this.hexEscape();
    if (n2 < 0xdc00 || n2 > 0xdfff) throw this.error("lone leading surrogate in hex escape");
    return encodeUtf8((((n - 0xd800) << 10) | (n2 - 0xdc00)) + 0x10000);
  }

  hexEscape() {
    const data = this.data;
    const i = this.index;
    if (i + 4 > data.length) {
      this.index = data.length;
      throw this.error("EOF while parsing a string");
    }
    this.index = i + 4;
    let n = 0;
    for (let j = i; j < i + 4; j++) {
      const digit = hexValue(data[j]);
      if (digit < 0) throw this.error("invalid escape");
      n = n * 16 + digit;
    }
    return n;
  }

  ignoreValue() {
    const stack = [];
    let enclosing = null;
    for (;;) {
      let peek = this.whitespace();
      if (peek === undefined) throw this.peekError("EOF while parsing a value");
      let frame = null;
      if (peek === 0x6e) {
        this.index++;
        this.ident("ull");
      } else if (peek === 0x74) {
        this.index++;
        this.ident("rue");
      } else if (peek === 0x66) {
        this.index++;
        this.ident("alse");
      } else if (peek === 0x2d) {
        this.index++;
        this.ignoreInteger();
      } else if (isDigit(peek)) {
        this.ignoreInteger();
      } else if (peek === 0x22) {
        this.index++;
        this.ignoreStr();
      } else if (peek === 0x5b || peek === 0x7b) {
        if (enclosing !== null) {
          stack.push(enclosing);
          enclosing = null;
        }
        this.index++;
        frame = peek;
      } else {
        throw this.peekError("expected value");
      }
      let acceptComma;
      if (frame !== null) acceptComma = false;
      else if (enclosing !== null) {
        acceptComma = true;
        frame = enclosing;
        enclosing = null;
      } else if (stack.length > 0) {
        acceptComma = true;
        frame = stack.pop();
      } else {
        return;
      }
      for (;;) {
        peek = this.whitespace();
        if (peek === 0x2c && acceptComma) {
          this.index++;
          break;
        }
        if ((peek === 0x5d && frame === 0x5b) || (peek === 0x7d && frame === 0x7b)) {
          // closes the frame
        } else if (peek !== undefined) {
          if (acceptComma) throw this.peekError(frame === 0x5b ? "expected `,` or `]`" : "expected `,` or `}`");
          break;
        } else {
          throw this.peekError(frame === 0x5b ? "EOF while parsing a list" : "EOF while parsing an object");
        }
        this.index++;
        if (stack.length === 0) return;
        frame = stack.pop();
        acceptComma = true;
      }
      if (frame === 0x7b) {
        peek = this.whitespace();
        if (peek === 0x22) this.index++;
        else if (peek === undefined) throw this.peekError("EOF while parsing an object");
        else throw this.peekError("key must be a string");
        this.ignoreStr();
        peek = this.whitespace();
        if (peek === 0x3a) this.index++;
        else if (peek === undefined) throw this.peekError("EOF while parsing an object");
        else throw this.peekError("expected `:`");
      }
      enclosing = frame;
    }
  }

  ignoreInteger() {
    const byte = this.next();
    if (byte === 0x30) {
      if (isDigit(this.peek())) throw this.peekError("invalid number");
    } else if (byte !== undefined && byte >= 0x31 && byte <= 0x39) {
      while (isDigit(this.peek())) this.index++;
    } else {
      throw this.error("invalid number");
    }
    const peek = this.peek();
    if (peek === 0x2e) this.ignoreDecimal();
    else if (peek === 0x65 || peek === 0x45) this.ignoreExponent();
  }

  ignoreDecimal() {
    this.index++;
    let digits = false;
    while (isDigit(this.peek())) {
      this.index++;
      digits = true;
    }
    if (!digits) throw this.peekError("invalid number");
    const peek = this.peek();
    if (peek === 0x65 || peek === 0x45) this.ignoreExponent();
  }

  ignoreExponent() {
    this.index++;
    const sign = this.peek();
    if (sign === 0x2b || sign === 0x2d) this.index++;
    const byte = this.next();
    if (!isDigit(byte)) throw this.error("invalid number");
    while (isDigit(this.peek())) this.index++;
  }

  ignoreStr() {
    const data = this.data;
    for (;;) {
      let i = this.index;
      while (i < data.length && data[i] !== 0x22 && data[i] !== 0x5c && data[i] >= 0x20) i++;
      this.index = i;
      if (i === data.length) throw this.error("EOF while parsing a string");
      const byte = data[i];
      if (byte === 0x22) {
        this.index = i + 1;
        return;
      }
      if (byte === 0x5c) {
        this.index = i + 1;
        const escape = this.nextOrEof();
        if (escape === 0x75) this.hexEscape();
        else if (!ESCAPES.has(escape)) throw this.error("invalid escape");
        continue;
      }
      throw this.error("control character (\\u0000-\\u001F) found while parsing a string");
    }
  }
}

function hexValue(byte) {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return -1;
}

function encodeUtf8(n) {
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x800) return Uint8Array.of(0xc0 | (n >> 6), 0x80 | (n & 0x3f));
  if (n < 0x10000) return Uint8Array.of(0xe0 | (n >> 12), 0x80 | ((n >> 6) & 0x3f), 0x80 | (n & 0x3f));
  return Uint8Array.of(0xf0 | (n >> 18), 0x80 | ((n >> 12) & 0x3f), 0x80 | ((n >> 6) & 0x3f), 0x80 | (n & 0x3f));
}

// Rust's `Utf8Error::valid_up_to`: the length of the longest valid UTF-8 prefix.
function validUpTo(bytes) {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let need, min;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + need >= bytes.length) return i;
    let n = b & (0x3f >> need);
    for (let j = 1; j <= need; j++) {
      const c = bytes[i + j];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      n = (n << 6) | (c & 0x3f);
    }
    if (n < min || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return i;
    i += need + 1;
  }
  return i;
}

function pathText(segments) {
  let out = "";
  segments.forEach((segment, i) => {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += (i > 0 ? "." : "") + segment;
  });
  return out;
}

// A float as serde_json 1.0.154 prints it (the zmij crate): shortest round-trip digits, plain
// notation for decimal exponents -5..=15 (`1.0`, `0.00001`), else `1e+16`, `1.5e-7`.
export function formatFloat(f) {
  if (Number.isNaN(f)) return "NaN";
  if (f === Infinity) return "inf";
  if (f === -Infinity) return "-inf";
  const sign = f < 0 || Object.is(f, -0) ? "-" : "";
  if (f === 0) return sign + "0.0";
  const [mantissa, exp] = Math.abs(f).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const exponent = Number(exp);
  if (exponent >= -5 && exponent <= 15) {
    if (exponent >= digits.length - 1) return sign + digits + "0".repeat(exponent - digits.length + 1) + ".0";
    if (exponent >= 0) return sign + digits.slice(0, exponent + 1) + "." + digits.slice(exponent + 1);
    return sign + "0." + "0".repeat(-exponent - 1) + digits;
  }
  const text = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
  return `${sign}${text}e${exponent >= 0 ? "+" : "-"}${Math.abs(exponent)}`;
}

// Engines built without Unicode property data (StarlingMonkey) refuse \p{…}: there, a list of
// the common ranges stands in (controls, format characters, spaces other than U+0020, the
// combining marks of Latin, Cyrillic and Hebrew, private use and surrogates).
let UNPRINTABLE;
try {
  UNPRINTABLE = new RegExp("[\\p{Cc}\\p{Cf}\\p{Cs}\\p{Co}\\p{Cn}\\p{Zl}\\p{Zp}\\p{Mn}\\p{Me}]|[^\\P{Zs} ]", "u");
} catch (_) {
  UNPRINTABLE =
    /[\x00-\x1f\x7f-\xa0\xad\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0600-\u0605\u061c\u06dd\u070f\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ud800-\uf8ff\ufe00-\ufe0f\ufeff\ufff9-\ufffb]/;
}
const DEBUG_ESCAPES = new Map([
  ["\0", "\\0"],
  ["\t", "\\t"],
  ["\r", "\\r"],
  ["\n", "\\n"],
  ["\\", "\\\\"],
  ['"', '\\"'],
]);

// A string as Rust's `{:?}` prints it (close, as in the Python twin: Unicode categories stand in
// for Rust's printable and grapheme-extend tables).
function rustDebug(text) {
  let out = '"';
  for (const ch of text) {
    const escaped = DEBUG_ESCAPES.get(ch);
    if (escaped !== undefined) out += escaped;
    else if (UNPRINTABLE.test(ch)) out += `\\u{${ch.codePointAt(0).toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}
