#!/bin/sh
# Entrypoint of the kvmesh image (Dockerfile).
#
#   (no arguments), or flags only   kvmesh start --config "$KVMESH_CONFIG" --data-dir "$KVMESH_DATA_DIR" [flags]
#   start [flags]                   the same; a --config or --data-dir among the flags wins (the last one counts)
#   any other kvmesh command        run as given: validate FILE, status --node URL, get KEY, ...
#
# exec, so that the node is PID 1 and gets the SIGTERM of `docker stop` or of
# the kubelet itself: it then drains its requests, leaves its cluster and
# closes its storage.
set -eu

kvmesh() {
  exec node /app/packages/server/bin/kvmesh.js "$@"
}

start() {
  kvmesh start --config "${KVMESH_CONFIG:?set KVMESH_CONFIG to a config file, e.g. configs/ring-local.json}" \
    --data-dir "${KVMESH_DATA_DIR:?set KVMESH_DATA_DIR to the data volume}" "$@"
}

case "${1:-}" in
  '' | -*) start "$@" ;;
  start)
    shift
    start "$@"
    ;;
  *) kvmesh "$@" ;;
esac
