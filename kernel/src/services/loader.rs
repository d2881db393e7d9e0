//! Loading a service's ELF image into its address space.
//!
//! The image must be a static x86-64 executable whose loadable segments lie
//! in the lower half below [`USER_IMAGE_LIMIT`]; a segment both writable and
//! executable is refused (W^X), and every non-executable segment is mapped
//! no-execute. The stack gets `stack_pages` pages below [`USER_STACK_TOP`]
//! with an unmapped guard page under it.

use super::space::{USER_IMAGE_LIMIT, USER_STACK_TOP, UserSpace};
use crate::kern::task::Regs;
use crate::mm::{Cache, MapAttrs, PAGE_SIZE, PageSize, phys_to_virt};
use core::fmt;
use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::file::Class;

const PAGE: u64 = PAGE_SIZE as u64;

/// Why an image could not be loaded.
#[derive(Clone, Copy, Debug)]
pub enum LoadError {
    NotElf,
    NotX86_64Executable,
    BadSegment { vaddr: u64 },
    WritableAndExecutable { vaddr: u64 },
    EntryOutsideImage { entry: u64 },
    OutOfMemory,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotElf => write!(f, "not an ELF64 image"),
            Self::NotX86_64Executable => write!(f, "not a static x86-64 executable"),
            Self::BadSegment { vaddr } => write!(
                f,
                "segment at {vaddr:#x} is outside the service image area or malformed"
            ),
            Self::WritableAndExecutable { vaddr } => {
                write!(f, "segment at {vaddr:#x} is writable and executable")
            }
            Self::EntryOutsideImage { entry } => {
                write!(f, "entry point {entry:#x} is not in an executable segment")
            }
            Self::OutOfMemory => write!(f, "the service's memory budget is exhausted"),
        }
    }
}

/// Loads `image` into `space` and returns the service's entry registers.
pub fn load(image: &[u8], space: &mut UserSpace, stack_pages: u32) -> Result<Regs, LoadError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| LoadError::NotElf)?;
    let header = file.ehdr;
    if header.class != Class::ELF64 || header.e_machine != EM_X86_64 || header.e_type != ET_EXEC {
        return Err(LoadError::NotX86_64Executable);
    }
    let entry = header.e_entry;
    let mut entry_ok = false;
    for ph in file.segments().ok_or(LoadError::NotElf)? {
        if ph.p_type != PT_LOAD {
            continue;
        }
        let (vaddr, memsz, flags) = (ph.p_vaddr, ph.p_memsz, ph.p_flags);
        let data = file
            .segment_data(&ph)
            .map_err(|_| LoadError::BadSegment { vaddr })?;
        let end = vaddr
            .checked_add(memsz)
            .ok_or(LoadError::BadSegment { vaddr })?;
        if memsz == 0 {
            continue;
        }
        if vaddr < PAGE || end > USER_IMAGE_LIMIT || data.len() as u64 > memsz {
            return Err(LoadError::BadSegment { vaddr });
        }
        let (writable, executable) = (flags & PF_W != 0, flags & PF_X != 0);
        if writable && executable {
            return Err(LoadError::WritableAndExecutable { vaddr });
        }
        entry_ok |= executable && (vaddr..end).contains(&entry);
        let attrs = MapAttrs {
            writable,
            executable,
            user: true,
            cache: Cache::WriteBack,
            global: false,
            owned: true,
            largest_page: PageSize::Size4K,
        };
        let first = vaddr & !(PAGE - 1);
        let pages = (end - first).div_ceil(PAGE);
        space
            .map_fresh(first, pages, attrs, |i, frame| {
                // Copy the part of the file image that falls in this page.
                let page_start = first + i * PAGE;
                let from = page_start.max(vaddr);
                let to = (page_start + PAGE).min(vaddr + data.len() as u64);
                if from < to {
                    let src = &data[(from - vaddr) as usize..(to - vaddr) as usize];
                    let dst = phys_to_virt(frame) + (from - page_start);
                    // SAFETY: `frame` is fresh and this service's alone; the
                    // range (within one page) is reached via the direct map.
                    unsafe {
                        core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len())
                    };
                }
            })
            .map_err(|_| LoadError::OutOfMemory)?;
    }
    if !entry_ok {
        return Err(LoadError::EntryOutsideImage { entry });
    }
    let stack_pages = u64::from(stack_pages.max(1));
    let bottom = USER_STACK_TOP - stack_pages * PAGE;
    space
        .map_fresh(bottom, stack_pages, MapAttrs::USER_DATA, |_, _| {})
        .map_err(|_| LoadError::OutOfMemory)?;
    Ok(Regs::entry(entry, USER_STACK_TOP))
}
