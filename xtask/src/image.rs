//! Building the bootable image.
//!
//! The kernel binary (`faultline-kernel`, feature `image`) is built for
//! `x86_64-unknown-none`; its build script links it with `kernel/link.ld`.
//! The result is an ELF that QEMU boots directly through its PVH note.

use crate::deployment::{Deployment, workspace_root};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// The bare-metal target everything that runs in the guest is built for.
pub const TARGET: &str = "x86_64-unknown-none";

/// Builds the image for `deployment` and returns its path.
pub fn build(_deployment: &Deployment, release: bool) -> Result<PathBuf> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args([
        "build",
        "--package",
        "faultline-kernel",
        "--bin",
        "faultline",
        "--features",
        "image",
        "--target",
        TARGET,
    ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build for the image")?;
    if !status.success() {
        bail!("building the kernel image failed ({status})");
    }
    let profile = if release { "release" } else { "debug" };
    let path = root.join("target").join(TARGET).join(profile).join("faultline");
    if !path.exists() {
        bail!("cargo reported success but {} does not exist", path.display());
    }
    Ok(path)
}
