//! Fault injection, for the scenario that shows DMA isolation holding
//! while the IOMMU service restarts (`services/deployments/iommu-restart.toml`).
//!
//! Built only with the `fault-injection` feature: the first instance of
//! the service faults when a driver asks it to describe a domain
//! ([`IommuRequest::Query`]), as a service with a bug would, in the middle
//! of a call. A restarted instance (one that found translation already on
//! when it started) serves every request. Without the feature nothing
//! here is compiled in.

use core::sync::atomic::{AtomicBool, Ordering};
use faultline_ipc::protocol::iommu::IommuRequest;

/// Set once a unit was found translating at start: this is a restarted
/// instance.
static RESTARTED: AtomicBool = AtomicBool::new(false);

/// Notes that this instance took over a unit an earlier one left on.
pub fn took_over() {
    RESTARTED.store(true, Ordering::Relaxed);
}

/// Faults (stopping this instance) if `request` is the trigger and this
/// is the first instance.
pub fn before(request: &IommuRequest) {
    if cfg!(feature = "fault-injection")
        && matches!(request, IommuRequest::Query { .. })
        && !RESTARTED.load(Ordering::Relaxed)
    {
        userlib::log!("iommu: fault injection: faulting in the middle of a call");
        userlib::rt::fault_by_write(0)
    }
}
