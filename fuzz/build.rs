//! Embeds the libtorch library directory as a runpath, so the fuzz target runs without
//! `LD_LIBRARY_PATH` (the ktlab crate's own build.rs only covers its own binaries).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
