#!/usr/bin/env bash
# registry.sh -- push and pull throughput of a ~200 MB image against berth's registry, beside
# writing the same bytes to disk with dd (fsync) in the same run. Prints figures; asserts nothing.
# Needs skopeo (apt-get install -y skopeo).
#
#   bench/registry.sh                 # SIZE_MB=200, RUNS=3
#   SIZE_MB=500 RUNS=1 bench/registry.sh
#
# Each run builds an image of one layer of fresh random (incompressible) bytes into an OCI layout
# with `berth image build --layout` (not timed), then times:
#   push  skopeo copy oci:LAYOUT -> docker://SERVER/bench:N   (upload, digest check, fsync)
#   pull  skopeo copy docker://SERVER/bench:N -> dir:D        (download, digest check)
#   dd    dd if=LAYER of=FILE bs=1M conv=fsync               (the disk's own write speed)
# Each figure is the layer's size over the wall time; the medians of the runs come last.
source "$(dirname "$0")/common.sh"
command -v skopeo >/dev/null || { echo "registry.sh: skopeo is not installed" >&2; exit 1; }
SIZE_MB="${SIZE_MB:-200}"
RUNS="${RUNS:-3}"
(cd "$BENCH_DIR" && "$BERTH_BIN" up -d >/dev/null 2>&1)

seconds() { python3 -c "import time; print(time.monotonic())"; }
push=(); pull=(); disk=()
for i in $(seq 1 "$RUNS"); do
  # Fresh random bytes each run, so no blob is in the registry (or skopeo's cache) already.
  data="$BENCH_DIR/data" layout="$BENCH_DIR/layout"
  rm -rf "$data" "$layout" "$BENCH_DIR/pulled"
  mkdir -p "$data"
  head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$data/random.bin"
  "$BERTH_BIN" image build --from scratch --add "$data/random.bin:/random.bin" \
    --cmd /random.bin --layout "$layout" >/dev/null
  # The layer is the largest blob of the layout.
  layer=$(ls -S "$layout"/blobs/sha256/* | head -1)
  mb=$(python3 -c "print($(stat -c %s "$layer") / 1e6)")
  rate() { python3 -c "print(f'{$mb / ($2 - $1):.1f}')"; }
  t0=$(seconds)
  skopeo copy -q --dest-tls-verify=false "oci:$layout" "docker://$BERTH_API_ADDR/bench:run$i" >/dev/null
  t1=$(seconds)
  skopeo copy -q --src-tls-verify=false "docker://$BERTH_API_ADDR/bench:run$i" "dir:$BENCH_DIR/pulled" >/dev/null
  t2=$(seconds)
  dd if="$layer" of="$BENCH_DIR/dd.out" bs=1M conv=fsync status=none
  t3=$(seconds)
  rm -f "$BENCH_DIR/dd.out"
  push+=("$(rate "$t0" "$t1")"); pull+=("$(rate "$t1" "$t2")"); disk+=("$(rate "$t2" "$t3")")
  printf 'run %s: layer %.1f MB: push %s MB/s, pull %s MB/s, dd %s MB/s\n' "$i" "$mb" "${push[-1]}" "${pull[-1]}" "${disk[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median of $RUNS: push $(median "${push[@]}") MB/s   pull $(median "${pull[@]}") MB/s   dd (fsync) $(median "${disk[@]}") MB/s"
