#!/usr/bin/env bash
# Builds the Python and JavaScript twins of order_summary and checks, through `projector test`,
# that they build the same tables and dead letters as the Rust plugin, byte for byte, on the shop
# fixture, the edge cases, the wide integers and a fuzzed fixture. Installs the toolchains from PyPI and npm on first
# use (plugins/python/.venv, plugins/js/node_modules).
#
#   plugins/test-languages.sh            # needs the Rust plugin and a projector binary:
#   PROJECTOR=… RUST_PLUGIN=… plugins/test-languages.sh
#
# Defaults: $CARGO_TARGET_DIR (or target/)/debug/projector and
# plugins/target/wasm32-wasip2/release/order_summary.wasm, both built by scripts/test.
# Set PROJECTOR_JS_ENGINES="quickjs starlingmonkey" to check both JS engines (default: quickjs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
projector=${PROJECTOR:-${CARGO_TARGET_DIR:-$root/target}/debug/projector}
rust=${RUST_PLUGIN:-$here/target/wasm32-wasip2/release/order_summary.wasm}
engines=${PROJECTOR_JS_ENGINES:-quickjs}
for needed in "$projector" "$rust"; do
    [ -e "$needed" ] || { echo "missing $needed (run scripts/test first, or set PROJECTOR / RUST_PLUGIN)" >&2; exit 2; }
done

"$here/python/build.sh" order_summary
builds=("$here/python/target/order_summary.wasm")
for engine in $engines; do
    PROJECTOR_JS_ENGINE=$engine "$here/js/build.sh" order-summary
    case $engine in
    quickjs) builds+=("$here/js/target/order-summary.wasm") ;;
    *) builds+=("$here/js/target/order-summary.$engine.wasm") ;;
    esac
done

fuzz=$(mktemp)
trap 'rm -f "$fuzz"' EXIT
python3 "$here/fixtures/make_fuzz.py" 7 2000 >"$fuzz"
status=0
# Natively first (seconds): each fields helper's messages, and its Shape reader against reading
# field by field.
python3 "$here/python/tests/test_fields.py" "$fuzz" "$here/fixtures/edge-cases.jsonl" || status=1
node "$here/js/tests/test_fields.mjs" "$fuzz" "$here/fixtures/edge-cases.jsonl" || status=1
# Sums past 2^53 are refused alike in every language (the helpers' integers stop at 2^53 - 1).
for events in "$root/tests/fixtures/shop.jsonl" "$here/fixtures/edge-cases.jsonl" "$fuzz" \
    "$here/fixtures/wide-integers.jsonl"; do
    echo "== $(basename "$events")"
    python3 "$here/compare_languages.py" "$projector" "$events" "$rust" "${builds[@]}" || status=1
done
if [ $status -eq 0 ]; then echo "language twins: all tables and dead letters identical"; fi
exit $status
