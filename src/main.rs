//! The `ktlab-engine` binary: the command line with libtorch, every command in-process.
fn main() -> std::process::ExitCode {
    ktlab::commands::main()
}
