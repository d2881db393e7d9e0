//! Running an image under QEMU and reading what happened.
//!
//! The machine is always q35 with the serial console on stdout, no display,
//! `-no-reboot` (a triple fault ends the run instead of looping) and
//! `isa-debug-exit`, through which the kernel reports its outcome. The
//! deployment adds memory, the `intel-iommu` device and its properties, PCI
//! devices and the kernel command line.
//!
//! The accelerator and CPU model are a [`Target`], chosen once per command
//! by [`Qemu::select`]: KVM with the `-cpu` model this host's KVM accepts
//! (see [`probe`]) when `/dev/kvm` can be opened and some model starts, TCG
//! with `-cpu max` otherwise, always saying which and why. Under
//! `--icount` a run is TCG with `-icount shift=0,sleep=off`: the virtual
//! clock advances one nanosecond per guest instruction, and the TSC with
//! it, so a TSC interval is an exact instruction count (plus any idle time
//! the clock skipped), the same on every host. QEMU's TCG does not treat
//! RDMSR/WRMSR as I/O instructions (its translator marks RDTSC and RDPMC
//! with `translator_io_start`, but not them), so an x2APIC register access
//! that reads the virtual clock (writing the timer's initial count, reading
//! its current count) aborts QEMU with "Bad icount read"; icount runs
//! therefore pass `apic=xapic`, and the kernel drives the LAPIC through its
//! MMIO page, whose accesses TCG handles as I/O.

mod candidates;
mod install;
mod outcome;
pub mod probe;

pub use outcome::{Outcome, Verdict};

use crate::deployment::{Deployment, workspace_root};
use anyhow::{Context, Result, bail};
use faultline_ipc::harness::{DEBUG_EXIT_PORT, ExitCode, SHUTDOWN_MARKER};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

const QEMU: &str = "qemu-system-x86_64";
/// The CPU model under TCG, which emulates all of it.
const TCG_CPU: &str = "max";
/// QEMU's instruction counting for exact figures (see the module doc).
pub const ICOUNT: &str = "shift=0,sleep=off";
/// What icount runs add to the kernel command line: xAPIC (see the module
/// doc), and the TSC rate, which `-icount shift=0` fixes at one tick per
/// nanosecond of virtual time and no CPUID leaf reports.
pub const ICOUNT_KERNEL_ARGS: &str = "apic=xapic tsc.khz=1000000";

/// A CPU accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
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

/// An accelerator with the CPU model to give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub accel: Accel,
    pub cpu: String,
    /// How many times a deployment's timeout a run may take: more than 1
    /// under a KVM without hardware nested paging, where every exit costs
    /// milliseconds and a scenario can take minutes without hanging.
    pub timeout_factor: u64,
}

/// The timeout factor under a KVM without EPT/NPT.
const SLOW_KVM_TIMEOUT_FACTOR: u64 = 5;

impl Target {
    /// TCG with every feature it emulates.
    pub fn tcg() -> Target {
        Target {
            accel: Accel::Tcg,
            cpu: TCG_CPU.into(),
            timeout_factor: 1,
        }
    }

    /// KVM with `cpu`; says so when its timeouts are stretched.
    pub fn kvm(cpu: String) -> Target {
        let timeout_factor = match probe::kvm_hardware_paging() {
            Ok(()) => 1,
            Err(why) => {
                eprintln!(
                    "xtask: {why}: KVM runs get {SLOW_KVM_TIMEOUT_FACTOR} times their timeouts"
                );
                SLOW_KVM_TIMEOUT_FACTOR
            }
        };
        Target {
            accel: Accel::Kvm,
            cpu,
            timeout_factor,
        }
    }

    /// A deployment's timeout `secs`, stretched for this target.
    pub fn timeout(&self, secs: u64) -> u64 {
        secs.saturating_mul(self.timeout_factor)
    }
}

/// How to run one boot.
pub struct RunOptions {
    pub target: Target,
    /// Count instructions (TCG only): `-icount` [`ICOUNT`] and
    /// [`ICOUNT_KERNEL_ARGS`].
    pub icount: bool,
    pub timeout: u64,
    pub gdb: bool,
    pub extra_args: Vec<String>,
    /// Copy the guest console to our stdout as it arrives.
    pub echo: bool,
    /// Appended to the deployment's kernel command line.
    pub extra_kernel_args: Option<String>,
}

