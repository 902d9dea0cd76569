#!/usr/bin/env bash
# Builds the JavaScript projection plugins in this folder into WebAssembly components for the
# `projection` world in ../../wit.
#
#   plugins/js/build.sh [PLUGIN...]             # default: every folder with an index.js
#   PROJECTOR_JS_ENGINE=starlingmonkey plugins/js/build.sh   # the other engine, for comparison
#
# Engines (both from npm, pinned in package.json / package-lock.json, installed by `npm ci`):
# - quickjs (default): componentize-qjs, QuickJS snapshotted with Wizer; `--sync` because the
#   host runs components without the component-model async ABI. s64 is a JS Number.
# - starlingmonkey: @bytecodealliance/componentize-js (SpiderMonkey); s64 is a BigInt.
#
# Writes target/<plugin>.wasm (target/<plugin>.starlingmonkey.wasm for the other engine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wit=$(cd "$here/../../wit" && pwd)
engine=${PROJECTOR_JS_ENGINE:-quickjs}
if [ ! -d "$here/node_modules/componentize-qjs" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
plugins=("$@")
if [ ${#plugins[@]} -eq 0 ]; then
    for entry in "$here"/*/index.js; do
        name=$(basename "$(dirname "$entry")")
        [ "$name" = projector ] || plugins+=("$name")
    done
fi
mkdir -p "$here/target"
cd "$here"
for plugin in "${plugins[@]}"; do
    case "$engine" in
    quickjs)
        out="$here/target/$plugin.wasm"
        # --module-root: the plugin imports the shared helpers from ../projector.
        node_modules/.bin/componentize-qjs --wit "$wit" --world projection --sync \
            --module-root "$here" --js "$plugin/index.js" -o "$out" >/dev/null
        ;;
    starlingmonkey)
        out="$here/target/$plugin.starlingmonkey.wasm"
        # componentize-js takes one module: bundle the plugin and its helpers first.
        node_modules/.bin/componentize-js --wit "$wit" --world-name projection \
            -d stdio random clocks http fetch-event -o "$out" "$plugin/index.js" >/dev/null
        ;;
    *)
        echo "unknown PROJECTOR_JS_ENGINE=$engine (quickjs or starlingmonkey)" >&2
        exit 2
        ;;
    esac
    echo "built $out ($(stat -c %s "$out") bytes)"
done
