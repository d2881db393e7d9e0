//! How driver-core and kernel errors become the protocol's [`IommuError`].
//!
//! A timeout or a rejected invalidation descriptor is
//! [`IommuError::HardwareTimeout`]: the request may have half happened, and
//! the service stops using that unit (see `service`).

use faultline_iommu_core::Error;
use faultline_ipc::abi::Error as AbiError;
use faultline_ipc::protocol::iommu::IommuError;
use userlib::SysError;

/// The protocol's name for a core error.
pub fn from_core(e: Error) -> IommuError {
    match e {
        Error::Timeout(_) | Error::InvalidationQueueError => IommuError::HardwareTimeout,
        Error::Unsupported(_) => IommuError::Unsupported,
        Error::NotAttached => IommuError::NotAttached,
        Error::Overlap { .. } => IommuError::Overlap,
        Error::NotMapped { .. } | Error::SplitsLargePage { .. } => IommuError::NotMapped,
        Error::OutOfRange | Error::NoSuchInterruptEntry => IommuError::OutOfRange,
        Error::Misaligned => IommuError::BadAlignment,
        Error::OutOfTableMemory | Error::TooManyDomains => IommuError::OutOfTableMemory,
        Error::NoAccess | Error::AlreadyAttached | Error::TranslationAlreadyOn => {
            IommuError::NotPermitted
        }
    }
}

/// Whether the unit can no longer be trusted to have done what it was
/// asked (its IOTLB may still hold what the tables no longer map).
pub fn unit_failed(e: Error) -> bool {
    matches!(e, Error::Timeout(_) | Error::InvalidationQueueError)
}

/// The protocol's name for a refused `ClientDma`: a buffer the client
/// does not hold is not permitted; a range past its end is out of range;
/// no room for another pin is out of table memory.
pub fn from_client_dma(e: SysError) -> IommuError {
    match e {
        SysError::Kernel(AbiError::BadArgument | AbiError::BadLength) => IommuError::OutOfRange,
        SysError::Kernel(AbiError::OutOfMemory) => IommuError::OutOfTableMemory,
        _ => IommuError::NotPermitted,
    }
}
