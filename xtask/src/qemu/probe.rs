//! Which `-cpu` model this host's KVM accepts: found once, then cached.
//!
//! Not every KVM accepts every CPU feature QEMU can describe: a nested KVM
//! on AMD EPYC, for one, refuses MSR 0x10a (IA32_ARCH_CAPABILITIES), which
//! `-cpu max` and `-cpu host` both ask for, and QEMU then aborts before the
//! guest runs (`failed to set MSR 0x10a`, `kvm_buf_set_msrs: Assertion`).
//!
//! The probe starts QEMU with the candidate model on an empty q35 machine
//! (`-nodefaults`, no kernel, the HMP monitor on stdio), lets the firmware
//! run for a moment so that both the vCPU set-up (where MSRs are written)
//! and the first `KVM_RUN` happen, then asks the monitor `info status` and
//! quits. A model is accepted when QEMU answers `VM status: running`; an
//! abort, an error exit or a paused VM (`internal-error`) rejects it, and
//! QEMU's error text picks the next candidate
//! ([`candidates::next_candidate`]):
//!
//! 1. `max`;
//! 2. the same minus the feature behind a refused MSR (`-arch-capabilities`
//!    for 0x10a, see [`candidates::msr_feature`]), repeated while QEMU
//!    names another;
//! 3. `host` with the features removed so far;
//! 4. none left: KVM cannot start here, and runs fall back to TCG.
//!
//! Once a model starts, each of [`EXTRAS`] is tried on top of it and kept
//! if KVM accepts it too: `+invtsc` gives the guest an invariant TSC whose
//! rate QEMU states in CPUID leaf 0x40000010, so the kernel need not
//! measure it (QEMU leaves that leaf out unless the TSC is invariant).
//!
//! The answer is kept in `target/qemu-host.json` together with what it
//! depends on ([`HostKey`]: the host CPU model, the kernel release and the
//! QEMU version), so a probe costs its second or so once per host; a cache
//! written for another key is ignored and replaced.

use super::candidates;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// Features added to an accepted model when KVM accepts them too.
pub const EXTRAS: &[&str] = &["+invtsc"];
/// Bumped when the probe changes what it finds, so older caches are
/// ignored.
pub const PROBE_VERSION: u32 = 2;
/// Candidates tried at most before giving up on KVM.
const MAX_ATTEMPTS: usize = 6;
/// How long the firmware runs before the monitor is asked.
const RUN_FOR: Duration = Duration::from_millis(300);
/// How long a probe may take in all before it counts as hung.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// What a probe's answer depends on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKey {
    /// [`PROBE_VERSION`] of the probe that found the answer.
    pub probe: u32,
    /// The host CPU's model name (`/proc/cpuinfo`).
    pub cpu: String,
    /// The host kernel's release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// `qemu-system-x86_64 --version`, first line.
    pub qemu: String,
}

impl HostKey {
    /// This host's key, for QEMU reporting `qemu_version`.
    pub fn current(qemu_version: &str) -> HostKey {
        HostKey {
            probe: PROBE_VERSION,
            cpu: host_cpu_model(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            qemu: qemu_version.to_string(),
        }
    }
}

/// One candidate model and why it was refused (None: accepted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub cpu: String,
    pub error: Option<String>,
}

/// The probe's answer for one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCpu {
    pub host: HostKey,
    /// The `-cpu` model KVM accepted; None when no candidate started.
    pub kvm_cpu: Option<String>,
    /// Every candidate tried, in order.
    pub attempts: Vec<Attempt>,
}

impl HostCpu {
    /// Why KVM cannot be used: the last refusal.
    pub fn refusal(&self) -> String {
        self.attempts
            .iter()
            .rev()
            .find_map(|a| a.error.clone())
            .unwrap_or_else(|| "no CPU model was tried".into())
    }
}

/// The cached answer in `text`, if it is one and was found for `key`.
pub fn parse_cache(text: &str, key: &HostKey) -> Option<HostCpu> {
    serde_json::from_str::<HostCpu>(text)
        .ok()
        .filter(|c| &c.host == key)
}

/// Tries candidates from `max` on, as the module doc says.
pub fn probe(qemu: &Path, key: HostKey) -> HostCpu {
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut next = Some("max".to_string());
    while let Some(cpu) = next.take() {
        if attempts.len() == MAX_ATTEMPTS || attempts.iter().any(|a| a.cpu == cpu) {
            break;
        }
        eprintln!("xtask: probing KVM with -cpu {cpu}");
        match try_cpu(qemu, &cpu) {
            Ok(()) => {
                attempts.push(Attempt {
                    cpu: cpu.clone(),
                    error: None,
                });
                let mut cpu = cpu;
                for extra in EXTRAS {
                    let more = format!("{cpu},{extra}");
                    eprintln!("xtask: probing KVM with -cpu {more}");
                    let error = try_cpu(qemu, &more).err();
                    if let Some(e) = &error {
                        eprintln!("xtask:   refused: {e}");
                    }
                    let accepted = error.is_none();
                    attempts.push(Attempt {
                        cpu: more.clone(),
                        error,
                    });
                    if accepted {
                        cpu = more;
                    }
                }
                return HostCpu {
                    host: key,
                    kvm_cpu: Some(cpu),
                    attempts,
                };
            }
            Err(error) => {
                eprintln!("xtask:   refused: {error}");
                next = candidates::next_candidate(&cpu, &error);
                attempts.push(Attempt {
                    cpu,
                    error: Some(error),
                });
            }
        }
    }
    HostCpu {
        host: key,
        kvm_cpu: None,
        attempts,
    }
}

