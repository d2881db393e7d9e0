//! `cargo xtask test`: every host test, then every deployment's scenario.
//!
//! The host tests are `cargo test --workspace` and the wire vectors' second
//! decoder, `ipc/vectors/check.py`.
//!
//! Each deployment under `services/deployments/` is a scenario: it is booted
//! under KVM (when this host's KVM can start a guest, with the CPU model it
//! accepts, see `qemu::probe`) and under TCG, and passes when the guest's
//! exit code is the one its `[expect]` table names and its console shows
//! the expected lines in order and none of the forbidden ones. A deployment
//! whose service crates do not exist yet is reported as SKIP (with the
//! reason), never as PASS, and does not fail the run.
//!
//! A run that QEMU ended before the guest printed anything is a host
//! problem, not a Faultline result (`qemu::Verdict::Host`): under KVM it
//! turns that scenario and every later KVM run into SKIP with the reason,
//! QEMU's command line and stderr, and the next command probes KVM again;
//! under TCG, which every host must run, it is a FAIL that says it is the
//! host's.

use crate::deployment::{self, Deployment, workspace_root};
use crate::image;
use crate::qemu::{self, Accel, Outcome, Qemu, RunOptions, Target};
use anyhow::{Context, Result};
use std::process::Command;

/// How one test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

