//! Lays out the release binary's hot code together. A run executes a few thousand of the
//! binary's functions, spread over its 110 MB of code; the kernel maps code 64 KB around each
//! page a run touches, so a run kept half the binary resident. src/link_order.txt lists the
//! functions the benchmark's workloads run (benches/link_order.py writes it) and lld places
//! them first, side by side.
use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("src/link_order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    // Optimised profiles only (release and those inheriting it: PROFILE is then "release"), on
    // the target whose default linker is lld since Rust 1.90: GNU ld has no such option.
    let optimised = env::var("PROFILE").as_deref() == Ok("release");
    let lld_target = env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    if optimised && lld_target && rustc_minor() >= 90 {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        // Functions of another build's dependencies are absent here; the rest keep their order.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The minor version of the compiler building us ("rustc 1.95.0 (…)" gives 95; 0 if unknown).
fn rustc_minor() -> u32 {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc).arg("--version").output().map(|out| out.stdout);
    let version = String::from_utf8(version.unwrap_or_default()).unwrap_or_default();
    version.split(['.', ' ']).nth(2).and_then(|minor| minor.parse().ok()).unwrap_or(0)
}
