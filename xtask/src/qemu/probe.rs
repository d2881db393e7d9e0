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
//! QEMU's error text picks the next candidate ([`next_candidate`]):
//!
//! 1. `max`;
//! 2. the same minus the feature behind a refused MSR (`-arch-capabilities`
//!    for 0x10a, see [`msr_feature`]), repeated while QEMU names another;
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

/// The MSR that KVM refused, from QEMU's `failed to set MSR 0x10a to ...`.
pub fn refused_msr(error: &str) -> Option<u32> {
    let rest = error.split("failed to set MSR 0x").nth(1)?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u32::from_str_radix(&hex, 16).ok()
}

/// The QEMU CPU feature that makes QEMU write `msr`, where removing it is
/// harmless for Faultline.
pub fn msr_feature(msr: u32) -> Option<&'static str> {
    Some(match msr {
        0x10a => "arch-capabilities", // IA32_ARCH_CAPABILITIES
        0x345 => "pdcm",              // IA32_PERF_CAPABILITIES
        0x3b => "tsc-adjust",         // IA32_TSC_ADJUST
        0x6e0 => "tsc-deadline",      // IA32_TSC_DEADLINE
        0xda0 => "xsaves",            // IA32_XSS
        0x48 => "spec-ctrl",          // IA32_SPEC_CTRL
        0x122 => "rtm",               // IA32_TSX_CTRL
        0xc000_0103 => "rdtscp",      // IA32_TSC_AUX
        0x4b56_4d02 => "kvm-asyncpf", // MSR_KVM_ASYNC_PF_EN
        0x4b56_4d03 => "kvm-steal-time",
        0x4b56_4d04 => "kvm-pv-eoi",
        0x4b56_4d05 => "kvm-poll-control",
        _ => return None,
    })
}

/// Whether QEMU's error says KVM cannot be used at all (no model helps).
pub fn kvm_unavailable(error: &str) -> bool {
    [
        "Could not access KVM kernel module",
        "failed to initialize kvm",
        "failed to initialize KVM",
        "KVM not supported",
        "kvm accelerator not available",
        "No accelerator found",
    ]
    .iter()
    .any(|s| error.contains(s))
}

/// The model to try after `current` failed with `error`, if any.
pub fn next_candidate(current: &str, error: &str) -> Option<String> {
    if kvm_unavailable(error) {
        return None;
    }
    if let Some(feature) = refused_msr(error).and_then(msr_feature) {
        let minus = format!("-{feature}");
        if !current.split(',').any(|f| f == minus) {
            return Some(format!("{current},{minus}"));
        }
    }
    current
        .strip_prefix("max")
        .map(|removed| format!("host{removed}"))
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
                next = next_candidate(&cpu, &error);
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
    hardware_paging(
        read("/sys/module/kvm_intel/parameters/ept").as_deref(),
        read("/sys/module/kvm_amd/parameters/npt").as_deref(),
    )
}

/// The rule behind [`kvm_hardware_paging`], from the two module
/// parameters (None: the module is not loaded).
pub fn hardware_paging(ept: Option<&str>, npt: Option<&str>) -> Result<(), String> {
    let on = |v: &str| matches!(v.trim(), "Y" | "y" | "1");
    match (ept, npt) {
        (Some(v), _) if on(v) => Ok(()),
        (_, Some(v)) if on(v) => Ok(()),
        (Some(_), _) => Err("KVM runs without EPT (kvm_intel ept=N)".into()),
        (_, Some(_)) => Err("KVM runs without NPT (kvm_amd npt=0)".into()),
        (None, None) => Err(
            "KVM here is neither kvm_intel nor kvm_amd (e.g. a software KVM): no hardware nested paging"
                .into(),
        ),
    }
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
    fn a_refused_msr_removes_its_feature_then_falls_back_to_host() {
        assert_eq!(refused_msr(MSR_10A), Some(0x10a));
        assert_eq!(
            next_candidate("max", MSR_10A).as_deref(),
            Some("max,-arch-capabilities")
        );
        // The same MSR again: the feature is gone already, so try `host`.
        assert_eq!(
            next_candidate("max,-arch-capabilities", MSR_10A).as_deref(),
            Some("host,-arch-capabilities")
        );
        let xss = "error: failed to set MSR 0xda0 to 0x0";
        assert_eq!(
            next_candidate("max,-arch-capabilities", xss).as_deref(),
            Some("max,-arch-capabilities,-xsaves")
        );
        // Nothing left after `host`.
        assert_eq!(next_candidate("host,-arch-capabilities", MSR_10A), None);
    }

    #[test]
    fn an_unknown_error_tries_host_and_no_kvm_stops_at_once() {
        assert_eq!(
            next_candidate("max", "KVM internal error. Suberror: 1").as_deref(),
            Some("host")
        );
        assert_eq!(
            next_candidate("max", "error: failed to set MSR 0x1234 to 0x1").as_deref(),
            Some("host")
        );
        let no_kvm = "Could not access KVM kernel module: Permission denied\n\
                      qemu-system-x86_64: failed to initialize kvm: Permission denied";
        assert!(kvm_unavailable(no_kvm));
        assert_eq!(next_candidate("max", no_kvm), None);
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
    fn hardware_paging_is_ept_or_npt() {
        assert_eq!(hardware_paging(Some("Y\n"), None), Ok(()));
        assert_eq!(hardware_paging(None, Some("1\n")), Ok(()));
        assert!(hardware_paging(Some("N\n"), None).is_err_and(|e| e.contains("EPT")));
        assert!(hardware_paging(None, Some("0")).is_err_and(|e| e.contains("NPT")));
        assert!(hardware_paging(None, None).is_err());
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
