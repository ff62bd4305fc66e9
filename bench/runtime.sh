#!/bin/bash
# bench/runtime.sh [RUNTIME...]  — keel beside its peers, in one run.
#
# For each runtime binary (default: keel from target/release, runc, crun):
#   run     `RT run --bundle B ID` of /bin/true from a busybox bundle
#   csd     create + start + delete with a fresh id each time
#   exec    `RT exec ID /bin/true` into a running container
#   RSS     peak resident set size of `run` (GNU time, max of 5)
# plus the namespace floor (`unshare --fork --pid --mount --uts --ipc --net true`).
# Prints medians in ms and the ratio of each runtime to the first one.
#
# crun 1.8 refuses hybrid cgroups, so the whole benchmark runs in a private mount
# namespace where /sys/fs/cgroup/unified is unmounted (every runtime sees the same
# pure-v1 layout). Env: RUNS (default 40), WORKDIR (default a temp dir, removed).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${_KEEL_BENCH_NS:-}" ] && mountpoint -q /sys/fs/cgroup/unified; then
  exec unshare --mount --propagation private env _KEEL_BENCH_NS=1 \
    bash -c 'umount /sys/fs/cgroup/unified && exec "$0" "$@"' "$0" "$@"
fi
RUNS=${RUNS:-40}
[ $# -gt 0 ] || set -- "$here/target/release/keel" runc crun
W=${WORKDIR:-$(mktemp -d /var/tmp/keel-bench.XXXXXX)}
cleanup() {
  for rt in "$@"; do
    for id in $("$rt" --root "$W/state/$(basename "$rt")" list -q 2>/dev/null); do
      "$rt" --root "$W/state/$(basename "$rt")" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  [ -n "${WORKDIR:-}" ] || rm -rf "$W"
}
trap 'cleanup "$@"' EXIT

B=$W/bundle
mkdir -p "$B/rootfs"/{bin,dev,etc,proc,sys,tmp}
cp /bin/busybox "$B/rootfs/bin/busybox"
for a in true sh sleep cat; do ln -sf busybox "$B/rootfs/bin/$a"; done
runc spec --bundle "$B"
jq '.process.terminal=false | .process.args=["/bin/true"]' "$B/config.json" > "$B/c" && mv "$B/c" "$B/config.json"
SB=$W/sleeper
mkdir -p "$SB"; ln -s "$B/rootfs" "$SB/rootfs"
jq '.process.args=["/bin/sleep","3600"] | .root.path="'"$B/rootfs"'"' "$B/config.json" > "$SB/config.json"

median() { jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$1"; }
peak_rss() { local m=0 v; for _ in 1 2 3 4 5; do
    v=$(/usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1); [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }

hyperfine -N -w 3 -r "$RUNS" --export-json "$W/floor.json" \
  "unshare --fork --pid --mount --uts --ipc --net /bin/true" >/dev/null 2>&1
floor=$(median "$W/floor.json")
declare -A RUN CSD EXEC RSS
names=()
for rt in "$@"; do
  rt=$(readlink -f "$(command -v "$rt")"); n=$(basename "$rt"); names+=("$n")
  X="$rt --root $W/state/$n"
  $X run --bundle "$B" "sanity-$n" || { echo "$n: cannot run a container, skipped" >&2; continue; }
  hyperfine -N -w 3 -r "$RUNS" --export-json "$W/$n-run.json" "$X run --bundle $B run-$n" >/dev/null 2>&1
  echo 0 > "$W/cnt"
  hyperfine -N -w 3 -r "$RUNS" --export-json "$W/$n-csd.json" \
    "sh -c 'i=\$(cat $W/cnt); echo \$((i+1)) > $W/cnt; $X create --bundle $B c\$i && $X start c\$i && $X delete -f c\$i'" >/dev/null 2>&1
  $X run -d --bundle "$SB" "sleeper-$n" >/dev/null 2>&1 </dev/null
  hyperfine -N -w 3 -r "$RUNS" --export-json "$W/$n-exec.json" "$X exec sleeper-$n /bin/true" >/dev/null 2>&1
  $X delete -f "sleeper-$n" >/dev/null 2>&1 || true
  RUN[$n]=$(median "$W/$n-run.json"); CSD[$n]=$(median "$W/$n-csd.json"); EXEC[$n]=$(median "$W/$n-exec.json")
  RSS[$n]=$(peak_rss $X run --bundle "$B" "rss-$n")
done
first=${names[0]}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\n%-10s %12s %12s %12s %14s\n' runtime "run ms" "c+s+d ms" "exec ms" "peak RSS KiB"
for n in "${names[@]}"; do
  [ -n "${RUN[$n]:-}" ] || continue
  printf '%-10s %12s %12s %12s %14s\n' "$n" "${RUN[$n]}" "${CSD[$n]}" "${EXEC[$n]}" "${RSS[$n]}"
done
printf '%-10s %12s\n' floor "$floor"
echo; echo "ratios (runtime / $first; >1 means $first is faster or smaller):"
for n in "${names[@]}"; do
  [ "$n" != "$first" ] && [ -n "${RUN[$n]:-}" ] || continue
  printf '%-10s run %s  c+s+d %s  exec %s  RSS %s\n' "$n" "$(ratio "${RUN[$n]}" "${RUN[$first]}")" \
    "$(ratio "${CSD[$n]}" "${CSD[$first]}")" "$(ratio "${EXEC[$n]}" "${EXEC[$first]}")" "$(ratio "${RSS[$n]}" "${RSS[$first]}")"
done
echo "$first run / floor: $(ratio "${RUN[$first]}" "$floor")"
