#!/usr/bin/env bash
# npm run demo: make sure the local broker's kcat is there, then run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-kcat.sh
exec node bin/tayguard.js demo "$@"
