#!/usr/bin/env bash
# Runs berth's whole test suite. Installs first what the tests use and a fresh machine lacks
# (Debian packages, the AWS CLI and boto3 from PyPI), so it works on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_missing=()
command -v skopeo >/dev/null 2>&1 || apt_missing+=(skopeo)
command -v runc >/dev/null 2>&1 || apt_missing+=(runc)
[ -x /bin/busybox ] || apt_missing+=(busybox-static)
command -v ip >/dev/null 2>&1 || apt_missing+=(iproute2)
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v nft >/dev/null 2>&1 || apt_missing+=(nftables)
command -v curl >/dev/null 2>&1 || apt_missing+=(curl)
command -v nsenter >/dev/null 2>&1 || apt_missing+=(util-linux)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "installing ${apt_missing[*]} (Debian packages)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
if ! command -v aws >/dev/null 2>&1 || ! python3 -c 'import boto3' >/dev/null 2>&1; then
  echo "installing awscli and boto3 (PyPI)"
  python3 -m pip install --quiet awscli boto3
  hash -r
fi

# A clean clone gains nothing from incremental state: it only costs disk.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

# The end-to-end tests run the real `berth` binary.
cargo build --quiet -p berth-cli
# Property tests (fuzzing with proptest) stay bounded: 256 cases each unless told otherwise.
export PROPTEST_CASES="${PROPTEST_CASES:-256}"
cargo test --workspace --no-fail-fast
