//! DMA isolation across a restart of the IOMMU service (the
//! `iommu-restart` deployment, whose IOMMU service is built to fault in the
//! middle of a call; see `services/iommu/src/inject.rs`).
//!
//! What must hold: once the IOMMU service is gone, edu cannot master the
//! bus (the kernel turned it off) and the driver may not turn it back on;
//! only when the restarted service has attached edu to a new domain may it
//! DMA again, and then only where the new domain maps. A round trip
//! through the new domain is verified byte for byte. The driver then runs
//! the retry checks again at [`RETRY_BASE`] (see `main`), which shows the
//! fault pipeline working through the new instance.

use crate::domain::{Domain, Failed};
use crate::page::{PAGE, Page};
use crate::{Tally, device, fail, round_trip};
use faultline_ipc::abi::Error;
use faultline_ipc::channel::{ChannelError, Handle};
use userlib::{SysError, log, pci_config_read, sleep_ms};

/// Where the retry checks run again after the restart: above the first
/// run's IOVAs, so nothing there was ever reserved, in either domain.
pub const RETRY_BASE: u64 = 0x60_0000;

/// How long to wait for the supervisor to bring the IOMMU service back.
const ATTEMPTS: u32 = 200;
const PAUSE_MS: u64 = 20;

/// Drives the IOMMU service into its fault, checks the gate, and attaches
/// again once it is back; `a` and `b` are mapped again at `iova`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    domain: &mut Domain,
    iommu: Handle,
    pci: Handle,
    edu: &device::Edu,
    irq: Handle,
    pages: (&Page, &Page),
    iova: u64,
    t: &mut Tally,
) {
    match domain.query() {
        Err(Failed::Channel(ChannelError::PeerDead)) => {
            log!("edu-driver: the IOMMU service stopped in the middle of a call")
        }
        other => fail(format_args!("query of a faulting IOMMU service: {other:?}")),
    }
    let command = pci_config_read(pci, 0x04, 2).unwrap_or(u32::MAX);
    if command & 0x4 != 0 {
        t.unexpected(format_args!(
            "bus mastering still on ({command:#x}) with no IOMMU service"
        ));
    }
    match device::set_command(pci, device::COMMAND_BUS_MASTER) {
        Err(SysError::Kernel(Error::NotPermitted)) => log!(
            "edu-driver: without the IOMMU service, bus mastering is off and refused by the kernel"
        ),
        other => t.unexpected(format_args!(
            "bus mastering without the IOMMU service: {other:?}"
        )),
    }
    let (mut again, info) = attach_when_back(iommu, pci);
    if let Err(e) = device::set_command(pci, device::COMMAND_BUS_MASTER) {
        fail(format_args!(
            "bus mastering refused after attaching again: {e}"
        ));
    }
    for (at, page) in [(iova, pages.0), (iova + PAGE, pages.1)] {
        if let Err(e) = again.map(at, page) {
            fail(format_args!("map of {at:#x} in the new domain: {e}"));
        }
    }
    log!(
        "edu-driver: the restarted IOMMU service attached edu to domain {}",
        info.domain
    );
    round_trip(edu, irq, pages.0, pages.1, info.domain, t);
    *domain = again;
}

fn attach_when_back(
    iommu: Handle,
    pci: Handle,
) -> (Domain, faultline_ipc::protocol::iommu::DomainInfo) {
    for _ in 0..ATTEMPTS {
        match Domain::attach(iommu, pci) {
            Ok(attached) => return attached,
            Err(Failed::Channel(ChannelError::PeerDead)) => {
                let _ = sleep_ms(PAUSE_MS);
            }
            Err(e) => fail(format_args!("attach after the restart: {e}")),
        }
    }
    fail(format_args!(
        "the IOMMU service did not come back within {} ms",
        u64::from(ATTEMPTS) * PAUSE_MS
    ))
}
