//! `cargo xtask`: builds, runs and tests Faultline.
//!
//! - `build` builds the bootable image for a deployment and prints its path;
//! - `run` builds, then boots it under QEMU (installing QEMU if needed);
//! - `test` runs every host test, then every deployment's QEMU scenario
//!   under each available accelerator, and prints a summary;
//! - `capture-acpi` boots a machine configuration and saves its ACPI tables
//!   as test fixtures for the kernel's parser;
//! - `bench` boots the `bench` deployment and records its `BENCH` figures,
//!   boot time and image sizes (`--icount`: exact instruction counts);
//! - `mutants` runs mutation testing on the pure cores (see `mutants`);
//! - `soak` runs the fault and page request property tests with many
//!   more cases (see `soak`);
//! - `conformance` runs the IPC conformance suite: wire vectors, kernel IPC
//!   semantics in QEMU, and the fault-handler harness against any handler
//!   (see `conformance`).
//!
//! A deployment (`services/deployments/<name>.toml`) lists the machine, the
//! services with their budgets and capabilities, and the channels between
//! them; `deployment` validates it, `image` builds and checks the services
//! and embeds them with their configuration in the kernel.
//!
//! The host never guesses what the guest did: a run's outcome is the
//! `isa-debug-exit` code the kernel wrote (see `faultline_ipc::harness`)
//! plus what it printed on the serial console.

