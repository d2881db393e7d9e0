//! Names for the code addresses in a kernel exception report.
//!
//! The kernel prints raw addresses (it carries no symbol table); the host
//! has the image, so after a failed run xtask turns every kernel `RIP 0x…`
//! on the console into `function+offset`.

use object::{Object, ObjectSymbol, SymbolKind};
use std::path::Path;

/// Where the kernel image is linked: only addresses above this are looked up.
const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// One line per distinct kernel `RIP` on `console`, naming its function.
pub fn annotate(image: &Path, console: &str) -> Vec<String> {
    let mut rips: Vec<u64> = console
        .lines()
        .filter_map(|l| l.split("RIP 0x").nth(1))
        .filter_map(|rest| {
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            u64::from_str_radix(&hex, 16).ok()
        })
        .filter(|&a| a >= KERNEL_BASE)
        .collect();
    rips.dedup();
    if rips.is_empty() {
        return Vec::new();
    }
    let Ok(data) = std::fs::read(image) else {
        return Vec::new();
    };
    let Ok(file) = object::File::parse(&*data) else {
        return Vec::new();
    };
    let mut functions: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect();
    functions.sort();
    rips.into_iter()
        .map(|rip| {
            let at = functions.partition_point(|f| f.0 <= rip);
            match at.checked_sub(1).map(|i| &functions[i]) {
                Some((start, size, name)) if rip < start + size => format!(
                    "RIP {rip:#018x} is {:#}+{:#x}",
                    rustc_demangle::demangle(name),
                    rip - start
                ),
                _ => format!("RIP {rip:#018x} is in no known function"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_kernel_rip_means_no_lookup() {
        let console = "service x faulted: RIP 0x401000\nall fine\n";
        assert!(annotate(Path::new("/nonexistent"), console).is_empty());
    }

    #[test]
    fn names_a_function_in_this_test_binary() {
        // The test binary itself is an ELF with symbols; its addresses are
        // below KERNEL_BASE, so nothing is looked up, but the parse path
        // must cope with a real file without panicking.
        let me = std::env::current_exe().unwrap();
        assert!(annotate(&me, "RIP 0xffffffff80100000").len() <= 1);
    }
}
