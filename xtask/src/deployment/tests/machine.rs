//! Hostile grants: the build refuses every grant that reaches what the
//! machine keeps for the kernel (RAM and the kernel image, the first MiB,
//! the local APIC and MSI window, the IOAPIC, the HPET, the ECAM window,
//! the chipset's register block, the firmware ROM), every grant of a
//! bridge or chipset function, BAR numbers that do not exist, and a
//! supervisor that does not outrank everyone. As in `errors`, manifests
//! built with `with_sup` start their own text at line 8 (a grant is on
//! line 12); with `mmio_text` at line 9 (the grant on line 13).

use super::super::q35;
use super::errors::svc;
use super::*;

/// A manifest granting `[base, base + size)` to service `ping` (the grant
/// on line 13) on a machine with `memory_mib` MiB.
fn mmio_text(memory_mib: u64, base: u64, size: u64) -> String {
    format!(
        "description = \"x\"\n[machine]\nmemory-mib = {memory_mib}\n{SUP}{}",
        svc(
            "ping",
            "ping",
            &format!("mmio = [{{ name = \"m\", base = {base:#x}, size = {size:#x} }}]\n"),
        )
    )
}

fn mmio_err(memory_mib: u64, base: u64, size: u64) -> String {
    err(&mmio_text(memory_mib, base, size))
}

fn mmio_ok(memory_mib: u64, base: u64, size: u64) -> bool {
    parse_str(&mmio_text(memory_mib, base, size)).is_ok()
}

const BY_BAR: &str = "grant a device's registers by PCI BAR (`pci = [{ ..., bars = [N] }]`)";

#[test]
fn q35_ram_lies_below_4_gib_unless_it_reaches_0xb0000000_bytes() {
    const G: u64 = 1 << 30;
    let empty = 4 * G..4 * G;
    assert_eq!(q35::ram(256), [0..256 << 20, empty.clone()]);
    // 2815 MiB is just under 0xb0000000 bytes: all of it from 0.
    assert_eq!(q35::ram(2815), [0..2815 << 20, empty]);
    // From 0xb0000000 bytes on, 2 GiB below 4 GiB and the rest above.
    assert_eq!(q35::ram(2816), [0..2 * G, 4 * G..4 * G + (768 << 20)]);
    assert_eq!(q35::ram(4096), [0..2 * G, 4 * G..6 * G]);
    assert_eq!(q35::ram(65536), [0..2 * G, 4 * G..66 * G]);
}

#[test]
fn mmio_may_not_grant_the_kernel_image() {
    // The kernel is loaded from 1 MiB.
    assert_eq!(
        mmio_err(256, 0x10_0000, 0x20_0000),
        format!(
            "t.toml:13: service ping: mmio m: [0x100000, 0x300000) overlaps guest RAM \
             (the kernel image, from 1 MiB, and the frames it allocates) [0x100000, 0x10000000); {BY_BAR}"
        )
    );
}

#[test]
fn mmio_may_not_grant_ram_below_or_above_4_gib() {
    assert_eq!(
        mmio_err(256, 0x0ff0_0000, 0x20_0000),
        format!(
            "t.toml:13: service ping: mmio m: [0xff00000, 0x10100000) overlaps guest RAM \
             (the kernel image, from 1 MiB, and the frames it allocates) [0x100000, 0x10000000); {BY_BAR}"
        )
    );
    assert_eq!(
        mmio_err(4096, 0x1_2000_0000, 0x1000),
        format!(
            "t.toml:13: service ping: mmio m: [0x120000000, 0x120001000) overlaps guest RAM above 4 GiB \
             [0x100000000, 0x180000000); {BY_BAR}"
        )
    );
    // Where RAM ends depends on memory-mib: the same addresses are the
    // PCI hole of a split machine and device space above a small one.
    assert_eq!(
        mmio_err(2815, 0xafe0_0000, 0x1000),
        format!(
            "t.toml:13: service ping: mmio m: [0xafe00000, 0xafe01000) overlaps guest RAM \
             (the kernel image, from 1 MiB, and the frames it allocates) [0x100000, 0xaff00000); {BY_BAR}"
        )
    );
    assert!(mmio_ok(2816, 0xafe0_0000, 0x1000));
    assert!(mmio_ok(256, 0x1_2000_0000, 0x1000));
    assert!(mmio_ok(4096, 0x1_8000_0000, 0x1000));
}

