//! Embeds the libtorch library directory as a runpath, so that the binaries (and every test
//! binary) run without `LD_LIBRARY_PATH`, records libtorch's version (part of every key) and
//! whether it has CUDA (`cfg(libtorch_cuda)`), in both builds: with `torch` (the engine)
//! and without (the front end, which plans with the same keys). The engine build also
//! compiles `csrc/autocast.cpp` (mixed precision: libtorch's autocast for a chosen device
//! type and reduced type, which tch does not expose) against the same libtorch.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo::rustc-check-cfg=cfg(libtorch_cuda)");
    let mut version = String::from("2.11.0");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
        if os == "linux" || os == "macos" {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
        let lib = Path::new(&dir);
        if std::env::var_os("CARGO_FEATURE_TORCH").is_some() {
            compile_autocast(lib);
        }
        // With a CUDA build of libtorch, the engine loads libtorch_cuda when CUDA is first
        // asked about (`device::cuda`), not at start-up: it is not linked.
        let cuda = lib.join("libtorch_cuda.so").exists() || lib.join("torch_cuda.dll").exists();
        if cuda {
            println!("cargo:rustc-cfg=libtorch_cuda");
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

/// Compiles the autocast shim with libtorch's headers and C++ ABI (as torch-sys compiles its
/// own wrappers: `LIBTORCH_CXX11_ABI`, default 1, the ABI of every PyPI wheel since 2.7).
fn compile_autocast(lib: &Path) {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let root = lib.parent().unwrap_or(lib);
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/autocast.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .warnings(false);
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("msvc") {
        build.flag("/std:c++17");
    } else {
        build.flag("-std=c++17").flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"));
    }
    build.compile("ktlab_autocast");
}
