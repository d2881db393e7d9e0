//! Deployment manifests: `services/deployments/<name>.toml`.
//!
//! A deployment says what machine to boot (memory, IOMMU and its options,
//! devices, kernel arguments), which services run on it with which budgets
//! and capabilities, which channels join them, and, for `cargo xtask test`,
//! what the run must show (exit status, lines on the console). Hubris'
//! `app.toml` is the model.
//!
//! Manifests are parsed strictly (unknown keys are errors) and validated
//! before anything is built; every error names the file and line, and all
//! errors of a manifest are reported at once. The result is a [`Deployment`]
//! whose [`System`] holds the [`faultline_ipc::kconfig::KernelConfig`] the
//! kernel will receive.
//!
//! - [`schema`]: the TOML's shape;
//! - `machine`: checks of `[machine]`;
//! - `validate`: checks of `[services.*]` and `[[channels]]` (with
//!   `grants` for MMIO, PCI and notification bits, against the machine
//!   map in `q35`; `features` for cargo features; `iommu` for the VT-d
//!   units' holder and the drivers that need it), which then build the
//!   [`System`] (in `kconfig`).

mod features;
mod grants;
mod iommu;
mod kconfig;
mod machine;
mod q35;
pub mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use kconfig::{ServicePlan, System};
pub use schema::Manifest;

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where deployment manifests live, relative to the workspace root.
pub const DEPLOYMENT_DIR: &str = "services/deployments";

/// A validated deployment.
#[derive(Debug)]
pub struct Deployment {
    pub name: String,
    pub path: PathBuf,
    pub manifest: Manifest,
    /// What the kernel gets; `None` for a deployment without services (the
    /// kernel then boots with an empty configuration).
    pub system: Option<System>,
    /// One error per service whose `crate` is not (yet) a package under
    /// `services/`. Kept apart from the other errors so that `cargo xtask
    /// test` can skip such a deployment while its services are being
    /// written; building it fails with these errors.
    pub missing_crates: Vec<String>,
    /// Warnings about what builds but is worth knowing (printed when the
    /// manifest is loaded), e.g. a driver whose DMA no IOMMU isolates.
    pub warnings: Vec<String>,
}

impl Deployment {
    pub fn timeout_secs(&self) -> u64 {
        self.manifest.expect.timeout_secs.unwrap_or(60)
    }

    /// Fails, naming each line, if a service's crate does not exist.
    pub fn require_crates(&self) -> Result<()> {
        if self.missing_crates.is_empty() {
            Ok(())
        } else {
            bail!("{}", self.missing_crates.join("\n"))
        }
    }
}

/// Manifest text and where it came from, to turn spans into `path:line`.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    /// `path:line` of a span.
    pub fn at(&self, span: Range<usize>) -> String {
        format!("{}:{}", self.path.display(), self.line(span.start))
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Every deployment name, sorted.
pub fn all_names() -> Result<Vec<String>> {
    let dir = workspace_root().join(DEPLOYMENT_DIR);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The names of the packages in `services/*/Cargo.toml`: the crates a
/// service may name.
pub fn service_packages() -> Result<BTreeSet<String>> {
    let dir = workspace_root().join("services");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let manifest = entry?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let value: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
        if let Some(name) = value
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        {
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

/// Loads and validates `services/deployments/<name>.toml`.
pub fn load(name: &str) -> Result<Deployment> {
    let path = workspace_root()
        .join(DEPLOYMENT_DIR)
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).with_context(|| {
        let known = all_names().unwrap_or_default().join(", ");
        format!(
            "no deployment named {name:?} ({}); known: {known}",
            path.display()
        )
    })?;
    parse(name, &path, &text, &service_packages()?)
}

/// Parses and validates manifest text; errors name `path` and the line.
/// `packages` are the crates a service may name (see [`service_packages`]).
pub fn parse(
    name: &str,
    path: &Path,
    text: &str,
    packages: &BTreeSet<String>,
) -> Result<Deployment> {
    let src = Source { path, text };
    let manifest: Manifest = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| src.line(s.start));
        anyhow::anyhow!("{}:{}: {}", path.display(), line, e.message())
    })?;
    machine::check(&src, &manifest.machine)?;
    let checked = validate::check(&src, name, &manifest, packages);
    if !checked.errors.is_empty() {
        bail!("{}", checked.errors.join("\n"));
    }
    for w in &checked.warnings {
        eprintln!("xtask: warning (left for the kernel to refuse at boot): {w}");
    }
    for w in &checked.notes {
        eprintln!("xtask: warning: {w}");
    }
    Ok(Deployment {
        name: name.to_string(),
        path: path.to_path_buf(),
        manifest,
        system: checked.system,
        missing_crates: checked.missing_crates,
        warnings: checked.notes,
    })
}
