#!/usr/bin/env bash
# npm run broker: the local Kafka-protocol broker (librdkafka's mock cluster inside Debian's kcat, 3 brokers).
# Prints KAFKA_BROKERS=… and runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-kcat.sh
exec node bin/tayguard.js broker "$@"
