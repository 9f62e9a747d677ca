#!/bin/sh
# Starts the gateway. Its model directory (tokenizer and config files only) is, in order:
# RINGSERVE_GATEWAY_MODEL_DIR when set, $RING_SERVE_MODEL_MOUNT (default /models/model) when it holds a
# config.json, else the demo model's tokenizer baked into the image (it matches the workers' demo model).
set -eu
mount="${RING_SERVE_MODEL_MOUNT:-/models/model}"
if [ -z "${RINGSERVE_GATEWAY_MODEL_DIR:-}" ]; then
  if [ -f "$mount/config.json" ]; then
    RINGSERVE_GATEWAY_MODEL_DIR="$mount"
  else
    RINGSERVE_GATEWAY_MODEL_DIR="$RING_SERVE_DEMO_MODEL"
  fi
  export RINGSERVE_GATEWAY_MODEL_DIR
fi
# shellcheck disable=SC2086 # the flag variables are lists of flags
exec java $RING_SERVE_JVM_FLAGS $JAVA_OPTS -jar /opt/ring-serve/api-service.jar "$@"
