//! `cargo xtask bench`: figures, not pass/fail.
//!
//! Two modes:
//!
//! - default: KVM with the CPU model this host's KVM accepts, figures in
//!   TSC `cycles`, which depend on the host; where KVM cannot start or runs
//!   without hardware nested paging (EPT/NPT; there a round trip can cost
//!   100 ms of exits, and 400,000 of them hours), it counts instructions
//!   as with `--icount` and says why; `--accel tcg` times TCG in cycles;
//! - `--icount`: TCG with `-icount shift=0,sleep=off` (see `qemu`), where
//!   one TSC tick is one guest instruction, so every figure is an exact
//!   instruction count (`"unit": "instructions"`), identical from run to
//!   run and host to host.
//!
//! It builds the `default` deployment and then the `bench` one and its
//! companions (`bench-iommu`, `bench-faults`, `bench-page-requests`;
//! release by default) and records each image's
//! size, boots `bench` and then each companion, and reads every console
//! line carrying `BENCH {json}`: one JSON object per line, e.g.
//!
//! ```text
//! BENCH {"name":"ipc_call_reply","payload":64,"unit":"cycles","median":612,"p99":700,"iterations":100000}
//! ```
//!
//! plus the boot figures the console gives (see `figures`).
//!
//! For `bench` (not another `--deployment`) it then boots `bench` a
//! second time, built with the kernel feature `ipc-stages` (see
//! [`instrumented`]; the image goes to `target/deployments/bench+ipc-stages/`,
//! never over the plain one, see `image::out_dir_name`). That kernel reads
//! the TSC at the end of each stage of the IPC fast path (lock, checks,
//! copy, schedule, switch, exit) for each fast-path system call (call,
//! reply_recv, notify_wait, notify_recv) and, when the run ends, prints
//! the mean of each as a kernel line (not a service's):
//!
//! ```text
//! BENCH {"name":"ipc_stage","syscall":"call","stage":"checks","unit":"cycles","mean":354,"count":303001}
//! ```
//!
//! Under `--icount` these are exact per-stage instruction counts of the
//! fast path, which no timing of a whole round trip gives. Only those
//! kernel rows are kept (labelled `bench+ipc-stages`, with `syscall` and
//! `stage` columns): the instrumentation adds one `rdtsc` and a few stores
//! per stage, so the services' figures of that run are perturbed and are
//! dropped, and the plain run's round trips remain the figures to quote. A
//! plain run whose kernel prints `ipc_stage` lines fails: its image was
//! built with the instrumentation.
//!
//! Every row says which mode produced it (`kvm`, `tcg`, `icount`; `build`
//! for sizes) and which deployment printed it. The
//! figures are printed as an aligned table and written, with where they
//! were measured (mode, accelerator, CPU model given to QEMU, date, QEMU
//! version, host CPU, git commit), to `target/bench/<timestamp>.json` and
//! `target/bench/latest.json`. The
//! command fails only when the run itself failed (wrong exit, hang, missing
//! expected output, no figures at all), never because of a figure's value.

use crate::deployment::{self, workspace_root};
use crate::qemu::{Accel, Qemu, RunOptions, Target, probe};
mod lines;

use lines::{STAGE_ROW, label_run};
pub use lines::{parse_lines, parse_stage_lines, table};

use crate::{figures, image, test};
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// What `cargo xtask bench` was asked for.
pub struct BenchOptions {
    pub deployment: String,
    pub accel: Option<Accel>,
    pub timeout: Option<u64>,
    /// Build without optimisations (figures then say little).
    pub debug: bool,
    /// Count instructions under TCG instead of timing under KVM.
    pub icount: bool,
}

/// Deployments whose image size is recorded besides the benchmarked ones.
const SIZED: &[&str] = &["default"];

/// Deployments booted after the named one, whose figures join its own:
/// `bench` (IPC) is followed by `bench-iommu` (map+unmap through the IOMMU
/// service), `bench-faults` (DMA fault to answer, MMIO per fault) and
/// `bench-page-requests` (page request to page group response, on the
/// VT-d model in the guest).
pub fn companions(deployment: &str) -> &'static [&'static str] {
    match deployment {
        "bench" => &["bench-iommu", "bench-faults", "bench-page-requests"],
        _ => &[],
    }
}

/// Kernel features of the instrumented run that follows the named
/// deployment's plain one (none: no such run): `bench` is booted again
/// with `ipc-stages`, whose kernel prints the IPC fast path's stages.
pub fn instrumented(deployment: &str) -> &'static [&'static str] {
    match deployment {
        "bench" => &["ipc-stages"],
        _ => &[],
    }
}

