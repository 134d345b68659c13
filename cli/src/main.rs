//! The `ktlab` binary: the command line without libtorch (see `ktlab::engine`).
fn main() -> std::process::ExitCode {
    ktlab::commands::main()
}
