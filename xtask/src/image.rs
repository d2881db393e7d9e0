//! Building the bootable image for a deployment.
//!
//! For a deployment with services, each distinct service crate is built for
//! `x86_64-unknown-none` (`--bin <crate> --features <crate>/image`, plus
//! `<crate>/<feature>` for each of its manifest `features`), its ELF is
//! checked ([`crate::elf`]) against the loader's rules and the service's
//! memory budget, and the deployment directory is written:
//!
//! ```text
//! target/deployments/<name>/
//!   kconfig.bin     postcard KernelConfig (KernelConfig::encode)
//!   images/<i>.elf  one per image index (ServiceConfig::image)
//!   manifest.json   a summary for humans
//!   faultline.elf   the bootable kernel with all of the above embedded
//! ```
//!
//! The kernel (`faultline-kernel`, feature `image`) is then built with
//! `FAULTLINE_DEPLOYMENT_DIR` naming that directory; its build script embeds
//! `kconfig.bin` and the images. A deployment without services builds the
//! kernel without the variable (an empty configuration). The kernel is
//! linked with `kernel/link.ld` into an ELF that QEMU boots through its PVH
//! note, and copied into the deployment directory so that deployments do
//! not overwrite each other's image.
//!
//! Files are only rewritten when their contents change, so an unchanged
//! deployment does not rebuild the kernel.
//!
//! [`ImageOptions::kernel_features`] asks for kernel features besides
//! `image` (`cargo xtask bench` builds `bench` a second time with
//! `ipc-stages`). Such an image gets its own directory,
//! `target/deployments/<name>+<feature>[+<feature>...]/` (see
//! [`out_dir_name`]), so it never overwrites the plain one. The kernel
//! binary cargo leaves in `target/x86_64-unknown-none/<profile>/faultline`
//! is shared by every build, but cargo's fingerprint includes the feature
//! set, so each build relinks it (or re-copies it from its own
//! feature-specific artefact) for the features asked for, and the copy
//! into the deployment directory is made right after that build.

use crate::deployment::{Deployment, System, workspace_root};
use crate::elf::{self, ImageInfo};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The bare-metal target everything that runs in the guest is built for.
pub const TARGET: &str = "x86_64-unknown-none";
/// The variable through which the kernel's build script finds the deployment.
pub const DEPLOYMENT_ENV: &str = "FAULTLINE_DEPLOYMENT_DIR";

/// How to build a deployment's image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageOptions {
    /// Build with optimisations.
    pub release: bool,
    /// Kernel features besides `image` (none for an ordinary image).
    pub kernel_features: Vec<String>,
}

/// The name of the directory under `target/deployments/` that the image
/// of `deployment` built with `kernel_features` goes to: the deployment's
/// name, followed by `+<feature>` for each extra kernel feature (no
/// deployment's name has a `+`, so it does not clash with another's).
pub fn out_dir_name(deployment: &str, kernel_features: &[String]) -> String {
    let mut name = deployment.to_string();
    for f in kernel_features {
        name.push('+');
        name.push_str(f);
    }
    name
}

/// Builds the image for `deployment` and returns its path.
pub fn build(deployment: &Deployment, release: bool) -> Result<PathBuf> {
    build_with(
        deployment,
        &ImageOptions {
            release,
            ..ImageOptions::default()
        },
    )
}

/// Builds the image for `deployment` as `opts` say and returns its path.
pub fn build_with(deployment: &Deployment, opts: &ImageOptions) -> Result<PathBuf> {
    let release = opts.release;
    deployment.require_crates()?;
    let root = workspace_root();
    ensure_target(&root)?;
    let dir = root
        .join("target")
        .join("deployments")
        .join(out_dir_name(&deployment.name, &opts.kernel_features));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let embed = match &deployment.system {
        Some(system) => {
            let elves = build_services(&root, system, release)?;
            write_bundle(&dir, deployment, system, &elves, release)?;
            Some(dir.clone())
        }
        None => None,
    };
    let kernel = build_kernel(&root, embed.as_deref(), release, &opts.kernel_features)?;
    let out = dir.join("faultline.elf");
    std::fs::copy(&kernel, &out)
        .with_context(|| format!("copying {} to {}", kernel.display(), out.display()))?;
    Ok(out)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn profile(release: bool) -> &'static str {
    if release { "release" } else { "debug" }
}

