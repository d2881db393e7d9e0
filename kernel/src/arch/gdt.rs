//! The GDT and TSS.
//!
//! Long mode ignores segment bases and limits, so the GDT only carries what
//! the CPU still needs: the kernel and user code/data selectors (laid out for
//! `syscall`/`sysret`, whose STAR register requires user data directly below
//! user code) and the TSS, whose interrupt stack table gives double faults,
//! NMIs and machine checks their own known-good stacks.

use hermit_sync::InterruptSpinMutex;
use x86::Ring;
use x86::bits64::segmentation::Descriptor64;
use x86::bits64::task::TaskStateSegment;
use x86::dtables::{DescriptorTablePointer, lgdt};
use x86::segmentation::{
    BuildDescriptor, CodeSegmentType, DataSegmentType, Descriptor, DescriptorBuilder,
    GateDescriptorBuilder, SegmentDescriptorBuilder, SegmentSelector, load_ds, load_es, load_fs,
    load_gs, load_ss,
};

/// Kernel code selector.
pub const KERNEL_CS: SegmentSelector = SegmentSelector::new(1, Ring::Ring0);
/// Kernel data/stack selector.
pub const KERNEL_SS: SegmentSelector = SegmentSelector::new(2, Ring::Ring0);
/// User data/stack selector (STAR.SYSRET base + 8).
pub const USER_SS: SegmentSelector = SegmentSelector::new(3, Ring::Ring3);
/// User code selector (STAR.SYSRET base + 16).
pub const USER_CS: SegmentSelector = SegmentSelector::new(4, Ring::Ring3);
/// The TSS selector.
pub const TSS_SELECTOR: SegmentSelector = SegmentSelector::new(5, Ring::Ring0);

/// IST slot (1-based, as IDT entries name it) for double faults.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot for NMIs.
pub const IST_NMI: u8 = 2;
/// IST slot for machine checks.
pub const IST_MACHINE_CHECK: u8 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static mut IST_STACKS: [IstStack; 3] = [const { IstStack([0; IST_STACK_SIZE]) }; 3];

#[repr(C, packed)]
struct Gdt {
    null: u64,
    kernel_code: Descriptor,
    kernel_data: Descriptor,
    user_data: Descriptor,
    user_code: Descriptor,
    tss: Descriptor64,
}

static GDT: InterruptSpinMutex<Gdt> = InterruptSpinMutex::new(Gdt {
    null: 0,
    kernel_code: Descriptor::NULL,
    kernel_data: Descriptor::NULL,
    user_data: Descriptor::NULL,
    user_code: Descriptor::NULL,
    tss: Descriptor64::NULL,
});

static TSS: InterruptSpinMutex<TaskStateSegment> = InterruptSpinMutex::new(TaskStateSegment::new());

/// Builds and loads the GDT and TSS, and reloads every segment register.
pub fn init() {
    let tss_base = {
        let mut tss = TSS.lock();
        // Only the address is taken: the IST stacks are used by the CPU
        // alone, and no Rust reference to them ever exists.
        let stacks = &raw mut IST_STACKS;
        for slot in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK] {
            let stack = stacks
                .cast::<IstStack>()
                .wrapping_add(usize::from(slot) - 1);
            let top = stack as u64 + IST_STACK_SIZE as u64;
            tss.set_ist(usize::from(slot) - 1, top);
        }
        tss.iomap_base = size_of::<TaskStateSegment>() as u16;
        &*tss as *const TaskStateSegment as u64
    };

    let mut gdt = GDT.lock();
    gdt.kernel_code = DescriptorBuilder::code_descriptor(0, 0, CodeSegmentType::ExecuteRead)
        .present()
        .dpl(Ring::Ring0)
        .l()
        .finish();
    gdt.kernel_data = DescriptorBuilder::data_descriptor(0, 0, DataSegmentType::ReadWrite)
        .present()
        .dpl(Ring::Ring0)
        .finish();
    gdt.user_data = DescriptorBuilder::data_descriptor(0, 0, DataSegmentType::ReadWrite)
        .present()
        .dpl(Ring::Ring3)
        .finish();
    gdt.user_code = DescriptorBuilder::code_descriptor(0, 0, CodeSegmentType::ExecuteRead)
        .present()
        .dpl(Ring::Ring3)
        .l()
        .finish();
    gdt.tss = <DescriptorBuilder as GateDescriptorBuilder<u64>>::tss_descriptor(
        tss_base,
        size_of::<TaskStateSegment>() as u64 - 1,
        true,
    )
    .present()
    .dpl(Ring::Ring0)
    .finish();

    let pointer = DescriptorTablePointer {
        limit: (size_of::<Gdt>() - 1) as u16,
        base: &*gdt as *const Gdt,
    };
    // SAFETY: the GDT is a static (outlives the CPU's use), its selectors are
    // the constants the loads and `ltr` use, and the TSS descriptor is
    // "available" because nothing has loaded it yet.
    unsafe {
        lgdt(&pointer);
        x86::bits64::segmentation::load_cs(KERNEL_CS);
        load_ss(KERNEL_SS);
        load_ds(KERNEL_SS);
        load_es(KERNEL_SS);
        load_fs(SegmentSelector::from_raw(0));
        load_gs(SegmentSelector::from_raw(0));
        x86::task::load_tr(TSS_SELECTOR);
    }
}

/// Sets the stack the CPU switches to on an interrupt or exception taken
/// from ring 3.
pub fn set_kernel_stack(top: u64) {
    TSS.lock().set_rsp(Ring::Ring0, top);
}

/// The address ranges of the IST stacks, for the exception reporter.
pub fn ist_stack_ranges() -> [(u64, u64); 3] {
    let base = &raw const IST_STACKS as u64;
    core::array::from_fn(|i| {
        let lo = base + (i * IST_STACK_SIZE) as u64;
        (lo, lo + IST_STACK_SIZE as u64)
    })
}
