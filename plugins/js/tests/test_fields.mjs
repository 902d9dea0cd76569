// Native checks of projector/fields.js under Node (seconds, no component): the rules' messages
// on hand-picked data, and Shape.read agreeing with reading field by field on every event of
// the given files (the generated check and the slow path must never differ).
//
//     node plugins/js/tests/test_fields.mjs [EVENTS.jsonl...]

import { readFileSync } from "node:fs";
import { DataError, INTEGER, Shape, TEXT, parse } from "../projector/fields.js";

const ITEM = new Shape([["sku", TEXT], ["quantity", INTEGER], ["unitPriceCents", INTEGER]]);
const ORDER = new Shape([["orderId", TEXT], ["customerId", TEXT], ["items", [ITEM]], ["timestamp", TEXT]]);

const CASES = [
  ["", "data is not valid JSON"],
  ['{"a":NaN}', "data is not valid JSON"],
  ['{"a":"\\ud800"}', "data is not valid JSON"],
  ["[1]", "data: expected an object, got an array"],
  ["{}", "orderId: missing"],
  ['{"constructor":1}', "orderId: missing"],
  ['{"orderId":7}', "orderId: expected text, got a number"],
  ['{"orderId":"o","customerId":null}', "customerId: expected text, got null"],
  ['{"orderId":"o","customerId":"c","items":[true]}', "items[0]: expected an object, got a boolean"],
  ['{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":2.5}]}', "items[0].quantity: expected an integer, got a fraction"],
  ['{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":1e400}]}', "items[0].quantity: integer beyond ±(2^53 - 1)"],
  ['{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":9007199254740992}]}', "items[0].quantity: integer beyond ±(2^53 - 1)"],
  ['{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":1,"unitPriceCents":"2"}]}', "items[0].unitPriceCents: expected an integer, got text"],
  ['{"a":' + "[".repeat(500) + "]".repeat(500) + "}", "data nests deeper than 500 levels"],
];

const bytes = (text) => new Uint8Array(Buffer.from(text, "utf8"));

function message(read, data) {
  try {
    read(data);
  } catch (error) {
    if (error instanceof DataError) return error.message;
    throw error;
  }
  return null;
}

let failures = 0;
for (const [text, expected] of CASES) {
  for (const [name, read] of [["shape", (d) => ORDER.read(d)], ["fields", (d) => ORDER.readFields(parse(d))]]) {
    const got = message(read, bytes(text));
    if (got !== expected) {
      failures++;
      console.log(`${name} ${JSON.stringify(text.slice(0, 80))}: ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
    }
  }
}
const ok = ORDER.read(bytes('{"orderId":"o","customerId":"c","items":[{"sku":"s","quantity":2.0,"unitPriceCents":1e2}],"timestamp":"t","x":1e400}'));
if (JSON.stringify(ok) !== JSON.stringify(["o", "c", [["s", 2, 100]], "t"])) {
  failures++;
  console.log(`unusual but valid data read as ${JSON.stringify(ok)}`);
}
let checked = 0;
for (const path of process.argv.slice(2)) {
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const event = JSON.parse(line);
    const data = event.data_base64 !== undefined ? new Uint8Array(Buffer.from(event.data_base64, "base64")) : bytes(JSON.stringify(event.data ?? null));
    const result = (read) => {
      try {
        return JSON.stringify(read(data));
      } catch (error) {
        if (error instanceof DataError) return error.message;
        throw error;
      }
    };
    const slow = result((d) => ORDER.readFields(parse(d)));
    const fast = result((d) => ORDER.read(d));
    checked++;
    if (slow !== fast) {
      failures++;
      console.log(`${path}: shape ${fast}, fields ${slow}`);
    }
  }
}
console.log(`js fields: ${CASES.length} cases, ${checked} events compared, ${failures} failures`);
process.exit(failures ? 1 : 0);
