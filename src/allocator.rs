//! What the engine asks of the binary's allocator, mimalloc (set in `main.rs`).

/// Gives the pages freed so far back to the system now, not after mimalloc's purge delay
/// (1 s). For a phase that frees much at once before the next one allocates anew: a join's
/// build side is read in batches, then kept as a few columns, and the batches' pages would
/// otherwise stay resident under everything the probe allocates (W3 at SF10: 20 MB of its
/// peak). Once a phase, not per batch: returning pages at every free cost W1 20% more CPU.
/// Where mimalloc is not the global allocator (the tests), its heaps are empty and this
/// does nothing.
pub fn give_back_freed_memory() {
    // SAFETY: no arguments to uphold; mimalloc collects its own heaps and arenas.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
