//! `cargo xtask conformance`: Faultline's IPC conformance suite, one line
//! per case and a JSON report.
//!
//! Three parts, each a set of cases:
//!
//! - `wire`: the wire vectors (`ipc/vectors/*.json`, format in
//!   `ipc/vectors/FORMAT.md`) through the Rust runner (`cargo test
//!   --package faultline-ipc --test vectors`, one case per test) and
//!   through the second decoder, `ipc/vectors/check.py` (one case per
//!   vector file);
//! - `kernel`: the `conformance-kernel` deployment, cases run by a service
//!   against the real kernel in QEMU;
//! - `handler`: the fault-handler harness (`conformance-handler`: the
//!   harness plays the IOMMU service's side of the `faults` protocol)
//!   against `edu-fault-handler`.
//!
//! `--handler <crate>[/<feature>]` runs only the handler part, against that
//! handler service (the `conformance-handler` deployment with its handler
//! replaced), e.g. `--handler faultline-broken-handler/answers-twice`.
//!
//! Every case prints `PASS name`, `FAIL name: reason` or `SKIP name:
//! reason`; the report goes to `target/conformance/report.json`; the last
//! line is `N passed, M failed` and the exit status is non-zero if any case
//! failed (or a part could not run at all). In QEMU the guest lines are
//! what the services printed (`[t @service] PASS name`), and a run whose
//! outcome is not the one its cases imply is a failure of its own.

use crate::deployment::{self, workspace_root};
use crate::{image, qemu};
use anyhow::{Context, Result};
use serde_json::json;
use std::process::Command;

