//! `cargo xtask soak`: the property tests of the fault and page request
//! paths with many more cases than `cargo xtask test` runs.
//!
//! `cargo xtask test` runs 10,000 random page request streams (model,
//! driver core, desk, pipeline; `services/iommu/src/tests/pages_prop.rs`)
//! and 2,000 random DMA fault streams (`services/fault-pipeline`). A soak
//! runs `--cases` of each (200,000 by default), with the tests built as
//! `cargo test` builds them, and fails as soon as one case does (proptest
//! then prints the smallest stream that still fails).

use crate::deployment::workspace_root;
use anyhow::{Result, bail};
use std::process::Command;

/// One property test and the variable that sets its number of cases.
struct Property {
    package: &'static str,
    filter: &'static str,
    cases_var: &'static str,
}

const PROPERTIES: &[Property] = &[
    Property {
        package: "faultline-iommu",
        filter: "pages_prop",
        cases_var: "PAGE_REQUEST_CASES",
    },
    Property {
        package: "faultline-fault-pipeline",
        filter: "prop",
        cases_var: "FAULT_PIPELINE_CASES",
    },
];

pub fn run(cases: u64) -> Result<()> {
    for p in PROPERTIES {
        eprintln!("xtask: soak: {} ({}), {cases} cases", p.package, p.filter);
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["test", "--package", p.package, "--lib", "--", p.filter])
            .env(p.cases_var, cases.to_string())
            .status()?;
        if !status.success() {
            bail!("soak of {} failed", p.package);
        }
    }
    eprintln!("xtask: soak: every property held for {cases} cases");
    Ok(())
}
