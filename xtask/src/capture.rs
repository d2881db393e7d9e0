//! `cargo xtask capture-acpi`: ACPI tables from a real QEMU machine, saved
//! as fixtures for the kernel's parser tests.
//!
//! The kernel prints every table it finds when booted with `acpi.dump`, one
//! `ACPI-DUMP <signature> <physical address> <hex bytes>` line per table (the
//! RSDP included). This boots the deployment's machine that way and writes
//! those lines, with a header saying where they came from, to the fixture.

use crate::deployment::{self, workspace_root};
use crate::image;
use crate::qemu::{Qemu, RunOptions};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

pub fn capture_acpi(name: &str, out: Option<PathBuf>) -> Result<()> {
    let dep = deployment::load(name)?;
    let image = image::build(&dep, false)?;
    let qemu = Qemu::locate_or_install()?;
    let target = qemu.select(None)?;
    let opts = RunOptions {
        timeout: target.timeout(dep.timeout_secs()),
        target,
        icount: false,
        gdb: false,
        extra_args: Vec::new(),
        echo: false,
        extra_kernel_args: Some("acpi.dump".into()),
    };
    let args = qemu.command_line(&dep, &image, &opts);
    let outcome = qemu.run(&dep, &image, &opts)?;
    let lines: Vec<&str> = outcome
        .console
        .lines()
        .filter(|l| l.starts_with("ACPI-DUMP "))
        .collect();
    if lines.is_empty() {
        bail!(
            "the guest printed no ACPI-DUMP lines ({})",
            outcome.summary()
        );
    }
    let version = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let machine_args: Vec<String> = args
        .iter()
        .skip_while(|a| *a != "-machine")
        .take_while(|a| *a != "-serial")
        .filter(|a| !a.contains('/'))
        .cloned()
        .collect();
    let out = out.unwrap_or_else(|| {
        workspace_root()
            .join("kernel/tests/fixtures/acpi")
            .join(format!("{name}.acpi"))
    });
    std::fs::create_dir_all(out.parent().expect("file has a parent"))?;
    let mut text = format!(
        "# ACPI tables captured by `cargo xtask capture-acpi --deployment {name}`\n# {version}\n# {}\n",
        machine_args.join(" ")
    );
    for l in &lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    println!("{} tables -> {}", lines.len(), out.display());
    Ok(())
}