/// A usable `qemu-system-x86_64`.
pub struct Qemu {
    path: PathBuf,
}

impl Qemu {
    /// Finds QEMU on PATH; when missing, installs it (root on Debian) or
    /// says exactly what to run.
    pub fn locate_or_install() -> Result<Qemu> {
        if let Some(path) = install::find_in_path(QEMU) {
            return Ok(Qemu { path });
        }
        install::install()?;
        install::find_in_path(QEMU)
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

    /// The target for this command: `requested` if given (KVM only if it
    /// can start here), otherwise KVM when it can start and TCG when not.
    /// Prints the choice and the reason.
    pub fn select(&self, requested: Option<Accel>) -> Result<Target> {
        if requested == Some(Accel::Tcg) {
            eprintln!("xtask: accel tcg, -cpu {TCG_CPU} (as asked)");
            return Ok(Target::tcg());
        }
        let why_not = match kvm_usable() {
            Err(why) => why,
            Ok(()) => {
                let host = self.host_cpu();
                match &host.kvm_cpu {
                    Some(cpu) => {
                        eprintln!(
                            "xtask: accel kvm, -cpu {cpu} (this host's KVM accepts it; {})",
                            cache_path().display()
                        );
                        return Ok(Target::kvm(cpu.clone()));
                    }
                    None => format!(
                        "KVM cannot start here with any CPU model (tried {}): {}",
                        host.attempts
                            .iter()
                            .map(|a| a.cpu.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        host.refusal()
                    ),
                }
            }
        };
        if requested == Some(Accel::Kvm) {
            bail!("--accel kvm was asked for, but {why_not}");
        }
        eprintln!("xtask: accel tcg, -cpu {TCG_CPU} ({why_not})");
        Ok(Target::tcg())
    }

    /// This host's probe answer, from the cache or a fresh probe.
    pub fn host_cpu(&self) -> probe::HostCpu {
        let key = probe::HostKey::current(&self.version());
        let path = cache_path();
        if let Some(cached) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| probe::parse_cache(&t, &key))
        {
            return cached;
        }
        let found = probe::probe(&self.path, key);
        let text = serde_json::to_string_pretty(&found).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::create_dir_all(path.parent().expect("under target/"))
            .and_then(|()| std::fs::write(&path, text))
        {
            eprintln!(
                "xtask: cannot cache the KVM probe in {}: {e}",
                path.display()
            );
        }
        found
    }

    /// Forgets the cached probe answer (after KVM failed anyway), so the
    /// next command probes again.
    pub fn forget_host_cpu(&self) {
        let _ = std::fs::remove_file(cache_path());
    }

    pub fn command_line(&self, dep: &Deployment, image: &Path, opts: &RunOptions) -> Vec<String> {
        let m = &dep.manifest.machine;
        let mut machine = String::from("q35");
        let mut args: Vec<String> = Vec::new();
        let accel = opts.target.accel;
        if accel == Accel::Kvm && m.iommu.is_some() {
            // KVM's in-kernel IOAPIC cannot sit behind interrupt remapping.
            machine.push_str(",kernel-irqchip=split");
        }
        let mut kernel_args = m.kernel_args.clone();
        let icount = opts.icount && accel == Accel::Tcg;
        let extras = [
            opts.extra_kernel_args.as_deref(),
            icount.then_some(ICOUNT_KERNEL_ARGS),
        ];
        for extra in extras.into_iter().flatten() {
            kernel_args = format!("{kernel_args} {extra}").trim().to_string();
        }
        let has_mem = opts.extra_args.iter().any(|a| a == "-m");
        args.extend(["-machine".into(), machine]);
        args.extend(["-accel".into(), accel.name().into()]);
        args.extend(["-cpu".into(), opts.target.cpu.clone()]);
        if icount {
            args.extend(["-icount".into(), ICOUNT.into()]);
        }
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
        let command = format!("{} {}", self.path.display(), shell_words(&args));
        if opts.echo {
            eprintln!("xtask: {command}");
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
        let err_reader = std::thread::spawn(move || collect(stderr, echo, true));
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
        let qemu_stderr = err_reader.join().unwrap_or_default();
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
            qemu_stderr,
            command,
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

/// Where the KVM probe's answer is cached.
pub fn cache_path() -> PathBuf {
    workspace_root().join("target").join("qemu-host.json")
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
