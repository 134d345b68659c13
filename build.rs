//! Embeds the libtorch library directory as a runpath, so that the binaries (and every test
//! binary) run without `LD_LIBRARY_PATH`, records libtorch's version (part of every key) and
//! whether it has CUDA (`cfg(libtorch_cuda)`), in both builds: with `torch` (the engine)
//! and without (the front end, which plans with the same keys).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo::rustc-check-cfg=cfg(libtorch_cuda)");
    let torch = std::env::var_os("CARGO_FEATURE_TORCH").is_some();
    let mut version = String::from("2.11.0");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
        if os == "linux" || os == "macos" {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
        let lib = Path::new(&dir);
        // With a CUDA build of libtorch, keep libtorch_cuda linked even though no symbol
        // of it is referenced directly: otherwise `--as-needed` drops it and CUDA is
        // never registered (the binary then only ever sees the CPU).
        let cuda = lib.join("libtorch_cuda.so").exists() || lib.join("torch_cuda.dll").exists();
        if cuda {
            println!("cargo:rustc-cfg=libtorch_cuda");
        }
        // (Only where libtorch is linked at all: the front end must not load it.)
        if torch && os == "linux" && cuda {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
        // PyPI wheel: torch/version.py; libtorch archive: build-version.
        if let Some(v) = lib.parent().and_then(|p| std::fs::read_to_string(p.join("version.py")).ok()) {
            if let Some(line) = v.lines().find(|l| l.starts_with("__version__")) {
                version = line.split('\'').nth(1).unwrap_or(&version).to_string();
            }
        } else if let Some(v) = lib.parent().and_then(|p| std::fs::read_to_string(p.join("build-version")).ok()) {
            version = v.trim().to_string();
        }
    }
    println!("cargo:rustc-env=KTLAB_LIBTORCH_VERSION={version}");
}
