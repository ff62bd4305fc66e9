#!/bin/bash
# vm-v2.sh — run keel's lifecycle, cgroups and update integration tests on a
# pure cgroup v2 host.
#
# This machine is hybrid (v1 controllers + /sys/fs/cgroup/unified), so keel's
# v2 path (clone3 CLONE_INTO_CGROUP, the eBPF device filter, cgroup.freeze,
# the cgroup namespace with a cgroup2 mount inside) cannot be exercised here.
# The lab's vm-cgroup2.sh boots a throwaway VM whose only hierarchy is cgroup2
# and whose / is the host's / (read-only, with a writable overlay), so the
# keel binary and the test binaries built here run there as-is.
#
# Usage: crates/keel/tests/vm-v2.sh      (as root; slow: TCG emulation)
# Env:   VM_SCRIPT (default /work/shared/lab/vm-cgroup2.sh), CARGO_TARGET_DIR,
#        KEEL_VM_TESTS (test targets, default "lifecycle cgroups update joined_namespaces commands"),
#        TEST_ARGS (extra args for the test binaries, e.g. a name filter),
#        TIMEOUT (seconds for the whole VM run, default 2400)
# Exit:  0 when every test binary passed in the VM.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../../.." && pwd)
vm_script=${VM_SCRIPT:-/work/shared/lab/vm-cgroup2.sh}
[ -x "$vm_script" ] || { echo "vm-v2.sh: $vm_script not found" >&2; exit 2; }
export TIMEOUT=${TIMEOUT:-2400}

# 1. build keel and the chosen integration test binaries on the host; the
#    test binaries find keel through the absolute path cargo compiled in.
targets=()
for t in ${KEEL_VM_TESTS:-lifecycle cgroups update joined_namespaces commands}; do targets+=(--test "$t"); done
(cd "$workspace" && cargo build -p keel --bins >&2)
mapfile -t bins < <(cd "$workspace" &&
    cargo test -p keel "${targets[@]}" --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .profile.test == true
                  and (.target.kind | index("test")) and .executable != null) | .executable')
[ "${#bins[@]}" -gt 0 ] || { echo "vm-v2.sh: no integration test binary built" >&2; exit 2; }
for b in "${bins[@]}"; do
    case "$b" in *" "*) echo "vm-v2.sh: path with spaces: $b" >&2; exit 2 ;; esac
done

# 2. the guest script (the VM mounts a tmpfs on /tmp, so it lives in /var/tmp)
guest=$(mktemp /var/tmp/keel-vm.XXXXXX.sh)
out=$(mktemp /var/tmp/keel-vm.XXXXXX.log)
trap 'rm -f "$guest" "$out"' EXIT
cat > "$guest" <<GUEST
#!/bin/sh
export BERTH_PRIVILEGED_TESTS=1 RUST_BACKTRACE=1
echo "guest: \$(stat -fc %T /sys/fs/cgroup) controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
# The lab VM chroots into its overlay. In a chroot the kernel refuses new user
# namespaces, and setns() into a container's mount namespace puts the root at
# the namespace's root mount (the initramfs here), not at the container's
# rootfs. Moving the overlay onto the initramfs root (reached through PID 1's
# root) makes it the namespace root, as on a real host.
/bin/busybox mount -o move /proc/1/root/mnt/root /proc/1/root/. ||
    echo "guest: cannot make the overlay the mount namespace root"
rc=0
for b in ${bins[*]}; do
    echo "guest: running \$b"
    "\$b" --test-threads=1 ${TEST_ARGS:-} || rc=1
done
echo "keel-vm: rc=\$rc"
GUEST
chmod +x "$guest"

# 3. boot, run, and judge by the marker line (the VM's own exit code is qemu's)
"$vm_script" "$guest" 2>&1 | tee "$out"
grep -q '^keel-vm: rc=0' "$out"
