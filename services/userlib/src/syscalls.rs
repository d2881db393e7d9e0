//! One safe function per system call.
//!
//! Each passes its arguments in the registers [`faultline_ipc::abi`]
//! assigns, and turns the status into `Result<_, SysError>`: a known
//! [`faultline_ipc::abi::Error`] (`SysError::Kernel`), the two codes that
//! carry a detail (`PeerRestarted` with the new generation, `Truncated`
//! with the full length), or a code this build does not know
//! (`SysError::Unknown`). Buffers the kernel writes are taken as `&mut`,
//! so the kernel's writes never alias a live Rust reference.

use crate::sys::{self, RawResult, read_only};
use faultline_ipc::abi::{CapKind, Error, NOTIFY_TIMER, RecvKind, Sysnum};
use faultline_ipc::channel::{Handle, Received, ReplyToken};
use faultline_ipc::wire::Frame;

pub use faultline_ipc::channel::TransportError as SysError;

/// What [`time`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    /// The time-stamp counter.
    pub tsc: u64,
    /// Its frequency (ticks per second), as the kernel calibrated it.
    pub tsc_hz: u64,
    /// Nanoseconds since boot.
    pub ns: u64,
}

/// A mapped MMIO region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRegion {
    pub vaddr: u64,
    pub len: u64,
}

/// DMA memory: where the service sees it, and the number that names it
/// to the IOMMU service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRegion {
    pub vaddr: u64,
    /// The buffer's number, for map requests to the IOMMU service.
    pub buffer: u8,
    /// Where the device sees it without an IOMMU; `None` on a machine with
    /// one (devices see only what the IOMMU service maps), except to the
    /// IOMMU service itself.
    pub paddr: Option<u64>,
}

/// A pinned range of a client's DMA buffer, as the IOMMU service sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pinned {
    pub paddr: u64,
    /// Names the pin for [`dma_unpin`] and in [`dma_revoked`].
    pub pin: u64,
}

/// What to program a device's MSI registers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiTarget {
    pub address: u64,
    pub data: u32,
}

/// Turns raw registers into results or an error.
#[inline]
pub fn check(r: RawResult) -> Result<[u64; 4], SysError> {
    if r[0] == 0 {
        return Ok([r[1], r[2], r[3], r[4]]);
    }
    match SysError::from_status(r[0], r[1]) {
        None => Ok([r[1], r[2], r[3], r[4]]),
        Some(e) => Err(e),
    }
}

fn addr<T: ?Sized>(p: *const T) -> u64 {
    p.cast::<u8>() as usize as u64
}

#[inline]
fn simple(nr: Sysnum, args: [u64; 6]) -> Result<[u64; 4], SysError> {
    check(read_only(nr, args))
}

/// Prints `line` on the console, prefixed with this service's name. At most
/// [`faultline_ipc::abi::MAX_LOG`] bytes (the kernel refuses longer lines;
/// [`crate::log!`] truncates for you).
pub fn log(line: &str) -> Result<(), SysError> {
    simple(Sysnum::Log, [addr(line), line.len() as u64, 0, 0, 0, 0]).map(drop)
}

/// Stops this service with `code` (0 is success; anything else the
/// supervisor treats like a fault).
pub fn exit(code: u32) -> ! {
    let _ = read_only(Sysnum::Exit, [u64::from(code), 0, 0, 0, 0, 0]);
    #[cfg(not(target_os = "none"))]
    panic!("exit({code}): there is no kernel on the host");
    #[cfg(target_os = "none")]
    loop {
        core::hint::spin_loop();
    }
}

/// Gives up the rest of the time slice.
pub fn yield_now() -> Result<(), SysError> {
    simple(Sysnum::Yield, [0; 6]).map(drop)
}

/// The TSC, its frequency and nanoseconds since boot (zeros if refused).
pub fn time() -> Time {
    let [tsc, tsc_hz, ns, _] = simple(Sysnum::Time, [0; 6]).unwrap_or_default();
    Time { tsc, tsc_hz, ns }
}

