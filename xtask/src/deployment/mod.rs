//! Deployment manifests: `services/deployments/<name>.toml`.
//!
//! A deployment says what machine to boot (memory, IOMMU and its options,
//! devices, kernel arguments) and, for `cargo xtask test`, what the run must
//! show (exit status, lines on the console). Manifests are parsed strictly
//! (unknown keys are errors) and validated before anything is built; every
//! error names the file and line.

use anyhow::{Context, Result, bail};
use faultline_ipc::harness::ExitCode;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where deployment manifests live, relative to the workspace root.
pub const DEPLOYMENT_DIR: &str = "services/deployments";

/// A validated deployment.
#[derive(Debug)]
pub struct Deployment {
    pub name: String,
    pub path: PathBuf,
    pub manifest: Manifest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// One line saying what the deployment is for.
    pub description: String,
    pub machine: Machine,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Machine {
    /// Guest RAM in MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: Spanned<u64>,
    /// The Intel VT-d IOMMU; absent means the machine has none.
    pub iommu: Option<Iommu>,
    /// `-device` arguments for PCI devices, e.g. `"edu"`.
    #[serde(default)]
    pub devices: Vec<Spanned<String>>,
    /// The kernel command line.
    #[serde(default)]
    pub kernel_args: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Iommu {
    /// `intel-iommu` properties as `key=value`.
    #[serde(default = "no_options")]
    pub options: Spanned<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    /// How the run must end (default: success).
    #[serde(default)]
    pub exit: ExpectedExit,
    /// Text that must appear on the console, in this order.
    #[serde(default)]
    pub output: Vec<String>,
    /// Text that must not appear on the console.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Seconds before the run counts as hung (default 60).
    pub timeout_secs: Option<u64>,
}

/// The expected `isa-debug-exit` code, by name.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedExit {
    #[default]
    Success,
    Failure,
    Panic,
    Exception,
    BootFailure,
    NoIommu,
}

impl ExpectedExit {
    pub fn code(self) -> ExitCode {
        match self {
            Self::Success => ExitCode::Success,
            Self::Failure => ExitCode::Failure,
            Self::Panic => ExitCode::Panic,
            Self::Exception => ExitCode::Exception,
            Self::BootFailure => ExitCode::BootFailure,
            Self::NoIommu => ExitCode::NoIommu,
        }
    }
}

fn no_options() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

fn default_memory() -> Spanned<u64> {
    Spanned::new(0..0, 256)
}

impl Deployment {
    pub fn timeout_secs(&self) -> u64 {
        self.manifest.expect.timeout_secs.unwrap_or(60)
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
    parse(name, &path, &text)
}

/// Parses and validates manifest text; errors name `path` and the line.
pub fn parse(name: &str, path: &Path, text: &str) -> Result<Deployment> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        anyhow::anyhow!("{}:{}: {}", path.display(), line.unwrap_or(1), e.message())
    })?;
    let at =
        |span: std::ops::Range<usize>| format!("{}:{}", path.display(), line_of(text, span.start));

    let mem = &manifest.machine.memory_mib;
    if !(64..=65536).contains(mem.get_ref()) {
        bail!(
            "{}: memory-mib = {} is outside 64..=65536",
            at(mem.span()),
            mem.get_ref()
        );
    }
    for dev in &manifest.machine.devices {
        if dev.get_ref().trim().is_empty() || dev.get_ref().starts_with("intel-iommu") {
            bail!(
                "{}: device {:?}: devices are PCI devices; the IOMMU is configured in [machine.iommu]",
                at(dev.span()),
                dev.get_ref()
            );
        }
    }
    if let Some(iommu) = &manifest.machine.iommu {
        check_iommu_options(iommu.options.get_ref()).map_err(|e| {
            anyhow::anyhow!("{}: [machine.iommu] options: {e}", at(iommu.options.span()))
        })?;
    }
    Ok(Deployment {
        name: name.to_string(),
        path: path.to_path_buf(),
        manifest,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

const IOMMU_KEYS: &[&str] = &[
    "aw-bits",
    "caching-mode",
    "device-iotlb",
    "dma-drain",
    "dma-translation",
    "pt",
    "intremap",
    "eim",
    "x-scalable-mode",
    "x-flts",
    "x-pasid-mode",
    "fs1gp",
    "snoop-control",
    "stale-tm",
];

/// Checks `intel-iommu` properties against the combinations QEMU refuses
/// (at start-up, with an error that is easy to misread as a Faultline bug).
pub fn check_iommu_options(options: &[String]) -> Result<(), String> {
    let mut get = std::collections::BTreeMap::new();
    for opt in options {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| format!("{opt:?} is not key=value"))?;
        if !IOMMU_KEYS.contains(&k) {
            return Err(format!(
                "unknown intel-iommu property {k:?} (known: {})",
                IOMMU_KEYS.join(", ")
            ));
        }
        if get.insert(k, v).is_some() {
            return Err(format!("{k:?} given twice"));
        }
    }
    let on = |k: &str| {
        get.get(k)
            .is_some_and(|v| matches!(*v, "on" | "true" | "yes"))
    };
    let aw = get.get("aw-bits").copied().unwrap_or("48");
    if !matches!(aw, "39" | "48") {
        return Err(format!("aw-bits={aw}: QEMU supports 39 or 48"));
    }
    if on("x-flts") && (!on("x-scalable-mode") || aw != "48") {
        return Err("x-flts needs x-scalable-mode=on and aw-bits=48".into());
    }
    if on("x-pasid-mode") && !on("x-scalable-mode") {
        return Err("x-pasid-mode needs x-scalable-mode=on".into());
    }
    if on("x-pasid-mode") && on("device-iotlb") {
        return Err(
            "x-pasid-mode with device-iotlb is refused by QEMU (no PASID device IOTLB)".into(),
        );
    }
    if on("x-scalable-mode") && get.get("dma-drain").is_some_and(|v| *v == "off") {
        return Err("scalable mode needs dma-drain".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Deployment> {
        parse("t", Path::new("t.toml"), text)
    }

    #[test]
    fn every_committed_deployment_is_valid() {
        for name in all_names().unwrap() {
            load(&name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn unknown_key_names_its_line() {
        let e = parse_str("description = \"x\"\n[machine]\nmemmory-mib = 5\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.starts_with("t.toml:3:"), "{msg}");
        assert!(msg.contains("memmory-mib"), "{msg}");
    }

    #[test]
    fn memory_out_of_range_names_its_line() {
        let e = parse_str("description = \"x\"\n[machine]\n\nmemory-mib = 8\n").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("t.toml:4: memory-mib = 8"),
            "{e:#}"
        );
    }

    #[test]
    fn iommu_option_rules() {
        let s =
            |v: &[&str]| check_iommu_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(s(&["x-scalable-mode=on", "x-pasid-mode=on"]).is_ok());
        assert!(
            s(&["x-pasid-mode=on"])
                .unwrap_err()
                .contains("needs x-scalable-mode")
        );
        assert!(s(&["x-flts=on", "x-scalable-mode=on", "aw-bits=39"]).is_err());
        assert!(s(&["aw-bits=57"]).is_err());
        assert!(s(&["bogus=1"]).unwrap_err().contains("unknown"));
        assert!(s(&["pt"]).unwrap_err().contains("key=value"));
        assert!(s(&["pt=on", "pt=off"]).unwrap_err().contains("twice"));
        let e = parse_str("description = \"x\"\n[machine.iommu]\noptions = [\"x-flts=on\"]\n")
            .unwrap_err();
        assert!(format!("{e:#}").starts_with("t.toml:3:"), "{e:#}");
    }

    #[test]
    fn iommu_as_a_device_is_refused() {
        let e = parse_str("description = \"x\"\n[machine]\ndevices = [\"edu\", \"intel-iommu\"]\n")
            .unwrap_err();
        assert!(format!("{e:#}").contains("t.toml:3:"), "{e:#}");
    }

    #[test]
    fn expected_exit_names() {
        let d =
            parse_str("description = \"x\"\n[machine]\n[expect]\nexit = \"no-iommu\"\n").unwrap();
        assert_eq!(d.manifest.expect.exit.code(), ExitCode::NoIommu);
    }
}
