# bench/bundles.sh — sourced by bench/runtime.sh and scripts/keel-link-order.sh.
#
# busybox_bundles DIR SPEC-COMMAND...: make DIR/bundle (busybox-static,
# config.json from `SPEC-COMMAND --bundle DIR/bundle`, terminal off, runs
# /bin/true) and DIR/sleeper (the same rootfs, runs `sleep 3600`); sets B and
# SB to them.
busybox_bundles() {
  local dir=$1 a
  shift
  B=$dir/bundle
  SB=$dir/sleeper
  mkdir -p "$B/rootfs"/{bin,dev,etc,proc,sys,tmp} "$SB"
  cp /bin/busybox "$B/rootfs/bin/busybox"
  for a in true sh sleep cat; do ln -sf busybox "$B/rootfs/bin/$a"; done
  "$@" --bundle "$B"
  jq '.process.terminal=false | .process.args=["/bin/true"]' "$B/config.json" > "$B/c" &&
    mv "$B/c" "$B/config.json"
  jq '.process.args=["/bin/sleep","3600"] | .root.path="'"$B/rootfs"'"' "$B/config.json" > "$SB/config.json"
}
