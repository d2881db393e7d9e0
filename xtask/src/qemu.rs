//! Running an image under QEMU and reading what happened.
//!
//! The machine is always q35 with the serial console on stdout, no display,
//! `-no-reboot` (a triple fault ends the run instead of looping) and
//! `isa-debug-exit`, through which the kernel reports its outcome. The
//! deployment adds memory, the `intel-iommu` device and its properties, PCI
//! devices and the kernel command line. KVM is used when `/dev/kvm` can be
//! opened, TCG otherwise.

use crate::deployment::Deployment;
use anyhow::{Context, Result, bail};
use faultline_ipc::harness::{DEBUG_EXIT_PORT, ExitCode, SHUTDOWN_MARKER};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

const QEMU: &str = "qemu-system-x86_64";

/// A CPU accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// KVM when `/dev/kvm` can be opened read-write, TCG otherwise; says
    /// which and why.
    pub fn detect() -> Accel {
        match kvm_usable() {
            Ok(()) => {
                eprintln!("xtask: accel kvm (/dev/kvm is usable)");
                Accel::Kvm
            }
            Err(why) => {
                eprintln!("xtask: accel tcg ({why})");
                Accel::Tcg
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Whether KVM can be used, and if not, why.
pub fn kvm_usable() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| format!("/dev/kvm is not usable: {e}"))
}

/// How to run one boot.
pub struct RunOptions {
    pub accel: Accel,
    pub timeout: u64,
    pub gdb: bool,
    pub extra_args: Vec<String>,
    /// Copy the guest console to our stdout as it arrives.
    pub echo: bool,
    /// Appended to the deployment's kernel command line.
    pub extra_kernel_args: Option<String>,
}

/// What a boot did.
pub struct Outcome {
    /// The exit code the guest wrote, if it wrote one of ours.
    pub code: Option<ExitCode>,
    /// QEMU's own exit status (None if it was killed).
    pub status: Option<i32>,
    pub timed_out: bool,
    pub console: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.code == Some(ExitCode::Success)
    }

    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        if self.timed_out {
            return format!("FAILED: no exit after {secs:.1}s; the guest hung and was stopped");
        }
        match (self.code, self.status) {
            (Some(ExitCode::Success), _) => format!("guest reported success in {secs:.2}s"),
            (Some(code), _) => format!("FAILED: guest reported {} in {secs:.2}s", code.name()),
            (None, Some(0)) => format!(
                "FAILED: QEMU exited without an exit code after {secs:.2}s (triple fault or reset under -no-reboot?)"
            ),
            (None, Some(s)) => format!("FAILED: QEMU exited with status {s} after {secs:.2}s"),
            (None, None) => format!("FAILED: QEMU was killed by a signal after {secs:.2}s"),
        }
    }
}

/// A usable `qemu-system-x86_64`.
pub struct Qemu {
    path: PathBuf,
}

impl Qemu {
    /// Finds QEMU on PATH; when missing, installs it (root on Debian) or
    /// says exactly what to run.
    pub fn locate_or_install() -> Result<Qemu> {
        if let Some(path) = find_in_path(QEMU) {
            return Ok(Qemu { path });
        }
        install()?;
        find_in_path(QEMU)
            .map(|path| Qemu { path })
            .context("QEMU was installed but qemu-system-x86_64 is still not on PATH")
    }

    /// The first line of `qemu-system-x86_64 --version`.
    pub fn version(&self) -> String {
        Command::new(&self.path)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".into())
    }

    pub fn command_line(&self, dep: &Deployment, image: &Path, opts: &RunOptions) -> Vec<String> {
        let m = &dep.manifest.machine;
        let mut machine = String::from("q35");
        let mut args: Vec<String> = Vec::new();
        if opts.accel == Accel::Kvm && m.iommu.is_some() {
            // KVM's in-kernel IOAPIC cannot sit behind interrupt remapping.
            machine.push_str(",kernel-irqchip=split");
        }
        let mut kernel_args = m.kernel_args.clone();
        if let Some(extra) = &opts.extra_kernel_args {
            kernel_args = format!("{kernel_args} {extra}").trim().to_string();
        }
        let has_mem = opts.extra_args.iter().any(|a| a == "-m");
        args.extend(["-machine".into(), machine]);
        args.extend(["-accel".into(), opts.accel.name().into()]);
        args.extend(["-cpu".into(), "max".into()]);
        if !has_mem {
            args.extend(["-m".into(), format!("{}M", m.memory_mib.get_ref())]);
        }
        args.extend(["-smp".into(), "1".into(), "-nodefaults".into()]);
        args.extend(["-kernel".into(), image.display().to_string()]);
        args.extend(["-append".into(), kernel_args]);
        if let Some(iommu) = &m.iommu {
            let mut dev = String::from("intel-iommu");
            for o in iommu.options.get_ref() {
                dev.push(',');
                dev.push_str(o);
            }
            args.extend(["-device".into(), dev]);
        }
        for d in &m.devices {
            args.extend(["-device".into(), d.get_ref().clone()]);
        }
        args.extend([
            "-device".into(),
            format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"),
            "-serial".into(),
            "stdio".into(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-no-reboot".into(),
        ]);
        if opts.gdb {
            args.extend(["-s".into(), "-S".into()]);
        }
        args.extend(opts.extra_args.iter().cloned());
        args
    }

    /// Boots `image` for `dep` and waits for it to end or time out.
    pub fn run(&self, dep: &Deployment, image: &Path, opts: &RunOptions) -> Result<Outcome> {
        let args = self.command_line(dep, image, opts);
        if opts.echo {
            eprintln!("xtask: {} {}", self.path.display(), shell_words(&args));
        }
        if opts.gdb {
            eprintln!(
                "xtask: waiting for a debugger: gdb {} -ex 'target remote localhost:1234'",
                image.display()
            );
        }
        let start = Instant::now();
        let mut child = Command::new(&self.path)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.path.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let echo = opts.echo;
        let out_reader = std::thread::spawn(move || collect(stdout, echo, false));
        let err_reader = std::thread::spawn(move || collect(stderr, true, true));
        let timeout = if opts.gdb {
            Duration::MAX
        } else {
            Duration::from_secs(opts.timeout)
        };
        let (status, timed_out) = match child.wait_timeout(timeout)? {
            Some(status) => (status.code(), false),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                (None, true)
            }
        };
        let mut console = out_reader.join().unwrap_or_default();
        let qemu_err = err_reader.join().unwrap_or_default();
        if !qemu_err.is_empty() {
            console.push_str("\n[qemu stderr]\n");
            console.push_str(&qemu_err);
        }
        let code = status.and_then(ExitCode::from_qemu_status);
        // An exit code without the shutdown marker still counts (the boot
        // code exits before the console exists), but the marker must not
        // appear without a code.
        if code.is_none() && console.contains(SHUTDOWN_MARKER) && !timed_out {
            console.push_str(
                "\n[xtask: shutdown marker seen but QEMU's status carries no exit code]\n",
            );
        }
        Ok(Outcome {
            code,
            status,
            timed_out,
            console,
            elapsed: start.elapsed(),
        })
    }
}

fn collect(stream: impl std::io::Read, echo: bool, to_stderr: bool) -> String {
    let mut all = String::new();
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        let text = String::from_utf8_lossy(&line).replace('\r', "");
        if echo {
            if to_stderr {
                let _ = std::io::stderr().write_all(text.as_bytes());
            } else {
                let _ = std::io::stdout().write_all(text.as_bytes());
                let _ = std::io::stdout().flush();
            }
        }
        all.push_str(&text);
        line.clear();
    }
    all
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
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

fn install() -> Result<()> {
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