/// Posts [`NOTIFY_TIMER`] to this service once `ns since boot >=
/// deadline_ns`; 0 cancels.
pub fn set_timer(deadline_ns: u64) -> Result<(), SysError> {
    simple(Sysnum::SetTimer, [deadline_ns, 0, 0, 0, 0, 0]).map(drop)
}

/// Blocks for `ms` milliseconds (a timer and a wait on its bit).
pub fn sleep_ms(ms: u64) -> Result<(), SysError> {
    set_timer(
        time()
            .ns
            .saturating_add(ms.saturating_mul(1_000_000))
            .max(1),
    )?;
    wait(NOTIFY_TIMER).map(drop)
}

/// A one-way message on client channel `handle`.
pub fn send(handle: Handle, message: &[u8]) -> Result<(), SysError> {
    let args = [handle.0, addr(message), message.len() as u64, 0, 0, 0];
    simple(Sysnum::Send, args).map(drop)
}

/// Blocks until a message arrives on one of this service's server channels
/// or a notification bit in `notify_mask` is pending.
///
/// A call or message larger than `buf` (impossible with a whole [`Frame`]
/// and a kernel that enforces [`faultline_ipc::abi::MAX_MESSAGE`]) is
/// reported with its full `len`, larger than the buffer, and for a call
/// with its token, so the receiver can still answer it.
pub fn recv(buf: &mut Frame, notify_mask: u32) -> Result<Received, SysError> {
    let args = [
        addr(buf.as_ptr()),
        buf.len() as u64,
        u64::from(notify_mask),
        0,
        0,
        0,
    ];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which
    // is exclusively borrowed for the duration of the call.
    let r = unsafe { sys::syscall6(Sysnum::Recv as u64, args) };
    received(r)
}

/// Answers the call `token` names with `message`, then blocks as [`recv`]
/// does, in one system call (the server loop's usual step). An error is
/// the reply's refusal (as [`reply`]'s), and then nothing was received.
#[inline]
pub fn reply_recv(
    token: ReplyToken,
    message: &[u8],
    buf: &mut Frame,
    notify_mask: u32,
) -> Result<Received, SysError> {
    let args = [
        token.raw(),
        addr(message),
        message.len() as u64,
        addr(buf.as_ptr()),
        buf.len() as u64,
        u64::from(notify_mask),
    ];
    // SAFETY: as in `recv`; `message` is only read.
    let r = unsafe { sys::syscall6(Sysnum::ReplyRecv as u64, args) };
    received(r)
}

/// Posts notification capability `handle`'s bits, then blocks as [`recv`]
/// does, in one system call. An error is the notify's refusal (as
/// [`notify`]'s), and then nothing was received.
#[inline]
pub fn notify_recv(
    handle: Handle,
    buf: &mut Frame,
    notify_mask: u32,
) -> Result<Received, SysError> {
    let args = [
        handle.0,
        addr(buf.as_ptr()),
        buf.len() as u64,
        u64::from(notify_mask),
        0,
        0,
    ];
    // SAFETY: as in `recv`.
    let r = unsafe { sys::syscall6(Sysnum::NotifyRecv as u64, args) };
    received(r)
}

/// Posts notification capability `handle`'s bits, then blocks as [`wait`]
/// does, in one system call. An error is the notify's refusal, and then
/// the caller did not wait.
#[inline]
pub fn notify_wait(handle: Handle, mask: u32) -> Result<u32, SysError> {
    let args = [handle.0, u64::from(mask), 0, 0, 0, 0];
    simple(Sysnum::NotifyWait, args).map(|v| v[0] as u32)
}

/// What `Recv` (and the calls ending in it) returned.
#[inline]
fn received(mut r: RawResult) -> Result<Received, SysError> {
    if r[0] == Error::Truncated as u64 {
        r[0] = 0;
    }
    let [kind, len_or_bits, badge, token] = check(r)?;
    let len = len_or_bits as usize;
    match RecvKind::from_raw(kind) {
        Some(RecvKind::Call) => Ok(Received::Call {
            len,
            badge,
            token: ReplyToken::from_raw(token),
        }),
        Some(RecvKind::Send) => Ok(Received::Send { len, badge }),
        Some(RecvKind::Notification) => Ok(Received::Notification {
            bits: len_or_bits as u32,
        }),
        None => Err(SysError::Unknown(kind)),
    }
}

