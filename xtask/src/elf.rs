//! Checks of a service's ELF before it goes into the image.
//!
//! The kernel's loader trusts what xtask let through, so the rules it relies
//! on are checked here, on the host, with errors that name the service: a
//! static x86_64 ELF64 executable (`ET_EXEC`, no interpreter, no dynamic
//! section), loadable segments that are W^X, lie in the lower half, in the
//! image area below [`USER_TOP`], leave page 0 unmapped and share no page with each
//! other, an entry point inside an executable segment, and a memory budget
//! (`memory-kib`) that covers the segments, the stack and
//! [`TABLE_OVERHEAD_KIB`] of page tables.

use crate::deployment::ServicePlan;
use anyhow::{Result, bail};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind, elf as abi};

/// Service images live below this address. The lower half ends at
/// 0x0000_8000_0000_0000; the kernel's loader keeps the part above this
/// for a service's DMA, MMIO and stack windows (`USER_IMAGE_LIMIT` in
/// `kernel/src/services/space.rs`), so an image reaching past it would be
/// refused at boot.
pub const USER_TOP: u64 = 0x0000_4000_0000_0000;
/// Page tables a service's address space needs, charged to its budget.
pub const TABLE_OVERHEAD_KIB: u64 = 16;
const PAGE: u64 = 4096;

// The raw values of the ELF constants used here.
const EM_X86_64: u16 = abi::EM_X86_64.0;
const ET_EXEC: u16 = abi::ET_EXEC.0;
const PT_LOAD: u32 = abi::PT_LOAD.0;
const PT_DYNAMIC: u32 = abi::PT_DYNAMIC.0;
const PT_INTERP: u32 = abi::PT_INTERP.0;
const PF_W: u32 = abi::PF_W.0;
const PF_X: u32 = abi::PF_X.0;

/// One loadable segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    /// `R`, `W`, `X` letters.
    pub flags: String,
}

/// What a checked image needs.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    pub entry: u64,
    pub segments: Vec<Segment>,
    /// KiB of pages its segments occupy.
    pub load_kib: u64,
}

impl ImageInfo {
    /// KiB a service running this image needs: segments, stack, tables.
    pub fn needed_kib(&self, stack_kib: u64) -> u64 {
        self.load_kib + stack_kib + TABLE_OVERHEAD_KIB
    }
}

