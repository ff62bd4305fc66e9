#!/bin/bash
# Install Berth on a fresh machine: Debian packages, a release build of keel and
# berth into /usr/local/bin, then a first container as a smoke run.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
scripts/install-deps.sh
cargo build --release --locked -p berth
keel=$(scripts/build-keel.sh)   # static, code laid out by crates/keel/link-order.txt
install -s -m 0755 "$keel" /usr/local/bin/keel
install -s -m 0755 "${CARGO_TARGET_DIR:-target}/release/berth" /usr/local/bin/berth
echo "installed: $(keel --version | head -1); $(berth --version)"
# main job: run a busybox container with keel
tmp=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
trap 'keel delete --force berth-demo-$$ >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
for a in sh echo cat hostname id; do ln -sf busybox "$tmp/rootfs/bin/$a"; done
(cd "$tmp" && keel spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"sh", "-c", "echo hello from $(hostname), uid $(id -u)"/' config.json)
keel run --bundle "$tmp" "berth-demo-$$"
