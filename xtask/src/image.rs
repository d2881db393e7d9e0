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
    ensure_target(&root)?;
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
    let path = root
        .join("target")
        .join(TARGET)
        .join(profile)
        .join("faultline");
    if !path.exists() {
        bail!(
            "cargo reported success but {} does not exist",
            path.display()
        );
    }
    Ok(path)
}

/// Makes sure the bare-metal target's standard library is installed.
/// `rust-toolchain.toml` lists it, but rustup only honours that list when it
/// installs the toolchain itself, not for a toolchain already present.
fn ensure_target(root: &std::path::Path) -> Result<()> {
    let Ok(out) = Command::new("rustup")
        .current_dir(root)
        .args(["target", "list", "--installed"])
        .output()
    else {
        // No rustup: the toolchain came from elsewhere; let cargo report it.
        return Ok(());
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        return Ok(());
    }
    eprintln!("xtask: installing the {TARGET} target: rustup target add {TARGET}");
    let status = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", TARGET])
        .status()?;
    if !status.success() {
        bail!("`rustup target add {TARGET}` failed ({status})");
    }
    Ok(())
}
