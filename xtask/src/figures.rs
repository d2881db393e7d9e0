//! The figures `cargo xtask bench` derives itself, from the console and
//! from the image, next to the `BENCH` lines the services print.
//!
//! - **Boot**: the kernel's report names the TSC at the PVH entry (`entry
//!   at TSC N`) and the ticks to the report; the bench client logs `bench:
//!   ready at TSC M` when it first runs, which, being the least important
//!   service, it does only once every other service waits for work. So
//!   `M - N` ticks is PVH entry to every service ready.
//! - **Image size**: the loadable bytes of `faultline.elf` (the file bytes
//!   of its `PT_LOAD` segments, what QEMU copies into guest memory), and
//!   the memory those segments occupy once loaded (with `.bss`).
//! - **Units**: services time with the TSC and say `cycles`; under icount
//!   one TSC tick is one guest instruction (virtual nanosecond), so the
//!   same figures are relabelled `instructions`.
//! - **Rates**: a row that gives its `mean` and the TSC rate (`tsc_hz`)
//!   gets `per_second`, operations per second of the TSC's time (e.g.
//!   map+unmap pairs per second), except under icount, where the clock is
//!   virtual and the rate would only restate the instruction count.

use anyhow::{Result, anyhow};
use object::Endianness;
use object::elf::PT_LOAD;
use object::read::elf::{FileHeader, ProgramHeader};
use serde_json::{Map, Value, json};

/// The TSC unit of this run: `instructions` under icount, else `cycles`.
pub fn tsc_unit(icount: bool) -> &'static str {
    if icount { "instructions" } else { "cycles" }
}

/// Relabels TSC-based rows for an icount run, and tags every row with the
/// mode that produced it.
pub fn label_rows(rows: &mut [Map<String, Value>], icount: bool, mode: &str) {
    for row in rows {
        if icount && row.get("unit").and_then(Value::as_str) == Some("cycles") {
            row.insert("unit".into(), tsc_unit(true).into());
        }
        row.insert("mode".into(), mode.into());
    }
}

/// Turns `tsc_hz` and `mean` (cycles per operation) into `per_second`
/// (rounded), and drops `tsc_hz`; under icount only drops it.
pub fn add_rates(rows: &mut [Map<String, Value>], icount: bool) {
    for row in rows {
        let Some(hz) = row.remove("tsc_hz").and_then(|v| v.as_u64()) else {
            continue;
        };
        let mean = row.get("mean").and_then(Value::as_u64).unwrap_or(0);
        if !icount && hz > 0 && mean > 0 {
            let rate = (hz as f64 / mean as f64).round() as u64;
            row.insert("per_second".into(), rate.into());
        }
    }
}