/// Checks the format and layout of an image built from crate `krate`.
pub fn inspect(krate: &str, data: &[u8]) -> Result<ImageInfo> {
    let kind = FileKind::parse(data).map_err(|e| anyhow::anyhow!("{krate}: not an ELF: {e}"))?;
    if kind != FileKind::Elf64 {
        bail!("{krate}: is {kind:?}, not ELF64");
    }
    let header = object::elf::FileHeader64::<Endianness>::parse(data)
        .map_err(|e| anyhow::anyhow!("{krate}: bad ELF header: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow::anyhow!("{krate}: {e}"))?;
    if endian != Endianness::Little {
        bail!("{krate}: is big-endian");
    }
    if header.e_machine(endian).0 != EM_X86_64 {
        bail!(
            "{krate}: e_machine is {}, not x86_64 ({EM_X86_64})",
            header.e_machine(endian).0
        );
    }
    if header.e_type(endian).0 != ET_EXEC {
        bail!(
            "{krate}: e_type is {}, not ET_EXEC: services must be linked static and not position-independent (e.g. -C relocation-model=static, or --no-pie)",
            header.e_type(endian).0
        );
    }
    let entry = header.e_entry(endian);
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| anyhow::anyhow!("{krate}: bad program headers: {e}"))?;
    let mut segments = Vec::new();
    for ph in phdrs {
        match ph.p_type(endian).0 {
            PT_INTERP | PT_DYNAMIC => {
                bail!("{krate}: has an interpreter or a dynamic section; services are static")
            }
            PT_LOAD => {}
            _ => continue,
        }
        let (vaddr, memsz, filesz) = (ph.p_vaddr(endian), ph.p_memsz(endian), ph.p_filesz(endian));
        let f = ph.p_flags(endian).0;
        let flags = format!(
            "R{}{}",
            if f & PF_W != 0 { "W" } else { "" },
            if f & PF_X != 0 { "X" } else { "" }
        );
        let what = format!("{krate}: segment at {vaddr:#x} (+{memsz:#x}, {flags})");
        if memsz == 0 {
            continue;
        }
        if filesz > memsz {
            bail!("{what}: file size {filesz:#x} exceeds its memory size");
        }
        if f & PF_W != 0 && f & PF_X != 0 {
            bail!("{what}: is both writable and executable (W^X)");
        }
        if vaddr < PAGE {
            bail!("{what}: maps page 0, which stays unmapped to catch null pointers");
        }
        if vaddr.checked_add(memsz).is_none_or(|end| end > USER_TOP) {
            bail!("{what}: reaches past the service image area (which ends at {USER_TOP:#x})");
        }
        segments.push(Segment {
            vaddr,
            memsz,
            filesz,
            flags,
        });
    }
    if segments.is_empty() {
        bail!("{krate}: has no loadable segment");
    }
    let pages = |s: &Segment| (s.vaddr / PAGE)..(s.vaddr + s.memsz).div_ceil(PAGE);
    for (i, a) in segments.iter().enumerate() {
        for b in &segments[i + 1..] {
            let (pa, pb) = (pages(a), pages(b));
            if pa.start < pb.end && pb.start < pa.end {
                bail!(
                    "{krate}: segments at {:#x} ({}) and {:#x} ({}) share a page; each page has one set of permissions (link with -zmax-page-size=4096 and page-aligned sections)",
                    a.vaddr,
                    a.flags,
                    b.vaddr,
                    b.flags
                );
            }
        }
    }
    if !segments
        .iter()
        .any(|s| s.flags.contains('X') && (s.vaddr..s.vaddr + s.memsz).contains(&entry))
    {
        bail!("{krate}: entry point {entry:#x} is not inside an executable segment");
    }
    let load_kib = segments
        .iter()
        .map(|s| (pages(s).end - pages(s).start) * PAGE / 1024)
        .sum();
    Ok(ImageInfo {
        entry,
        segments,
        load_kib,
    })
}

/// Checks that `plan`'s memory budget covers its image.
pub fn check_budget(plan: &ServicePlan, image: &ImageInfo) -> Result<()> {
    let need = image.needed_kib(plan.stack_kib);
    if need > plan.memory_kib {
        bail!(
            "{}: service {} ({}): needs {need} KiB ({} KiB of segments + {} KiB of stack + {TABLE_OVERHEAD_KIB} KiB of page tables) but memory-kib = {}",
            plan.at,
            plan.name,
            plan.krate,
            image.load_kib,
            plan.stack_kib,
            plan.memory_kib
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with the given program headers (no contents).
    fn elf(e_type: u16, machine: u16, entry: u64, segs: &[(u32, u64, u64, u32)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&e_type.to_le_bytes());
        b.extend_from_slice(&machine.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&entry.to_le_bytes());
        b.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
        b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        b.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
        b.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b.extend_from_slice(&(segs.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
        for &(p_type, vaddr, memsz, flags) in segs {
            b.extend_from_slice(&p_type.to_le_bytes());
            b.extend_from_slice(&flags.to_le_bytes());
            b.extend_from_slice(&0u64.to_le_bytes()); // offset
            b.extend_from_slice(&vaddr.to_le_bytes());
            b.extend_from_slice(&vaddr.to_le_bytes());
            b.extend_from_slice(&0u64.to_le_bytes()); // filesz
            b.extend_from_slice(&memsz.to_le_bytes());
            b.extend_from_slice(&PAGE.to_le_bytes());
        }
        b
    }

    const RX: u32 = 5;
    const RW: u32 = 6;
    const R: u32 = 4;

    fn good() -> Vec<u8> {
        elf(
            ET_EXEC,
            EM_X86_64,
            0x20_0010,
            &[
                (PT_LOAD, 0x20_0000, 0x1800, RX),
                (PT_LOAD, 0x20_2000, 0x100, R),
                (PT_LOAD, 0x20_3000, 0x2001, RW),
            ],
        )
    }

    fn err(data: &[u8]) -> String {
        format!("{:#}", inspect("svc", data).unwrap_err())
    }

    #[test]
    fn a_good_image_and_its_pages() {
        let info = inspect("svc", &good()).unwrap();
        assert_eq!(info.entry, 0x20_0010);
        assert_eq!(info.segments.len(), 3);
        assert_eq!(info.segments[2].flags, "RW");
        // 2 + 1 + 3 pages.
        assert_eq!(info.load_kib, 24);
        assert_eq!(info.needed_kib(16), 24 + 16 + 16);
    }

    #[test]
    fn refuses_what_the_loader_cannot_take() {
        assert!(err(b"not an elf").contains("not an ELF"));
        assert!(err(&elf(3, EM_X86_64, 0x1000, &[])).contains("not ET_EXEC"));
        assert!(err(&elf(ET_EXEC, 40, 0x1000, &[])).contains("not x86_64"));
        assert!(err(&elf(ET_EXEC, EM_X86_64, 0x1000, &[])).contains("no loadable segment"));
        let wx = elf(ET_EXEC, EM_X86_64, 0x1000, &[(PT_LOAD, 0x1000, 0x10, 7)]);
        assert!(err(&wx).contains("both writable and executable"));
        let high = elf(ET_EXEC, EM_X86_64, 0x1000, &[(PT_LOAD, USER_TOP, 0x10, RX)]);
        assert!(err(&high).contains("past the service image area"));
        let zero = elf(ET_EXEC, EM_X86_64, 0x10, &[(PT_LOAD, 0, 0x1000, RX)]);
        assert!(err(&zero).contains("maps page 0"));
        let entry = elf(
            ET_EXEC,
            EM_X86_64,
            0x5000,
            &[(PT_LOAD, 0x1000, 0x10, RX), (PT_LOAD, 0x5000, 0x10, RW)],
        );
        assert!(err(&entry).contains("entry point 0x5000 is not inside"));
        let shared = elf(
            ET_EXEC,
            EM_X86_64,
            0x1000,
            &[(PT_LOAD, 0x1000, 0x800, RX), (PT_LOAD, 0x1800, 0x10, RW)],
        );
        assert!(err(&shared).contains("share a page"));
        let dynamic = elf(
            ET_EXEC,
            EM_X86_64,
            0x1000,
            &[(PT_LOAD, 0x1000, 0x10, RX), (PT_DYNAMIC, 0x1000, 0x10, R)],
        );
        assert!(err(&dynamic).contains("static"));
        let mut ehdr32 = good();
        ehdr32[4] = 1;
        assert!(err(&ehdr32).contains("not ELF64"));
    }

    #[test]
    fn the_budget_covers_segments_stack_and_tables() {
        let info = inspect("svc", &good()).unwrap();
        let plan = |memory_kib| ServicePlan {
            name: "ping".into(),
            krate: "faultline-ping".into(),
            image: 0,
            memory_kib,
            stack_kib: 16,
            at: "x.toml:9".into(),
        };
        assert!(check_budget(&plan(56), &info).is_ok());
        assert_eq!(
            format!("{:#}", check_budget(&plan(52), &info).unwrap_err()),
            "x.toml:9: service ping (faultline-ping): needs 56 KiB (24 KiB of segments + 16 KiB of stack + 16 KiB of page tables) but memory-kib = 52"
        );
    }
}
