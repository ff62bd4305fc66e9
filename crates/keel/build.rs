//! Lay keel's hot code out together: lld places the functions listed in
//! `link-order.txt` first, in that order (scripts/keel-link-order.sh writes
//! the list; docs/performance.md says why it matters). Only when rustc links
//! with its own lld, its default on x86_64 Linux since Rust 1.90: with another
//! linker the list is not passed and keel is laid out as usual.

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || ["linker", "fuse-ld", "link-self-contained"]
            .iter()
            .any(|f| flags.contains(f));
    if target != "x86_64-unknown-linux-gnu" || own_linker {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rustc-link-arg-bin=keel=-Wl,--symbol-ordering-file={dir}/link-order.txt");
    println!("cargo:rustc-link-arg-bin=keel=-Wl,--no-warn-symbol-ordering");
}