/// The number after `marker` on the first console line that has it.
fn number_after(console: &str, marker: &str) -> Option<u64> {
    console.lines().find_map(|l| {
        let rest = &l[l.find(marker)? + marker.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// The boot figures: PVH entry to the boot report, and to every service
/// ready (see the module doc), in TSC ticks, with milliseconds when the
/// TSC rate is known (`tsc_hz`, from the client's line).
pub fn boot_rows(console: &str, icount: bool, mode: &str) -> Vec<Map<String, Value>> {
    let unit = tsc_unit(icount);
    let entry = number_after(console, "entry at TSC");
    let report = console
        .lines()
        .find(|l| l.contains("PVH entry to report in"))
        .and_then(|l| number_after(l, "ms ("));
    let ready = number_after(console, "bench: ready at TSC");
    let hz = console.lines().find_map(|l| {
        let rest = l.split("bench: ready at TSC").nth(1)?;
        let inner = rest.split('(').nth(1)?;
        inner.split_whitespace().next()?.parse::<u64>().ok()
    });
    let ms = |ticks: u64| {
        hz.filter(|&h| h > 0)
            .map(|h| ticks as f64 * 1000.0 / h as f64)
    };
    let row = |name: &str, ticks: u64| {
        let mut m = Map::new();
        m.insert("name".into(), name.into());
        m.insert("unit".into(), unit.into());
        m.insert("median".into(), ticks.into());
        if let Some(ms) = ms(ticks) {
            m.insert("ms".into(), json!((ms * 1000.0).round() / 1000.0));
        }
        m.insert("mode".into(), mode.into());
        m
    };
    let mut rows = Vec::new();
    if let Some(ticks) = report {
        rows.push(row("boot_to_report", ticks));
    }
    if let (Some(entry), Some(ready)) = (entry, ready)
        && ready >= entry
    {
        rows.push(row("boot_to_services_ready", ready - entry));
    }
    rows
}

/// `(file bytes, memory bytes)` of the `PT_LOAD` segments of an ELF64.
pub fn loadable_bytes(data: &[u8]) -> Result<(u64, u64)> {
    let header = object::elf::FileHeader64::<Endianness>::parse(data)
        .map_err(|e| anyhow!("not an ELF64 file: {e}"))?;
    let endian = header.endian().map_err(|e| anyhow!("{e}"))?;
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| anyhow!("bad program headers: {e}"))?;
    Ok(phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == PT_LOAD)
        .fold((0, 0), |(file, mem), ph| {
            (file + ph.p_filesz(endian), mem + ph.p_memsz(endian))
        }))
}

/// The image-size row of one deployment's image.
pub fn image_row(deployment: &str, data: &[u8], profile: &str) -> Result<Map<String, Value>> {
    let (file, memory) = loadable_bytes(data)?;
    let Value::Object(m) = json!({
        "name": "image_size",
        "deployment": deployment,
        "unit": "bytes",
        "median": file,
        "loaded_bytes": memory,
        "profile": profile,
        "mode": "build",
    }) else {
        unreachable!("a JSON object literal")
    };
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
boot: PVH entry to report in 4.512 ms (4512000 TSC ticks from entry at TSC 91000)\n\
[    5.000 bench-client] bench: ready at TSC 6091000 (1000000000 Hz)\n\
[    6.000 bench-client] BENCH {\"name\":\"ipc_call_reply\",\"unit\":\"cycles\",\"median\":3048}\n";

    #[test]
    fn boot_figures_come_from_the_report_and_the_clients_first_line() {
        let rows = boot_rows(CONSOLE, true, "icount");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["name"], "boot_to_report");
        assert_eq!(rows[0]["median"], 4_512_000);
        assert_eq!(rows[0]["unit"], "instructions");
        assert_eq!(rows[1]["name"], "boot_to_services_ready");
        assert_eq!(rows[1]["median"], 6_000_000);
        assert_eq!(rows[1]["ms"], 6.0);
        assert_eq!(rows[1]["mode"], "icount");
    }

    #[test]
    fn no_client_line_means_no_services_figure() {
        let console = CONSOLE.lines().next().unwrap_or("");
        let rows = boot_rows(console, false, "kvm");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["unit"], "cycles");
        assert!(rows[0].get("ms").is_none());
        assert!(boot_rows("nothing here", false, "kvm").is_empty());
    }

    #[test]
    fn icount_relabels_cycles_as_instructions_and_tags_the_mode() {
        let (mut rows, _) = crate::bench::parse_lines(CONSOLE);
        label_rows(&mut rows, true, "icount");
        assert_eq!(rows[0]["unit"], "instructions");
        assert_eq!(rows[0]["mode"], "icount");
        let (mut rows, _) = crate::bench::parse_lines(CONSOLE);
        label_rows(&mut rows, false, "kvm");
        assert_eq!(rows[0]["unit"], "cycles");
    }

    #[test]
    fn rates_come_from_the_mean_and_the_tsc_rate_except_under_icount() {
        let line = "BENCH {\"name\":\"iommu_map_unmap\",\"unit\":\"cycles\",\"median\":9,\"mean\":4000,\"tsc_hz\":2000000000}\n\
                    BENCH {\"name\":\"ipc_call_reply\",\"unit\":\"cycles\",\"median\":3048}\n\
                    BENCH {\"name\":\"x\",\"mean\":0,\"tsc_hz\":1000}\n";
        let (mut rows, _) = crate::bench::parse_lines(line);
        add_rates(&mut rows, false);
        assert_eq!(rows[0]["per_second"], 500_000);
        assert!(rows[0].get("tsc_hz").is_none());
        assert!(rows[1].get("per_second").is_none());
        assert!(rows[2].get("per_second").is_none() && rows[2].get("tsc_hz").is_none());
        let (mut rows, _) = crate::bench::parse_lines(line);
        add_rates(&mut rows, true);
        assert!(rows[0].get("per_second").is_none() && rows[0].get("tsc_hz").is_none());
        assert_eq!(rows[0]["mean"], 4000);
    }

    #[test]
    fn loadable_bytes_of_this_test_binary() {
        let exe = std::env::current_exe().expect("test binary");
        let data = std::fs::read(exe).expect("readable");
        let (file, memory) = loadable_bytes(&data).expect("an ELF64");
        assert!(file > 0 && memory >= file);
        assert!(file <= data.len() as u64);
        assert!(loadable_bytes(b"not an elf").is_err());
        let row = image_row("bench", &data, "release").expect("row");
        assert_eq!(row["median"], file);
        assert_eq!(row["unit"], "bytes");
    }
}