/// One built and checked service image.
struct Elf {
    path: PathBuf,
    bytes: Vec<u8>,
    info: ImageInfo,
}

/// Builds every image of `system` in one cargo run and checks each.
fn build_services(root: &Path, system: &System, release: bool) -> Result<Vec<Elf>> {
    let mut cmd = cargo();
    cmd.current_dir(root).args(["build", "--target", TARGET]);
    for krate in &system.images {
        cmd.args(["--package", krate, "--bin", krate]);
    }
    cmd.args(["--features", &features_arg(system)]);
    if release {
        cmd.arg("--release");
    }
    eprintln!("xtask: building services: {}", system.images.join(", "));
    let status = cmd
        .status()
        .context("running cargo build for the services")?;
    if !status.success() {
        bail!("building the services failed ({status})");
    }
    let dir = root.join("target").join(TARGET).join(profile(release));
    let mut elves = Vec::new();
    for krate in &system.images {
        let path = dir.join(krate);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "reading {} (the binary of service crate {krate})",
                path.display()
            )
        })?;
        let info = elf::inspect(krate, &bytes)?;
        elves.push(Elf { path, bytes, info });
    }
    for plan in &system.services {
        elf::check_budget(plan, &elves[plan.image].info)?;
    }
    Ok(elves)
}

/// `--features` for every image at once: `<crate>/image` and
/// `<crate>/<feature>` for each of the image's manifest `features`.
fn features_arg(system: &System) -> String {
    let mut features = Vec::new();
    for (krate, extra) in system.images.iter().zip(&system.features) {
        features.push(format!("{krate}/image"));
        features.extend(extra.iter().map(|f| format!("{krate}/{f}")));
    }
    features.join(",")
}

/// Writes `path` unless it already holds `data` (keeps mtimes, so cargo
/// does not rebuild the kernel for nothing).
fn write_if_changed(path: &Path, data: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(data) {
        return Ok(());
    }
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

fn write_bundle(
    dir: &Path,
    dep: &Deployment,
    system: &System,
    elves: &[Elf],
    release: bool,
) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let config = system
        .config
        .encode(&mut buf)
        .map_err(|e| anyhow::anyhow!("encoding the kernel config: {e}"))?
        .to_vec();
    write_if_changed(&dir.join("kconfig.bin"), &config)?;
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    for entry in std::fs::read_dir(&images)? {
        let path = entry?.path();
        let keep = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<usize>().ok())
            .is_some_and(|i| i < elves.len() && path.extension().is_some_and(|e| e == "elf"));
        if !keep {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
    }
    for (i, e) in elves.iter().enumerate() {
        write_if_changed(&images.join(format!("{i}.elf")), &e.bytes)?;
    }
    let summary = summary(dep, system, elves, config.len(), release);
    let json = serde_json::to_string_pretty(&summary)? + "\n";
    write_if_changed(&dir.join("manifest.json"), json.as_bytes())
}

/// `manifest.json`: what went into the deployment, for humans.
fn summary(
    dep: &Deployment,
    system: &System,
    elves: &[Elf],
    config_bytes: usize,
    release: bool,
) -> serde_json::Value {
    use serde_json::json;
    let c = &system.config;
    let services: Vec<_> = c
        .services
        .iter()
        .zip(&system.services)
        .enumerate()
        .map(|(i, (s, plan))| {
            let caps: Vec<_> = s
                .caps
                .iter()
                .enumerate()
                .map(|(h, cap)| json!({ "handle": h, "name": cap.name.as_str(), "kind": format!("{:?}", cap.kind) }))
                .collect();
            json!({
                "index": i,
                "name": s.name.as_str(),
                "crate": plan.krate,
                "image": s.image,
                "priority": s.priority,
                "memory_kib": plan.memory_kib,
                "stack_kib": plan.stack_kib,
                "needed_kib": elves[plan.image].info.needed_kib(plan.stack_kib),
                "restart": format!("{:?}", s.restart),
                "caps": caps,
            })
        })
        .collect();
    let channels: Vec<_> = c
        .channels
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            json!({
                "index": i,
                "name": ch.name.as_str(),
                "client": c.services[usize::from(ch.client)].name.as_str(),
                "server": c.services[usize::from(ch.server)].name.as_str(),
            })
        })
        .collect();
    let images: Vec<_> = elves
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let segments: Vec<_> = e
                .info
                .segments
                .iter()
                .map(|s| json!({ "vaddr": format!("{:#x}", s.vaddr), "memsz": s.memsz, "filesz": s.filesz, "flags": s.flags }))
                .collect();
            json!({
                "index": i,
                "crate": system.images[i],
                "features": system.features[i],
                "file": format!("images/{i}.elf"),
                "built": e.path.display().to_string(),
                "bytes": e.bytes.len(),
                "entry": format!("{:#x}", e.info.entry),
                "load_kib": e.info.load_kib,
                "segments": segments,
            })
        })
        .collect();
    json!({
        "deployment": dep.name,
        "description": dep.manifest.description,
        "manifest": dep.path.display().to_string(),
        "profile": profile(release),
        "config_version": c.version,
        "kconfig_bytes": config_bytes,
        "services": services,
        "channels": channels,
        "images": images,
        "warnings": dep.warnings,
    })
}

