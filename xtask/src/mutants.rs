//! `cargo xtask mutants`: mutation testing of Faultline's pure cores.
//!
//! cargo-mutants plants one deliberate bug at a time (an operator flipped, a
//! condition negated, a function body replaced by a default value) and runs
//! the crate's tests against it. A mutant the tests fail on is *caught*; one
//! they pass is *missed* (a survivor: a bug the tests would let through); one
//! that does not build is *unviable*; one that makes the tests hang is a
//! *timeout*. A timeout counts as detected (the test suite does not pass),
//! but is reported on its own.
//!
//! The cores are the code whose rules are all checked on the host:
//!
//! - `faultline-kernel`: the kernel core, `kernel/src/kern` (set
//!   `FASTPATH_CASES` lower than its default 2,000 property cases for the
//!   fast path's differential test);
//! - `faultline-ipc`: wire format, strict decoding, the kernel config and
//!   its checks, typed channels, the publisher;
//! - `xtask`: deployment validation, `xtask/src/deployment`;
//! - `faultline-fault-pipeline`: the IOMMU service's fault pipeline (set
//!   `FAULT_PIPELINE_CASES` lower than its default 2,000 property cases to
//!   make each mutant's test run quicker).
//!
//! Mutants that cannot change behaviour (equivalent mutants) are listed,
//! each with its reason, as `exclude_re` in `.cargo/mutants.toml`; nothing
//! else is excluded. Each crate is run on its own (its own tests only), and
//! cargo-mutants' full output lands in `target/mutants/<package>/mutants.out`;
//! the verdicts behind the report are kept in
//! `target/mutants/<package>/results`, and the summary printed at the end is
//! also written to `target/mutants/summary.txt`. The run is slow (every
//! mutant is a rebuild and a test run), so it is not part of
//! `cargo xtask test`; after adding tests, `--iterate` runs again only the
//! mutants the last run did not catch.

use crate::deployment::workspace_root;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// One crate's core: the files mutated and the package whose tests judge
/// them.
#[derive(Debug)]
pub struct Target {
    pub package: &'static str,
    /// The crate's directory, relative to the workspace root.
    pub dir: &'static str,
    /// Globs of the files mutated by default.
    pub files: &'static [&'static str],
    /// Globs never mutated (the tests themselves).
    pub exclude: &'static [&'static str],
}

/// The pure cores, in the order they are run.
pub const TARGETS: &[Target] = &[
    Target {
        package: "faultline-kernel",
        dir: "kernel",
        files: &["kernel/src/kern/**"],
        exclude: &["kernel/src/kern/tests/**"],
    },
    Target {
        package: "faultline-ipc",
        dir: "ipc",
        files: &[
            "ipc/src/wire.rs",
            "ipc/src/strict.rs",
            "ipc/src/strict/**",
            "ipc/src/kconfig.rs",
            "ipc/src/channel.rs",
            "ipc/src/publisher.rs",
        ],
        exclude: &[],
    },
    Target {
        package: "xtask",
        dir: "xtask",
        files: &["xtask/src/deployment/**"],
        exclude: &["xtask/src/deployment/tests/**"],
    },
    Target {
        package: "faultline-fault-pipeline",
        dir: "services/fault-pipeline",
        files: &["services/fault-pipeline/src/**"],
        exclude: &["services/fault-pipeline/src/tests/**"],
    },
];

/// What to run: one crate and the files to mutate in it.
#[derive(Debug)]
pub struct Selection<'a> {
    pub target: &'a Target,
    pub files: Vec<String>,
}

