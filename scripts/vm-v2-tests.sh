#!/bin/bash
# scripts/vm-v2-tests.sh CRATE [CARGO TEST TARGET ARGS...] — run a crate's
# integration test binaries as root on a pure cgroup v2 host.
#
# This machine is hybrid (v1 controllers + /sys/fs/cgroup/unified), so the
# v2 code paths cannot be exercised here. The lab's vm-cgroup2.sh boots a
# throwaway VM whose only hierarchy is cgroup2 and whose / is the host's /
# (read-only, with a writable overlay), so test binaries built here run
# there as they are. Target args default to `--tests` (every integration
# test); e.g. `--test lifecycle --test cgroups`.
#
# Env:  VM_SCRIPT (default /work/shared/lab/vm-cgroup2.sh), CARGO_TARGET_DIR,
#       TEST_ARGS (extra args for the test binaries, e.g. a name filter),
#       TIMEOUT (seconds for the whole VM run, default 2400)
# Exit: 0 when every test binary passed in the VM. Slow: TCG emulation.
set -euo pipefail
crate=${1:?usage: vm-v2-tests.sh CRATE [cargo test target args...]}
shift
[ $# -gt 0 ] || set -- --tests
workspace=$(cd "$(dirname "$0")/.." && pwd)
vm_script=${VM_SCRIPT:-/work/shared/lab/vm-cgroup2.sh}
[ -x "$vm_script" ] || { echo "vm-v2-tests.sh: $vm_script not found" >&2; exit 2; }
export TIMEOUT=${TIMEOUT:-2400}

# 1. build the test binaries on the host and find them (they reach the
#    crate's own binaries through absolute paths compiled in)
mapfile -t bins < <(cd "$workspace" &&
    cargo test -p "$crate" "$@" --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .profile.test == true
                  and (.target.kind | index("test")) and .executable != null) | .executable')
[ "${#bins[@]}" -gt 0 ] || { echo "vm-v2-tests.sh: no integration test binary built" >&2; exit 2; }
for b in "${bins[@]}"; do
    case "$b" in *" "*) echo "vm-v2-tests.sh: path with spaces: $b" >&2; exit 2 ;; esac
done

# 2. the guest script (the VM mounts a tmpfs on /tmp, so it lives in /var/tmp)
guest=$(mktemp /var/tmp/berth-vm.XXXXXX.sh)
out=$(mktemp /var/tmp/berth-vm.XXXXXX.log)
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
echo "vm-tests: rc=\$rc"
GUEST
chmod +x "$guest"

# 3. boot, run, and judge by the marker line (the VM's own exit code is qemu's)
"$vm_script" "$guest" 2>&1 | tee "$out"
grep -q '^vm-tests: rc=0' "$out"
