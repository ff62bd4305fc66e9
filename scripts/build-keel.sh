#!/bin/bash
# scripts/build-keel.sh — the release build of keel that ships and that
# bench/runtime.sh measures; prints the binary's path.
#
# keel is linked statically (glibc's libc.a, libseccomp.a): a static binary
# maps no shared libraries, so a run resolves no symbols and keeps ~1 MB less
# resident (docs/performance.md). Its code is laid out by
# crates/keel/link-order.txt, whose symbol names match only this exact build
# (scripts/keel-link-order.sh); the binary keeps its symbols so that script
# can trace it (scripts/install.sh strips the installed copy). Other crates
# are built as usual.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
triple=x86_64-unknown-linux-gnu
target=${CARGO_TARGET_DIR:-$here/target}
CARGO_PROFILE_RELEASE_STRIP=false RUSTFLAGS="-C target-feature=+crt-static" \
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
  cargo build --quiet --release --locked --manifest-path "$here/Cargo.toml" -p keel --target "$triple" >&2
echo "$target/$triple/release/keel"
