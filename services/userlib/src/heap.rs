//! A heap for the services that need one (feature `heap`): a
//! `#[global_allocator]` over a static arena of [`SIZE`] bytes, so `alloc`
//! (`Box`, `Vec`, `Rc`, `BTreeMap`) works in a service. The service calls
//! [`init`] first, before anything allocates; an allocation before that,
//! or beyond the arena, fails (and the service panics, which the
//! supervisor sees).
//!
//! The arena is a `static` taken once through an [`ExclusiveCell`], so it
//! becomes the allocator's `&'static mut` slice without `unsafe`. The
//! allocator is `linked_list_allocator`'s first-fit free list behind a spin
//! lock (a service is single-threaded; the lock is never contended).
//!
//! The allocator is installed only in bare-metal builds: host tests keep
//! the system allocator.

use core::mem::MaybeUninit;

use hermit_sync::ExclusiveCell;
use linked_list_allocator::LockedHeap;

/// The arena's size: 2 MiB (the service's `memory-kib` must cover it).
pub const SIZE: usize = 2 << 20;

static ARENA: ExclusiveCell<[MaybeUninit<u8>; SIZE]> =
    ExclusiveCell::new([MaybeUninit::uninit(); SIZE]);

#[cfg_attr(target_os = "none", global_allocator)]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands the arena to the allocator. Returns false (and changes nothing)
/// when called again.
pub fn init() -> bool {
    let Some(arena) = ARENA.take() else {
        return false;
    };
    ALLOCATOR.lock().init_from_slice(arena);
    true
}

/// Bytes in use and bytes free in the arena.
pub fn usage() -> (usize, usize) {
    let heap = ALLOCATOR.lock();
    (heap.used(), heap.free())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_is_taken_once_and_serves_allocations() {
        assert!(init());
        assert!(!init(), "a second init changes nothing");
        assert_eq!(usage().0, 0);
        let layout = core::alloc::Layout::from_size_align(4096, 16).unwrap();
        let block = ALLOCATOR.lock().allocate_first_fit(layout).expect("room");
        assert!(usage().0 >= 4096);
        // SAFETY: `block` came from this heap with `layout`, and is freed once.
        unsafe { ALLOCATOR.lock().deallocate(block, layout) };
        assert_eq!(usage().0, 0);
    }
}
