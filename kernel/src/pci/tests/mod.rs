//! Enumeration tests against the config-space model in `fake`.
//!
//! - `q35`: a q35-like machine as QEMU builds it (host bridge, edu, the
//!   ICH9 LPC/AHCI/SMBus functions, a PCIe root port with an ATS/PASID/PRI
//!   endpoint behind it), checked function by function.
//! - `rules`: one small topology per rule (bus range, revisits, capacity,
//!   broken capability lists, undecodable BARs) and the property tests.

use super::{Bdf, Function};

mod q35;
mod rules;

fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
    Bdf {
        bus,
        device,
        function,
    }
}

fn find(functions: &[Function], at: Bdf) -> &Function {
    functions
        .iter()
        .find(|f| f.bdf == at)
        .expect("function present")
}
