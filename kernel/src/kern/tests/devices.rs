//! Device capabilities: PCI config access, DMA budgets and MMIO mappings.
//! Each syscall here touches hardware, so each argument check is a rule of
//! its own.

use super::*;

/// The driver's handles in [`driver_world`] (edu resolves to [`BDF`]
/// through [`OneDevice`]).
const PCI: u64 = 0;
const DMA: u64 = 1;
const MMIO: u64 = 2;
const BDF: (u8, u8, u8) = (0, 3, 0);

/// One driver service holding the device, 8 KiB of DMA and a page of MMIO.
fn driver_world() -> (Kernel, FakePlatform) {
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "d".try_into().unwrap(),
        services: [service(
            "driver",
            1,
            &[
                cap(
                    "edu",
                    CapSpec::Pci {
                        vendor: 0x1234,
                        device: 0x11e8,
                        index: 0,
                    },
                ),
                cap("dma", CapSpec::Dma { bytes: 8192 }),
                cap(
                    "regs",
                    CapSpec::Mmio {
                        base: 0xfeb0_0000,
                        len: 0x1000,
                    },
                ),
            ],
        )]
        .into_iter()
        .collect(),
        channels: heapless::Vec::new(),
    };
    let mut k = Kernel::new(&config, &mut OneDevice::new()).unwrap();
    let mut p = FakePlatform::new(1);
    k.start_all(&mut p).unwrap();
    (k, p)
}

fn pci_read(k: &mut Kernel, p: &mut FakePlatform, offset: u64, width: u64) -> (u64, [u64; 4]) {
    sys(
        k,
        p,
        0,
        Sysnum::PciConfigRead,
        [PCI, offset, width, 0, 0, 0],
    );
    result(k, 0)
}

fn pci_write(k: &mut Kernel, p: &mut FakePlatform, offset: u64, width: u64, value: u64) -> u64 {
    sys(
        k,
        p,
        0,
        Sysnum::PciConfigWrite,
        [PCI, offset, width, value, 0, 0],
    );
    result(k, 0).0
}

fn dma(k: &mut Kernel, p: &mut FakePlatform, bytes: u64) -> (u64, [u64; 4]) {
    sys(k, p, 0, Sysnum::DmaAlloc, [DMA, bytes, 0, 0, 0, 0]);
    result(k, 0)
}

#[test]
fn pci_config_takes_widths_1_2_4_aligned_inside_the_4k_space() {
    let (mut k, mut p) = driver_world();
    let bad = Error::BadArgument as u64;
    // Each of width, range and alignment alone is enough to refuse.
    for (offset, width) in [
        (0, 0),
        (0, 3),
        (0, 8),
        (4, 5),
        (4096, 1),
        (4096, 4),
        (u64::MAX, 1),
        (1, 2),
        (2, 4),
        (0x41, 4),
        (4095, 2),
    ] {
        assert_eq!(
            pci_read(&mut k, &mut p, offset, width).0,
            bad,
            "{offset}/{width}"
        );
        assert_eq!(
            pci_write(&mut k, &mut p, offset, width, 0),
            bad,
            "{offset}/{width}"
        );
    }
    assert!(p.pci_reads.is_empty() && p.pci_writes.is_empty());
    // Every width at the last aligned offset of the space is fine.
    for (offset, width) in [(4095, 1), (4094, 2), (4092, 4), (0, 1), (0x40, 2)] {
        let held = (0..width).fold(0u64, |v, i| {
            let b = p.pci.get((offset + i) as usize).copied().unwrap_or(0);
            v | (u64::from(b) << (8 * i))
        });
        assert_eq!(
            pci_read(&mut k, &mut p, offset, width),
            (0, [held, 0, 0, 0]),
            "{offset}/{width}"
        );
        assert_eq!(p.pci_reads.last(), Some(&(BDF, offset as u16, width as u8)));
    }
}

