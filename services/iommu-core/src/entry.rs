//! Legacy-mode root and context entries and second-level PTE bits, as the
//! VT-d spec lays them out (QEMU parses the same: `reference/qemu-vtd.md` §3).
//!
//! Kept apart from the code that writes them so scalable-mode entries
//! (32-byte context entries, PASID directory and table) can be added beside
//! these without touching the table logic.

/// Size of a root or legacy context entry in bytes.
pub const ENTRY_BYTES: u64 = 16;

/// Root and context entries: present bit (low qword bit 0).
pub const PRESENT: u64 = 1 << 0;
/// Bits 63:12 of a pointer field.
pub const POINTER_MASK: u64 = 0x000f_ffff_ffff_f000;

/// A legacy root entry pointing at a context table: `(low, high)`.
pub const fn root_entry(context_table: u64) -> (u64, u64) {
    (context_table & POINTER_MASK | PRESENT, 0)
}

/// A legacy context entry: translation type 0 (untranslated requests walk
/// the second-level tables), faults reported (FPD = 0), AW = levels − 2,
/// domain id in bits 87:72. Returns `(low, high)`.
pub const fn context_entry(page_table: u64, levels: u8, domain: u16) -> (u64, u64) {
    let low = page_table & POINTER_MASK | PRESENT;
    let high = (levels as u64 - 2) | (domain as u64) << 8;
    (low, high)
}

/// Second-level PTE: read allowed.
pub const PTE_READ: u64 = 1 << 0;
/// Second-level PTE: write allowed.
pub const PTE_WRITE: u64 = 1 << 1;
/// Second-level PTE: page size (a 2 MiB leaf at level 2).
pub const PTE_LARGE: u64 = 1 << 7;
/// Second-level PTE: output address, bits 51:12.
pub const PTE_ADDRESS: u64 = POINTER_MASK;