/// Which crates and files `--package` and `--file` select: files are
/// grouped under the crate whose directory holds them; with no files, each
/// selected crate (every crate when none is named) runs on its default files.
pub fn select<'a>(
    targets: &'a [Target],
    packages: &[String],
    files: &[String],
) -> Result<Vec<Selection<'a>>> {
    for p in packages {
        if !targets.iter().any(|t| t.package == p) {
            let known: Vec<_> = targets.iter().map(|t| t.package).collect();
            bail!("{p:?} is not a core under mutation testing (known: {known:?})");
        }
    }
    let wanted = |t: &Target| packages.is_empty() || packages.iter().any(|p| p == t.package);
    if files.is_empty() {
        return Ok(targets
            .iter()
            .filter(|t| wanted(t))
            .map(|target| Selection {
                target,
                files: target.files.iter().map(|f| f.to_string()).collect(),
            })
            .collect());
    }
    let mut selected: Vec<Selection<'a>> = Vec::new();
    for file in files {
        let file = file.trim_start_matches("./");
        let target = targets
            .iter()
            .find(|t| Path::new(file).starts_with(t.dir))
            .with_context(|| format!("{file} is in none of the cores' crates"))?;
        if !wanted(target) {
            bail!("{file} belongs to {}, not to --package", target.package);
        }
        match selected
            .iter_mut()
            .find(|s| s.target.package == target.package)
        {
            Some(s) => s.files.push(file.to_string()),
            None => selected.push(Selection {
                target,
                files: vec![file.to_string()],
            }),
        }
    }
    Ok(selected)
}

/// How a mutant fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Caught,
    Missed,
    Unviable,
    Timeout,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Caught,
        Verdict::Missed,
        Verdict::Unviable,
        Verdict::Timeout,
    ];

    /// The file cargo-mutants lists these mutants in, under `mutants.out`.
    pub fn list_file(self) -> &'static str {
        match self {
            Verdict::Caught => "caught.txt",
            Verdict::Missed => "missed.txt",
            Verdict::Unviable => "unviable.txt",
            Verdict::Timeout => "timeout.txt",
        }
    }
}

/// One mutant: where it is and what it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutant {
    pub file: String,
    /// `line:column`.
    pub at: String,
    pub change: String,
}

impl Mutant {
    /// Parses a line of cargo-mutants' lists: `path:line:col: change`.
    pub fn parse(line: &str) -> Option<Mutant> {
        let (file, rest) = line.split_once(':')?;
        let (row, rest) = rest.split_once(':')?;
        let (col, change) = rest.split_once(':')?;
        if file.is_empty()
            || row.parse::<u32>().is_err()
            || col.parse::<u32>().is_err()
            || change.trim().is_empty()
        {
            return None;
        }
        Some(Mutant {
            file: file.to_string(),
            at: format!("{row}:{col}"),
            change: change.trim().to_string(),
        })
    }
}

/// The mutants of each verdict, as cargo-mutants lists them (one
/// `path:line:col: change` per line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lists {
    pub caught: Vec<String>,
    pub missed: Vec<String>,
    pub unviable: Vec<String>,
    pub timeout: Vec<String>,
}

impl Lists {
    pub fn get(&self, v: Verdict) -> &Vec<String> {
        match v {
            Verdict::Caught => &self.caught,
            Verdict::Missed => &self.missed,
            Verdict::Unviable => &self.unviable,
            Verdict::Timeout => &self.timeout,
        }
    }

    fn get_mut(&mut self, v: Verdict) -> &mut Vec<String> {
        match v {
            Verdict::Caught => &mut self.caught,
            Verdict::Missed => &mut self.missed,
            Verdict::Unviable => &mut self.unviable,
            Verdict::Timeout => &mut self.timeout,
        }
    }

