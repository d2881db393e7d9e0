//! The Faultline image's entry: boot glue, then the kernel's bring-up
//! sequence, in the order each step's prerequisites demand.
//!
//! 1. Copy the PVH `start_info` out of low memory (nothing has touched it).
//! 2. The TSC rate (command line, CPUID, or the PIT as a fallback), so that
//!    every log line carries its time since the PVH entry.
//! 3. Console, GDT/TSS, IDT, legacy PIC off: from here on, every fault is
//!    reported.
//! 4. Memory: frame allocator over the E820 map, the kernel's own page
//!    tables, and a guarded kernel stack, which stage 2 runs on.
//! 5. Time: the LAPIC timer rate (CPUID, or measured against the TSC).
//! 6. Discovery: ACPI (MADT, MCFG, DMAR), the VT-d units' registers, PCI.
//! 7. The boot report, then the deployment's outcome through isa-debug-exit.
#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

use faultline_boot::entry::IdentityMapped;
use faultline_boot::{BootInfo, pvh};
use faultline_ipc::harness::ExitCode;
use faultline_ipc::kconfig::KernelConfig;
use hermit_sync::OnceCell;
use kernel::arch::{cpu, exit::exit, gdt, idt, pit, tsc};
use kernel::{cmdline, console, memory, platform, report};

faultline_boot::entry_point!(boot);

/// The deployment embedded by `cargo xtask build` (see `build.rs`).
mod deployment {
    include!(concat!(env!("OUT_DIR"), "/deployment.rs"));
}

static BOOT_INFO: OnceCell<BootInfo> = OnceCell::new();
static OPTIONS: OnceCell<cmdline::Options> = OnceCell::new();
/// The embedded deployment, decoded.
static CONFIG: OnceCell<KernelConfig> = OnceCell::new();

fn boot(start_info_paddr: u64, entry_tsc: u64) -> ! {
    let info = match pvh::read_start_info(&IdentityMapped, start_info_paddr, entry_tsc) {
        Ok(info) => BOOT_INFO.get_or_init(|| info),
        Err(e) => {
            console::emergency_line(format_args!("faultline: unusable PVH start_info: {e}"));
            exit(ExitCode::BootFailure);
        }
    };
    let options = *OPTIONS.get_or_init(|| cmdline::parse(&info.cmdline, |_| {}));
    let tsc_rate = tsc::calibrate(options.tsc_khz);
    console::init(entry_tsc, options.log_level);
    if tsc_rate.is_err() {
        log::error!("TSC calibration: the PIT never counted down");
        exit(ExitCode::BootFailure);
    }
    log::info!("Faultline {} booting", env!("CARGO_PKG_VERSION"));
    cmdline::parse(&info.cmdline, |w| {
        log::warn!("cmdline: ignoring unknown word {:?}", w.0)
    });
    if info.cmdline_truncated {
        log::warn!("cmdline: truncated to {} bytes", info.cmdline.len());
    }

    gdt::init();
    idt::init();
    pit::disable_legacy_pic();
    let features = cpu::features();

    let stack_top = match memory::init(info, &features) {
        Ok(top) => top,
        Err(e) => {
            log::error!("memory: {e}");
            exit(ExitCode::BootFailure);
        }
    };
    // SAFETY: `memory::init` mapped this stack (with a guard page below it)
    // in the tables now live, and nothing else uses it.
    unsafe { cpu::switch_stack(stack_top, stage2) }
}

extern "C" fn stage2() -> ! {
    let info = BOOT_INFO.get().expect("set before the stack switch");
    let options = *OPTIONS.get().expect("set before the stack switch");
    gdt::set_kernel_stack(memory::main_stack_top());

    let machine = match platform::discover(info, &options) {
        Ok(m) => m,
        Err(e) => {
            log::error!("{e}");
            exit(e.exit_code());
        }
    };
    report::print(info, &machine);

    if let Some(test) = options.selftest {
        kernel::selftest::run(test);
        log::error!("selftest {test:?} did not fault");
        exit(ExitCode::Failure);
    }
    if !deployment::CONFIG.is_empty() {
        let config = CONFIG.get_or_init(|| {
            let mut config = KernelConfig {
                version: 0,
                deployment: Default::default(),
                services: Default::default(),
                channels: Default::default(),
            };
            if let Err(e) = config.decode_into(deployment::CONFIG) {
                log::error!("deployment: {e}");
                exit(ExitCode::BootFailure);
            }
            config
        });
        if let Err(why) = machine.iommu_verdict() {
            log::warn!("{why}; services that need the IOMMU will find their grants unresolved");
        }
        log::info!(
            "deployment {}: {} services, {} channels",
            config.deployment,
            config.services.len(),
            config.channels.len()
        );
        kernel::services::run(config, deployment::IMAGES, memory::main_stack_top());
    }
    match machine.iommu_verdict() {
        Ok(()) => {
            kernel::kprintln!("{}", faultline_ipc::harness::SHUTDOWN_MARKER);
            exit(ExitCode::Success)
        }
        Err(why) => {
            log::error!("{why}");
            kernel::kprintln!("{}", faultline_ipc::harness::SHUTDOWN_MARKER);
            exit(ExitCode::NoIommu)
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::report(|out| {
        let _ = writeln!(out, "KERNEL PANIC: {info}");
    });
    exit(ExitCode::Panic)
}
