//! Test-only table builders and an in-memory [`PhysMemory`].
//!
//! Tests build ACPI tables byte by byte with these helpers, which fill in
//! lengths and checksums, so each test states only what it is about. The
//! [`q35`] layout reproduces what QEMU q35 with `-device intel-iommu -device
//! edu` hands a guest (reference/qemu-vtd.md section 5).

use super::{AcpiError, PhysMemory, checksum};

/// Physical memory made of a few byte buffers at given addresses.
#[derive(Default)]
pub struct TestMem {
    chunks: Vec<(u64, Vec<u8>)>,
}

impl TestMem {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, paddr: u64, bytes: Vec<u8>) -> Self {
        self.chunks.push((paddr, bytes));
        self
    }

    /// The buffer placed at exactly `paddr`.
    pub fn chunk_mut(&mut self, paddr: u64) -> &mut Vec<u8> {
        &mut self
            .chunks
            .iter_mut()
            .find(|(base, _)| *base == paddr)
            .expect("no chunk at that address")
            .1
    }
}

impl PhysMemory for TestMem {
    fn read(&self, paddr: u64, len: usize) -> Result<&[u8], AcpiError> {
        self.chunks
            .iter()
            .find_map(|(base, data)| {
                let start = usize::try_from(paddr.checked_sub(*base)?).ok()?;
                data.get(start..start.checked_add(len)?)
            })
            .ok_or(AcpiError::unreadable(paddr, len))
    }
}

/// A table: 36-byte header (OEM "BOCHS ", as QEMU writes) plus `body`, with
/// length and checksum filled in.
pub fn sdt(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(sig);
    t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum
    t.extend_from_slice(b"BOCHS ");
    t.extend_from_slice(b"BXPC    ");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"BXPC");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

/// Sets `t[at]` so that `t` sums to zero.
pub fn fix_checksum(t: &mut [u8], at: usize) {
    t[at] = 0;
    t[at] = 0u8.wrapping_sub(checksum(t));
}

pub fn rsdp_v1(rsdt: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(b"BOCHS ");
    r.push(0); // revision
    r.extend_from_slice(&rsdt.to_le_bytes());
    fix_checksum(&mut r, 8);
    r
}

pub fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = rsdp_v1(rsdt);
    r[15] = 2;
    fix_checksum(&mut r, 8);
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.extend_from_slice(&[0; 4]);
    fix_checksum(&mut r, 32);
    r
}

pub fn rsdt(tables: &[u32]) -> Vec<u8> {
    let body: Vec<u8> = tables.iter().flat_map(|a| a.to_le_bytes()).collect();
    sdt(b"RSDT", 1, &body)
}

pub fn xsdt(tables: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = tables.iter().flat_map(|a| a.to_le_bytes()).collect();
    sdt(b"XSDT", 1, &body)
}

pub fn madt_body(lapic: u32, flags: u32, entries: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&lapic.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    entries.iter().for_each(|e| b.extend_from_slice(e));
    b
}

/// MCFG body from (base, segment, start bus, end bus) allocations.
pub fn mcfg_body(regions: &[(u64, u16, u8, u8)]) -> Vec<u8> {
    let mut b = vec![0; 8];
    for &(base, segment, start, end) in regions {
        b.extend_from_slice(&base.to_le_bytes());
        b.extend_from_slice(&segment.to_le_bytes());
        b.extend_from_slice(&[start, end, 0, 0, 0, 0]);
    }
    b
}

pub fn dmar_body(haw: u8, flags: u8, structures: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![haw, flags];
    b.extend_from_slice(&[0; 10]);
    structures.iter().for_each(|s| b.extend_from_slice(s));
    b
}

/// A remapping structure of `kind` with `fixed` after its 4-byte header and
/// then `scopes`.
pub fn remapping(kind: u16, fixed: &[u8], scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut s = kind.to_le_bytes().to_vec();
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(fixed);
    scopes.iter().for_each(|sc| s.extend_from_slice(sc));
    let len = s.len() as u16;
    s[2..4].copy_from_slice(&len.to_le_bytes());
    s
}

pub fn drhd(flags: u8, segment: u16, base: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut fixed = vec![flags, 0];
    fixed.extend_from_slice(&segment.to_le_bytes());
    fixed.extend_from_slice(&base.to_le_bytes());
    remapping(0, &fixed, scopes)
}

pub fn rmrr(segment: u16, base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut fixed = vec![0, 0];
    fixed.extend_from_slice(&segment.to_le_bytes());
    fixed.extend_from_slice(&base.to_le_bytes());
    fixed.extend_from_slice(&limit.to_le_bytes());
    remapping(1, &fixed, scopes)
}

