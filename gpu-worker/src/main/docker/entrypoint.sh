#!/bin/sh
# Starts the inference worker. A checkpoint mounted at $RING_SERVE_MODEL_MOUNT (default /models/model) is
# served when it holds a config.json and RINGSERVE_WORKER_MODEL is not set; otherwise the worker serves the
# demo model ($RING_SERVE_DEMO_MODEL, baked into the image). Arguments go to the worker (default: serve).
set -eu
mount="${RING_SERVE_MODEL_MOUNT:-/models/model}"
if [ -z "${RINGSERVE_WORKER_MODEL:-}" ] && [ -f "$mount/config.json" ]; then
  RINGSERVE_WORKER_MODEL="$mount"
  export RINGSERVE_WORKER_MODEL
fi
# shellcheck disable=SC2086 # the flag variables are lists of flags
exec java $RING_SERVE_JVM_FLAGS $JAVA_OPTS -jar /opt/ring-serve/gpu-worker.jar "$@"
