//! Bad grants: MMIO overlaps and alignment, VT-d and PCI ownership,
//! notification bits and targets. As in `errors`, manifests built with
//! `with_sup` start their own text at line 8.

use super::errors::svc;
use super::*;

#[test]
fn mmio_grants_may_not_overlap() {
    let text = with_sup(&format!(
        "{}{}",
        svc(
            "ping",
            "ping",
            "mmio = [{ name = \"regs\", base = 0xfea00000, size = 0x100000 }]\n"
        ),
        svc(
            "pong",
            "pong",
            "mmio = [{ name = \"half\", base = 0xfea80000, size = 0x1000 }]\n"
        )
    ));
    assert_eq!(
        err(&text),
        "t.toml:17: service pong: mmio half: [0xfea80000, 0xfea81000) overlaps service ping: mmio regs (line 12)"
    );
    // Within one service too.
    let text = with_sup(&svc(
        "ping",
        "ping",
        "mmio = [\n { name = \"a\", base = 0xfe001000, size = 0x2000 },\n { name = \"b\", base = 0xfe002000, size = 0x1000 },\n]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:14: service ping: mmio b: [0xfe002000, 0xfe003000) overlaps service ping: mmio a (line 13)"
    );
}

#[test]
fn mmio_grants_are_whole_pages() {
    let text = with_sup(&svc(
        "ping",
        "ping",
        "mmio = [{ name = \"a\", base = 0x1800, size = 0x1000 }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: mmio a: base 0x1800 and size 0x1000 must be multiples of 4096"
    );
    let text = with_sup(&svc(
        "ping",
        "ping",
        "mmio = [{ name = \"a\", base = 0x1000, size = 0 }]\n",
    ));
    assert_eq!(err(&text), "t.toml:12: service ping: mmio a: size is zero");
    let text = with_sup(&svc(
        "ping",
        "ping",
        "mmio = [{ name = \"a\", base = 0xfffffffffffff000, size = 0x1000 }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: mmio a: [0xfffffffffffff000, +0x1000) lies beyond the 52-bit physical address space"
    );
}

#[test]
fn vtd_registers_have_one_owner_and_only_vtd_grants_them() {
    let text = with_sup(&format!(
        "{}{}",
        svc("iommu", "iommu", "vtd = true\n"),
        svc("pong", "pong", "vtd = true\nvtd-fault-bit = 2\n")
    ))
    .replace("[machine]", "[machine.iommu]");
    assert_eq!(
        err(&text),
        "t.toml:17: service pong: vtd = true, but service iommu already holds the VT-d units (vtd0) (line 12)"
    );
    let text = with_sup(&svc(
        "ping",
        "ping",
        "mmio = [{ name = \"sneaky\", base = 0xfed80000, size = 0x20000 }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: mmio sneaky: [0xfed80000, 0xfeda0000) overlaps VT-d unit 0's registers [0xfed90000, 0xfed91000); only `vtd = true` grants them"
    );
}

#[test]
fn a_pci_device_has_one_owner() {
    let text = with_sup(&format!(
        "{}{}",
        svc(
            "ping",
            "ping",
            "pci = [{ name = \"edu\", device = \"1234:11e8\" }, { name = \"edu2\", device = \"1234:11e8\", index = 1 }]\n"
        ),
        svc(
            "pong",
            "pong",
            "pci = [{ name = \"edu\", device = \"1234:11E8\", index = 0 }]\n"
        )
    ));
    assert_eq!(
        err(&text),
        "t.toml:17: service pong: pci edu: PCI device 1234:11e8 index 0 is already granted to service ping: pci edu (line 12)"
    );
    let text = with_sup(&svc(
        "ping",
        "ping",
        "pci = [{ name = \"edu\", device = \"edu\" }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: pci edu: device \"edu\" is not vendor:device in hex, e.g. \"1234:11e8\""
    );
    let text = with_sup(&svc(
        "ping",
        "ping",
        "pci = [{ name = \"edu\", device = \"1234:11e8\", index = 256 }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: pci edu: index 256 is outside 0..=255"
    );
}

#[test]
fn notification_bits_are_in_range_and_mean_one_thing() {
    let text = with_sup(&svc(
        "ping",
        "ping",
        "irqs = [{ name = \"i\", bit = 29, pci = \"e\" }]\npci = [{ name = \"e\", device = \"1234:11e8\" }]\n",
    ));
    // Bit 29 is the kernel's (DMA revoked), as are 30 and 31.
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: irq i: bit 29 is outside 0..=28"
    );
    let text = with_sup(&svc(
        "ping",
        "ping",
        "irqs = [{ name = \"a\", bit = 3, pci = \"e\" },\n { name = \"b\", bit = 3, pci = \"e\" }]\npci = [{ name = \"e\", device = \"1234:11e8\" }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:13: service ping: irq b: bit 3 of service ping is already taken by service ping: irq a (line 12)"
    );
    // A notification aimed at a service may not reuse one of its IRQ bits.
    let text = with_sup(&format!(
        "{}{}",
        svc(
            "ping",
            "ping",
            "irqs = [{ name = \"a\", bit = 3, pci = \"e\" }]\npci = [{ name = \"e\", device = \"1234:11e8\" }]\n"
        ),
        svc(
            "pong",
            "pong",
            "notify = [{ name = \"wake\", service = \"ping\", bit = 3 }]\n"
        )
    ));
    assert_eq!(
        err(&text),
        "t.toml:18: service pong: notify wake: bit 3 of service ping is already taken by service ping: irq a (line 12)"
    );
}

#[test]
fn notify_targets_exist() {
    let text = with_sup(&svc(
        "ping",
        "ping",
        "notify = [{ name = \"wake\", service = \"ghost\", bit = 1 }]\n",
    ));
    assert_eq!(
        err(&text),
        "t.toml:12: service ping: notify wake: no service named \"ghost\""
    );
}

#[test]
fn an_irq_names_one_of_its_services_pci_grants() {
    // The kernel programs the MSI of the function the IRQ names; a name
    // that is not one of the holder's own PCI grants means nothing.
    let text = with_sup(&format!(
        "{}{}",
        svc(
            "ping",
            "ping",
            "pci = [{ name = \"edu\", device = \"1234:11e8\" }]\n"
        ),
        svc(
            "pong",
            "pong",
            "irqs = [{ name = \"i\", bit = 3, pci = \"edu\" }]\n"
        )
    ));
    assert_eq!(
        err(&text),
        "t.toml:17: service pong: irq i: pci \"edu\" names none of this service's pci grants"
    );
}
