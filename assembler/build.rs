//! Builds the apk shim (`shim/apk.rs`), the static `/sbin/apk` that build steps of images
//! without apk call (see `src/apkshim/mod.rs`), and leaves it in `OUT_DIR` for
//! `include_bytes!`.
//!
//! It must run where the image has no C library, so it is linked statically
//! (`-C target-feature=+crt-static`) with the same rustc and target as this crate: nothing
//! beyond the stable toolchain and the C library's static archive (Debian's `libc6-dev`)
//! is needed. Where static linking is impossible the shim is left empty, with a warning:
//! `assemble` then says, in a step that calls apk, that this build of it has no shim.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=shim/apk.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let shim = out.join("apk-shim");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("TARGET");
    let result = Command::new(rustc)
        .args(["--edition=2024", "--crate-type=bin", "--crate-name=apk"])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args(["-C", "codegen-units=1", "-C", "target-feature=+crt-static"])
        .arg("-o")
        .arg(&shim)
        .arg("shim/apk.rs")
        .output();
    match result {
        Ok(o) if o.status.success() => {}
        Ok(o) => missing(&shim, &String::from_utf8_lossy(&o.stderr)),
        Err(e) => missing(&shim, &e.to_string()),
    }
}

fn missing(shim: &PathBuf, why: &str) {
    let first = why.lines().find(|l| l.contains("error")).unwrap_or(why);
    println!(
        "cargo:warning=the static apk shim could not be built ({first}); build steps of images \
         without apk will not find apk. Install the C library's static archive (Debian: libc6-dev, \
         Fedora: glibc-static) and rebuild."
    );
    fs_err::write(shim, b"").expect("write the empty shim");
}
