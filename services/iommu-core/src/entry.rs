//! Legacy-mode root and context entries and second-level PTE bits, as the
//! VT-d spec lays them out (QEMU parses the same: `reference/qemu-vtd.md` §3).
//!
//! Scalable-mode entries sit beside them: the root entry's two halves
//! (devfn 0-127 and 128-255), 32-byte context entries pointing at a PASID
//! directory, 8-byte directory entries and 64-byte PASID table entries whose
//! PGTT = 2 points at the same second-level tables legacy mode uses.

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

/// Size of a scalable-mode context entry in bytes.
pub const SCALABLE_CONTEXT_BYTES: u64 = 32;
/// Size of a PASID table entry in bytes.
pub const PASID_ENTRY_BYTES: u64 = 64;
/// RTADDR.TTM = 01: the root table is a scalable-mode root table.
pub const RTADDR_SCALABLE: u64 = 1 << 10;

/// A scalable-mode context entry (PASID directory of 128 entries, PDTS = 0,
/// RID_PASID 0, faults reported): its four qwords.
pub const fn scalable_context_entry(pasid_directory: u64) -> [u64; 4] {
    [pasid_directory & POINTER_MASK | PRESENT, 0, 0, 0]
}

/// A PASID directory entry pointing at a PASID table.
pub const fn pasid_directory_entry(pasid_table: u64) -> u64 {
    pasid_table & POINTER_MASK | PRESENT
}

/// PASID table entry: PGTT (bits 8:6) = 2, second-level translation only.
pub const PGTT_SECOND_LEVEL: u64 = 2 << 6;

/// A PASID table entry translating through second-level tables with
/// `levels` levels, tagged `domain`: its first two qwords (the other six
/// are zero).
pub const fn pasid_entry(page_table: u64, levels: u8, domain: u16) -> [u64; 2] {
    let low = page_table & POINTER_MASK | PGTT_SECOND_LEVEL | (levels as u64 - 2) << 2 | PRESENT;
    [low, domain as u64]
}
