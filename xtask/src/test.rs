//! `cargo xtask test`: every host test, then every deployment's scenario.
//!
//! Each deployment under `services/deployments/` is a scenario: it is booted
//! under KVM (when usable) and under TCG, and passes when the guest's exit
//! code is the one its `[expect]` table names and its console shows the
//! expected lines in order and none of the forbidden ones. A deployment
//! whose service crates do not exist yet is reported as SKIP (with the
//! reason), never as PASS, and does not fail the run.

use crate::deployment::{self, Deployment, workspace_root};
use crate::image;
use crate::qemu::{self, Accel, Outcome, Qemu, RunOptions};
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

fn run_scenarios(filter: Option<&str>) -> Result<Vec<(String, Verdict, String)>> {
    let mut accels = Vec::new();
    match qemu::kvm_usable() {
        Ok(()) => accels.push(Accel::Kvm),
        Err(why) => eprintln!("xtask: scenarios run under TCG only ({why})"),
    }
    accels.push(Accel::Tcg);
    let qemu = Qemu::locate_or_install()?;
    let mut results = Vec::new();
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
        for &accel in &accels {
            let label = format!("scenario {name} [{}]", accel.name());
            eprintln!("xtask: {label}");
            let opts = RunOptions {
                accel,
                timeout: dep.timeout_secs(),
                gdb: false,
                extra_args: Vec::new(),
                echo: false,
                extra_kernel_args: None,
            };
            let outcome = qemu.run(&dep, &image, &opts)?;
            let verdict = judge(&dep, &outcome);
            if let Err(why) = &verdict {
                eprintln!(
                    "---- console of {label} ----\n{}\n---- end ----",
                    outcome.console
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
    if let Some(needle) = crate::console::find_any(&outcome.console, &expect.absent) {
        return Err(format!("console shows forbidden {needle:?}"));
    }
    Ok(())
}
