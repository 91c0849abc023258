#!/usr/bin/env bash
# Make sure Debian's chromium is present: the status page's browser test (test/integration/status-page.test.ts)
# drives it with playwright-core, never a downloaded browser.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "tayguard: installing chromium (Debian package) for the status page's browser test…" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
echo "tayguard: /usr/bin/chromium is missing. Install it with:  sudo apt-get update && sudo apt-get install -y chromium" >&2
exit 1
