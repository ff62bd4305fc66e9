#!/bin/bash
# scripts/keel-link-order.sh — regenerate crates/keel/link-order.txt.
#
# keel runs for a few milliseconds and touches a small part of its code, but
# the kernel maps a binary's code 64 KiB at a time around every page it
# touches, so code scattered over the binary costs resident memory. The linker
# (lld, rustc's default on x86_64 Linux) places the functions listed in
# link-order.txt first, in that order (--symbol-ordering-file, set by
# crates/keel/build.rs). This script builds keel exactly as scripts/build-keel.sh
# does, runs the commands containerd and Docker call most (run, create, start,
# state, exec, kill, delete, ...) under fn-trace (berth-testkit), which records
# every function each process runs, and writes the functions in the order they
# first ran. Rust symbol names carry a hash of the build configuration, so the
# list matches only the build scripts/build-keel.sh makes: regenerate it after
# changing dependencies, features or the toolchain (bench/runtime.sh reports
# how much of the list the binary still matches). Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "keel-link-order: needs root (it runs containers)" >&2; exit 1; }
if [ -z "${_KEEL_ORDER_NS:-}" ]; then
  exec unshare --mount --propagation private env _KEEL_ORDER_NS=1 "$0" "$@"
fi

KEEL=$("$here/scripts/build-keel.sh")
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --quiet --manifest-path "$here/Cargo.toml" -p berth-testkit --bin fn-trace
TRACE=$target/debug/fn-trace

W=$(mktemp -d /var/tmp/keel-order.XXXXXX)
cleanup() {
  for id in $("$KEEL" --root "$W/state" list -q 2>/dev/null); do
    "$KEEL" --root "$W/state" delete -f "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$W"
}
trap cleanup EXIT
nm --defined-only -S "$KEEL" > "$W/symbols"

. "$here/bench/bundles.sh"
busybox_bundles "$W" "$KEEL" spec

t() { "$TRACE" "$W/symbols" "$W/hits" -- "$KEEL" --root "$W/state" "$@" </dev/null >/dev/null 2>&1 || true; }
scenario() {
  t run --bundle "$B" "r$1"
  t create --bundle "$B" "c$1"
  t start "c$1"
  t state "c$1"
  t delete "c$1"
  t run -d --bundle "$SB" "s$1"
  t exec "s$1" /bin/true
  t exec -d "s$1" /bin/true
  t state "s$1"
  t ps "s$1"
  t pause "s$1"
  t resume "s$1"
  t update --pids-limit 100 "s$1"
  t events --stats "s$1"
  t kill "s$1" KILL
  t delete -f "s$1"
  t list
  t list -q
  t list -f json
  t state nonexistent
}
# The benchmark's layout (pure v1: crun refuses hybrid), then this host's.
if mountpoint -q /sys/fs/cgroup/unified; then
  umount /sys/fs/cgroup/unified
  scenario v1
  mount -t cgroup2 none /sys/fs/cgroup/unified
fi
scenario hybrid
t --version
mkdir -p "$W/spec" && t spec --bundle "$W/spec"
t features

awk '!seen[$0]++' "$W/hits" > "$here/crates/keel/link-order.txt"
echo "keel-link-order: $(wc -l < "$here/crates/keel/link-order.txt") functions in crates/keel/link-order.txt" >&2