#[test]
fn pci_reads_never_write_and_writes_reach_the_device_once() {
    let (mut k, mut p) = driver_world();
    p.pci[0x04] = 0x02;
    assert_eq!(pci_read(&mut k, &mut p, 0x04, 2), (0, [2, 0, 0, 0]));
    assert!(p.pci_writes.is_empty());
    assert_eq!(pci_write(&mut k, &mut p, 0x04, 2, 0x1_0000_0006), 0);
    assert_eq!(result(&k, 0).1, [0; 4]);
    // The value is cut to the 32 bits a config cycle carries.
    assert_eq!(p.pci_writes, [(BDF, 0x04, 2, 0x0006)]);
}

#[test]
fn pci_writes_to_bars_and_the_expansion_rom_are_refused() {
    let (mut k, mut p) = driver_world();
    for (offset, width) in [
        (0x10, 4),
        (0x14, 2),
        (0x24, 4),
        (0x27, 1),
        (0x30, 4),
        (0x33, 1),
    ] {
        assert_eq!(
            pci_write(&mut k, &mut p, offset, width, 0xffff_ffff),
            Error::NotPermitted as u64,
            "{offset:#x}"
        );
        // Reading them is fine: that is how a driver learns its BARs.
        assert_eq!(pci_read(&mut k, &mut p, offset, width).0, 0);
    }
    assert!(p.pci_writes.is_empty());
}

#[test]
fn pci_config_needs_a_pci_capability() {
    let (mut k, mut p) = driver_world();
    for nr in [Sysnum::PciConfigRead, Sysnum::PciConfigWrite] {
        sys(&mut k, &mut p, 0, nr, [DMA, 0, 4, 0, 0, 0]);
        assert_eq!(result(&k, 0).0, Error::WrongKind as u64);
        sys(&mut k, &mut p, 0, nr, [9, 0, 4, 0, 0, 0]);
        assert_eq!(result(&k, 0).0, Error::BadHandle as u64);
    }
    assert!(p.pci_reads.is_empty() && p.pci_writes.is_empty());
}

#[test]
fn dma_budget_is_whole_pages_and_may_be_used_up_exactly() {
    let (mut k, mut p) = driver_world();
    // One byte costs a page.
    assert_eq!(
        dma(&mut k, &mut p, 1),
        (0, [0x6000_0000_0000, 0, 0x1234_5000, 0])
    );
    assert_eq!(p.dma_requests, [4096]);
    // 4097 bytes would need two more pages: over the 8 KiB budget.
    assert_eq!(dma(&mut k, &mut p, 4097).0, Error::OutOfMemory as u64);
    // The last page fits exactly.
    assert_eq!(dma(&mut k, &mut p, 4096).0, 0);
    assert_eq!(dma(&mut k, &mut p, 1).0, Error::OutOfMemory as u64);
    assert_eq!(p.dma_requests, [4096, 4096]);
    // A size that would overflow when rounded is refused, not wrapped.
    let (mut k, mut p) = driver_world();
    assert_eq!(dma(&mut k, &mut p, u64::MAX).0, Error::OutOfMemory as u64);
    assert_eq!(dma(&mut k, &mut p, 8192).0, 0);
}

#[test]
fn a_failed_dma_allocation_costs_no_budget() {
    let (mut k, mut p) = driver_world();
    p.dma_error = Some(Error::OutOfMemory);
    for _ in 0..3 {
        assert_eq!(dma(&mut k, &mut p, 8192).0, Error::OutOfMemory as u64);
    }
    p.dma_error = None;
    assert_eq!(dma(&mut k, &mut p, 8192).0, 0);
    assert_eq!(p.dma_requests, [8192; 4]);
}

#[test]
fn mmio_is_mapped_once_and_the_same_address_returned_after() {
    let (mut k, mut p) = driver_world();
    sys(&mut k, &mut p, 0, Sysnum::MmioMap, [MMIO, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, 0), (0, [0x7000_feb0_0000, 0x1000, 0, 0]));
    assert!(matches!(
        k.tasks[0].caps.get(MMIO),
        Ok(Cap::Mmio {
            mapped_at: Some(0x7000_feb0_0000),
            ..
        })
    ));
    sys(&mut k, &mut p, 0, Sysnum::MmioMap, [MMIO, 0, 0, 0, 0, 0]);
    assert_eq!(result(&k, 0), (0, [0x7000_feb0_0000, 0x1000, 0, 0]));
}