/// The `cargo` arguments that build the kernel binary: feature `image`
/// plus `features`.
fn kernel_args(release: bool, features: &[String]) -> Vec<String> {
    let features = std::iter::once("image")
        .chain(features.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(",");
    let mut args: Vec<String> = [
        "build",
        "--package",
        "faultline-kernel",
        "--bin",
        "faultline",
        "--features",
        &features,
        "--target",
        TARGET,
    ]
    .map(String::from)
    .into();
    if release {
        args.push("--release".into());
    }
    args
}

/// Builds the kernel with feature `image` and `features`, embedding the
/// deployment directory `embed` if given.
fn build_kernel(
    root: &Path,
    embed: Option<&Path>,
    release: bool,
    features: &[String],
) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.current_dir(root).args(kernel_args(release, features));
    match embed {
        Some(dir) => cmd.env(DEPLOYMENT_ENV, dir),
        None => cmd.env_remove(DEPLOYMENT_ENV),
    };
    if !features.is_empty() {
        eprintln!(
            "xtask: building the kernel with features image,{}",
            features.join(",")
        );
    }
    let status = cmd.status().context("running cargo build for the image")?;
    if !status.success() {
        bail!("building the kernel image failed ({status})");
    }
    let path = root
        .join("target")
        .join(TARGET)
        .join(profile(release))
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
fn ensure_target(root: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_ipc::kconfig::{CONFIG_VERSION, KernelConfig};

    #[test]
    fn the_kernel_is_built_with_image_and_the_extra_features() {
        let plain = kernel_args(true, &[]);
        let i = plain.iter().position(|a| a == "--features").unwrap();
        assert_eq!(plain[i + 1], "image");
        assert!(plain.contains(&"--release".to_string()));
        let stages = kernel_args(false, &["ipc-stages".into()]);
        let i = stages.iter().position(|a| a == "--features").unwrap();
        assert_eq!(stages[i + 1], "image,ipc-stages");
        assert_eq!(
            stages.iter().filter(|a| *a == "--features").count(),
            1,
            "{stages:?}"
        );
        assert!(!stages.contains(&"--release".to_string()));
        let mut without = stages.clone();
        without.remove(i + 1);
        without.remove(i);
        assert_eq!(
            without,
            [
                "build",
                "--package",
                "faultline-kernel",
                "--bin",
                "faultline",
                "--target",
                TARGET
            ]
        );
        let two = kernel_args(true, &["a".into(), "b".into()]);
        assert!(two.contains(&"image,a,b".to_string()));
    }

    #[test]
    fn an_image_with_extra_kernel_features_has_its_own_directory() {
        assert_eq!(out_dir_name("bench", &[]), "bench");
        assert_eq!(
            out_dir_name("bench", &["ipc-stages".into()]),
            "bench+ipc-stages"
        );
        assert_eq!(out_dir_name("x", &["a".into(), "b".into()]), "x+a+b");
        assert_eq!(
            ImageOptions::default().kernel_features,
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_image_gets_image_and_its_own_features() {
        let system = System {
            config: KernelConfig {
                version: CONFIG_VERSION,
                deployment: "t".try_into().unwrap(),
                services: heapless::Vec::new(),
                channels: heapless::Vec::new(),
            },
            images: vec!["faultline-supervisor".into(), "faultline-iommu".into()],
            features: vec![vec![], vec!["a".into(), "scalable".into()]],
            services: Vec::new(),
        };
        assert_eq!(
            features_arg(&system),
            "faultline-supervisor/image,faultline-iommu/image,faultline-iommu/a,faultline-iommu/scalable"
        );
    }
}
