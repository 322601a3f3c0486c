#!/usr/bin/env bash
# container-start.sh -- how long berth's runc driver takes to start a task from a cached busybox
# image, beside a bare `runc run` of an equivalent bundle in the same run. Prints figures; asserts
# nothing. Needs root, runc and busybox-static (apt-get install -y runc busybox-static).
#
#   bench/container-start.sh            # 50 starts each (N=50), debug build
#   N=20 PROFILE=release bench/container-start.sh
#
# Figures: agent desired -> RUNNING for a `sleep` task (assignment seen by the agent's long poll,
# network namespace + veth, overlay rootfs, config.json, shim, runc create/start, the report), and
# desired -> STOPPED for a `true` task, against bare `runc run` of `true` (create, start, exit,
# delete). The difference is the agent's overhead.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "container-start.sh: needs root" >&2; exit 1; }
command -v runc >/dev/null || { echo "container-start.sh: runc is not installed" >&2; exit 1; }
[[ -x /bin/busybox ]] || { echo "container-start.sh: /bin/busybox (busybox-static) is missing" >&2; exit 1; }
profile=${PROFILE:-debug}
flags=()
[[ $profile == release ]] && flags=(--release)
cargo build --quiet -p berth-agent --example container_start "${flags[@]}"
target=${CARGO_TARGET_DIR:-target}
N=${N:-50} "$target/$profile/examples/container_start"
