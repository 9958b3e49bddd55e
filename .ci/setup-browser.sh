# Sourced by .ci/run (never executed): installs Chromium and chromedriver from
# Debian's packages for the console's browser tests
# (bins/ingest/tests/console.rs). Outside CI it does nothing; the browser test
# then runs when both are on PATH and says it skipped otherwise. Being
# sourced, it must never `exit` and must work under `set -euo pipefail`.
if [ "${CI:-}" = "true" ]; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium chromium-driver
  fi
  echo "setup-browser: $(chromium --version 2>/dev/null || echo 'chromium version unknown')"
fi
