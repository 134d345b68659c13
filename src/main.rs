//! The `ktlab-engine` binary: the command line with libtorch, every command in-process.
fn main() -> std::process::ExitCode {
    fixed_malloc_thresholds();
    ktlab::commands::main()
}

/// glibc's malloc adapts its mmap and trim thresholds to the largest block freed so far:
/// until a large block is freed, every training step's activations (a few MB each) are
/// mapped or trimmed and faulted in again, a step at a time (measured: 3.2 million page
/// faults and 8 s of system time for one epoch of rotation on CIFAR-10, against 0.1
/// million and 2.4 s once a 30 MB block had been freed). Fixed thresholds, at the values
/// that adaptation reaches, make a stage's speed independent of what it happened to free.
fn fixed_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