/// Sends `request` on client channel `handle` and blocks until the reply
/// is in `reply`; returns the reply's length.
#[inline]
pub fn call(handle: Handle, request: &[u8], reply: &mut [u8]) -> Result<usize, SysError> {
    let args = [
        handle.0,
        addr(request),
        request.len() as u64,
        addr(reply.as_ptr()),
        reply.len() as u64,
        0,
    ];
    // SAFETY: the kernel writes at most `reply.len()` bytes into `reply`,
    // exclusively borrowed for the call; `request` is only read.
    let r = unsafe { sys::syscall6(Sysnum::Call as u64, args) };
    check(r).map(|v| v[0] as usize)
}

/// Answers a call. Never blocks.
pub fn reply(token: ReplyToken, message: &[u8]) -> Result<(), SysError> {
    let args = [token.raw(), addr(message), message.len() as u64, 0, 0, 0];
    simple(Sysnum::Reply, args).map(drop)
}

/// Posts a notification capability's bits to its target.
pub fn notify(handle: Handle) -> Result<(), SysError> {
    simple(Sysnum::Notify, [handle.0, 0, 0, 0, 0, 0]).map(drop)
}

/// Blocks until a bit in `mask` is pending; returns (and clears) those bits.
pub fn wait(mask: u32) -> Result<u32, SysError> {
    simple(Sysnum::Wait, [u64::from(mask), 0, 0, 0, 0, 0]).map(|v| v[0] as u32)
}

/// Re-enables an interrupt after handling it.
pub fn irq_ack(handle: Handle) -> Result<(), SysError> {
    simple(Sysnum::IrqAck, [handle.0, 0, 0, 0, 0, 0]).map(drop)
}

/// Maps a granted MMIO region (idempotent).
pub fn mmio_map(handle: Handle) -> Result<MmioRegion, SysError> {
    let [vaddr, len, ..] = simple(Sysnum::MmioMap, [handle.0, 0, 0, 0, 0, 0])?;
    Ok(MmioRegion { vaddr, len })
}

/// Allocates zeroed, contiguous DMA memory from a DMA budget.
pub fn dma_alloc(handle: Handle, bytes: u64) -> Result<DmaRegion, SysError> {
    let [vaddr, buffer, paddr, ..] = simple(Sysnum::DmaAlloc, [handle.0, bytes, 0, 0, 0, 0])?;
    Ok(DmaRegion {
        vaddr,
        buffer: buffer as u8,
        paddr: (paddr != 0).then_some(paddr),
    })
}

/// IOMMU service only: the PCI function (as `bus << 8 | device << 3 |
/// function`) the client of the pending call `token` holds as `handle`.
pub fn client_pci(token: &ReplyToken, handle: u8) -> Result<u16, SysError> {
    client_pci_unit(token, handle).map(|(bdf, _)| bdf)
}

/// [`client_pci`], with the VT-d unit whose DMAR scope covers the function
/// (`None` if no unit does).
pub fn client_pci_unit(token: &ReplyToken, handle: u8) -> Result<(u16, Option<u8>), SysError> {
    let args = [token.raw(), u64::from(handle), 0, 0, 0, 0];
    let [bdf, unit, ..] = simple(Sysnum::ClientPci, args)?;
    Ok((bdf as u16, u8::try_from(unit).ok()))
}

/// A fault handler grant as the kernel vouches for it ([`client_faults`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientFaults {
    /// The function whose DMA faults the client may handle, as `bus << 8 |
    /// device << 3 | function`.
    pub bdf: u16,
    /// The VT-d unit whose DMAR scope covers the function, if any.
    pub unit: Option<u8>,
    /// How long the handler has to answer each fault, in milliseconds.
    pub deadline_ms: u32,
}