/// One case's verdict.
struct Case {
    part: &'static str,
    name: String,
    status: Status,
    reason: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// The handler deployment the `--handler` option rewrites.
const HANDLER_DEPLOYMENT: &str = "conformance-handler";
/// The handler service in it.
const HANDLER_SERVICE: &str = "handler";

pub fn run(handler: Option<&str>) -> Result<bool> {
    let mut cases = Vec::new();
    match handler {
        Some(spec) => handler_part(&mut cases, Some(spec))?,
        None => {
            wire_part(&mut cases)?;
            qemu_part(
                &mut cases,
                "kernel",
                deployment::load("conformance-kernel")?,
            )?;
            handler_part(&mut cases, None)?;
        }
    }
    let passed = cases.iter().filter(|c| c.status == Status::Pass).count();
    let failed = cases.iter().filter(|c| c.status == Status::Fail).count();
    let skipped = cases.iter().filter(|c| c.status == Status::Skip).count();
    write_report(&cases, handler, passed, failed, skipped)?;
    if skipped > 0 {
        println!("({skipped} skipped: the SKIP lines say why)");
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn record(cases: &mut Vec<Case>, part: &'static str, name: &str, status: Status, reason: &str) {
    match (status, reason.is_empty()) {
        (Status::Pass, _) | (_, true) => println!("{} {part}/{name}", status.word()),
        _ => println!("{} {part}/{name}: {reason}", status.word()),
    }
    cases.push(Case {
        part,
        name: name.to_string(),
        status,
        reason: reason.to_string(),
    });
}

/// The wire vectors, through both runners.
fn wire_part(cases: &mut Vec<Case>) -> Result<()> {
    let root = workspace_root();
    let out = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["test", "--package", "faultline-ipc", "--test", "vectors"])
        .output()
        .context("running the Rust vector runner")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = 0;
    for line in text.lines() {
        // `test <name> ... ok` / `... FAILED`.
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, verdict)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        seen += 1;
        let status = if verdict.trim() == "ok" {
            Status::Pass
        } else {
            Status::Fail
        };
        record(
            cases,
            "wire",
            &format!("rust/{name}"),
            status,
            verdict.trim(),
        );
    }
    if seen == 0 || !out.status.success() && !cases.iter().any(|c| c.status == Status::Fail) {
        let why = String::from_utf8_lossy(&out.stderr);
        let last = why.lines().last().unwrap_or("no test ran");
        record(cases, "wire", "rust", Status::Fail, last);
    }
    let out = Command::new("python3")
        .current_dir(&root)
        .arg("ipc/vectors/check.py")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let why = format!("python3 not runnable ({e}); apt-get install python3");
            record(cases, "wire", "python", Status::Fail, &why);
            return Ok(());
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut files = 0;
    for line in text.lines() {
        // `<file>.json: N/N cases pass`, or lines naming a mismatch.
        let Some((file, rest)) = line.split_once(".json: ") else {
            continue;
        };
        if file.contains(' ') {
            continue;
        }
        files += 1;
        let pass = rest
            .split_once(" cases pass")
            .and_then(|(n, _)| n.split_once('/'))
            .is_some_and(|(a, b)| a == b);
        let status = if pass { Status::Pass } else { Status::Fail };
        record(cases, "wire", &format!("python/{file}.json"), status, rest);
    }
    if files == 0 || !out.status.success() && pass_only(cases, "wire") {
        let last = text.lines().last().unwrap_or("no output").to_string();
        record(cases, "wire", "python", Status::Fail, &last);
    }
    Ok(())
}

fn pass_only(cases: &[Case], part: &str) -> bool {
    cases
        .iter()
        .filter(|c| c.part == part)
        .all(|c| c.status != Status::Fail)
}

/// The handler harness, against `edu-fault-handler` or the handler named
/// `<crate>[/<feature>]`.
fn handler_part(cases: &mut Vec<Case>, spec: Option<&str>) -> Result<()> {
    let dep = match spec {
        None => deployment::load(HANDLER_DEPLOYMENT)?,
        Some(spec) => with_handler(spec)?,
    };
    qemu_part(cases, "handler", dep)
}

/// The handler deployment with its handler service replaced.
fn with_handler(spec: &str) -> Result<deployment::Deployment> {
    let (krate, feature) = match spec.split_once('/') {
        Some((k, f)) => (k, Some(f)),
        None => (spec, None),
    };
    let path = workspace_root()
        .join("services/deployments")
        .join(format!("{HANDLER_DEPLOYMENT}.toml"));
    let text = std::fs::read_to_string(&path)?;
    let mut table: toml::Table = toml::from_str(&text)?;
    let service = table
        .get_mut("services")
        .and_then(|s| s.get_mut(HANDLER_SERVICE))
        .and_then(|s| s.as_table_mut())
        .context("the handler deployment has no `handler` service")?;
    service.insert("crate".into(), toml::Value::String(krate.into()));
    let features = feature
        .map(|f| toml::Value::String(f.into()))
        .into_iter()
        .collect();
    service.insert("features".into(), toml::Value::Array(features));
    // The outcome is judged from the cases, not from the expectations
    // written for edu-fault-handler.
    table.remove("expect");
    let text = toml::to_string(&table)?;
    deployment::parse(
        "conformance-custom",
        &path,
        &text,
        &deployment::service_packages()?,
    )
    .with_context(|| format!("the handler deployment with handler {spec}"))
}

/// Boots `dep` and turns its services' `PASS`/`FAIL`/`SKIP` lines into
/// cases; a run that ends otherwise than its cases imply fails on its own.
fn qemu_part(cases: &mut Vec<Case>, part: &'static str, dep: deployment::Deployment) -> Result<()> {
    eprintln!("xtask: conformance: {part}: deployment {}", dep.name);
    let image = image::build(&dep, false)?;
    let qemu = qemu::Qemu::locate_or_install()?;
    let target = qemu.select(None)?;
    let opts = qemu::RunOptions {
        timeout: target.timeout(dep.timeout_secs()),
        target,
        icount: false,
        gdb: false,
        extra_args: Vec::new(),
        echo: false,
        extra_kernel_args: None,
    };
    let outcome = qemu.run(&dep, &image, &opts)?;
    let before = cases.len();
    let mut last: Option<usize> = None;
    for line in outcome.console.lines() {
        // `[<uptime> @<service>] <text>`: only services' own lines.
        let Some((_, text)) = line.split_once("] ") else {
            continue;
        };
        if !line.contains(" @") {
            continue;
        }
        if let Some(more) = text.strip_prefix("  also ") {
            // A further violation of the case just failed.
            if let Some(i) = last {
                cases[i].reason.push_str("; ");
                cases[i].reason.push_str(more);
                println!("    also {more}");
            }
            continue;
        }
        let (status, rest) = if let Some(r) = text.strip_prefix("PASS ") {
            (Status::Pass, r)
        } else if let Some(r) = text.strip_prefix("FAIL ") {
            (Status::Fail, r)
        } else if let Some(r) = text.strip_prefix("SKIP ") {
            (Status::Skip, r)
        } else {
            continue;
        };
        let (name, reason) = rest.split_once(": ").unwrap_or((rest, ""));
        record(cases, part, name, status, reason);
        last = Some(cases.len() - 1);
    }
    let any_failed = cases[before..].iter().any(|c| c.status == Status::Fail);
    let ran = cases.len() > before;
    let consistent = ran && outcome.is_success() != any_failed;
    if !consistent {
        let why = if ran {
            format!("the run ended {} ({})", outcome.summary(), dep.name)
        } else {
            format!("no case reported ({}): {}", dep.name, outcome.summary())
        };
        record(cases, part, "run", Status::Fail, &why);
    }
    Ok(())
}

fn write_report(
    cases: &[Case],
    handler: Option<&str>,
    passed: usize,
    failed: usize,
    skipped: usize,
) -> Result<()> {
    let dir = workspace_root().join("target/conformance");
    std::fs::create_dir_all(&dir)?;
    let commit = Command::new("git")
        .current_dir(workspace_root())
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let report = json!({
        "commit": commit,
        "handler": handler.unwrap_or("faultline-edu-fault-handler"),
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "cases": cases.iter().map(|c| json!({
            "part": c.part,
            "name": c.name,
            "status": c.status.word(),
            "reason": c.reason,
        })).collect::<Vec<_>>(),
    });
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    eprintln!("xtask: conformance report written to {}", path.display());
    Ok(())
}
