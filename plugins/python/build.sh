#!/usr/bin/env bash
# Builds the Python projection plugins in this folder into WebAssembly components for the
# `projection` world in ../../wit, with componentize-py (PyPI; it bundles CPython for WASI).
#
#   plugins/python/build.sh [PLUGIN...]     # default: every folder with an app.py
#
# Writes target/<plugin>.wasm. The toolchain goes into .venv here (or $PROJECTOR_PY_VENV),
# created from requirements.txt on first use: only PyPI is needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wit=$(cd "$here/../../wit" && pwd)
venv=${PROJECTOR_PY_VENV:-$here/.venv}
if [ ! -x "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
plugins=("$@")
if [ ${#plugins[@]} -eq 0 ]; then
    for app in "$here"/*/app.py; do plugins+=("$(basename "$(dirname "$app")")"); done
fi
mkdir -p "$here/target"
for plugin in "${plugins[@]}"; do
    # The app module is `app` in the plugin's folder; the shared helpers (`projector`) come
    # from this folder. componentize-py runs the module's top level at build time and
    # snapshots the initialised interpreter, so imports cost nothing at load.
    "$venv/bin/componentize-py" --quiet -d "$wit" -w projection componentize \
        -p "$here/$plugin" -p "$here" app -o "$here/target/$plugin.wasm"
    echo "built $here/target/$plugin.wasm ($(stat -c %s "$here/target/$plugin.wasm") bytes)"
done
