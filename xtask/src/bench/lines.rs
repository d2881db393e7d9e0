//! The console side of `cargo xtask bench`: reading `BENCH {json}` lines
//! into rows (every line of a plain run, only the kernel's `ipc_stage`
//! lines of the instrumented one), labelling each run's rows, and the
//! aligned table the command prints.

use crate::figures;
use serde_json::{Map, Value};

/// The `name` of the kernel's rows in the instrumented run.
pub const STAGE_ROW: &str = "ipc_stage";

/// The JSON objects of `BENCH {...}` lines, and the lines that carried
/// `BENCH {` but no JSON object.
pub fn parse_lines(console: &str) -> (Vec<Map<String, Value>>, Vec<String>) {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for line in console.lines() {
        let Some(at) = line.find("BENCH {") else {
            continue;
        };
        match serde_json::from_str::<Value>(line[at + 6..].trim()) {
            Ok(Value::Object(map)) => rows.push(map),
            _ => bad.push(line.to_string()),
        }
    }
    (rows, bad)
}

/// Labels one run's rows with its mode and `label` (its deployment), and
/// turns TSC rates into `per_second` (see `figures`).
pub fn label_run(
    mut rows: Vec<Map<String, Value>>,
    label: &str,
    icount: bool,
    mode: &str,
) -> Vec<Map<String, Value>> {
    figures::label_rows(&mut rows, icount, mode);
    figures::add_rates(&mut rows, icount);
    for row in &mut rows {
        row.insert("deployment".into(), label.into());
    }
    rows
}

/// The instrumented run's figures: the `ipc_stage` rows of `BENCH` lines
/// the kernel printed (see [`crate::console::attribute`]), and the kernel
/// lines that carried `BENCH {` but no JSON object. Service lines are
/// left out: the instrumentation perturbs their round trips, which the
/// plain run measures.
pub fn parse_stage_lines(console: &str) -> (Vec<Map<String, Value>>, Vec<String>) {
    let kernel: String = console
        .lines()
        .filter(|l| crate::console::attribute(l).0 == crate::console::Source::Kernel)
        .flat_map(|l| [l, "\n"])
        .collect();
    let (mut rows, bad) = parse_lines(&kernel);
    rows.retain(|r| r.get("name").and_then(Value::as_str) == Some(STAGE_ROW));
    (rows, bad)
}

/// Column order: the usual keys first, then any others alphabetically.
const FIRST: &[&str] = &[
    "name",
    "syscall",
    "stage",
    "payload",
    "deployment",
    "mode",
    "unit",
    "median",
    "p99",
    "mean",
    "per_second",
    "iterations",
];

