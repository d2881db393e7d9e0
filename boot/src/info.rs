//! The typed description of the machine that boot hands to the kernel.
//!
//! Fixed-capacity (heapless) so it can live in the kernel's `.bss` and be
//! filled before any allocator exists.

/// Most E820 entries a PVH memory map may carry before boot refuses it.
pub const MAX_REGIONS: usize = 128;
/// Longest kernel command line kept, in bytes.
pub const CMDLINE_MAX: usize = 512;

/// What a range of physical memory is, as the firmware's E820 map says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemoryKind {
    /// RAM the kernel may allocate (E820 type 1).
    Usable,
    /// Reserved by the firmware or the chipset (type 2).
    Reserved,
    /// ACPI tables, reclaimable once parsed (type 3).
    AcpiReclaimable,
    /// ACPI non-volatile storage (type 4).
    AcpiNvs,
    /// Memory with detected errors (type 5).
    Unusable,
    /// Disabled memory (type 6).
    Disabled,
    /// Persistent memory (type 7).
    Persistent,
    /// Any other type number, kept verbatim.
    Other(u32),
}

impl MemoryKind {
    /// Decodes an E820 type number.
    pub const fn from_e820(ty: u32) -> Self {
        match ty {
            1 => Self::Usable,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Unusable,
            6 => Self::Disabled,
            7 => Self::Persistent,
            other => Self::Other(other),
        }
    }
}

/// One physical range of the firmware memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First byte of the range.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the firmware says the range is.
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// One past the last byte, saturating at `u64::MAX`.
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// Everything the kernel learns from the boot protocol, copied out of the
/// loader's memory.
#[derive(Clone, Debug, Default)]
pub struct BootInfo {
    /// The firmware memory map, in the order the loader gave it.
    pub memory_map: heapless::Vec<MemoryRegion, MAX_REGIONS>,
    /// Physical address of the ACPI RSDP, if the loader found one.
    pub rsdp_paddr: Option<u64>,
    /// The kernel command line (`-append`), truncated to [`CMDLINE_MAX`].
    pub cmdline: heapless::String<CMDLINE_MAX>,
    /// Whether the command line was longer than [`CMDLINE_MAX`].
    pub cmdline_truncated: bool,
    /// TSC value read by the first instruction of the 32-bit entry point.
    pub entry_tsc: u64,
    /// Physical address of the PVH `start_info` the loader passed.
    pub start_info_paddr: u64,
}
