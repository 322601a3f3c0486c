#!/usr/bin/env bash
# Builds berth and runs the example stack (a frontend and an API service behind the load
# balancer) as a single-node cluster on this machine, in the foreground until Ctrl-C.
#
# With runc installed and run as root, the services run as OCI containers: the cluster starts
# first, scripts/build-example-images.sh pushes the berth-demo image (Debian's busybox-static and
# this berth binary) to its registry, and SHOP_IMAGE names that image for the stack file
# (examples/shop/berth.yaml: `image: ${SHOP_IMAGE:-process://berth}`). Otherwise they run with
# the process driver. BERTH_DEMO_DRIVER=process forces the process driver.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p berth-cli
berth="${CARGO_TARGET_DIR:-target}/release/berth"

driver="${BERTH_DEMO_DRIVER:-}"
if [ -z "$driver" ]; then
  if command -v runc >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    driver=runc
  else
    driver=process
    echo "demo: runc is not installed or this is not root: the services run as processes"
  fi
fi
if [ "$driver" = runc ]; then
  addr="${BERTH_API_ADDR:-127.0.0.1:7878}"
  # Components first (no stack yet), so the images can go to the cluster's own registry.
  empty="$(mktemp -d)"
  "$berth" --api-addr "$addr" up -d "$empty" >/dev/null
  rmdir "$empty"
  BERTH_BIN="$berth" BERTH_API_ADDR="$addr" scripts/build-example-images.sh
  export SHOP_IMAGE="$addr/berth-demo:$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)"
  echo "demo: the services run as containers of $SHOP_IMAGE"
  exec "$berth" --api-addr "$addr" up examples/shop "$@"
fi
unset SHOP_IMAGE
exec "$berth" up examples/shop "$@"