/// Runs the benchmark deployment (and its companions, and its
/// instrumented run); returns whether every run succeeded.
pub fn run(opts: BenchOptions) -> Result<bool> {
    let mut deps = vec![deployment::load(&opts.deployment)?];
    for name in companions(&opts.deployment) {
        deps.push(deployment::load(name)?);
    }
    let stage_features: Vec<String> = instrumented(&opts.deployment)
        .iter()
        .map(|f| f.to_string())
        .collect();
    let release = !opts.debug;
    let profile = if release { "release" } else { "debug" };
    let mut sizes = Vec::new();
    for name in SIZED.iter().filter(|n| deps.iter().all(|d| d.name != **n)) {
        let other = deployment::load(name)?;
        let path = image::build(&other, release)?;
        sizes.push(figures::image_row(name, &std::fs::read(&path)?, profile)?);
    }
    let mut images = Vec::new();
    for dep in &deps {
        let image = image::build(dep, release)?;
        sizes.push(figures::image_row(
            &dep.name,
            &std::fs::read(&image)?,
            profile,
        )?);
        images.push(image);
    }
    // Built last, into its own directory (see `image::out_dir_name`); the
    // plain images above are already copied out of cargo's target
    // directory, and any later plain build relinks the kernel without the
    // features.
    let staged = if stage_features.is_empty() {
        None
    } else {
        let image = image::build_with(
            &deps[0],
            &image::ImageOptions {
                release,
                kernel_features: stage_features.clone(),
            },
        )?;
        let label = image::out_dir_name(&deps[0].name, &stage_features);
        Some((label, image))
    };
    let qemu = Qemu::locate_or_install()?;
    let icount = opts.icount || (opts.accel.is_none() && !kvm_is_fast(&qemu));
    let opts = BenchOptions { icount, ..opts };
    let target = if opts.icount {
        if opts.accel == Some(Accel::Kvm) {
            anyhow::bail!(
                "--icount counts instructions under TCG; it cannot be combined with --accel kvm"
            );
        }
        eprintln!(
            "xtask: accel tcg with -icount {} (figures in guest instructions)",
            crate::qemu::ICOUNT
        );
        Target::tcg()
    } else {
        qemu.select(opts.accel)?
    };
    let accel = target.accel;
    let mode = if opts.icount { "icount" } else { accel.name() };
    if accel == Accel::Tcg && !opts.icount {
        eprintln!("xtask: bench runs under TCG: figures measure QEMU's emulation, not the CPU");
    }
    let cpu = target.cpu.clone();
    let mut rows = Vec::new();
    let mut elapsed = 0.0;
    let run_options = |dep: &deployment::Deployment| RunOptions {
        timeout: opts.timeout.unwrap_or(target.timeout(dep.timeout_secs())),
        target: target.clone(),
        icount: opts.icount,
        gdb: false,
        extra_args: Vec::new(),
        echo: false,
        extra_kernel_args: None,
    };
    for (i, (dep, image)) in deps.iter().zip(&images).enumerate() {
        eprintln!("xtask: bench: booting {} ({})", dep.name, image.display());
        let outcome = qemu.run(dep, image, &run_options(dep))?;
        elapsed += outcome.elapsed.as_secs_f64();
        let stray = parse_stage_lines(&outcome.console).0.len();
        if stray > 0 {
            eprintln!(
                "xtask: bench {} FAILED: its kernel printed {stray} {STAGE_ROW} lines, so it \
                 was built with the instrumentation and its figures are not the plain ones",
                dep.name
            );
            return Ok(false);
        }
        let Some(mut figures) =
            figures_of(dep, &dep.name, &outcome, opts.icount, mode, parse_lines)
        else {
            return Ok(false);
        };
        // The boot figures are the first deployment's: its client's
        // `bench: ready` line marks every service ready.
        if i == 0 {
            figures.extend(figures::boot_rows(&outcome.console, opts.icount, mode));
        }
        rows.extend(figures);
    }
    if let Some((label, image)) = &staged {
        let dep = &deps[0];
        eprintln!("xtask: bench: booting {label} ({})", image.display());
        let outcome = qemu.run(dep, image, &run_options(dep))?;
        elapsed += outcome.elapsed.as_secs_f64();
        let Some(figures) = figures_of(dep, label, &outcome, opts.icount, mode, parse_stage_lines)
        else {
            return Ok(false);
        };
        rows.extend(figures);
    }
    rows.extend(sizes);
    print!("{}", table(&rows));
    let (stamp, date) = timestamps();
    let report = json!({
        "meta": {
            "deployment": opts.deployment,
            "deployments": deps
                .iter()
                .map(|d| d.name.as_str())
                .chain(staged.iter().map(|(label, _)| label.as_str()))
                .collect::<Vec<_>>(),
            "profile": profile,
            "mode": mode,
            "accel": accel.name(),
            "qemu_cpu": cpu,
            "icount": opts.icount.then_some(crate::qemu::ICOUNT),
            "date": date,
            "qemu": qemu.version(),
            "cpu": probe::host_cpu_model(),
            "git_commit": git_commit(),
            "elapsed_secs": elapsed,
        },
        "results": rows,
    });
    let dir = workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = serde_json::to_string_pretty(&report)? + "\n";
    let path = dir.join(format!("{stamp}.json"));
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(dir.join("latest.json"), &text)?;
    println!(
        "xtask: {} figures ({mode}) written to {}",
        rows.len(),
        path.display()
    );
    Ok(true)
}

