#!/usr/bin/env bash
# Make sure Debian's kcat is present: the local Kafka-protocol broker is librdkafka's mock cluster inside it.
set -euo pipefail
if command -v kcat >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "tayguard: installing kcat (Debian package) for the local Kafka-protocol broker…" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  exit 0
fi
echo "tayguard: kcat is missing. Install it with:  sudo apt-get update && sudo apt-get install -y kcat" >&2
exit 1
