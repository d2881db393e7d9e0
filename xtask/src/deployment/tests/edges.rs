//! Rules at their edges: the smallest and largest values each check
//! accepts and the first ones it refuses, and the lists the checks work
//! from.

use super::*;
use crate::deployment::grants::parse_pci_id;

#[test]
fn deployment_names_are_every_manifest_sorted() {
    let names = all_names().unwrap();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for n in &names {
        let path = workspace_root()
            .join(DEPLOYMENT_DIR)
            .join(format!("{n}.toml"));
        assert!(path.is_file(), "{}", path.display());
    }
    let on_disk = std::fs::read_dir(workspace_root().join(DEPLOYMENT_DIR))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert_eq!(names.len(), on_disk);
}

#[test]
fn pci_ids_are_exactly_four_hex_digits_each() {
    assert_eq!(parse_pci_id("1234:11e8"), Some((0x1234, 0x11e8)));
    assert_eq!(parse_pci_id("ABCD:ffff"), Some((0xabcd, 0xffff)));
    for bad in [
        "123:11e8",
        "1234:11e",
        "12345:11e8",
        "+123:11e8",
        "1234:+1e8",
        "12g4:11e8",
        "1234-11e8",
        "1234:11e8:0",
        "",
    ] {
        assert_eq!(parse_pci_id(bad), None, "{bad:?}");
    }
}

/// A service `a` with these MMIO grants, the supervisor besides.
fn mmio(grants: &str) -> Result<Deployment> {
    parse_str(&with_sup(&format!(
        "[services.a]\ncrate = \"faultline-ping\"\npriority = 1\nmemory-kib = 64\nmmio = [{grants}]\n"
    )))
}

#[test]
fn mmio_grants_may_touch_each_other_and_the_vtd_registers_in_either_order() {
    for grants in [
        // Higher first, then the page right below it.
        "{ name = \"hi\", base = 0xfeb02000, size = 0x1000 }, { name = \"lo\", base = 0xfeb01000, size = 0x1000 }",
        // Ending where VT-d unit 0's registers begin, and starting where they end.
        "{ name = \"below\", base = 0xfed8f000, size = 0x1000 }, { name = \"above\", base = 0xfed91000, size = 0x1000 }",
    ] {
        assert!(
            mmio(grants).is_ok(),
            "{grants}: {:#}",
            mmio(grants).unwrap_err()
        );
    }
    // One page further in either direction overlaps the registers.
    for base in ["0xfed8f000, size = 0x2000", "0xfed90000, size = 0x1000"] {
        let msg = format!(
            "{:#}",
            mmio(&format!("{{ name = \"r\", base = {base} }}")).unwrap_err()
        );
        assert!(msg.contains("overlaps VT-d unit 0's registers"), "{msg}");
    }
}

#[test]
fn a_pci_index_goes_up_to_255() {
    let pci = |index: u32| {
        parse_str(&with_sup(&format!(
            "[services.a]\ncrate = \"faultline-ping\"\npriority = 1\nmemory-kib = 64\n\
             pci = [{{ name = \"e\", device = \"1234:11e8\", index = {index} }}]\n"
        )))
    };
    let d = pci(255).unwrap_or_else(|e| panic!("{e:#}"));
    let caps = &d.system.unwrap().config.services[1].caps;
    assert_eq!(
        caps[0].kind,
        faultline_ipc::kconfig::CapSpec::Pci {
            vendor: 0x1234,
            device: 0x11e8,
            index: 255
        }
    );
    assert_eq!(
        format!("{:#}", pci(256).unwrap_err()),
        "t.toml:12: service a: pci e: index 256 is outside 0..=255"
    );
}

#[test]
fn capability_names_are_1_to_24_bytes_of_lowercase_digits_and_dashes() {
    let named = |name: &str| {
        mmio(&format!(
            "{{ name = {name:?}, base = 0xfeb01000, size = 0x1000 }}"
        ))
    };
    let longest = "a".repeat(24);
    let d = named(&longest).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        d.system.unwrap().config.services[1].caps[0].name.as_str(),
        longest
    );
    assert!(named("r-2").is_ok());
    for bad in ["Regs", "a_b", "", &"a".repeat(25)] {
        let msg = format!("{:#}", named(bad).unwrap_err());
        assert_eq!(
            msg,
            format!(
                "t.toml:12: service a: capability name {bad:?}: use 1 to 24 bytes of a-z, 0-9 and -"
            )
        );
    }
}