impl Verdict {
    fn from_ok(ok: bool) -> Self {
        if ok { Self::Pass } else { Self::Fail }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// Runs everything and prints a summary; returns whether none failed.
pub fn run_all(filter: Option<&str>, host: bool, scenarios: bool) -> Result<bool> {
    let mut results: Vec<(String, Verdict, String)> = Vec::new();
    if host {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!("xtask: host tests: cargo test --workspace");
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["test", "--workspace", "--quiet"])
            .status()
            .context("running cargo test")?;
        results.push((
            "host: cargo test --workspace".into(),
            Verdict::from_ok(status.success()),
            status.to_string(),
        ));
        results.push(wire_vectors());
    }
    if scenarios {
        results.extend(run_scenarios(filter)?);
    }
    println!("\n==== summary ====");
    for (name, verdict, detail) in &results {
        println!("{} {name}  {detail}", verdict.label());
    }
    let count = |v: Verdict| results.iter().filter(|r| r.1 == v).count();
    let failed = count(Verdict::Fail);
    println!(
        "{} passed, {failed} failed, {} skipped",
        count(Verdict::Pass),
        count(Verdict::Skip)
    );
    Ok(failed == 0)
}

type Results = Vec<(String, Verdict, String)>;

/// The wire vectors (`ipc/vectors/`) run by their second decoder,
/// `ipc/vectors/check.py` (Python, standard library only): the format
/// `ipc/vectors/FORMAT.md` documents is implementable without Rust.
fn wire_vectors() -> (String, Verdict, String) {
    let name = "host: python3 ipc/vectors/check.py".to_string();
    eprintln!("xtask: {name}");
    match Command::new("python3")
        .current_dir(workspace_root())
        .arg("ipc/vectors/check.py")
        .status()
    {
        Ok(status) => (name, Verdict::from_ok(status.success()), status.to_string()),
        Err(e) => {
            let why = format!("cannot run python3 ({e}); on Debian: apt-get install -y python3");
            (name, Verdict::Fail, why)
        }
    }
}

/// The KVM target for this host, or why there is none.
fn kvm_target(qemu: &Qemu) -> Result<Target, String> {
    qemu::kvm_usable()?;
    let host = qemu.host_cpu();
    match host.kvm_cpu {
        Some(cpu) => {
            eprintln!(
                "xtask: KVM scenarios use -cpu {cpu} ({})",
                qemu::cache_path().display()
            );
            Ok(Target::kvm(cpu))
        }
        None => Err(format!(
            "host problem: KVM cannot start a guest here with any CPU model: {}",
            host.refusal()
        )),
    }
}

fn run_scenarios(filter: Option<&str>) -> Result<Results> {
    let qemu = Qemu::locate_or_install()?;
    let mut results = Vec::new();
    let mut kvm = kvm_target(&qemu);
    if let Err(why) = &kvm {
        eprintln!("xtask: scenarios run under TCG only ({why})");
        results.push(("scenarios [kvm]".into(), Verdict::Skip, why.clone()));
    }
    let kvm_skipped_from_start = kvm.is_err();
    let mut deployments = Vec::new();
    for name in deployment::all_names()? {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match deployment::load(&name) {
            Ok(dep) => deployments.push(dep),
            Err(e) => {
                eprintln!("xtask: scenario {name}: {e:#}");
                results.push((format!("scenario {name}"), Verdict::Fail, format!("{e:#}")));
            }
        }
    }
    // Deployments without services share one kernel build: run them first,
    // so the kernel is rebuilt only for each deployment that embeds services.
    deployments.sort_by_key(|d| d.system.is_some());
    for dep in deployments {
        let name = dep.name.clone();
        if !dep.manifest.expect.scenario {
            let why = "benchmark deployment: run by `cargo xtask bench`".to_string();
            eprintln!("xtask: scenario {name}: SKIP ({why})");
            results.push((format!("scenario {name}"), Verdict::Skip, why));
            continue;
        }
        if let Some(first) = dep.missing_crates.first() {
            let why = format!("service crates not written yet: {first}");
            eprintln!("xtask: scenario {name}: SKIP ({why})");
            results.push((format!("scenario {name}"), Verdict::Skip, why));
            continue;
        }
        let image = match image::build(&dep, false) {
            Ok(image) => image,
            Err(e) => {
                eprintln!("xtask: scenario {name}: build failed: {e:#}");
                let why = format!("build failed: {e:#}");
                results.push((format!("scenario {name}"), Verdict::Fail, why));
                continue;
            }
        };
        let mut targets = Vec::new();
        match &kvm {
            Ok(t) if dep.manifest.expect.heavy && t.timeout_factor > 1 => {
                let why = "heavy scenario, and this host's KVM has no hardware nested paging \
                           (its TCG run counts)"
                    .to_string();
                eprintln!("xtask: scenario {name} [kvm]: SKIP ({why})");
                results.push((format!("scenario {name} [kvm]"), Verdict::Skip, why));
            }
            Ok(t) => targets.push(t.clone()),
            Err(why) if !kvm_skipped_from_start => {
                results.push((format!("scenario {name} [kvm]"), Verdict::Skip, why.clone()))
            }
            Err(_) => {}
        }
        targets.push(Target::tcg());
        for target in targets {
            let label = format!("scenario {name} [{}]", target.accel.name());
            eprintln!("xtask: {label}");
            let accel = target.accel;
            let opts = RunOptions {
                timeout: target.timeout(dep.timeout_secs()),
                target,
                icount: false,
                gdb: false,
                extra_args: Vec::new(),
                echo: false,
                extra_kernel_args: None,
            };
            let outcome = qemu.run(&dep, &image, &opts)?;
            if let qemu::Verdict::Host(why) = outcome.verdict() {
                let why = format!("host problem: {why}");
                eprintln!("xtask: {label}: {why}\n{}", outcome.host_report());
                if accel == Accel::Kvm {
                    eprintln!(
                        "xtask: KVM runs skipped from here on; the next command probes KVM again"
                    );
                    qemu.forget_host_cpu();
                    kvm = Err(why.clone());
                    results.push((label, Verdict::Skip, why));
                } else {
                    results.push((label, Verdict::Fail, why));
                }
                continue;
            }
            let verdict = judge(&dep, &outcome);
            if let Err(why) = &verdict {
                eprintln!(
                    "---- console of {label} ----\n{}\n---- QEMU stderr ----\n{}\n---- end ----",
                    outcome.console, outcome.qemu_stderr
                );
                eprintln!("xtask: {label}: {why}");
                for line in crate::symbolize::annotate(&image, &outcome.console) {
                    eprintln!("xtask: {label}: {line}");
                }
            }
            let detail = match &verdict {
                Ok(()) => format!("({:.2}s)", outcome.elapsed.as_secs_f64()),
                Err(why) => why.clone(),
            };
            results.push((label, Verdict::from_ok(verdict.is_ok()), detail));
        }
    }
    Ok(results)
}

/// Whether `outcome` is what `dep` expects, and if not, why not.
pub fn judge(dep: &Deployment, outcome: &Outcome) -> Result<(), String> {
    let expect = &dep.manifest.expect;
    let want = expect.exit.code();
    if outcome.timed_out || outcome.code != Some(want) {
        return Err(format!(
            "expected exit {:?}, got: {}",
            want.name(),
            outcome.summary()
        ));
    }
    if let Err(needle) = crate::console::find_in_order(&outcome.console, &expect.output) {
        return Err(format!("console lacks {needle:?} (in order)"));
    }
    if let Some(needle) = crate::console::find_missing(&outcome.console, &expect.output_anywhere) {
        return Err(format!("console lacks {needle:?}"));
    }
    if let Some(needle) = crate::console::find_any(&outcome.console, &expect.absent) {
        return Err(format!("console shows forbidden {needle:?}"));
    }
    Ok(())
}
