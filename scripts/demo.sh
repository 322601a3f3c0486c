#!/usr/bin/env bash
# Builds berth and runs the example stack (a frontend and an API service behind the load
# balancer) as a single-node cluster on this machine, in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p berth-cli
exec target/release/berth up examples/shop "$@"
