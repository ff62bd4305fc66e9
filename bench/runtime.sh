#!/bin/bash
# bench/runtime.sh [RUNTIME...]  — keel beside its peers, in one run.
#
# For each runtime binary (default: $KEEL, else the release keel that
# scripts/build-keel.sh builds and installs, then runc and crun):
#   run     `RT run --bundle B ID` of /bin/true from a busybox bundle
#   csd     `RT create`, `RT start`, `RT delete -f` with a fresh id each time
#   exec    `RT exec ID /bin/true` into a running container
#   cpu     user+system CPU of `run` (the runtime and everything it waited
#           for), averaged over all rounds: insensitive to other load
#   RSS     peak resident set size of `run` (GNU time, max of 5)
# plus the namespace floor (`unshare --fork --pid --mount --uts --ipc --net true`).
#
# The machine is shared and noisy, so the runtimes are interleaved: every
# round runs each runtime (and the floor) once, in turn, and the medians over
# the rounds are compared. Load drifting during the benchmark then hits every
# runtime alike. Wall time comes from bash's $EPOCHREALTIME (no extra process).
# Prints medians in ms and the ratio of each runtime to the first one.
#
# crun 1.8 refuses hybrid cgroups, so the whole benchmark runs in a private mount
# namespace where /sys/fs/cgroup/unified is unmounted (every runtime sees the same
# pure-v1 layout). Env: RUNS (default 40), WARMUP (default 3), WORKDIR (default a
# temp dir, removed).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${_KEEL_BENCH_NS:-}" ] && mountpoint -q /sys/fs/cgroup/unified; then
  exec unshare --mount --propagation private env _KEEL_BENCH_NS=1 \
    bash -c 'umount /sys/fs/cgroup/unified && exec "$0" "$@"' "$0" "$@"
fi
RUNS=${RUNS:-40}
WARMUP=${WARMUP:-3}
KEEL=${KEEL:-$("$here/scripts/build-keel.sh")}
# How much of crates/keel/link-order.txt this keel still matches (the list
# names the functions of one exact build; docs/performance.md).
if nm "$KEEL" >/dev/null 2>&1; then
  listed=$(grep -c . "$here/crates/keel/link-order.txt" || true)
  found=$(nm --defined-only "$KEEL" | awk 'NR==FNR{want[$1]=1; next} ($3 in want) && !seen[$3]++ {n++} END{print n+0}' "$here/crates/keel/link-order.txt" -)
  echo "keel link order: $found of $listed listed functions found in $KEEL" >&2
