#!/bin/bash
# bench/pull.sh — cold pulls of one multi-layer image from a local registry
# with berth, ctr (containerd) and docker, in one run; then disk use of N
# images that share a base.
#
# 1. builds (release) the berth-image examples `bench_image` and `pull`
#    (`pull` calls ImageStore::pull; set BERTH_CLI=/path/to/berth to time the
#    CLI's `berth --data-root DIR pull -q REF` instead);
# 2. starts privately, under a temp dir, Debian's docker-registry on a free
#    127.0.0.1 port, a containerd and a dockerd (no iptables, no bridge);
# 3. builds an OCI image: busybox + LAYERS layers of MB MiB random data
#    (default 5 x 20 MiB: 6 layers, ~101 MiB; GZIP_LEVEL=0 gives stored
#    blocks like Go's gzip on random data, 1 makes inflate do real work),
#    pushes it with skopeo;
# 4. times RUNS cold pulls of each engine with hyperfine (the image and its
#    content are removed before every run) and prints medians and ratios;
# 5. pulls SHARED images sharing the busybox base and prints the store size.
# Everything started is stopped, and the temp dir removed, on exit.
# Env: RUNS (5) LAYERS (5) MB (20) SHARED (10) GZIP_LEVEL (1) SKIP_DOCKER SKIP_CTR BERTH_CLI EXAMPLES
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}; LAYERS=${LAYERS:-5}; MB=${MB:-20}; SHARED=${SHARED:-10}
for t in docker-registry skopeo hyperfine jq containerd ctr dockerd tini; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install docker-registry skopeo hyperfine jq containerd docker.io tini)" >&2; exit 1; }
done
W=$(mktemp -d /var/tmp/berth-pull-bench.XXXXXX)
PIDS=()
cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
    grep -F " $W/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$W"
}
trap cleanup EXIT

# --- build -------------------------------------------------------------
if [ -z "${EXAMPLES:-}" ]; then   # or point EXAMPLES at already built examples
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
    (cd "$here" && cargo build -q --release -p berth-image --examples)
    EXAMPLES=$CARGO_TARGET_DIR/release/examples
fi
EX=$EXAMPLES
berth_pull() {  # berth_pull ROOT REF: the command line of one berth pull
    if [ -n "${BERTH_CLI:-}" ]; then echo "$BERTH_CLI --data-root $1 pull -q $2"; else echo "$EX/pull --data-root $1 $2"; fi
}

# --- registry ----------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
cat > "$W/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/registry}, delete: {enabled: true}}
http: {addr: $REG}
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

# --- image ---------------------------------------------------------------
"$EX/bench_image" "$W/big-oci" "$LAYERS" "$MB"
REF=$REG/big:latest
skopeo copy --quiet --dest-tls-verify=false "oci:$W/big-oci:latest" "docker://$REF"
raw=$(skopeo inspect --tls-verify=false --raw "docker://$REF")
size=$(jq '[.layers[].size] | add' <<<"$raw"); nl=$(jq '.layers | length' <<<"$raw")
echo "image $REF: $nl layers, $((size / 1048576)) MiB compressed"

# --- peers ---------------------------------------------------------------
start_containerd() {
    local b=$W/containerd; mkdir -p "$b"
    cat > "$b/config.toml" <<EOF
version = 2
root = "$b/root"
state = "$b/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$b/c.sock"
[ttrpc]
  address = "$b/c.sock.ttrpc"
EOF
    setsid tini -s -- containerd --config "$b/config.toml" >"$b/log" 2>&1 </dev/null &
    PIDS+=($!)
    for _ in $(seq 100); do [ -S "$b/c.sock" ] && break; sleep 0.1; done
    CTR="ctr -a $b/c.sock"
}
start_dockerd() {
    local b=$W/docker; mkdir -p "$b"
    cat > "$b/daemon.json" <<EOF
{"data-root": "$b/data", "exec-root": "$b/exec", "pidfile": "$b/dockerd.pid",
 "hosts": ["unix://$b/docker.sock"], "iptables": false, "ip-forward": false,
 "ip-masq": false, "bridge": "none", "insecure-registries": ["$REG"], "log-level": "error"}
EOF
    setsid tini -s -- dockerd --config-file "$b/daemon.json" >"$b/log" 2>&1 </dev/null &
    PIDS+=($!)
    DOCKER="/usr/bin/docker -H unix://$b/docker.sock"
    for _ in $(seq 300); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.1; done
}
[ -n "${SKIP_CTR:-}" ] || start_containerd
[ -n "${SKIP_DOCKER:-}" ] || start_dockerd

# --- timings -------------------------------------------------------------
median() { jq '.results[0].median * 1000 | round' "$1"; }
declare -A MED
run() {  # name prepare command
    hyperfine -N -w 1 -r "$RUNS" --prepare "$2" --export-json "$W/$1.json" "$3" >/dev/null
    MED[$1]=$(median "$W/$1.json")
    jq -r --arg n "$1" '.results[0] | "\($n): median \(.median*1000|round) ms  mean \(.mean*1000|round)  min \(.min*1000|round)  max \(.max*1000|round)  (N=\(.times|length))"' "$W/$1.json"
}
run berth "rm -rf $W/berth-root" "$(berth_pull "$W/berth-root" "$REF")"
[ -n "${SKIP_CTR:-}" ] || run ctr "sh -c '$CTR image rm --sync $REF >/dev/null 2>&1 || true'" "$CTR image pull --plain-http $REF"
[ -n "${SKIP_DOCKER:-}" ] || run docker "sh -c '$DOCKER rmi -f $REF >/dev/null 2>&1 || true'" "$DOCKER pull -q $REF"
for peer in ctr docker; do
    [ -n "${MED[$peer]:-}" ] && awk -v a="${MED[$peer]}" -v b="${MED[berth]}" -v n="$peer" \
        'BEGIN { printf "%s / berth = %.2fx\n", n, a / b }'
done
du -sb "$W/berth-root" | awk '{printf "berth store after one pull: %d MiB\n", $1/1048576}'

# --- disk use of images sharing a base ------------------------------------
"$EX/bench_image" "$W/shared-oci" --shared "$SHARED"
rm -rf "$W/shared-root"
for i in $(seq "$SHARED"); do
    skopeo copy --quiet --dest-tls-verify=false "oci:$W/shared-oci:img$i" "docker://$REG/shared:img$i"
    $(berth_pull "$W/shared-root" "$REG/shared:img$i") >/dev/null 2>&1
    if [ "$i" = 1 ]; then one=$(du -sb "$W/shared-root/snapshots" | cut -f1); fi
done
all=$(du -sb "$W/shared-root/snapshots" | cut -f1)
n=$(find "$W/shared-root/snapshots" -mindepth 1 -maxdepth 1 | wc -l)
echo "disk: 1 image $((one / 1024)) KiB of snapshots; $SHARED images sharing the base: $((all / 1024)) KiB in $n snapshot dirs (base stored once)"