    /// Reads the lists in `dir` (a missing list is empty).
    pub fn read(dir: &Path) -> Result<Lists> {
        let mut lists = Lists::default();
        for v in Verdict::ALL {
            let path = dir.join(v.list_file());
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            *lists.get_mut(v) = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
        }
        Ok(lists)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for v in Verdict::ALL {
            let path = dir.join(v.list_file());
            let mut text = self.get(v).join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// The outcome of re-running only the mutants `self` did not catch:
    /// what was caught or unviable stays so (a mutant's verdict can only
    /// change with the tests or the code, and then its name is re-listed),
    /// the rest is what the re-run found.
    pub fn iterate(&self, rerun: &Lists) -> Lists {
        let union = |a: &Vec<String>, b: &Vec<String>| {
            let mut v = a.clone();
            v.extend(b.iter().filter(|m| !a.contains(m)).cloned());
            v
        };
        Lists {
            caught: union(&self.caught, &rerun.caught),
            unviable: union(&self.unviable, &rerun.unviable),
            missed: rerun.missed.clone(),
            timeout: rerun.timeout.clone(),
        }
    }

    /// Keeps only the mutants named in `current` (the mutants as they are
    /// listed now: others are stale names, or now judged equivalent).
    pub fn retain(&mut self, current: &BTreeSet<String>) {
        for v in Verdict::ALL {
            self.get_mut(v).retain(|m| current.contains(m));
        }
    }
}

/// Caught, missed, unviable and timed-out mutants of one crate or file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub caught: usize,
    pub missed: usize,
    pub unviable: usize,
    pub timeout: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Caught => self.caught += 1,
            Verdict::Missed => self.missed += 1,
            Verdict::Unviable => self.unviable += 1,
            Verdict::Timeout => self.timeout += 1,
        }
    }

    /// Mutants that built: the ones the tests had a chance to catch.
    pub fn viable(&self) -> usize {
        self.caught + self.missed + self.timeout
    }

    /// Detected (caught or timed out) per viable mutant, in percent; 100
    /// when nothing was viable.
    pub fn score(&self) -> f64 {
        match self.viable() {
            0 => 100.0,
            n => 100.0 * (self.caught + self.timeout) as f64 / n as f64,
        }
    }

    fn line(&self) -> String {
        format!(
            "caught {:>3}  missed {:>3}  unviable {:>3}  timeout {:>3}  ({:.1}% of {} viable)",
            self.caught,
            self.missed,
            self.unviable,
            self.timeout,
            self.score(),
            self.viable()
        )
    }
}

/// One crate's results.
#[derive(Debug, Default)]
pub struct Report {
    pub total: Counts,
    pub files: BTreeMap<String, Counts>,
    pub survivors: Vec<Mutant>,
    pub timeouts: Vec<Mutant>,
}

impl Report {
    /// Tallies the mutants of each verdict.
    pub fn of(lists: &Lists) -> Report {
        Report::from_lists(
            Verdict::ALL
                .map(|v| (v, lists.get(v).join("\n")))
                .iter()
                .map(|(v, t)| (*v, t.as_str())),
        )
    }

    /// Tallies lists of mutants, one `path:line:col: change` per line.
    pub fn from_lists<'a>(lists: impl IntoIterator<Item = (Verdict, &'a str)>) -> Report {
        let mut r = Report::default();
        for (verdict, text) in lists {
            for m in text.lines().filter_map(Mutant::parse) {
                r.total.add(verdict);
                r.files.entry(m.file.clone()).or_default().add(verdict);
                match verdict {
                    Verdict::Missed => r.survivors.push(m),
                    Verdict::Timeout => r.timeouts.push(m),
                    _ => {}
                }
            }
        }
        r
    }

    /// The report as printed: the crate's totals, each file, then every
    /// survivor and timeout with its location.
    pub fn render(&self, package: &str, equivalent: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{package}: {}", self.total.line());
        let _ = writeln!(
            s,
            "  {equivalent} mutants judged equivalent (.cargo/mutants.toml) not run"
        );
        let width = self.files.keys().map(String::len).max().unwrap_or(0);
        for (file, counts) in &self.files {
            let _ = writeln!(s, "  {file:<width$}  {}", counts.line());
        }
        for (label, list) in [("missed", &self.survivors), ("timeout", &self.timeouts)] {
            for m in list {
                let _ = writeln!(s, "  {label}: {}:{}: {}", m.file, m.at, m.change);
            }
        }
        s
    }
}

