//! Host tests of the memory-management code: the normalised memory map, the
//! frame allocator, and the page-table builder, each with example cases taken
//! from QEMU's real memory maps and property tests over random inputs.

mod frame;
mod memory_map;
mod paging;