fi
[ $# -gt 0 ] || set -- "$KEEL" runc crun
W=${WORKDIR:-$(mktemp -d /var/tmp/keel-bench.XXXXXX)}
bins=() names=()
for rt in "$@"; do
  b=$(readlink -f "$(command -v "$rt")") || { echo "$rt: not found" >&2; exit 1; }
  bins+=("$b"); names+=("$(basename "$b")")
done
cleanup() {
  local i n
  for i in "${!bins[@]}"; do
    n=${names[$i]}
    for id in $("${bins[$i]}" --root "$W/state/$n" list -q 2>/dev/null); do
      "${bins[$i]}" --root "$W/state/$n" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  [ -n "${WORKDIR:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

. "$here/bench/bundles.sh"
busybox_bundles "$W" runc spec

# NOW: microseconds since the epoch; TICKS: CPU ticks (user+system) of this
# shell's reaped children so far. Both set without forking (no $(...)).
now() { NOW=${EPOCHREALTIME//[.,]/}; }
ticks() { local -a st; read -r -a st < /proc/$$/stat; TICKS=$(( st[15] + st[16] )); }
median_ms() { sort -n | awk '{v[NR]=$1} END { m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.2f", m/1000 }'; }
peak_rss() { local m=0 v; for _ in 1 2 3 4 5; do
    v=$(/usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1); [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }

ok=()
for i in "${!bins[@]}"; do
  X="${bins[$i]} --root $W/state/${names[$i]}"
  if $X run --bundle "$B" "sanity" >/dev/null 2>&1 </dev/null &&
     $X run -d --bundle "$SB" sleeper >/dev/null 2>&1 </dev/null; then
    ok+=("$i")
  else
    echo "${names[$i]}: cannot run a container, skipped" >&2
  fi
done
[ ${#ok[@]} -gt 0 ] || exit 1
tps=$(getconf CLK_TCK)
declare -A CPU
for i in "${ok[@]}"; do CPU[$i]=0; : > "$W/$i.run"; : > "$W/$i.csd"; : > "$W/$i.exec"; done
: > "$W/floor"
q() { "$@" >/dev/null 2>&1 </dev/null; }
for ((r = 0; r < WARMUP + RUNS; r++)); do
  keep=$(( r >= WARMUP ))
  now; t0=$NOW; q unshare --fork --pid --mount --uts --ipc --net /bin/true; now; t1=$NOW
  [ $keep = 1 ] && echo $(( t1 - t0 )) >> "$W/floor"
  for i in "${ok[@]}"; do
    X="${bins[$i]} --root $W/state/${names[$i]}"
    ticks; c0=$TICKS
    now; t0=$NOW; q $X run --bundle "$B" "r$r"; now; t1=$NOW
    ticks; c1=$TICKS
    q $X create --bundle "$B" "c$r"; q $X start "c$r"; q $X delete -f "c$r"; now; t2=$NOW
    q $X exec sleeper /bin/true; now; t3=$NOW
    if [ $keep = 1 ]; then
      echo $(( t1 - t0 )) >> "$W/$i.run"; echo $(( t2 - t1 )) >> "$W/$i.csd"
      echo $(( t3 - t2 )) >> "$W/$i.exec"; CPU[$i]=$(( CPU[$i] + c1 - c0 ))
    fi
  done
done
floor=$(median_ms < "$W/floor")
declare -A RUN CSD EXEC RSS CPUMS
for i in "${ok[@]}"; do
  RUN[$i]=$(median_ms < "$W/$i.run"); CSD[$i]=$(median_ms < "$W/$i.csd")
  EXEC[$i]=$(median_ms < "$W/$i.exec")
  CPUMS[$i]=$(awk -v t="${CPU[$i]}" -v n="$RUNS" -v hz="$tps" 'BEGIN { printf "%.2f", t * 1000 / hz / n }')
  RSS[$i]=$(peak_rss ${bins[$i]} --root "$W/state/${names[$i]}" run --bundle "$B" rss)
done
first=${ok[0]}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "rounds: $RUNS (+$WARMUP warm-up), interleaved; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-10s %10s %10s %10s %10s %14s\n' runtime "run ms" "c+s+d ms" "exec ms" "cpu ms" "peak RSS KiB"
for i in "${ok[@]}"; do
  printf '%-10s %10s %10s %10s %10s %14s\n' "${names[$i]}" "${RUN[$i]}" "${CSD[$i]}" "${EXEC[$i]}" "${CPUMS[$i]}" "${RSS[$i]}"
done
printf '%-10s %10s\n' floor "$floor"
n1=${names[$first]}
echo; echo "ratios (runtime / $n1; >1 means $n1 is faster or smaller):"
for i in "${ok[@]}"; do
  [ "$i" != "$first" ] || continue
  printf '%-10s run %s  c+s+d %s  exec %s  cpu %s  RSS %s\n' "${names[$i]}" \
    "$(ratio "${RUN[$i]}" "${RUN[$first]}")" "$(ratio "${CSD[$i]}" "${CSD[$first]}")" \
    "$(ratio "${EXEC[$i]}" "${EXEC[$first]}")" "$(ratio "${CPUMS[$i]}" "${CPUMS[$first]}")" \
    "$(ratio "${RSS[$i]}" "${RSS[$first]}")"
done
echo "$n1 run / floor: $(ratio "${RUN[$first]}" "$floor")"
