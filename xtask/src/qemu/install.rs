//! Finding `qemu-system-x86_64`, and installing it when it is missing.
//!
//! On Debian as root xtask installs `qemu-system-x86` itself (from
//! bookworm-backports on Debian 12 machines whose qemu-utils comes from
//! there, since the two must match); anywhere else it names the command to
//! run instead of guessing.

use super::QEMU;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_string())
}

/// On Debian 12 with qemu-utils from bookworm-backports installed, the
/// bookworm qemu-system packages cannot be installed next to it; the
/// matching qemu-system-x86 comes from bookworm-backports too.
fn needs_backports() -> bool {
    os_release("VERSION_CODENAME").as_deref() == Some("bookworm")
        && Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", "qemu-utils"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("bpo12"))
            .unwrap_or(false)
}

pub(super) fn install() -> Result<()> {
    let debian = os_release("ID").as_deref() == Some("debian");
    let backports = debian && needs_backports();
    let install_cmd = if backports {
        "apt-get install -y -t bookworm-backports qemu-system-x86"
    } else {
        "apt-get install -y qemu-system-x86"
    };
    if !(debian && is_root()) {
        bail!(
            "{QEMU} is not installed. Install QEMU 7.2 or later, e.g. on Debian/Ubuntu as root: \
             `apt-get update && {install_cmd}`{}",
            if backports {
                " (after adding the suite bookworm-backports to /etc/apt/sources.list.d/debian.sources)"
            } else {
                ""
            }
        );
    }
    eprintln!("xtask: {QEMU} is missing; installing it (running as root on Debian)");
    if backports {
        enable_backports()?;
    }
    sh("apt-get update -q")?;
    sh(&format!("DEBIAN_FRONTEND=noninteractive {install_cmd} -q"))
}

fn enable_backports() -> Result<()> {
    let path = Path::new("/etc/apt/sources.list.d/debian.sources");
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.contains("bookworm-backports") {
        return Ok(());
    }
    let updated = text.replacen(
        "Suites: bookworm bookworm-updates",
        "Suites: bookworm bookworm-updates bookworm-backports",
        1,
    );
    if updated == text {
        bail!(
            "cannot find the Debian entry in {} to add bookworm-backports to; add it by hand",
            path.display()
        );
    }
    eprintln!("xtask: adding bookworm-backports to {}", path.display());
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

fn sh(cmd: &str) -> Result<()> {
    eprintln!("xtask: + {cmd}");
    let status = Command::new("sh").arg("-c").arg(cmd).status()?;
    if !status.success() {
        bail!("`{cmd}` failed ({status})");
    }
    Ok(())
}
