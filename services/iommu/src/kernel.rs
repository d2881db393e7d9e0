//! The kernel calls a request needs, as a trait: the image implements it
//! with userlib's system calls, the host tests with a fake kernel that
//! knows which client holds which device and buffer.
//!
//! Every call that names a handle of the client takes the reply token of
//! the call being served: the kernel answers for that client only, which
//! is what makes a device or buffer of another client unnameable.

use faultline_ipc::channel::ReplyToken;
use userlib::{Pinned, SysError};

pub trait Kernel {
    /// The PCI function (`bus << 8 | device << 3 | function`) the client of
    /// `token` holds as `handle`, and the unit (its grant number) whose
    /// DMAR scope covers it, if any.
    fn client_pci(&mut self, token: &ReplyToken, handle: u8)
    -> Result<(u16, Option<u8>), SysError>;

    /// The PCI function whose faults the client of `token` may handle, as
    /// its fault capability `handle` grants, and the deadline the grant
    /// sets for each answer, in milliseconds.
    fn client_faults(&mut self, token: &ReplyToken, handle: u8) -> Result<(u16, u32), SysError>;

    /// Pins `[offset, offset + len)` of the client's DMA buffer `buffer`.
    fn client_dma(
        &mut self,
        token: &ReplyToken,
        buffer: u8,
        offset: u64,
        len: u64,
    ) -> Result<Pinned, SysError>;

    /// Releases a pin: its frames are mapped nowhere and the IOTLB no
    /// longer holds them.
    fn dma_unpin(&mut self, pin: u64) -> Result<(), SysError>;

    /// Tells the kernel that `bdf`, behind unit `unit` (its index in DMAR
    /// order), is (`on`) or no longer is attached to a domain with
    /// translation on: only then may its driver turn bus mastering on.
    fn device_translated(&mut self, unit: u8, bdf: u16, on: bool) -> Result<(), SysError>;
}