#[test]
fn the_limits_on_services_channels_and_caps_are_reachable() {
    // 16 services (the supervisor and 15 more).
    let many: String = (0..15)
        .map(|i| errors::svc(&format!("s{i}"), "ping", ""))
        .collect();
    let d = parse_str(&with_sup(&many)).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(d.system.unwrap().config.services.len(), 16);
    // 32 channels, between four clients and four servers (eight ends each).
    let ends: String = (0..4)
        .map(|i| {
            errors::svc(&format!("a{i}"), "ping", "") + &errors::svc(&format!("b{i}"), "pong", "")
        })
        .collect();
    let mut text = with_sup(&ends);
    for i in 0..32 {
        text.push_str(&format!(
            "[[channels]]\nname = \"c{i}\"\nclient = \"a{}\"\nserver = \"b{}\"\n",
            i % 4,
            i / 8
        ));
    }
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(d.system.unwrap().config.channels.len(), 32);
    // 24 capabilities in one service: notification grants to the
    // supervisor, one bit each.
    let notify: String = (0..24)
        .map(|i| format!(" {{ name = \"n{i}\", service = \"sup\", bit = {i} }},\n"))
        .collect();
    let text = with_sup(&errors::svc(
        "ping",
        "ping",
        &format!("notify = [\n{notify}]\n"),
    ));
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(d.system.unwrap().config.services[1].caps.len(), 24);
}

#[test]
fn a_deployment_name_of_24_bytes_is_fine() {
    let name = "d".repeat(24);
    let d = parse(&name, Path::new("t.toml"), &with_sup(""), &packages())
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(d.system.unwrap().config.deployment.as_str(), name);
}

#[test]
fn restart_hold_is_spelled_out_or_left_out() {
    for restart in ["restart = \"hold\"\n", ""] {
        let d = parse_str(&with_sup(&errors::svc("ping", "ping", restart)))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            d.system.unwrap().config.services[1].restart,
            faultline_ipc::kconfig::RestartPolicy::Hold,
            "{restart:?}"
        );
    }
}

#[test]
fn a_deployment_is_a_scenario_unless_it_says_otherwise() {
    assert!(parse_str(HEAD).unwrap().manifest.expect.scenario);
    let d = parse_str(&format!("{HEAD}[expect]\nexit = \"failure\"\n")).unwrap();
    assert!(d.manifest.expect.scenario);
    let d = parse_str(&format!("{HEAD}[expect]\nscenario = false\n")).unwrap();
    assert!(!d.manifest.expect.scenario);
}

#[test]
fn priority_15_is_the_least_important_allowed() {
    let text = format!("{HEAD}{}", SUP.replace("priority = 0", "priority = 15"));
    let d = parse_str(&text).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(d.system.unwrap().config.services[0].priority, 15);
}

#[test]
fn services_may_use_exactly_half_the_machine() {
    // 64 + 16384 + (16000 + 320) KiB = 32768 KiB, half of 64 MiB.
    let text = format!(
        "description = \"x\"\n[machine]\nmemory-mib = 64\n{SUP}{}{}",
        errors::svc("a", "ping", "").replace("memory-kib = 64", "memory-kib = 16384"),
        errors::svc("b", "ping", "dma-kib = 320\n")
            .replace("memory-kib = 64", "memory-kib = 16000"),
    );
    assert!(
        parse_str(&text).is_ok(),
        "{:#}",
        parse_str(&text).unwrap_err()
    );
    // Four more KiB is too much.
    let text = text.replace("dma-kib = 320", "dma-kib = 324");
    assert!(format!("{:#}", parse_str(&text).unwrap_err()).contains("services need 32772 KiB"));
}