/// IOMMU service only: the fault handler grant the client of the pending
/// call `token` holds as `handle` (`WrongKind` for any other capability,
/// a PCI function included).
pub fn client_faults(token: &ReplyToken, handle: u8) -> Result<ClientFaults, SysError> {
    let args = [token.raw(), u64::from(handle), 0, 0, 0, 0];
    let [bdf, unit, deadline_ms, _] = simple(Sysnum::ClientFaults, args)?;
    Ok(ClientFaults {
        bdf: bdf as u16,
        unit: u8::try_from(unit).ok(),
        deadline_ms: deadline_ms as u32,
    })
}

/// A VT-d unit as the DMAR describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VtdInfo {
    /// The host address width in bits.
    pub host_address_width: u8,
    pub segment: u16,
    /// The unit translates every function of its segment no other unit
    /// lists.
    pub include_pci_all: bool,
}

/// IOMMU service only: what the DMAR says of the unit behind VT-d register
/// capability `vtd`.
pub fn vtd_info(vtd: Handle) -> Result<VtdInfo, SysError> {
    let [haw, segment, all, _] = simple(Sysnum::VtdInfo, [vtd.0, 0, 0, 0, 0, 0])?;
    Ok(VtdInfo {
        host_address_width: haw as u8,
        segment: segment as u16,
        include_pci_all: all != 0,
    })
}

/// IOMMU service only: pins `[offset, offset + len)` of DMA buffer `buffer`
/// of the client of the pending call `token`.
pub fn client_dma(
    token: &ReplyToken,
    buffer: u8,
    offset: u64,
    len: u64,
) -> Result<Pinned, SysError> {
    let args = [token.raw(), u64::from(buffer), offset, len, 0, 0];
    let [paddr, pin, ..] = simple(Sysnum::ClientDma, args)?;
    Ok(Pinned { paddr, pin })
}

/// IOMMU service only: releases a pin (its range is unmapped everywhere
/// and the IOTLB invalidated).
pub fn dma_unpin(pin: u64) -> Result<(), SysError> {
    simple(Sysnum::DmaUnpin, [pin, 0, 0, 0, 0, 0]).map(drop)
}

