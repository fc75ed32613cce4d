//! The `dynap` command-line program: the entry point `cargo xtask` drives. See `dynap help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    dynap_train::cli::run(&args)
}

/// Tells glibc's allocator to keep freed memory for reuse instead of returning it to the kernel.
///
/// Simulations and gradients allocate their outputs and tapes afresh on every call (megabytes to
/// hundreds of megabytes). By default glibc serves each from a new `mmap` and unmaps it on free, so every
/// call paid a page fault and a page clear per 4 KiB: 14 % of the time of a training step at N = 256.
/// Served from the heap and never trimmed, the pages are faulted in once; the peak resident memory is
/// the same (the high-water mark was resident anyway).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_MAX: i32 = -4;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: `mallopt` only changes the allocator's tuning; it is called before any other thread
    // exists. A refused setting (return 0) leaves the default, which is correct, only slower.
    unsafe {
        mallopt(M_MMAP_MAX, 0);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