pub fn atsr(flags: u8, segment: u16, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut fixed = vec![flags, 0];
    fixed.extend_from_slice(&segment.to_le_bytes());
    remapping(2, &fixed, scopes)
}

pub fn rhsa(base: u64, domain: u32) -> Vec<u8> {
    let mut fixed = vec![0; 4];
    fixed.extend_from_slice(&base.to_le_bytes());
    fixed.extend_from_slice(&domain.to_le_bytes());
    remapping(3, &fixed, &[])
}

/// A device scope with a path of (device, function) hops.
pub fn scope(kind: u8, enumeration_id: u8, bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
    let mut s = vec![kind, (6 + 2 * path.len()) as u8, 0, 0, enumeration_id, bus];
    path.iter().for_each(|&(d, f)| s.extend_from_slice(&[d, f]));
    s
}

/// The q35 DMAR of reference section 5: rev 1, HAW 0x2f, INTR_REMAP, one
/// DRHD at 0xfed90000 with the I/O APIC and five root-bus endpoints.
pub fn q35_dmar() -> Vec<u8> {
    let scopes = [
        scope(3, 0, 0xff, &[(0, 0)]),
        scope(1, 0, 0, &[(0, 0)]),
        scope(1, 0, 0, &[(1, 0)]),
        scope(1, 0, 0, &[(0x1f, 0)]),
        scope(1, 0, 0, &[(0x1f, 2)]),
        scope(1, 0, 0, &[(0x1f, 3)]),
    ];
    sdt(
        b"DMAR",
        1,
        &dmar_body(0x2f, 0x01, &[drhd(0, 0, 0xfed9_0000, &scopes)]),
    )
}

pub fn q35_madt() -> Vec<u8> {
    let entries: &[&[u8]] = &[
        &[0, 8, 0, 0, 1, 0, 0, 0],                    // CPU 0, APIC id 0
        &[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0], // I/O APIC 0
        &[2, 10, 0, 0, 2, 0, 0, 0, 0, 0],             // IRQ0 -> GSI2
        &[2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0],          // IRQ9 level high
        &[4, 6, 0xff, 0, 0, 1],                       // LAPIC NMI LINT1
    ];
    sdt(b"APIC", 3, &madt_body(0xfee0_0000, 1, entries))
}

pub fn q35_mcfg() -> Vec<u8> {
    sdt(b"MCFG", 1, &mcfg_body(&[(0xb000_0000, 0, 0, 255)]))
}

/// Where the q35 layout puts things.
pub const RSDP: u64 = 0xf5250;
pub const ROOT: u64 = 0x0ffe_232d;
pub const FIRST_TABLE: u64 = 0x0ffe_3000;
pub const TABLE_STRIDE: u64 = 0x400;

/// The address of table `i` of a layout built by [`layout`].
pub fn table_addr(i: usize) -> u64 {
    FIRST_TABLE + i as u64 * TABLE_STRIDE
}

/// The q35 tables in the order QEMU lists them.
pub fn q35_tables() -> Vec<Vec<u8>> {
    vec![
        sdt(b"FACP", 1, &[0; 80]),
        q35_madt(),
        sdt(b"HPET", 1, &[0; 20]),
        q35_mcfg(),
        sdt(b"WAET", 1, &[0; 4]),
        q35_dmar(),
    ]
}

/// Places `tables` at [`table_addr`]`(i)`, a root table listing them at
/// [`ROOT`] and an RSDP at [`RSDP`]: revision 0 with an RSDT, as SeaBIOS
/// does, or revision 2 with an XSDT (and an empty RSDT elsewhere).
pub fn layout(tables: Vec<Vec<u8>>, use_xsdt: bool) -> TestMem {
    let addrs: Vec<u64> = (0..tables.len()).map(table_addr).collect();
    let mut mem = if use_xsdt {
        // An empty RSDT next to it: a parser that wrongly took the RSDT would
        // find no tables at all.
        TestMem::new()
            .with(RSDP, rsdp_v2(0x0bad_0000, ROOT))
            .with(ROOT, xsdt(&addrs))
            .with(0x0bad_0000, rsdt(&[]))
    } else {
        let rsdt32: Vec<u32> = addrs.iter().map(|&a| a as u32).collect();
        TestMem::new()
            .with(RSDP, rsdp_v1(ROOT as u32))
            .with(ROOT, rsdt(&rsdt32))
    };
    for (addr, table) in addrs.into_iter().zip(tables) {
        mem = mem.with(addr, table);
    }
    mem
}

/// The whole q35 firmware of reference section 5 (RSDP revision 0, RSDT).
pub fn q35() -> TestMem {
    layout(q35_tables(), false)
}
