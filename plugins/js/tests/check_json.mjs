// Checks natively (Node, no wasm) that projector/json.js's fast path and its serde_json port
// agree on every event of the given JSONL files (data_base64): the same value, or the same
// message. The port itself is checked against the Rust plugin by compare_languages.py.
//
//   python3 plugins/fixtures/make_fuzz.py 11 20000 > /tmp/fuzz.jsonl
//   node plugins/js/tests/check_json.mjs /tmp/fuzz.jsonl plugins/fixtures/edge-cases.jsonl
import * as J from "../projector/json.js";
import fs from "node:fs";
const ITEM = J.Struct("Item", [["sku", J.STR], ["quantity", J.I64], ["unitPriceCents", J.I64]]);
const OC = J.Struct("OrderCreated", [["orderId", J.STR], ["customerId", J.STR], ["items", J.Seq(ITEM)], ["timestamp", J.STR]]);
const OX = J.Struct("OrderCancelled", [["orderId", J.STR], ["reason", J.STR]]);
const OS = J.Struct("OrderShipped", [["orderId", J.STR]]);
const shapes = { OrderCreated: OC, OrderCancelled: OX, OrderShipped: OS };
const files = process.argv.slice(2);
let n = 0, ok = 0, mismatches = 0;
const run = (f) => { try { return ["ok", JSON.stringify(f(), (k, v) => typeof v === "bigint" ? v.toString() + "n" : v)]; } catch (e) { if (e instanceof J.ParseError) return ["err", e.message]; throw e; } };
for (const file of files) for (const line of fs.readFileSync(file, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const ev = JSON.parse(line); const shape = shapes[ev.type]; if (!shape) continue;
  const data = new Uint8Array(ev.data_base64 !== undefined ? Buffer.from(ev.data_base64, "base64") : Buffer.from(JSON.stringify(ev.data ?? {})));
  const a = run(() => J.parse(shape, data));
  const b = run(() => J.parseWithPort(shape, data));
  n++; if (a[0] === "ok") ok++;
  if (a[0] !== b[0] || a[1] !== b[1]) { mismatches++; if (mismatches < 5) console.log("MISMATCH", Buffer.from(data).toString(), a, b); }
}
console.log(`${n - mismatches} passed, ${mismatches} failed`);
console.log(`(${ok} accepted by the fast path and the port alike)`);
process.exit(mismatches ? 1 : 0);
