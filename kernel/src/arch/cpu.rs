//! What this CPU can do, read once from CPUID.

use x86::cpuid::CpuId;

/// The CPU features the kernel decides things by.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// x2APIC mode (CPUID.1:ECX.21).
    pub x2apic: bool,
    /// 1 GiB pages (CPUID.80000001h:EDX.26).
    pub huge_pages: bool,
    /// Global pages (CPUID.1:EDX.13).
    pub global_pages: bool,
    /// Supervisor-mode execution prevention (CPUID.7:EBX.7).
    pub smep: bool,
    /// Supervisor-mode access prevention (CPUID.7:EBX.20).
    pub smap: bool,
    /// The TSC runs at a constant rate in all states (CPUID.80000007h:EDX.8).
    pub invariant_tsc: bool,
    /// The TSC-deadline LAPIC timer mode (CPUID.1:ECX.24).
    pub tsc_deadline: bool,
    /// Running under a hypervisor (CPUID.1:ECX.31).
    pub hypervisor: bool,
}

/// Reads the feature flags.
pub fn features() -> Features {
    let cpuid = CpuId::new();
    let info = cpuid.get_feature_info();
    let ext = cpuid.get_extended_feature_info();
    let ext_fn = cpuid.get_extended_processor_and_feature_identifiers();
    let power = cpuid.get_advanced_power_mgmt_info();
    Features {
        x2apic: info.as_ref().is_some_and(|f| f.has_x2apic()),
        huge_pages: ext_fn.as_ref().is_some_and(|f| f.has_1gib_pages()),
        global_pages: info.as_ref().is_some_and(|f| f.has_pge()),
        smep: ext.as_ref().is_some_and(|f| f.has_smep()),
        smap: ext.as_ref().is_some_and(|f| f.has_smap()),
        invariant_tsc: power.as_ref().is_some_and(|p| p.has_invariant_tsc()),
        tsc_deadline: info.as_ref().is_some_and(|f| f.has_tsc_deadline()),
        hypervisor: info.as_ref().is_some_and(|f| f.has_hypervisor()),
    }
}

/// The CPU's brand string, or its vendor when it has none.
pub fn brand(buf: &mut heapless::String<64>) {
    let cpuid = CpuId::new();
    buf.clear();
    if let Some(b) = cpuid.get_processor_brand_string() {
        let _ = buf.push_str(b.as_str().trim());
    } else if let Some(v) = cpuid.get_vendor_info() {
        let _ = buf.push_str(v.as_str());
    }
}

/// Switches to the stack whose top is `top` and calls `next` on it.
///
/// # Safety
///
/// `top` must be the 16-byte-aligned top of a mapped, writable stack that
/// nothing else uses. The current stack is abandoned.
pub unsafe fn switch_stack(top: u64, next: extern "C" fn() -> !) -> ! {
    // SAFETY: the caller guarantees the new stack is valid and unused;
    // `next` never returns, so nothing on the old stack is needed again.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {next}",
            "ud2",
            top = in(reg) top,
            next = in(reg) next,
            options(noreturn)
        )
    }
}

/// Makes every x87, MMX, SSE and AVX instruction fault, in ring 0 and in
/// ring 3: CR0.EM (x87 and MMX raise #NM or #UD), CR0.MP, CR0.TS cleared,
/// and CR4.OSFXSR, OSXMMEXCPT and OSXSAVE cleared (SSE and AVX raise #UD).
///
/// Faultline saves no floating-point state on a switch: the kernel and
/// every service are built soft-float (`x86_64-unknown-none`), and with
/// these bits no service can use the registers at all, so they can never
/// carry data from one service to another. A service that tries stops with
/// a fault, as the ABI says.
pub fn forbid_floating_point() {
    use x86::controlregs::{Cr0, Cr4, cr0, cr0_write, cr4, cr4_write};
    // SAFETY: these bits only make floating-point instructions fault; the
    // kernel is built without them, so nothing it runs is affected.
    unsafe {
        cr0_write(
            (cr0() | Cr0::CR0_EMULATE_COPROCESSOR | Cr0::CR0_MONITOR_COPROCESSOR)
                & !Cr0::CR0_TASK_SWITCHED,
        );
        cr4_write(
            cr4() & !(Cr4::CR4_ENABLE_SSE | Cr4::CR4_UNMASKED_SSE | Cr4::CR4_ENABLE_OS_XSAVE),
        );
    }
}

/// Whether the CPU is set up as [`forbid_floating_point`] leaves it.
pub fn floating_point_forbidden() -> bool {
    use x86::controlregs::{Cr0, Cr4, cr0, cr4};
    // SAFETY: reading control registers has no side effects.
    let (c0, c4) = unsafe { (cr0(), cr4()) };
    c0.contains(Cr0::CR0_EMULATE_COPROCESSOR)
        && !c4.intersects(Cr4::CR4_ENABLE_SSE | Cr4::CR4_ENABLE_OS_XSAVE)
}

/// One service's x87/SSE register state, as FXSAVE lays it out.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpuState([u8; 512]);

impl FpuState {
    /// The state after FNINIT with SSE exceptions masked: what a service
    /// starts with (FCW 0x37f at byte 0, MXCSR 0x1f80 at byte 24).
    pub const fn clean() -> FpuState {
        let mut bytes = [0u8; 512];
        bytes[0] = 0x7f;
        bytes[1] = 0x03;
        bytes[24] = 0x80;
        bytes[25] = 0x1f;
        FpuState(bytes)
    }
}

/// For hypervisors that execute x87 and SSE instructions despite CR0.EM
/// (the boot probe finds out): lets them run (CR0.EM clear, CR4.OSFXSR
/// set) so that the kernel can save and restore the registers with
/// FXSAVE/FXRSTOR on every switch between services instead.
pub fn switch_floating_point() {
    use x86::controlregs::{Cr0, Cr4, cr0, cr0_write, cr4, cr4_write};
    // SAFETY: the kernel is soft-float and uses none of these registers;
    // the bits only make FXSAVE/FXRSTOR cover the SSE registers.
    unsafe {
        cr0_write(
            (cr0() | Cr0::CR0_MONITOR_COPROCESSOR)
                & !(Cr0::CR0_EMULATE_COPROCESSOR | Cr0::CR0_TASK_SWITCHED),
        );
        cr4_write(cr4() | Cr4::CR4_ENABLE_SSE | Cr4::CR4_UNMASKED_SSE);
    }
}

/// Saves the live x87/SSE registers into `state`.
pub fn save_floating_point(state: &mut FpuState) {
    // SAFETY: `state` is 512 bytes, 16-byte aligned, as FXSAVE needs; only
    // called after `switch_floating_point` (CR0.EM clear).
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) state.0.as_mut_ptr(), options(nostack)) }
}

/// Loads the x87/SSE registers from `state`.
pub fn restore_floating_point(state: &FpuState) {
    // SAFETY: as in `save_floating_point`; `state` was written by FXSAVE or
    // is `FpuState::clean()` (reserved MXCSR bits clear).
    unsafe {
        core::arch::asm!("fxrstor64 [{}]", in(reg) state.0.as_ptr(), options(nostack, readonly))
    }
}