#[test]
fn mmio_may_not_grant_the_first_mib() {
    assert_eq!(
        mmio_err(256, 0xa_0000, 0x2_0000),
        format!(
            "t.toml:13: service ping: mmio m: [0xa0000, 0xc0000) overlaps the first MiB \
             (real-mode memory, VGA, ROMs) [0x0, 0x100000); {BY_BAR}"
        )
    );
}

#[test]
fn mmio_may_not_grant_the_local_apic_or_the_msi_window() {
    let msg = |base: u64| {
        format!(
            "t.toml:13: service ping: mmio m: [{base:#x}, {:#x}) overlaps the local APIC and MSI window \
             [0xfee00000, 0xfef00000); {BY_BAR}",
            base + 0x1000
        )
    };
    assert_eq!(mmio_err(256, 0xfee0_0000, 0x1000), msg(0xfee0_0000));
    // A write anywhere in the MiB is an interrupt message.
    assert_eq!(mmio_err(256, 0xfeef_f000, 0x1000), msg(0xfeef_f000));
    assert!(mmio_ok(256, 0xfef0_0000, 0x1000));
}

#[test]
fn mmio_may_not_grant_the_ioapic() {
    assert_eq!(
        mmio_err(256, 0xfec0_0000, 0x1000),
        format!(
            "t.toml:13: service ping: mmio m: [0xfec00000, 0xfec01000) overlaps the IOAPIC's registers \
             [0xfec00000, 0xfec01000); {BY_BAR}"
        )
    );
}

#[test]
fn mmio_may_not_grant_the_hpet() {
    assert_eq!(
        mmio_err(256, 0xfed0_0000, 0x1000),
        format!(
            "t.toml:13: service ping: mmio m: [0xfed00000, 0xfed01000) overlaps the HPET's registers \
             [0xfed00000, 0xfed01000); {BY_BAR}"
        )
    );
}

#[test]
fn mmio_may_not_grant_the_ecam_window() {
    let msg = |base: u64, end: u64| {
        format!(
            "t.toml:13: service ping: mmio m: [{base:#x}, {end:#x}) overlaps the PCI Express ECAM window \
             [0xb0000000, 0xc0000000); {BY_BAR}"
        )
    };
    assert_eq!(
        mmio_err(256, 0xb000_0000, 0x1000_0000),
        msg(0xb000_0000, 0xc000_0000)
    );
    // One bus's page at the window's end is as bad as the whole window.
    assert_eq!(
        mmio_err(4096, 0xbfff_f000, 0x1000),
        msg(0xbfff_f000, 0xc000_0000)
    );
}

#[test]
fn mmio_may_not_grant_the_chipset_register_block() {
    assert_eq!(
        mmio_err(256, 0xfed1_f000, 0x1000),
        format!(
            "t.toml:13: service ping: mmio m: [0xfed1f000, 0xfed20000) overlaps the ICH9 root complex \
             register block [0xfed1c000, 0xfed20000); {BY_BAR}"
        )
    );
}

#[test]
fn mmio_may_not_grant_the_firmware_rom() {
    assert_eq!(
        mmio_err(256, 0xfffc_0000, 0x4_0000),
        format!(
            "t.toml:13: service ping: mmio m: [0xfffc0000, 0x100000000) overlaps the firmware ROM \
             [0xff000000, 0x100000000); {BY_BAR}"
        )
    );
}

/// The error for a `pci` grant of `device` to service `ping`.
fn pci_err(device: &str) -> String {
    err(&with_sup(&svc(
        "ping",
        "ping",
        &format!("pci = [{{ name = \"p\", device = \"{device}\" }}]\n"),
    )))
}

