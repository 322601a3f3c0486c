#!/usr/bin/env bash
# Benchmark of berth's metrics store: ingest rate and the p99 of a 24 h / 1 s query.
# Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p berth-metrics --example bench