/// Runs cargo-mutants on the selected cores and prints the summary; returns
/// whether every viable mutant was detected. With `iterate`, only the
/// mutants the last run did not catch are run again, and the report is the
/// union (see [`Lists::iterate`]).
pub fn run(packages: &[String], files: &[String], iterate: bool, extra: &[String]) -> Result<bool> {
    let selections = select(TARGETS, packages, files)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_installed(&cargo)?;
    let root = workspace_root();
    let out_root = root.join("target").join("mutants");
    std::fs::create_dir_all(&out_root)
        .with_context(|| format!("creating {}", out_root.display()))?;
    let mut summary = String::new();
    let mut clean = true;
    for sel in &selections {
        let package = sel.target.package;
        let out = out_root.join(package);
        let results = out.join("results");
        let args = mutants_args(sel);
        let current = list_mutants(&cargo, &root, &args, false)?;
        let equivalent = list_mutants(&cargo, &root, &args, true)?
            .difference(&current)
            .count();
        let previous = match iterate {
            true if results.is_dir() => Some(Lists::read(&results)?),
            true => Some(Lists::read(&out.join("mutants.out"))?),
            false => None,
        };
        eprintln!("xtask: cargo mutants {}", args.join(" "));
        let status = Command::new(&cargo)
            .current_dir(&root)
            .arg("mutants")
            .args(&args)
            .arg("--output")
            .arg(&out)
            .args(iterate.then_some("--iterate"))
            .args(extra)
            .status()
            .context("running cargo mutants")?;
        // 0: all caught; 2: some missed; 3: some timed out. Anything else
        // (a failing baseline, bad arguments) leaves no results to read.
        if !matches!(status.code(), Some(0 | 2 | 3)) {
            bail!("cargo mutants for {package} failed ({status})");
        }
        let fresh = Lists::read(&out.join("mutants.out"))?;
        let mut lists = match &previous {
            Some(previous) => previous.iterate(&fresh),
            None => fresh,
        };
        lists.retain(&current);
        lists.write(&results)?;
        let report = Report::of(&lists);
        clean &= report.survivors.is_empty();
        summary.push_str(&report.render(package, equivalent));
    }
    println!("\n==== mutants ====\n{summary}");
    let path = out_root.join("summary.txt");
    std::fs::write(&path, &summary).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: summary written to {}", path.display());
    Ok(clean)
}

/// The cargo-mutants arguments for one selection.
fn mutants_args(sel: &Selection) -> Vec<String> {
    let mut args = vec!["--package".to_string(), sel.target.package.to_string()];
    for f in &sel.files {
        args.extend(["--file".to_string(), f.clone()]);
    }
    for e in sel.target.exclude {
        args.extend(["--exclude".to_string(), e.to_string()]);
    }
    args
}

/// The names of the selection's mutants, as `cargo mutants --list` gives
/// them; with `no_config`, including those `.cargo/mutants.toml` excludes
/// as equivalent.
fn list_mutants(
    cargo: &str,
    root: &Path,
    args: &[String],
    no_config: bool,
) -> Result<BTreeSet<String>> {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["mutants", "--list"]).args(args);
    if no_config {
        cmd.arg("--no-config");
    }
    let out = cmd.output().context("running cargo mutants --list")?;
    if !out.status.success() {
        bail!(
            "cargo mutants --list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Installs cargo-mutants with `cargo install --locked` when it is missing.
fn ensure_installed(cargo: &str) -> Result<()> {
    let present = Command::new(cargo)
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!(
        "xtask: cargo-mutants is missing; installing it (cargo install cargo-mutants --locked)"
    );
    let status = Command::new(cargo)
        .args(["install", "cargo-mutants", "--locked"])
        .status()
        .context("running cargo install cargo-mutants")?;
    if !status.success() {
        bail!("`cargo install cargo-mutants --locked` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
