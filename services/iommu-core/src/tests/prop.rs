//! Property test: any sequence of map/unmap calls behaves like a plain map
//! from 4 KiB pages to (physical page, access), as seen both by the
//! driver's errors and by the model's translation of every page touched.
//! Translations are checked after every step, so the model's IOTLB holds
//! entries a missing invalidation would leave stale.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::Access;
use crate::error::Error;
use crate::fault::FaultReason;

/// The IOVA window the operations play in: 16 MiB.
const WINDOW_PAGES: u64 = 4096;

#[derive(Clone, Debug)]
enum Op {
    Map {
        page: u64,
        pages: u64,
        target: u64,
        access: u8,
    },
    Unmap {
        page: u64,
        pages: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    // Page numbers often 2 MiB-aligned (multiples of 512) so large pages
    // are exercised.
    let page = prop_oneof![
        0..WINDOW_PAGES,
        (0..WINDOW_PAGES / 512).prop_map(|p| p * 512)
    ];
    let pages = prop_oneof![1..8u64, (1..3u64).prop_map(|n| n * 512), 1..1100u64];
    let target = prop_oneof![0..0x10_0000u64, (0..64u64).prop_map(|p| p * 512)];
    prop_oneof![
        (page.clone(), pages.clone(), target, 1..4u8).prop_map(|(page, pages, target, access)| {
            Op::Map {
                page,
                pages,
                target,
                access,
            }
        }),
        (page, pages).prop_map(|(page, pages)| Op::Unmap { page, pages }),
    ]
}

type Reference = BTreeMap<u64, (u64, Access)>;

fn check_all(model: &Model, reference: &Reference, touched: &[u64]) {
    for &page in touched {
        let iova = page << 12 | 0x18;
        let expected = reference.get(&page);
        for write in [false, true] {
            let got = model.translate(EDU, iova, write);
            let allowed = expected
                .filter(|(_, a)| a.contains(if write { Access::WRITE } else { Access::READ }));
            match allowed {
                // Legacy mode: output into the interrupt range (0xFEEx_xxxx) faults.
                Some((target, _)) if (0xfee00..0xfef00).contains(target) => {
                    assert_eq!(got, Err(FaultReason::InterruptAddress), "page {page:#x}")
                }
                Some((target, _)) => assert_eq!(got, Ok(target << 12 | 0x18), "page {page:#x}"),
                None => {
                    let denied = if write {
                        FaultReason::WriteDenied
                    } else {
                        FaultReason::ReadDenied
                    };
                    assert_eq!(got, Err(denied), "page {page:#x} write={write}");
                }
            }
        }
    }
}

/// Runs `ops` on a fresh unit (legacy or scalable mode) and checks every
/// step against the reference.
fn run(ops: Vec<Op>, scalable: bool) -> Result<(), TestCaseError> {
    let (model, mut unit) = if scalable {
        up_scalable(ModelConfig::qemu_scalable())
    } else {
        qemu()
    };
    unit.attach(EDU).unwrap();
    let mut reference = Reference::new();
    let mut touched = Vec::new();
    for op in ops {
        match op {
            Op::Map {
                page,
                pages,
                target,
                access,
            } => {
                let access = Access::from_bits_truncate(access);
                let result = unit.map(EDU, page << 12, target << 12, pages << 12, access);
                let clash = (page..page + pages).find(|p| reference.contains_key(p));
                match clash {
                    Some(p) => prop_assert_eq!(result, Err(Error::Overlap { iova: p << 12 })),
                    None => {
                        prop_assert_eq!(result, Ok(()));
                        for i in 0..pages {
                            reference.insert(page + i, (target + i, access));
                        }
                    }
                }
            }
            Op::Unmap { page, pages } => {
                let result = unit.unmap(EDU, page << 12, pages << 12);
                let hole = (page..page + pages).find(|p| !reference.contains_key(p));
                match result {
                    Ok(()) => {
                        prop_assert_eq!(hole, None);
                        for p in page..page + pages {
                            reference.remove(&p);
                        }
                    }
                    Err(Error::NotMapped { iova }) => prop_assert_eq!(Some(iova >> 12), hole),
                    Err(Error::SplitsLargePage { iova }) => {
                        // Only where a 2 MiB leaf really sits across an
                        // edge, and before any hole (errors come in
                        // address order).
                        prop_assert_eq!(iova % (2 << 20), 0);
                        let end = (page + pages) << 12;
                        prop_assert!(iova < page << 12 || iova + (2 << 20) > end);
                        if let Some(h) = hole {
                            prop_assert!(iova < h << 12);
                        }
                    }
                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                }
            }
        }
        match &op {
            Op::Map { page, pages, .. } | Op::Unmap { page, pages } => {
                for p in [*page, page + pages / 2, page + pages - 1, page + pages] {
                    touched.push(p);
                }
            }
        }
        check_all(&model, &reference, &touched);
        // Keep the single fault record free so faults stay observable.
        unit.drain_faults(|_| ());
    }
    for (page, (target, access)) in &reference {
        prop_assert_eq!(
            unit.lookup(EDU, page << 12),
            Ok(Some((target << 12, *access)))
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn map_unmap_sequences_match_a_reference(ops in proptest::collection::vec(op(), 1..24)) {
        run(ops, false)?;
    }

    #[test]
    fn scalable_map_unmap_sequences_match_a_reference(
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        run(ops, true)?;
    }
}
