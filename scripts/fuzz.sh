#!/usr/bin/env bash
# Runs the property tests that feed arbitrary input to berth's parsers and edges, with more cases
# than the test suite's 256: `scripts/fuzz.sh [CASES]` (default 5000). Each run is bounded by the
# number of cases; a failure prints the smallest input found.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${1:-5000}"
cargo test -p berth-stack --test fuzz
cargo test -p berth-model --test fuzz
cargo test -p berth-api-aws --test fuzz
cargo test -p berth-server --test bad_input
cargo test -p berth-proxy --test fuzz