/// The rows as an aligned table (numbers right-aligned).
pub fn table(rows: &[Map<String, Value>]) -> String {
    let mut cols: Vec<&str> = FIRST
        .iter()
        .copied()
        .filter(|k| rows.iter().any(|r| r.contains_key(*k)))
        .collect();
    let mut rest: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.keys().map(String::as_str))
        .filter(|k| !FIRST.contains(k))
        .collect();
    rest.sort_unstable();
    rest.dedup();
    cols.extend(rest);
    let cell = |r: &Map<String, Value>, k: &str| match r.get(k) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let numeric = |k: &str| {
        rows.iter()
            .all(|r| r.get(k).is_none_or(|v| v.is_number() || v.is_null()))
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|k| {
            rows.iter()
                .map(|r| cell(r, k).len())
                .chain([k.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&cols)
            .zip(&widths)
            .map(|((c, k), w)| {
                if numeric(k) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(cols.iter().map(|k| k.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(cols.iter().map(|k| cell(r, k)).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image;

    #[test]
    fn reads_bench_lines_anywhere_on_a_line() {
        let console = "boot\n[bench-client] BENCH {\"name\":\"ipc\",\"median\":612,\"unit\":\"cycles\"}\r\n\
                       BENCH {\"name\":\"map\",\"median\":3}\nBENCH {not json}\nBENCH [1]\n";
        let (rows, bad) = parse_lines(console);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["median"], 612);
        assert_eq!(rows[1]["name"], "map");
        assert_eq!(bad, ["BENCH {not json}"]);
    }

    #[test]
    fn the_table_is_aligned_with_usual_columns_first() {
        let (rows, _) = parse_lines(
            "BENCH {\"zeta\":1,\"name\":\"ipc_call_reply\",\"median\":612,\"unit\":\"cycles\"}\n\
             BENCH {\"name\":\"x\",\"median\":7}\n",
        );
        assert_eq!(
            table(&rows),
            "name            unit    median  zeta\n\
             --------------  ------  ------  ----\n\
             ipc_call_reply  cycles     612     1\n\
             x                            7\n"
        );
    }

    /// The end of an instrumented run: the services' figures, then the
    /// kernel's breakdown (and a service that prints a look-alike).
    const STAGED: &str = "\
[    5.000 @bench-client] bench: ready at TSC 6091000 (1000000000 Hz)\n\
[    6.000 @bench-client] BENCH {\"name\":\"ipc_call_reply\",\"payload\":64,\"unit\":\"cycles\",\"median\":900}\n\
[    6.001 @bench-client] BENCH {\"name\":\"ipc_stage\",\"syscall\":\"call\",\"stage\":\"lock\",\"unit\":\"cycles\",\"mean\":1,\"count\":2}\n\
[    6.002 @bench-client] bench: done\n\
BENCH {\"name\":\"ipc_stage\",\"syscall\":\"call\",\"stage\":\"checks\",\"unit\":\"cycles\",\"mean\":123,\"count\":101010}\n\
BENCH {\"name\":\"ipc_stage\",\"syscall\":\"reply_recv\",\"stage\":\"switch\",\"unit\":\"cycles\",\"mean\":45,\"count\":101009}\n\
BENCH {\"name\":\"something_else\",\"mean\":1}\n\
BENCH {broken\n\
kernel: no service can run again; final states:\n";

    #[test]
    fn the_instrumented_run_keeps_only_the_kernels_stage_lines() {
        let (rows, bad) = parse_stage_lines(STAGED);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0]["name"], "ipc_stage");
        assert_eq!(rows[0]["syscall"], "call");
        assert_eq!(rows[0]["stage"], "checks");
        assert_eq!(rows[0]["mean"], 123);
        assert_eq!(rows[0]["count"], 101_010);
        assert_eq!(rows[1]["syscall"], "reply_recv");
        assert_eq!(rows[1]["stage"], "switch");
        assert_eq!(bad, ["BENCH {broken"]);
        // The plain parser would have taken the services' lines too.
        let (all, _) = parse_lines(STAGED);
        assert_eq!(all.len(), 5);
        // A plain run's kernel prints no stage lines.
        let plain = STAGED
            .lines()
            .filter(|l| !l.starts_with("BENCH"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse_stage_lines(&plain).0.is_empty());
    }

    #[test]
    fn stage_rows_are_labelled_as_the_instrumented_build() {
        let label = image::out_dir_name("bench", &["ipc-stages".to_string()]);
        assert_eq!(label, "bench+ipc-stages");
        let rows = label_run(parse_stage_lines(STAGED).0, &label, true, "icount");
        for row in &rows {
            assert_eq!(row["deployment"], "bench+ipc-stages");
            assert_eq!(row["mode"], "icount");
            assert_eq!(row["unit"], "instructions");
        }
        assert_eq!(
            table(&rows),
            "name       syscall     stage   deployment        mode    unit          mean   count\n\
             ---------  ----------  ------  ----------------  ------  ------------  ----  ------\n\
             ipc_stage  call        checks  bench+ipc-stages  icount  instructions   123  101010\n\
             ipc_stage  reply_recv  switch  bench+ipc-stages  icount  instructions    45  101009\n"
        );
        let rows = label_run(parse_stage_lines(STAGED).0, &label, false, "kvm");
        assert_eq!(rows[0]["unit"], "cycles");
        assert_eq!(rows[0]["mode"], "kvm");
    }
}
