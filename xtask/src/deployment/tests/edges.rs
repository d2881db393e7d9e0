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