mod bench;
mod capture;
mod conformance;
mod console;
mod deployment;
mod elf;
mod figures;
mod image;
mod mutants;
mod qemu;
mod soak;
mod symbolize;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test Faultline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the image for a deployment and print its path.
    Build {
        /// Deployment name (a file under services/deployments/).
        #[arg(long, default_value = "default")]
        deployment: String,
        /// Build with optimisations.
        #[arg(long)]
        release: bool,
    },
    /// Build and boot a deployment under QEMU.
    Run {
        #[arg(long, default_value = "default")]
        deployment: String,
        #[arg(long)]
        release: bool,
        /// Accelerator: kvm or tcg (default: kvm when this host's KVM can
        /// start a guest, with the CPU model it accepts; tcg otherwise).
        #[arg(long)]
        accel: Option<qemu::Accel>,
        /// Seconds before a hung run is stopped and reported as a failure.
        #[arg(long)]
        timeout: Option<u64>,
        /// Wait for a debugger on localhost:1234 before starting the CPU.
        #[arg(long)]
        gdb: bool,
        /// Extra arguments passed to QEMU as they are (after `--`).
        #[arg(last = true)]
        qemu_args: Vec<String>,
    },
    /// Run the host tests and every deployment's QEMU scenario.
    Test {
        /// Only run scenarios whose deployment name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Skip the host tests.
        #[arg(long)]
        no_host: bool,
        /// Skip the QEMU scenarios.
        #[arg(long)]
        no_qemu: bool,
    },
    /// Build and boot the benchmark deployment; print and save its figures.
    Bench {
        #[arg(long, default_value = "bench")]
        deployment: String,
        /// Accelerator: kvm or tcg (default: kvm where it starts and has
        /// EPT/NPT, otherwise instruction counting as with --icount).
        #[arg(long)]
        accel: Option<qemu::Accel>,
        #[arg(long)]
        timeout: Option<u64>,
        /// Build without optimisations.
        #[arg(long)]
        debug: bool,
        /// Exact figures: TCG with -icount shift=0,sleep=off, in guest
        /// instructions, identical from run to run on any host.
        #[arg(long)]
        icount: bool,
    },
    /// Boot a deployment's machine and save its ACPI tables as fixtures.
    CaptureAcpi {
        #[arg(long, default_value = "default")]
        deployment: String,
        /// Output file (default: kernel/tests/fixtures/acpi/<deployment>.acpi).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The IPC conformance suite: wire vectors, kernel IPC cases, and the
    /// fault-handler harness.
    Conformance {
        /// Only the handler harness, against this handler service:
        /// `<crate>[/<feature>]`, e.g. faultline-broken-handler/answers-twice.
        #[arg(long)]
        handler: Option<String>,
    },
    /// Run the fault and page request property tests with many cases.
    Soak {
        /// Cases per property.
        #[arg(long, default_value_t = 200_000)]
        cases: u64,
    },
    /// Mutation-test the pure cores (kernel core, ipc, deployment checks).
    Mutants {
        /// Only this crate (repeatable): faultline-kernel, faultline-ipc, xtask.
        #[arg(long)]
        package: Vec<String>,
        /// Only this file (repeatable; a path from the workspace root).
        #[arg(long)]
        file: Vec<String>,
        /// Run again only the mutants the last run did not catch.
        #[arg(long)]
        iterate: bool,
        /// Extra arguments passed to cargo-mutants as they are (after `--`).
        #[arg(last = true)]
        mutants_args: Vec<String>,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build {
            deployment,
            release,
        } => {
            let dep = deployment::load(&deployment)?;
            let image = image::build(&dep, release)?;
            println!("{}", image.display());
            Ok(())
        }
        Command::Run {
            deployment,
            release,
            accel,
            timeout,
            gdb,
            qemu_args,
        } => {
            let dep = deployment::load(&deployment)?;
            let image = image::build(&dep, release)?;
            eprintln!(
                "xtask: deployment {} ({}): {}",
                dep.name,
                dep.path.display(),
                dep.manifest.description
            );
            let qemu = qemu::Qemu::locate_or_install()?;
            let target = qemu.select(accel)?;
            let opts = qemu::RunOptions {
                timeout: timeout.unwrap_or(target.timeout(dep.timeout_secs())),
                target,
                icount: false,
                gdb,
                extra_args: qemu_args,
                echo: true,
                extra_kernel_args: None,
            };
            let outcome = qemu.run(&dep, &image, &opts)?;
            println!("xtask: {}", outcome.summary());
            if let qemu::Verdict::Host(_) = outcome.verdict() {
                println!("xtask: this is a problem of the host, not of Faultline");
                println!("{}", outcome.host_report());
                if opts.target.accel == qemu::Accel::Kvm {
                    qemu.forget_host_cpu();
                    println!(
                        "xtask: the KVM probe will run again next time; `--accel tcg` avoids KVM"
                    );
                }
            }
            for line in symbolize::annotate(&image, &outcome.console) {
                println!("xtask: {line}");
            }
            // The same judgement `cargo xtask test` makes of the scenario.
            let verdict = test::judge(&dep, &outcome);
            match &verdict {
                Ok(()) => println!(
                    "xtask: deployment {}: the run showed everything its [expect] asks for",
                    dep.name
                ),
                Err(why) => println!(
                    "xtask: deployment {}: the run did not show what its [expect] asks for: {why}",
                    dep.name
                ),
            }
            std::process::exit(if verdict.is_ok() { 0 } else { 1 });
        }
        Command::Test {
            filter,
            no_host,
            no_qemu,
        } => {
            let ok = test::run_all(filter.as_deref(), !no_host, !no_qemu)?;
            std::process::exit(if ok { 0 } else { 1 });
        }
        Command::Bench {
            deployment,
            accel,
            timeout,
            debug,
            icount,
        } => {
            let ok = bench::run(bench::BenchOptions {
                deployment,
                accel,
                timeout,
                debug,
                icount,
            })?;
            std::process::exit(if ok { 0 } else { 1 });
        }
        Command::Soak { cases } => soak::run(cases),
        Command::Conformance { handler } => {
            let ok = conformance::run(handler.as_deref())?;
            std::process::exit(if ok { 0 } else { 1 });
        }
        Command::CaptureAcpi { deployment, out } => capture::capture_acpi(&deployment, out),
        Command::Mutants {
            package,
            file,
            iterate,
            mutants_args,
        } => {
            let clean = mutants::run(&package, &file, iterate, &mutants_args)?;
            std::process::exit(if clean { 0 } else { 1 });
        }
    }
}
