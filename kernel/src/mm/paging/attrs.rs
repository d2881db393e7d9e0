//! Page sizes, memory types and mapping attributes, and how they are encoded
//! in x86-64 page-table entries.
//!
//! Kept apart from the table walker so the bit-level encoding (the part the
//! SDM dictates) can be read and checked on its own.

/// The bits of a page-table entry this builder uses (SDM Vol. 3, 4.5).
pub mod bits {
    /// P: the entry is valid.
    pub const PRESENT: u64 = 1 << 0;
    /// R/W: writes allowed (in a leaf; intermediates always set it).
    pub const WRITABLE: u64 = 1 << 1;
    /// U/S: ring 3 may access.
    pub const USER: u64 = 1 << 2;
    /// PWT: write-through (PAT index bit 0).
    pub const PWT: u64 = 1 << 3;
    /// PCD: cache disable (PAT index bit 1).
    pub const PCD: u64 = 1 << 4;
    /// A: set by the CPU on access.
    pub const ACCESSED: u64 = 1 << 5;
    /// D: set by the CPU on write (leaves only).
    pub const DIRTY: u64 = 1 << 6;
    /// PS: this PDPT or PD entry is a 1 GiB or 2 MiB leaf.
    pub const HUGE: u64 = 1 << 7;
    /// G: global, survives CR3 loads (leaves only).
    pub const GLOBAL: u64 = 1 << 8;
    /// Available to software (bit 9): Faultline marks a leaf whose frame
    /// is RAM owned by the address space (a service's image, stack, data
    /// and DMA memory). MMIO and anything else lacks it.
    pub const OWNED: u64 = 1 << 9;
    /// XD/NX: no instruction fetch.
    pub const NO_EXECUTE: u64 = 1 << 63;
    /// Physical address bits of an entry (MAXPHYADDR up to 52).
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
}

use bits::{GLOBAL, HUGE, NO_EXECUTE, OWNED, PCD, PRESENT, PWT, USER, WRITABLE};

/// The size of one mapping: which level holds the leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a PT entry.
    Size4K,
    /// 2 MiB, a PD entry with PS set.
    Size2M,
    /// 1 GiB, a PDPT entry with PS set (needs CPUID PDPE1GB).
    Size1G,
}

impl PageSize {
    /// Bytes mapped.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 1 << 12,
            Self::Size2M => 1 << 21,
            Self::Size1G => 1 << 30,
        }
    }

    /// Table level holding the leaf: 1 = PT, 2 = PD, 3 = PDPT.
    pub(super) const fn level(self) -> u32 {
        match self {
            Self::Size4K => 1,
            Self::Size2M => 2,
            Self::Size1G => 3,
        }
    }

    pub(super) const fn at_level(level: u32) -> Self {
        match level {
            3 => Self::Size1G,
            2 => Self::Size2M,
            _ => Self::Size4K,
        }
    }
}

/// Memory type of a mapping, through the PWT and PCD bits and the power-on
/// PAT (write-combining would need a PAT reprogram and is not offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cache {
    /// Normal RAM (PAT entry 0).
    WriteBack,
    /// PWT (PAT entry 1).
    WriteThrough,
    /// PCD alone, "UC-" (PAT entry 2); MTRRs may still make it WC.
    UncachedMinus,
    /// PCD|PWT, strong uncached (PAT entry 3): MMIO.
    Uncached,
}

/// What a mapping allows and how it is cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapAttrs {
    /// Writes allowed (RW).
    pub writable: bool,
    /// Instruction fetch allowed (NX clear).
    pub executable: bool,
    /// Ring 3 may access it (U/S).
    pub user: bool,
    /// Memory type.
    pub cache: Cache,
    /// Kept in the TLB across CR3 loads (G); for kernel mappings.
    pub global: bool,
    /// The frame is RAM the address space's owner owns ([`bits::OWNED`]):
    /// the kernel copies to and from a service only through such pages, and
    /// frees only such frames when the service goes.
    pub owned: bool,
    /// Largest page [`super::AddressSpace::map`] may use. In a [`Translation`], the
    /// size actually found.
    pub largest_page: PageSize,
}

