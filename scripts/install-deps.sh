#!/bin/bash
# Install the Debian packages Berth needs to build, test and benchmark.
# Idempotent: does nothing when everything is already present.
set -euo pipefail
pkgs=(
  build-essential pkg-config libseccomp-dev   # build (libseccomp for keel)
  busybox-static iproute2 iptables jq procps  # test fixtures and tools
  runc crun containerd docker.io              # peers: runtimes and engines
  skopeo umoci docker-registry apache2-utils  # image peers and the test registry
  hyperfine time tini                         # benchmarks (bench/pull.sh runs dockerd with tini)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
