#!/usr/bin/env bash
# Builds this projection into a WebAssembly component, target/{{name}}.wasm, with componentize-py
# (from PyPI; it bundles CPython for WASI). The toolchain goes into .venv, created from
# requirements.txt on first use (or set PROJECTOR_PY_VENV to reuse one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${PROJECTOR_PY_VENV:-$here/.venv}
if [ ! -x "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
mkdir -p "$here/target"
# componentize-py runs app.py's top level at build time and snapshots the initialised
# interpreter; `projector/` (the helpers) is found on the -p path.
"$venv/bin/componentize-py" --quiet -d "$here/wit" -w projection componentize \
    -p "$here" app -o "$here/target/{{name}}.wasm"
echo "built $here/target/{{name}}.wasm"
