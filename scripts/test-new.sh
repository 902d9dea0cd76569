#!/usr/bin/env bash
# Checks `projector new` end to end, for each language: writes a plugin folder into a temporary
# directory, builds it with the language's own tools, and runs its README's test command, which
# must pass as written; then spoils one expected row and checks that the same test fails.
#
#   scripts/test-new.sh [rust|python|js ...]     # default: all three
#
# Needs the debug projector binary that scripts/test builds ($PROJECTOR overrides), the
# wasm32-wasip2 Rust target, python3 and PyPI, node and npm. The Rust build goes to
# $CARGO_TARGET_DIR (default $HOME/.cache/projector/target), so repeated runs are incremental;
# the Python one reuses plugins/python/.venv when it exists, and JS npm's own cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/projector/target}"
projector=${PROJECTOR:-$CARGO_TARGET_DIR/debug/projector}
[ -x "$projector" ] || { echo "missing $projector (run scripts/test first, or set PROJECTOR)" >&2; exit 2; }
# The logs (the warning, the dead letter) are the template at work; the verdicts are on stdout.
export PROJECTOR_LOG=${PROJECTOR_LOG:-error}
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(rust python js)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Builds the folder $1 of language $2 as its README says, and prints the component's path.
build() {
    local dir=$1 lang=$2 name
    name=$(basename "$dir")
    case $lang in
    rust)
        (cd "$dir" && cargo build --quiet --release --target wasm32-wasip2) >&2
        echo "$CARGO_TARGET_DIR/wasm32-wasip2/release/${name//-/_}.wasm"
        ;;
    python)
        # The same pinned toolchain as plugins/python: reuse its venv when there is one.
        if [ -x "$root/plugins/python/.venv/bin/componentize-py" ] \
            && cmp -s "$root/plugins/python/requirements.txt" "$dir/requirements.txt"; then
            export PROJECTOR_PY_VENV=$root/plugins/python/.venv
        fi
        "$dir/build.sh" >&2
        echo "$dir/target/$name.wasm"
        ;;
    js)
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error && npm run --silent build) >&2
        echo "$dir/target/$name.wasm"
        ;;
    esac
}

status=0
for lang in "${langs[@]}"; do
    name="new-$lang"
    dir="$work/$name"
    echo "== projector new $name --lang $lang"
    "$projector" new "$name" --lang "$lang" --dir "$dir" >/dev/null
    wasm=$(build "$dir" "$lang")
    if ! (cd "$dir" && "$projector" test "$wasm" --events events.jsonl --expect expected); then
        echo "FAIL: $lang: the new plugin does not pass its own test" >&2
        status=1
        continue
    fi
    # A spoiled expectation must fail: change the first row's quantity.
    sed -i '2s/,\([0-9]*\),/,99\1,/' "$dir/expected/cart_items.jsonl"
    if (cd "$dir" && "$projector" test "$wasm" --events events.jsonl --expect expected >/dev/null); then
        echo "FAIL: $lang: a spoiled expectation passed" >&2
        status=1
    else
        echo "$lang: a spoiled expectation fails, as it should"
    fi
done
if [ $status -eq 0 ]; then echo "projector new: every language builds and passes its own test"; fi
exit $status