impl MapAttrs {
    /// Kernel code: read and execute.
    pub const KERNEL_TEXT: Self = Self::kernel(false, true, Cache::WriteBack);
    /// Kernel constants: read only.
    pub const KERNEL_RODATA: Self = Self::kernel(false, false, Cache::WriteBack);
    /// Kernel data, stacks and the direct map of RAM: read and write.
    pub const KERNEL_DATA: Self = Self::kernel(true, false, Cache::WriteBack);
    /// Device registers: read and write, uncached, 4 KiB pages only so a
    /// grant never maps more than it names.
    pub const KERNEL_MMIO: Self = Self {
        largest_page: PageSize::Size4K,
        ..Self::kernel(true, false, Cache::Uncached)
    };
    /// Service code (all user mappings of RAM are owned).
    pub const USER_TEXT: Self = Self::user(false, true);
    /// Service constants.
    pub const USER_RODATA: Self = Self::user(false, false);
    /// Service data and stacks.
    pub const USER_DATA: Self = Self::user(true, false);

    const fn kernel(writable: bool, executable: bool, cache: Cache) -> Self {
        let largest_page = PageSize::Size1G;
        Self {
            writable,
            executable,
            user: false,
            cache,
            global: true,
            owned: false,
            largest_page,
        }
    }

    const fn user(writable: bool, executable: bool) -> Self {
        let (cache, largest_page) = (Cache::WriteBack, PageSize::Size4K);
        Self {
            writable,
            executable,
            user: true,
            cache,
            global: false,
            owned: true,
            largest_page,
        }
    }

    /// Whether the kernel may copy to (`write`) or from a page mapped with
    /// these attributes on a service's behalf: user-accessible RAM the
    /// service owns (never MMIO: a device register read or written by the
    /// kernel's copy loop would have side effects, or fault), and writable
    /// when the kernel writes.
    pub const fn kernel_may_copy(&self, write: bool) -> bool {
        self.user && self.owned && (!write || self.writable)
    }

    /// The same attributes with a different largest page.
    pub const fn with_largest_page(self, largest_page: PageSize) -> Self {
        Self {
            largest_page,
            ..self
        }
    }

    /// The leaf entry mapping `phys` with these attributes at `size`.
    pub(super) fn leaf(&self, phys: u64, size: PageSize) -> u64 {
        let mut entry = phys | PRESENT;
        entry |= if self.writable { WRITABLE } else { 0 };
        entry |= if self.user { USER } else { 0 };
        entry |= if self.global { GLOBAL } else { 0 };
        entry |= if self.owned { OWNED } else { 0 };
        entry |= if self.executable { 0 } else { NO_EXECUTE };
        entry |= if size == PageSize::Size4K { 0 } else { HUGE };
        entry
            | match self.cache {
                Cache::WriteBack => 0,
                Cache::WriteThrough => PWT,
                Cache::UncachedMinus => PCD,
                Cache::Uncached => PCD | PWT,
            }
    }

    /// Decodes a leaf entry (the PAT bit is ignored; this builder never sets
    /// it).
    pub(super) fn from_leaf(entry: u64, size: PageSize) -> Self {
        let cache = match (entry & PCD != 0, entry & PWT != 0) {
            (false, false) => Cache::WriteBack,
            (false, true) => Cache::WriteThrough,
            (true, false) => Cache::UncachedMinus,
            (true, true) => Cache::Uncached,
        };
        Self {
            writable: entry & WRITABLE != 0,
            executable: entry & NO_EXECUTE == 0,
            user: entry & USER != 0,
            cache,
            global: entry & GLOBAL != 0,
            owned: entry & OWNED != 0,
            largest_page: size,
        }
    }
}

/// Where a virtual address leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address the virtual address maps to.
    pub phys: u64,
    /// The leaf's attributes; `largest_page` is the leaf's size.
    pub attrs: MapAttrs,
    /// Size of the page holding the address.
    pub size: PageSize,
}
