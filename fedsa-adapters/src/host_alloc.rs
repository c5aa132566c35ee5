//! Keeping freed tensor memory in the process between training steps.
//!
//! A training step allocates and frees hundreds of activation and gradient buffers of 1-16 MB.
//! glibc serves blocks above its mmap threshold (128 KiB, raised adaptively up to 32 MiB) with
//! fresh `mmap`s and hands the top of the heap back to the kernel as soon as 128 KiB of it is
//! free, so every step pays page faults and zeroing for memory it just released: about 10% of a
//! MiniLM step on 2 cores (`benches/train_step`). Serving those sizes from the heap and never
//! trimming it keeps the pages mapped; the peak resident set is unchanged (it is set by the
//! largest step), only the release back to the OS between steps is given up.

/// Tunes the C allocator for training (see the module doc). Call early in `main`, before the
/// large buffers exist; calling it again is harmless. A no-op where the C library is not glibc.
pub(crate) fn tune_host_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's largest accepted mmap threshold on 64-bit targets (HEAP_MAX_SIZE / 2).
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        // SAFETY: mallopt takes plain integers and only changes allocator parameters, under
        // the allocator's own lock; an option glibc rejects is ignored (returns 0).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}
