//! The boot report: what Faultline found, in one readable block.
//!
//! Every line a QEMU scenario checks is printed here, so its format is part
//! of the test contract (`services/deployments/*.toml`, `[expect]`).

use crate::acpi::{self, ScopeKind, ScopeTarget};
use crate::arch::{apic, cpu};
use crate::console::uptime_us;
use crate::kprintln;
use crate::platform::{Machine, TIMER_HZ};
use faultline_boot::BootInfo;

const MIB: u64 = 1 << 20;

/// Prints the report.
pub fn print(info: &BootInfo, m: &Machine) {
    kprintln!("==== Faultline boot report ====");
    cpu_section(m);
    memory_section(info, m);
    acpi_section(m);
    vtd_section(m);
    pci_section(m);
    let us = uptime_us();
    kprintln!(
        "boot: PVH entry to report in {}.{:03} ms ({} TSC ticks from entry at TSC {})",
        us / 1000,
        us % 1000,
        crate::arch::tsc::read().wrapping_sub(info.entry_tsc),
        info.entry_tsc
    );
    kprintln!("==== end of boot report ====");
}

fn yes(b: bool) -> u8 {
    u8::from(b)
}

fn cpu_section(m: &Machine) {
    let mut brand = heapless::String::new();
    cpu::brand(&mut brand);
    let f = &m.features;
    kprintln!("cpu: {brand}");
    kprintln!(
        "  x2apic={} 1g-pages={} pge={} smep={} smap={} invariant-tsc={} hypervisor={}",
        yes(f.x2apic),
        yes(f.huge_pages),
        yes(f.global_pages),
        yes(f.smep),
        yes(f.smap),
        yes(f.invariant_tsc),
        yes(f.hypervisor)
    );
    let t = &m.timing;
    let khz = t.tsc_hz / 1000;
    kprintln!(
        "  TSC {}.{:03} MHz ({}); LAPIC timer rate {}",
        khz / 1000,
        khz % 1000,
        t.tsc_source,
        if t.timer_rate_from_cpuid {
            "from the same source"
        } else {
            "measured against the TSC"
        }
    );
    let mode = match t.lapic_mode {
        apic::Mode::X2Apic => "x2APIC",
        apic::Mode::XApic => "xAPIC",
    };
    let ms_x1000 = crate::arch::tsc::cycles_to_ns(t.check_cycles) / 1000;
    kprintln!(
        "  LAPIC {mode} id {} version {:#x}; timer periodic {TIMER_HZ} Hz ({} counts/ms): {} ticks in {}.{:03} ms",
        t.lapic_id,
        t.lapic_version,
        t.timer_counts_per_ms,
        t.check_ticks,
        ms_x1000 / 1000,
        ms_x1000 % 1000
    );
}

fn memory_section(info: &BootInfo, m: &Machine) {
    let s = &m.memory;
    kprintln!(
        "memory: {} MiB usable ({} MiB above 4 GiB) in {} map regions; {} of {} frames free",
        s.usable_bytes / MIB,
        s.usable_above_4g / MIB,
        s.regions,
        s.free_frames,
        s.total_frames
    );
    for r in &info.memory_map {
        kprintln!("  e820 {:#014x}-{:#014x} {:?}", r.base, r.end(), r.kind);
    }
    match s.high_frame_check {
        Some(Ok(at)) => kprintln!("  frame above 4 GiB: ok ({at:#x} written and read back)"),
        Some(Err(at)) => kprintln!("  frame above 4 GiB: FAILED at {at:#x}"),
        None => {}
    }
}

fn acpi_section(m: &Machine) {
    let a = m.acpi;
    kprint_tables(a);
    for (sig, e) in &a.rejected {
        kprintln!("  REJECTED {sig}: {e}");
    }
    if let Some(madt) = &a.madt {
        let cpus = madt.local_apics.iter().filter(|l| l.enabled()).count();
        kprintln!(
            "  MADT: LAPIC at {:#x}, {cpus} enabled CPU(s)",
            madt.local_apic_address
        );
        for io in &madt.io_apics {
            kprintln!(
                "    IOAPIC id {} at {:#x}, GSI base {}",
                io.id,
                io.address,
                io.gsi_base
            );
        }
    }
    if let Some(mcfg) = &a.mcfg {
        for r in &mcfg.regions {
            kprintln!(
                "  MCFG: segment {} buses {:02x}-{:02x} ECAM at {:#x}",
                r.segment,
                r.start_bus,
                r.end_bus,
                r.base
            );
        }
    }
    match &a.dmar {
        Some(d) => kprintln!(
            "  DMAR: host address width {} bits, flags {:?}; {} DRHD, {} RMRR, {} ATSR, {} RHSA",
            d.address_width_bits(),
            d.flags,
            d.drhds.len(),
            d.rmrrs.len(),
            d.atsrs.len(),
            d.rhsas.len()
        ),
        None => kprintln!("  DMAR: none (no DMAR table)"),
    }
}

fn kprint_tables(a: &acpi::AcpiTables) {
    kprintln!(
        "acpi: RSDP revision {} OEM {} -> {} at {:#x}",
        a.rsdp_revision,
        a.oem_id,
        a.root.signature,
        a.root.paddr
    );
    for t in &a.tables {
        kprintln!(
            "  {} at {:#x}, {} bytes, revision {}, OEM {}",
            t.signature,
            t.paddr,
            t.length,
            t.revision,
            t.oem_id
        );
    }
}

fn vtd_section(m: &Machine) {
    let Some(dmar) = &m.acpi.dmar else {
        return;
    };
    for u in &m.vtd {
        let d = &u.drhd;
        kprintln!(
            "VT-d unit {}: base {:#x} segment {} flags {:?} (registers granted to the IOMMU service, which reports CAP and ECAP)",
            u.index,
            d.register_base,
            d.segment,
            d.flags
        );
        for scope in dmar.scopes(d.scopes) {
            let kind = match scope.kind {
                ScopeKind::PciEndpoint => "endpoint",
                ScopeKind::PciSubHierarchy => "bridge",
                ScopeKind::IoApic => "IOAPIC",
                ScopeKind::Hpet => "HPET",
                ScopeKind::AcpiNamespaceDevice => "ACPI device",
                ScopeKind::Other(_) => "other",
            };
            match scope.target() {
                ScopeTarget::Device(bdf) => {
                    kprintln!(
                        "  scope {kind} {bdf} (enumeration id {})",
                        scope.enumeration_id
                    )
                }
                ScopeTarget::Path { start_bus, path } => kprintln!(
                    "  scope {kind} bus {start_bus:02x} path of {} hops (enumeration id {})",
                    path.len(),
                    scope.enumeration_id
                ),
            }
        }
    }
    for (base, e) in &m.vtd_errors {
        kprintln!("VT-d unit at {base:#x}: UNUSABLE: {e}");
    }
}

fn pci_section(m: &Machine) {
    match m.pci {
        Ok(n) => kprintln!("pci: {n} functions"),
        Err(e) => kprintln!("pci: scan incomplete: {e}"),
    }
    crate::platform::with_pci(|functions| {
        for f in functions {
            kprintln!("  {f}");
        }
    });
}