/// Reads a run's console into rows and malformed lines: [`parse_lines`]
/// for a plain run, [`parse_stage_lines`] for the instrumented one.
type Parser = fn(&str) -> (Vec<Map<String, Value>>, Vec<String>);

/// The rows `parse` reads from one run of `dep`, labelled with its mode
/// and `label` (the deployment's name, or the instrumented build's), with
/// rates where they mean something; `None` (after saying why) when the run
/// failed or printed no figures.
fn figures_of(
    dep: &deployment::Deployment,
    label: &str,
    outcome: &crate::qemu::Outcome,
    icount: bool,
    mode: &str,
    parse: Parser,
) -> Option<Vec<Map<String, Value>>> {
    let (rows, bad) = parse(&outcome.console);
    let rows = label_run(rows, label, icount, mode);
    for line in &bad {
        eprintln!("xtask: bench: ignoring a malformed line: {line}");
    }
    let verdict = test::judge(dep, outcome).and_then(|()| {
        if rows.is_empty() {
            Err("the run printed no BENCH lines".to_string())
        } else {
            Ok(())
        }
    });
    let Err(why) = &verdict else {
        return Some(rows);
    };
    eprintln!(
        "---- console ----\n{}\n---- QEMU stderr ----\n{}\n---- end ----",
        outcome.console, outcome.qemu_stderr
    );
    eprintln!("xtask: bench {label} FAILED: {why} ({})", outcome.summary());
    if let crate::qemu::Verdict::Host(_) = outcome.verdict() {
        eprintln!(
            "xtask: a host problem, not Faultline's:\n{}",
            outcome.host_report()
        );
    }
    None
}

/// Whether KVM can start here and has hardware nested paging; says why
/// not.
fn kvm_is_fast(qemu: &Qemu) -> bool {
    let why_not = match crate::qemu::kvm_usable() {
        Err(why) => why,
        Ok(()) => match (qemu.host_cpu().kvm_cpu, probe::kvm_hardware_paging()) {
            (Some(_), Ok(())) => return true,
            (None, _) => "KVM cannot start a guest here".into(),
            (Some(_), Err(why)) => why,
        },
    };
    eprintln!("xtask: bench counts instructions (as --icount) instead of timing KVM: {why_not}");
    false
}

/// (`20261124T052548Z`, `2026-11-24T05:25:48Z`) for now, in UTC.
fn timestamps() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    (
        format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z"),
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn git_commit() -> String {
    let root = workspace_root();
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipc_bench_brings_the_iommu_bench_along() {
        assert_eq!(
            companions("bench"),
            ["bench-iommu", "bench-faults", "bench-page-requests"]
        );
        assert!(companions("bench-iommu").is_empty());
        assert!(companions("bench-smoke").is_empty());
        for name in companions("bench") {
            let dep = deployment::load(name).expect("a committed deployment");
            assert!(
                !dep.manifest.expect.scenario,
                "{name}: its full plan is for `cargo xtask bench`, not a scenario"
            );
        }
    }

    #[test]
    fn only_bench_gets_an_instrumented_run() {
        assert_eq!(instrumented("bench"), ["ipc-stages"]);
        for other in ["bench-iommu", "bench-smoke", "default"] {
            assert!(instrumented(other).is_empty(), "{other}");
        }
        for name in companions("bench") {
            assert!(instrumented(name).is_empty(), "{name}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
    }
}