/// IOMMU service only: a pin whose owner stopped, to unmap and release;
/// `Ok(None)` when there is none left.
pub fn dma_revoked() -> Result<Option<u64>, SysError> {
    match simple(Sysnum::DmaRevoked, [0; 6]) {
        Ok(v) => Ok(Some(v[0])),
        Err(SysError::Kernel(Error::NotFound)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A granted device interrupt, as [`irq_route`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqRoute {
    /// The PCI function, as `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    pub vector: u8,
    pub apic_id: u32,
}

/// IOMMU service only: interrupt line `irq`: `Ok(Some(route))` for the MSI
/// of a PCI function behind unit `vtd`, `Ok(None)` for any other line, and
/// `Err(Kernel(NotFound))` past the last line.
pub fn irq_route(vtd: Handle, irq: u8) -> Result<Option<IrqRoute>, SysError> {
    let [bdf, vector, apic_id, device] =
        simple(Sysnum::IrqRoute, [vtd.0, u64::from(irq), 0, 0, 0, 0])?;
    Ok((device == 1).then_some(IrqRoute {
        bdf: bdf as u16,
        vector: vector as u8,
        apic_id: apic_id as u32,
    }))
}

/// IOMMU service only: line `irq`'s MSI now names remapping entry `irte`
/// (`None`: back to compatibility format).
pub fn irq_remap(vtd: Handle, irq: u8, irte: Option<u16>) -> Result<(), SysError> {
    let irte = irte.map_or(u64::MAX, u64::from);
    simple(Sysnum::IrqRemap, [vtd.0, u64::from(irq), irte, 0, 0, 0]).map(drop)
}

/// IOMMU service only: function `bdf` is (`on`) or is no longer attached
/// to a domain with translation on; `vtd` is the caller's VT-d register
/// capability.
pub fn device_translated(vtd: Handle, bdf: u16, on: bool) -> Result<(), SysError> {
    let args = [vtd.0, u64::from(bdf), u64::from(on), 0, 0, 0];
    simple(Sysnum::DeviceTranslated, args).map(drop)
}

/// Reads `width` (1, 2 or 4) bytes of a granted PCI function's config space.
pub fn pci_config_read(handle: Handle, offset: u16, width: u8) -> Result<u32, SysError> {
    let args = [handle.0, u64::from(offset), u64::from(width), 0, 0, 0];
    simple(Sysnum::PciConfigRead, args).map(|v| v[0] as u32)
}

/// Writes a granted PCI function's config space (not its BARs).
pub fn pci_config_write(
    handle: Handle,
    offset: u16,
    width: u8,
    value: u32,
) -> Result<(), SysError> {
    let args = [
        handle.0,
        u64::from(offset),
        u64::from(width),
        u64::from(value),
        0,
        0,
    ];
    simple(Sysnum::PciConfigWrite, args).map(drop)
}

/// The handle and kind of this service's capability called `name` (as the
/// deployment names it). A kind this build does not know is
/// `SysError::Unknown(kind)`.
pub fn cap_lookup(name: &str) -> Result<(Handle, CapKind), SysError> {
    let [handle, kind, ..] = simple(
        Sysnum::CapLookup,
        [addr(name), name.len() as u64, 0, 0, 0, 0],
    )?;
    let kind = CapKind::from_raw(kind).ok_or(SysError::Unknown(kind))?;
    Ok((Handle(handle), kind))
}

/// Supervisor only: writes task `index`'s postcard-encoded
/// [`faultline_ipc::kconfig::TaskStatus`] into `buf`; returns its length.
/// `NotFound` past the last task.
pub fn task_status(handle: Handle, index: u64, buf: &mut [u8]) -> Result<usize, SysError> {
    let args = [handle.0, index, addr(buf.as_ptr()), buf.len() as u64, 0, 0];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`,
    // exclusively borrowed for the call.
    let r = unsafe { sys::syscall6(Sysnum::TaskStatus as u64, args) };
    check(r).map(|v| v[0] as usize)
}

/// Supervisor only: restarts stopped task `index`.
pub fn task_restart(handle: Handle, index: u64) -> Result<(), SysError> {
    simple(Sysnum::TaskRestart, [handle.0, index, 0, 0, 0, 0]).map(drop)
}

/// The MSI address and data the kernel programmed the IRQ capability's PCI
/// function with (a driver never programs MSI itself).
pub fn irq_info(handle: Handle) -> Result<MsiTarget, SysError> {
    let [address, data, ..] = simple(Sysnum::IrqInfo, [handle.0, 0, 0, 0, 0, 0])?;
    Ok(MsiTarget {
        address,
        data: data as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errors_with_their_details() {
        assert_eq!(check([0, 1, 2, 3, 4]), Ok([1, 2, 3, 4]));
        assert_eq!(
            check([Error::BadPointer as u64, 0, 0, 0, 0]),
            Err(SysError::Kernel(Error::BadPointer))
        );
        assert_eq!(
            check([Error::PeerRestarted as u64, 3, 0, 0, 0]),
            Err(SysError::PeerRestarted { generation: 3 })
        );
        assert_eq!(
            check([Error::Truncated as u64, 300, 0, 0, 0]),
            Err(SysError::Truncated { len: 300 })
        );
        assert_eq!(check([77, 0, 0, 0, 0]), Err(SysError::Unknown(77)));
    }

    #[test]
    fn without_a_kernel_every_call_is_refused() {
        assert_eq!(yield_now(), Err(SysError::Kernel(Error::BadSyscall)));
        assert_eq!(
            time(),
            Time {
                tsc: 0,
                tsc_hz: 0,
                ns: 0
            }
        );
        let mut buf = [0; faultline_ipc::abi::MAX_MESSAGE];
        assert!(recv(&mut buf, 0).is_err());
    }
}
