#!/bin/bash
# vm-v2.sh — run berth-cgroups' integration tests on a pure cgroup v2 host.
#
# This machine is hybrid (v1 controllers + /sys/fs/cgroup/unified), so the v2
# manager cannot be exercised here. The lab's vm-cgroup2.sh boots a throwaway
# VM whose only hierarchy is cgroup2 and whose / is the host's / (read-only,
# with a writable overlay), so the test binaries built here run there as-is.
#
# Usage: crates/berth-cgroups/tests/vm-v2.sh      (as root; slow: TCG emulation)
# Env:   VM_SCRIPT (default /work/shared/lab/vm-cgroup2.sh), CARGO_TARGET_DIR,
#        TEST_ARGS (extra args for the test binaries, e.g. a test name filter)
# Exit:  0 when every test binary passed in the VM.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../../.." && pwd)
vm_script=${VM_SCRIPT:-/work/shared/lab/vm-cgroup2.sh}
[ -x "$vm_script" ] || { echo "vm-v2.sh: $vm_script not found" >&2; exit 2; }

# 1. build the integration test binaries on the host and find them
mapfile -t bins < <(cd "$workspace" &&
    cargo test -p berth-cgroups --tests --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .profile.test == true
                  and (.target.kind | index("test")) and .executable != null) | .executable')
[ "${#bins[@]}" -gt 0 ] || { echo "vm-v2.sh: no integration test binary built" >&2; exit 2; }
for b in "${bins[@]}"; do
    case "$b" in *" "*) echo "vm-v2.sh: path with spaces: $b" >&2; exit 2 ;; esac
done

# 2. the guest script (the VM mounts a tmpfs on /tmp, so it lives in /var/tmp)
guest=$(mktemp /var/tmp/berth-cgroups-vm.XXXXXX.sh)
trap 'rm -f "$guest"' EXIT
cat > "$guest" <<GUEST
#!/bin/sh
export BERTH_PRIVILEGED_TESTS=1 RUST_BACKTRACE=1
echo "guest: \$(stat -fc %T /sys/fs/cgroup) controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
rc=0
for b in ${bins[*]}; do
    echo "guest: running \$b"
    "\$b" --test-threads=1 ${TEST_ARGS:-} || rc=1
done
echo "berth-cgroups-vm: rc=\$rc"
GUEST
chmod +x "$guest"

# 3. boot, run, and judge by the marker line (the VM's own exit code is qemu's)
out=$(mktemp /var/tmp/berth-cgroups-vm.XXXXXX.log)
trap 'rm -f "$guest" "$out"' EXIT
"$vm_script" "$guest" 2>&1 | tee "$out"
grep -q '^berth-cgroups-vm: rc=0' "$out"
