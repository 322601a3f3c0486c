#!/usr/bin/env bash
# Builds berth's two example images and pushes them to the running berth registry
# ($BERTH_API_ADDR, default 127.0.0.1:7878), each tagged with the git commit and `latest`:
#   busybox     — Debian's busybox-static with its applets linked in /bin; runs `sh`.
#   berth-demo  — the same base plus the berth binary and the shared libraries it links
#                 (berth is not static), entrypoint /usr/local/bin/berth, cmd demo-app,
#                 listening on 0.0.0.0:8080 (DEMO_LISTEN) so the task's address reaches it.
# Uses `berth image build` (crates/registry build_image): deterministic layers, OCI manifest,
# monolithic pushes over plain HTTP.
#
#   BERTH_BIN=target/release/berth scripts/build-example-images.sh   # use (and ship) this binary
#
# Without BERTH_BIN it builds the debug binary (in $CARGO_TARGET_DIR, default target/).
set -euo pipefail
cd "$(dirname "$0")/.."

addr="${BERTH_API_ADDR:-127.0.0.1:7878}"
addr="${addr#http://}"
addr="${addr%/}"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)"

# Debian's busybox-static installs a static /bin/busybox (ldd fails on a static binary).
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  echo "installing busybox-static (Debian package)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
busybox=/bin/busybox

berth="${BERTH_BIN:-}"
if [ -z "$berth" ]; then
  cargo build --quiet --bin berth
  berth="${CARGO_TARGET_DIR:-target}/debug/berth"
fi
if ! "$berth" image build --help >/dev/null 2>&1; then
  echo "error: this berth has no 'image build' subcommand yet" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The image ships the binary without debug info (a debug build carries hundreds of MB of it).
cp "$berth" "$work/berth"
if command -v strip >/dev/null 2>&1; then
  strip --strip-debug "$work/berth"
fi

# Base rootfs: busybox and a symlink per applet.
base="$work/busybox-rootfs"
mkdir -p "$base/bin" "$base/tmp" "$base/etc"
cp -L "$busybox" "$base/bin/busybox"
for applet in $("$base/bin/busybox" --list); do
  [ "$applet" = busybox ] || [ -e "$base/bin/$applet" ] || ln -s busybox "$base/bin/$applet"
done
chmod 1777 "$base/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' >"$base/etc/passwd"
echo 'root:x:0:' >"$base/etc/group"

# App rootfs: the base plus every shared library `ldd` lists for berth (and the loader).
app="$work/app-rootfs"
cp -a "$base" "$app"
ldd "$berth" | awk '/=> \//{print $3} /^[[:space:]]*\//{print $1}' | sort -u | while read -r lib; do
  cp -L --parents "$lib" "$app/"
done

push() { # name rootfs [build flags...]
  local name="$1" rootfs="$2"; shift 2
  for tag in "$commit" latest; do
    "$berth" image build --from "$rootfs" "$@" --tag "$addr/$name:$tag"
  done
}

push busybox "$base" --cmd sh
push berth-demo "$app" \
  --add "$work/berth:/usr/local/bin/berth" \
  --entrypoint /usr/local/bin/berth --cmd demo-app \
  --env PORT=8080 --env DEMO_LISTEN=0.0.0.0:8080 --expose 8080/tcp

echo "pushed $addr/busybox:{$commit,latest} and $addr/berth-demo:{$commit,latest}"
