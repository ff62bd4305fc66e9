#!/bin/bash
# vm-v2.sh — berth-cgroups' integration tests on a pure cgroup v2 host (the
# lab's VM; see scripts/vm-v2-tests.sh for how and the environment it takes).
# Usage: crates/berth-cgroups/tests/vm-v2.sh   (as root; slow: TCG emulation)
set -euo pipefail
exec "$(dirname "$0")/../../../scripts/vm-v2-tests.sh" berth-cgroups --tests