/// The command line of one probe.
pub fn probe_args(cpu: &str) -> Vec<String> {
    [
        "-machine",
        "q35",
        "-accel",
        "kvm",
        "-cpu",
        cpu,
        "-m",
        "64M",
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "none",
        "-monitor",
        "stdio",
        "-no-reboot",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Starts QEMU with `-cpu cpu` under KVM; Ok if the VM ran, else QEMU's
/// reason.
fn try_cpu(qemu: &Path, cpu: &str) -> Result<(), String> {
    let mut child = Command::new(qemu)
        .args(probe_args(cpu))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut exited = None;
    while start.elapsed() < RUN_FOR {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(mut stdin) = child.stdin.take() {
        // QEMU may be gone already; a broken pipe is then expected.
        let _ = stdin.write_all(b"info status\nquit\n");
    }
    let status = match exited {
        Some(s) => Some(s),
        None => match child.wait_timeout(PROBE_TIMEOUT) {
            Ok(Some(s)) => Some(s),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        },
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if stdout.contains("VM status: running") {
        return Ok(());
    }
    let error_line = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.contains("error") || l.contains("failed"))
        .map(str::to_string);
    let vm_status = stdout
        .lines()
        .find_map(|l| l.split("VM status: ").nth(1))
        .map(|s| format!("the VM did not run (VM status: {})", s.trim()));
    Err(error_line.or(vm_status).unwrap_or_else(|| match status {
        Some(s) => format!("QEMU ended ({s}) without answering the monitor"),
        None => "QEMU did not answer the monitor in time".into(),
    }))
}

/// Whether this host's KVM uses hardware nested paging (Intel EPT, AMD
/// NPT), without which every guest page-table change and many exits are
/// emulated, and cycle figures measure the host rather than Faultline.
pub fn kvm_hardware_paging() -> Result<(), String> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    candidates::hardware_paging(
        read("/sys/module/kvm_intel/parameters/ept").as_deref(),
        read("/sys/module/kvm_amd/parameters/npt").as_deref(),
    )
}

/// The host CPU's model name, from `/proc/cpuinfo`.
pub fn host_cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSR_10A: &str = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0xc000069\n\
        qemu-system-x86_64: target/i386/kvm/kvm.c:3849: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.";

    fn key() -> HostKey {
        HostKey {
            probe: PROBE_VERSION,
            cpu: "AMD EPYC".into(),
            kernel: "6.18.44".into(),
            qemu: "QEMU emulator version 10.0.2".into(),
        }
    }

    #[test]
    fn the_cache_holds_only_for_its_own_host() {
        let cached = HostCpu {
            host: key(),
            kvm_cpu: Some("max,-arch-capabilities".into()),
            attempts: vec![
                Attempt {
                    cpu: "max".into(),
                    error: Some(MSR_10A.lines().next().unwrap_or("").into()),
                },
                Attempt {
                    cpu: "max,-arch-capabilities".into(),
                    error: None,
                },
            ],
        };
        let text = serde_json::to_string_pretty(&cached).expect("serialises");
        assert_eq!(parse_cache(&text, &key()), Some(cached.clone()));
        let mut other = key();
        other.qemu = "QEMU emulator version 9.2.0".into();
        assert_eq!(parse_cache(&text, &other), None);
        assert_eq!(parse_cache("{not json", &key()), None);
    }

    #[test]
    fn the_refusal_is_the_last_error() {
        let none = HostCpu {
            host: key(),
            kvm_cpu: None,
            attempts: vec![
                Attempt {
                    cpu: "max".into(),
                    error: Some("first".into()),
                },
                Attempt {
                    cpu: "host".into(),
                    error: Some("second".into()),
                },
            ],
        };
        assert_eq!(none.refusal(), "second");
    }

    #[test]
    fn the_probe_runs_kvm_with_the_monitor_on_stdio() {
        let args = probe_args("max,-arch-capabilities");
        let joined = args.join(" ");
        assert!(joined.contains("-accel kvm -cpu max,-arch-capabilities"));
        assert!(joined.contains("-monitor stdio"));
        assert!(joined.contains("-no-reboot"));
    }
}
