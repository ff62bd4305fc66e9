#!/bin/bash
# The whole test suite, as CI runs it (root, real kernel): lint, unit and
# privileged integration tests of every crate.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
scripts/install-deps.sh
export BERTH_PRIVILEGED_TESTS=1
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast -- --test-threads=4
# keel's integration suite once more against the build that ships (static,
# laid out by crates/keel/link-order.txt: scripts/build-keel.sh)
KEEL_TEST_RUNTIME=$(scripts/build-keel.sh) cargo test -p keel --tests --no-fail-fast -- --test-threads=4
if [ "${BERTH_VM_TESTS:-0}" = 1 ]; then   # pure cgroup v2 in the lab's TCG VM: slow, opt-in
  crates/berth-cgroups/tests/vm-v2.sh
  crates/keel/tests/vm-v2.sh
fi