#[test]
fn bridges_and_chipset_functions_are_never_granted() {
    let msg = |id: &str, what: &str| {
        format!(
            "t.toml:12: service ping: pci p: {id} is {what}; bridges and chipset functions are the kernel's, never granted"
        )
    };
    assert_eq!(
        pci_err("8086:29c0"),
        msg("8086:29c0", "the q35 host bridge")
    );
    assert_eq!(
        pci_err("8086:2918"),
        msg("8086:2918", "the ICH9 LPC/ISA bridge")
    );
    assert_eq!(
        pci_err("8086:2930"),
        msg("8086:2930", "the ICH9 SMBus controller")
    );
    assert_eq!(
        pci_err("1B36:000C"),
        msg("1b36:000c", "a PCI Express root port (pcie-root-port)")
    );
    assert_eq!(
        pci_err("1b36:0001"),
        msg("1b36:0001", "a PCI-to-PCI bridge (pci-bridge)")
    );
    assert_eq!(
        pci_err("8086:244e"),
        msg("8086:244e", "a DMI-to-PCI bridge (i82801b11-bridge)")
    );
    // Every function in the table, at any index.
    for &(vendor, device, what) in q35::REFUSED_FUNCTIONS {
        let text = with_sup(&svc(
            "ping",
            "ping",
            &format!(
                "pci = [{{ name = \"p\", device = \"{vendor:04x}:{device:04x}\", index = 3 }}]\n"
            ),
        ));
        assert_eq!(err(&text), msg(&format!("{vendor:04x}:{device:04x}"), what));
    }
}

#[test]
fn bars_are_0_to_5_and_listed_once() {
    let text = with_sup(&svc(
        "ping",
        "ping",
        "pci = [{ name = \"edu\", device = \"1234:11e8\", bars = [\n 0,\n 6,\n 0,\n] }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:14: service ping: pci edu: bars: 6 is not a BAR number (0..=5)\n\
         t.toml:15: service ping: pci edu: bars: BAR 0 is already listed (line 13)"
    );
    let d = parse_str(&with_sup(&svc(
        "ping",
        "ping",
        "pci = [{ name = \"edu\", device = \"1234:11e8\", bars = [5, 0] }]\n",
    )))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let caps: Vec<&str> = d.system.as_ref().unwrap().config.services[1]
        .caps
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(caps, ["edu", "edu-bar5", "edu-bar0"]);
}

#[test]
fn the_supervisor_strictly_outranks_every_other_service() {
    // Same priority as the supervisor (line 5): refused, at the service's
    // own priority (line 10).
    let text = with_sup(&svc("ping", "ping", "").replace("priority = 1", "priority = 0"));
    assert_eq!(
        err(&text),
        "t.toml:10: service ping: priority = 0 does not rank below the supervisor (service sup, priority = 0 on line 5); \
         the supervisor must have the strictly highest priority (the lowest number)"
    );
    // A supervisor below some services: each of those is named.
    let text = format!(
        "{HEAD}{}{}{}",
        SUP.replace("priority = 0", "priority = 2"),
        svc("ping", "ping", ""),
        svc("pong", "pong", "").replace("priority = 1", "priority = 3")
    );
    assert_eq!(
        err(&text),
        "t.toml:10: service ping: priority = 1 does not rank below the supervisor (service sup, priority = 2 on line 5); \
         the supervisor must have the strictly highest priority (the lowest number)"
    );
    // Any strictly highest priority will do; the kernel accepts it too.
    let text = format!(
        "{HEAD}{}{}",
        SUP.replace("priority = 0", "priority = 2"),
        svc("ping", "ping", "").replace("priority = 1", "priority = 3")
    );
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    let config = &d.system.unwrap().config;
    let mut buf = vec![0u8; 4096];
    let bytes = config.encode(&mut buf).unwrap().to_vec();
    assert_eq!(
        faultline_ipc::kconfig::KernelConfig::decode(&bytes).as_ref(),
        Ok(config)
    );
}

#[test]
fn only_a_kernel_refusal_scenario_builds_machine_refused_grants() {
    let lapic = mmio_text(256, 0xfee0_0000, 0x1000);
    assert!(!mmio_ok(256, 0xfee0_0000, 0x1000));
    let text = format!("{lapic}[expect]\nkernel-refuses-grants = true\n");
    let d = parse_str(&text).expect("machine refusals become warnings");
    assert!(d.system.is_some(), "and the deployment is laid out");
    // Everything else is still an error: a grant overlapping another one.
    let twice = format!(
        "description = \"x\"\n[machine]\n{SUP}{}[expect]\nkernel-refuses-grants = true\n",
        svc(
            "ping",
            "ping",
            "mmio = [{ name = \"a\", base = 0xfeb00000, size = 0x1000 },\n { name = \"b\", base = 0xfeb00000, size = 0x1000 }]\n",
        )
    );
    assert!(err(&twice).contains("overlaps service ping: mmio a"));
}
