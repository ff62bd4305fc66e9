#!/bin/bash
# vm-v2.sh — keel's integration tests that depend on the cgroup layout, on a
# pure cgroup v2 host: clone3 CLONE_INTO_CGROUP, the eBPF device filter,
# cgroup.freeze, the cgroup namespace with a cgroup2 mount inside, staged
# namespaces. Runs in the lab's VM (scripts/vm-v2-tests.sh says how and which
# environment it takes).
#
# Usage: crates/keel/tests/vm-v2.sh      (as root; slow: TCG emulation)
# Env:   KEEL_VM_TESTS (test targets, default
#        "lifecycle cgroups update joined_namespaces commands")
set -euo pipefail
targets=()
for t in ${KEEL_VM_TESTS:-lifecycle cgroups update joined_namespaces commands}; do
    targets+=(--test "$t")
done
exec "$(dirname "$0")/../../../scripts/vm-v2-tests.sh" keel "${targets[@]}"
