#!/usr/bin/env bash
# Set-up for the web console's end-to-end test (tests/console/drive.mjs), used by CI.
# Idempotent: installs Debian's chromium if /usr/bin/chromium is missing, and runs `npm ci`
# here if node_modules is missing or does not match package-lock.json. It never fails the
# caller: when a step fails it says so on stderr and exits 0, and the Rust test then skips
# with a message because chromium or node_modules is absent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

warn() { echo "tests/console/setup.sh: $*" >&2; }

install_chromium() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    warn "no /usr/bin/chromium and no apt-get to install it"; return 1
  fi
  # Try without `apt-get update` first: it is slow, and the lists are usually fresh enough.
  if apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then return 0; fi
  apt-get update -q >/dev/null 2>&1 || true
  if apt-get install -y -q --no-install-recommends chromium >/dev/null; then return 0; fi
  warn "could not install chromium (apt-get install chromium failed)"; return 1
}

# node_modules is stale when the installed playwright-core is not the version the lockfile names.
node_modules_fresh() {
  [ -f "$here/node_modules/playwright-core/package.json" ] || return 1
  local want have
  want="$(node -p "require('$here/package-lock.json').packages['node_modules/playwright-core'].version" 2>/dev/null)" || return 1
  have="$(node -p "require('$here/node_modules/playwright-core/package.json').version" 2>/dev/null)" || return 1
  [ -n "$want" ] && [ "$want" = "$have" ]
}

install_node_modules() {
  if ! command -v npm >/dev/null 2>&1; then warn "npm is not installed"; return 1; fi
  if node_modules_fresh; then return 0; fi
  if (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then return 0; fi
  warn "npm ci failed in $here"; return 1
}

ok=1
install_chromium || ok=0
install_node_modules || ok=0
if [ "$ok" = 1 ]; then
  echo "tests/console/setup.sh: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}') and playwright-core ready" >&2
else
  warn "console end-to-end test will be skipped"
fi
exit 0
