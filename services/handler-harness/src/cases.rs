//! The cases the harness runs, in order: what each delivers. Cases are
//! independent (each starts when the previous one has settled: every fault
//! answered or past its deadline) and the same on every run.

use faultline_ipc::protocol::faults::{FaultAccess, PageAccess, PageRequest};

/// One thing a case delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A DMA remapping fault at `iova`.
    Dma {
        iova: u64,
        access: FaultAccess,
        reason: u8,
        pasid: Option<u32>,
        backed: bool,
    },
    /// A page group of `pages` pages from `first`, each with `access`.
    Group {
        pasid: Option<u32>,
        prg_index: u16,
        first: u64,
        pages: u8,
        access: PageAccess,
    },
}

/// A case: a name and what it delivers (nothing: a quiet period in which
/// the handler must answer nothing).
pub struct Case {
    pub name: &'static str,
    pub items: &'static [Item],
}

const RW: PageAccess = PageAccess {
    read: true,
    write: true,
    exec: false,
    privileged: false,
};

const fn dma(iova: u64, backed: bool) -> Item {
    Item::Dma {
        iova,
        access: FaultAccess::Write,
        reason: 0x5,
        pasid: None,
        backed,
    }
}

const fn group(pasid: u32, prg_index: u16, pages: u8) -> Item {
    Item::Group {
        pasid: Some(pasid),
        prg_index,
        first: 0x7000_0000,
        pages,
        access: RW,
    }
}

/// Every case, in the order they run. `quiet` and `still_pulling` are
/// checked by the harness itself (see `judge`).
pub const CASES: &[Case] = &[
    Case {
        name: "dma_fault",
        items: &[dma(0x40_0000, false)],
    },
    Case {
        name: "dma_fault_backed",
        items: &[dma(0x40_1000, true)],
    },
    Case {
        name: "page_group_single",
        items: &[group(1, 1, 1)],
    },
    Case {
        name: "page_group_16",
        items: &[group(1, 2, 16)],
    },
    Case {
        name: "page_groups_interleaved",
        items: &[
            group(1, 3, 2),
            group(2, 3, 2),
            group(1, 4, 1),
            group(2, 4, 3),
        ],
    },
    Case {
        name: "malformed_input",
        items: &[
            Item::Dma {
                iova: 0xffff_ffff_ffff_f000,
                access: FaultAccess::Read,
                reason: 0xff,
                pasid: Some(0xf_ffff),
                backed: false,
            },
            Item::Group {
                pasid: None,
                prg_index: 0x1ff,
                first: 0xffff_8000_0000_0000,
                pages: 2,
                access: PageAccess {
                    read: true,
                    write: true,
                    exec: true,
                    privileged: true,
                },
            },
            Item::Group {
                pasid: Some(3),
                prg_index: 5,
                first: 0,
                pages: 0,
                access: RW,
            },
        ],
    },
    Case {
        name: "burst_past_the_queue",
        items: &[
            dma(0x50_0000, false),
            dma(0x50_1000, false),
            dma(0x50_2000, false),
            dma(0x50_3000, false),
            dma(0x50_4000, false),
            dma(0x50_5000, false),
            group(1, 6, 1),
            group(2, 6, 1),
            dma(0x50_6000, false),
            dma(0x50_7000, false),
            dma(0x50_8000, false),
            group(1, 7, 4),
        ],
    },
    Case {
        name: "quiet",
        items: &[],
    },
];

/// A page group's requests.
pub fn pages(first: u64, n: u8, access: PageAccess) -> impl Iterator<Item = PageRequest> {
    (0..u64::from(n)).map(move |i| PageRequest {
        address: first + (i << 12),
        access,
    })
}
