#!/usr/bin/env bash
# Builds the Python and JavaScript twins of order_summary and checks, through `projector test`,
# that they build the same tables and dead letters as the Rust plugin, byte for byte, on the shop
# fixture, the edge cases, the wide integers and a fuzzed fixture. Then the value model: each
# build of the `values` projection must match the snapshot in plugins/values/expected (QuickJS:
# expected-quickjs), and an uncaught failure in each language must say what failed and where.
# Installs the toolchains from PyPI and npm on first use (plugins/python/.venv,
# plugins/js/node_modules).
#
#   plugins/test-languages.sh            # needs the Rust plugin and a projector binary:
#   PROJECTOR=… RUST_PLUGIN=… plugins/test-languages.sh
#
# Defaults: $CARGO_TARGET_DIR (or target/)/debug/projector and
# plugins/target/wasm32-wasip2/release/{order_summary,values}.wasm, all built by scripts/test.
# Set PROJECTOR_JS_ENGINES="quickjs starlingmonkey" to check both JS engines (default: quickjs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
projector=${PROJECTOR:-${CARGO_TARGET_DIR:-$root/target}/debug/projector}
rust=${RUST_PLUGIN:-$here/target/wasm32-wasip2/release/order_summary.wasm}
engines=${PROJECTOR_JS_ENGINES:-quickjs}
rust_values=$here/target/wasm32-wasip2/release/values.wasm
for needed in "$projector" "$rust" "$rust_values"; do
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
# The value model at the boundary. QuickJS passes s64 as a JS Number, so the helpers refuse
# integers beyond ±2^53 and `values` records the refusals: its own snapshot, differing in them.
"$here/python/build.sh" values
values_builds=("$rust_values" "$here/python/target/values.wasm")
for engine in $engines; do
    PROJECTOR_JS_ENGINE=$engine "$here/js/build.sh" values
    case $engine in
    quickjs) values_builds+=("$here/js/target/values.wasm") ;;
    *) values_builds+=("$here/js/target/values.$engine.wasm") ;;
    esac
done
bug=$(mktemp)
trap 'rm -f "$fuzz" "$bug"' EXIT
echo '{"stream": "values-1", "type": "Bug"}' >"$bug"
for build in "${values_builds[@]}"; do
    expected=$here/values/expected
    [ "$build" = "$here/js/target/values.wasm" ] && expected=$here/values/expected-quickjs
    echo "== values.jsonl: $(basename "$build") against $(basename "$expected")"
    PROJECTOR_LOG=error "$projector" test "$build" --events "$here/fixtures/values.jsonl" --expect "$expected" || status=1
    # A bug (a panic, an uncaught exception) names its message and where it happened.
    case $build in
    */python/*) says=('ValueError: values was told to fail at position 1 (at ' 'app.py, line ') ;;
    */js/*) says=('TypeError: values was told to fail at position 1' 'values/index.js:') ;;
    *) says=('panicked at values/src/lib.rs:' 'values was told to fail at position 1') ;;
    esac
    error=$(PROJECTOR_LOG=error "$projector" test "$build" --events "$bug" --format json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["dead_letters"][0]["error"])')
    for part in "${says[@]}"; do
        case $error in
        *"$part"*) ;;
        *) echo "the Bug dead letter of $build does not say \"$part\": $error" >&2; status=1 ;;
        esac
    done
done
if [ $status -eq 0 ]; then echo "language twins: all tables and dead letters identical; value model as expected"; fi
exit $status
