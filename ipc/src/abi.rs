//! The system-call ABI: the one definition the kernel and every service
//! share.
//!
//! # Calling convention
//!
//! A service enters the kernel with `syscall`. `rax` holds the [`Sysnum`];
//! arguments go in `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9` (in that order;
//! `rcx` and `r11` are taken by the instruction itself). On return `rax`
//! holds `0` for success or an [`Error`] code, and up to four results are in
//! `rdi`, `rsi`, `rdx`, `r10`. Every other register is preserved.
//!
//! # Rules the kernel enforces on every call
//!
//! - Handles are indexes into the caller's capability table; a handle that
//!   is out of range or empty is [`Error::BadHandle`], one of the wrong kind
//!   [`Error::WrongKind`], one without the needed right [`Error::NoRight`].
//! - Pointers must name RAM the caller owns, mapped in its own address
//!   space with user access (and write access where the kernel writes):
//!   its image, stack, data and DMA memory. Anything else is
//!   [`Error::BadPointer`]: kernel addresses, unmapped pages, read-only
//!   pages written to, and MMIO the caller itself mapped (the kernel never
//!   copies through a device's registers). The kernel never faults on a
//!   service's pointer.
//! - Lengths are bounded ([`MAX_MESSAGE`], [`MAX_LOG`]): otherwise
//!   [`Error::BadLength`].
//! - Refused calls return an error and are logged (rate-limited); they never
//!   stop the caller. Only CPU faults (page fault, #GP, #UD, ...) stop a
//!   service, and then only that service.
//!
//! # IPC
//!
//! A *channel* joins exactly one client and one server, as the deployment
//! says. The client holds a [`CapKind::Client`] handle, the server a
//! [`CapKind::Server`] handle whose badge tells it which client is talking.
//!
//! - [`Sysnum::Call`] sends a request and blocks until the server replies.
//! - [`Sysnum::Send`] sends a one-way message and blocks until the server
//!   has received it.
//! - [`Sysnum::Recv`] blocks until a message arrives on any of the caller's
//!   server channels or a notification bit in the mask is pending; it
//!   returns a [`RecvKind`], the length (or the bits), the badge and, for a
//!   call, a single-use reply token.
//! - [`Sysnum::Reply`] answers a call. It never blocks: a server may keep a
//!   token and reply later (a *deferred reply*), which is how a server
//!   publishes events to clients that pull them without ever waiting on a
//!   client. Replying with an unknown, used or stale token, or to a client
//!   that has died, is an error to the server, never a hang.
//! - [`Sysnum::ReplyRecv`] is `Reply` then `Recv` in one entry, and
//!   [`Sysnum::NotifyWait`] / [`Sysnum::NotifyRecv`] are `Notify` then
//!   `Wait` / `Recv` (seL4's `ReplyRecv`, `NBSendWait` and `NBSendRecv`).
//!   They mean exactly the two calls in a row, except that a refusal of
//!   either half (the receive buffer is checked first) leaves both undone.
//!   A server loop needs one entry per message instead of two, and the
//!   kernel can hand the CPU straight to the peer it has just woken.
//!
//! Refusals specific to IPC: replying to a client that has died (or was
//! restarted since it called) is [`Error::PeerDead`]; an unknown, used,
//! forged or foreign token is [`Error::StaleToken`]; notifying a stopped
//! service is [`Error::PeerDead`]. When a message does not fit the
//! receiver's buffer it is delivered truncated with status
//! [`Error::Truncated`] and the *normal* results (for `recv`: kind, full
//! length, badge, token — so a truncated call can still be answered; for
//! `call`: the full reply length).
//!
//! A peer's death is visible: calls to a dead server fail with
//! [`Error::PeerDead`] (queued callers are woken with it), and the first call
//! after the server was restarted fails with [`Error::PeerRestarted`] so the
//! client knows the server's state is new.

//! # Entry
//!
//! A service starts at its ELF entry point in ring 3 with `rsp` at the top
//! of its stack (16-byte aligned, a guard page below the stack), every other
//! register zero, interrupts enabled, its `.bss` zeroed and nothing mapped
//! below its image. It learns its handles only through
//! [`Sysnum::CapLookup`], by the names its deployment gives them.
//!
//! # Flags, entry and exit
//!
//! No flag a service sets reaches the kernel: `syscall` clears TF, IF, DF,
//! IOPL, NT, RF, AC and ID on entry, interrupts and exceptions clear TF,
//! NT and RF in hardware, and the kernel clears DF and AC itself on every
//! entry. Of RFLAGS only the arithmetic flags (CF, PF, AF, ZF, SF, OF) and
//! DF are the service's and come back to it; it always runs with IF set
//! and IOPL 0. A service is only ever resumed at a canonical lower-half
//! address: if its saved RIP is anything else it is stopped with a #GP
//! report instead. A jump to the kernel's syscall entry is a page fault
//! that stops the service, never a system call (the kernel handles a
//! hypervisor's SYSCALL-left-in-ring-3 quirk only when a boot probe saw it,
//! and only for frames a real `syscall` produced). An NMI is the kernel's:
//! it is counted and logged, never charged to the running service.
//!
//! # Floating point
//!
//! Services (like the kernel) are built soft-float, and no floating-point
//! or vector state is ever saved or switched: x87, MMX, SSE and AVX
//! instructions fault (CR0.EM set, CR4.OSFXSR and OSXSAVE clear), and the
//! service that uses one is stopped with #NM or #UD. So those registers can
//! never carry data from one service to another. (Some hypervisors run x87
//! and SSE code despite CR0.EM; a boot probe finds out, and there the
//! kernel saves and restores the x87 and SSE registers on every switch
//! between services instead, so the rule that they carry nothing between
//! services still holds.)
//!
//! # Devices
//!
//! A PCI capability lets its holder read the function's configuration
//! space and write only what a driver needs ([`Sysnum::PciConfigWrite`]):
//! the command register's I/O, memory, bus-master, parity, SERR and
//! INTx-disable bits, the status register's write-1-to-clear error bits,
//! cache line size, latency timer, interrupt line, and device-specific
//! registers in 0x40..0x100 outside every standard capability (a
//! vendor-specific capability's body included). Everything else (BARs,
//! expansion ROM, header, BIST, power management, PCI Express control and
//! function-level reset, MSI, MSI-X, extended configuration space) is
//! [`Error::NotPermitted`], with the offset of the first refused byte in
//! `rdi`; bits outside the allow-list keep their value. Bridges and
//! chipset functions are never granted.
//!
//! The kernel owns interrupts: an IRQ capability names its PCI function,
//! and the kernel programs that function's MSI address and data with the
//! vector the deployment granted (fixed delivery to this CPU) and enables
//! it; [`Sysnum::IrqInfo`] reports what it programmed. A BAR capability
//! maps the BAR with any MSI-X table and pending-bit array left out. When
//! a service holding a PCI capability stops, the kernel quiesces the
//! function (bus mastering, memory and I/O decoding and MSI off, INTx
//! disabled, a function-level reset where the function has one) and does
//! not reuse the service's memory until the function is quiet; a restart
//! programs its MSI again.
//!
//! # DMA isolation
//!
//! On a machine with an IOMMU, the IOMMU service (the one holder of each
//! VT-d unit's registers) decides where a device may DMA, and the kernel
//! enforces two rules for it:
//!
//! - **No bus mastering without a domain.** A write that sets a function's
//!   bus-master bit is [`Error::NotPermitted`] (offset 4 in `rdi`) until the
//!   IOMMU service has said, with [`Sysnum::DeviceTranslated`], that the
//!   function is attached to a domain with translation on. When the IOMMU
//!   service stops, every function it vouched for loses bus mastering and
//!   is refused it again until the restarted service vouches anew.
//! - **Memory is named by capability.** A driver names DMA memory to the
//!   IOMMU service by its buffer number (from [`Sysnum::DmaAlloc`]) inside
//!   a call; only the IOMMU service can turn that into frames
//!   ([`Sysnum::ClientDma`]), and only for the client of a call it is
//!   holding, so a driver can name only its own memory, and a PCI function
//!   only one it holds ([`Sysnum::ClientPci`]). Physical addresses are not
//!   given to drivers. Frames the IOMMU service pinned outlive their owner:
//!   when the owner stops, the kernel posts [`NOTIFY_DMA_REVOKED`], the
//!   IOMMU service unmaps them and invalidates the IOTLB, and only when it
//!   releases the pin ([`Sysnum::DmaUnpin`]) are the frames reused.
//!
//! - **Interrupts through remapping.** Where the unit remaps interrupts,
//!   the IOMMU service learns each granted device interrupt from the kernel
//!   ([`Sysnum::IrqRoute`]), writes a remapping entry that accepts only
//!   that function's source id and yields only the granted vector, and the
//!   kernel reprograms the function's MSI to name that entry
//!   ([`Sysnum::IrqRemap`]). A driver never writes MSI registers either way.
//!
//! - **The DMAR stays the kernel's.** The IOMMU service learns which unit
//!   translates a device with the device itself ([`Sysnum::ClientPci`]),
//!   and each unit's host address width and flags from
//!   [`Sysnum::VtdInfo`]; it never reads ACPI tables.
//!
//! - **Fault handlers are named by capability too.** The right to handle
//!   one PCI function's DMA faults is a [`CapKind::Faults`] capability,
//!   with a deadline the deployment sets; it grants nothing else (no
//!   config space, BARs, interrupts or bus mastering: every call that
//!   takes a PCI capability refuses it with [`Error::WrongKind`]). The
//!   IOMMU service learns which function a client of a call may handle
//!   faults for, and its deadline, from the kernel
//!   ([`Sysnum::ClientFaults`]), never from the client.
//!
//! On a machine without an IOMMU there is nothing to enforce: bus
//! mastering is a driver's to set, and [`Sysnum::DmaAlloc`] returns
//! physical addresses.
//!
//! # Console
//!
//! [`Sysnum::Log`] lines are the service's own: the kernel prints each as
//! `[<uptime> @<service>] <text>` with every byte outside printable ASCII
//! escaped, so one call is always exactly one console line and can never
//! pass for a kernel line. Each service has a console budget (a burst of
//! 4 KiB, refilled at 16 KiB/s); lines beyond it are dropped and the kernel
//! reports how many.

/// Largest message (request or reply) in bytes.
pub const MAX_MESSAGE: usize = 256;
/// Largest log line in bytes.
pub const MAX_LOG: usize = 256;
/// Longest capability name, in bytes.
pub const MAX_CAP_NAME: usize = 24;
/// Notification bit the kernel posts to the supervisor when a service faults.
pub const NOTIFY_TASK_FAULT: u32 = 1 << 31;
/// Notification bit the kernel posts when the caller's timer expires.
pub const NOTIFY_TIMER: u32 = 1 << 30;
/// Notification bit the kernel posts to the IOMMU service when the owner
/// of memory it pinned stopped (see [`Sysnum::DmaRevoked`]).
pub const NOTIFY_DMA_REVOKED: u32 = 1 << 29;
/// Bits a deployment may assign to notifications and IRQs.
pub const NOTIFY_USER_BITS: u32 = (1 << 29) - 1;

/// System call numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Sysnum {
    /// `(ptr, len)`: print a line on the console, prefixed by the caller's name.
    Log = 0,
    /// `(code)`: stop the caller. Never returns.
    Exit = 1,
    /// Give up the rest of the time slice.
    Yield = 2,
    /// Returns `(tsc, tsc_hz, ns_since_boot)`.
    Time = 3,
    /// `(deadline_ns)`: post [`NOTIFY_TIMER`] to the caller once
    /// `ns_since_boot >= deadline_ns`; 0 cancels.
    SetTimer = 4,
    /// `(handle, ptr, len)`: one-way message on a client channel.
    Send = 5,
    /// `(buf, cap, notify_mask)`: returns `(kind, len_or_bits, badge, token)`.
    Recv = 6,
    /// `(handle, req, req_len, reply_buf, reply_cap)`: returns `(reply_len)`.
    Call = 7,
    /// `(token, ptr, len)`: answer a call.
    Reply = 8,
    /// `(handle)`: post a notification capability's bits to its target.
    Notify = 9,
    /// `(mask)`: block until a masked notification bit is pending; returns
    /// `(bits)` and clears them.
    Wait = 10,
    /// `(handle)`: re-enable an interrupt after handling it.
    IrqAck = 11,
    /// `(handle)`: map a granted MMIO region; returns `(vaddr, len)`.
    MmioMap = 12,
    /// `(handle, bytes)`: allocate zeroed, contiguous DMA memory from a DMA
    /// budget; returns `(vaddr, buffer, paddr)`. A buffer of 2 MiB or more
    /// starts on a 2 MiB boundary in memory. `buffer` names it to the
    /// IOMMU service (see "DMA memory" above); `paddr` is 0 unless the caller
    /// holds a VT-d unit's registers or the machine has no IOMMU.
    DmaAlloc = 13,
    /// `(handle, offset, width)`: read a granted PCI function's config space.
    PciConfigRead = 14,
    /// `(handle, offset, width, value)`: write it, within the driver
    /// allow-list (see "Devices" above); otherwise `NotPermitted` with the
    /// first refused offset in `rdi`.
    PciConfigWrite = 15,
    /// `(name_ptr, name_len)`: returns `(handle, kind)` of the caller's
    /// capability with that name.
    CapLookup = 16,
    /// `(handle, task, buf, cap)`: supervisor only; writes a postcard
    /// [`crate::kconfig::TaskStatus`] into `buf`, returns `(len)`. A buffer
    /// too small is [`Error::BadLength`] with the length needed in `rdi`.
    TaskStatus = 17,
    /// `(handle, task)`: supervisor only; restart a stopped service.
    TaskRestart = 18,
    /// `(handle)`: returns the MSI `(address, data)` the kernel programmed
    /// the IRQ capability's PCI function with.
    IrqInfo = 19,
    /// `(token, handle)`: IOMMU service only. The PCI function that the
    /// client of the call `token` (pending on the caller) holds as
    /// `handle`; returns `(bdf, unit)`: the function as
    /// `bus << 8 | device << 3 | function`, and the VT-d unit (the
    /// `VtdMmio` grant's unit number) whose DMAR scope covers it, or
    /// `u64::MAX` if none does.
    ClientPci = 20,
    /// `(token, buffer, offset, len)`: IOMMU service only. Pins
    /// `[offset, offset + len)` (page-aligned) of DMA buffer `buffer` of the
    /// client of the call `token`; returns `(paddr, pin)`. The frames stay
    /// the client's, and are not reused after it stops until the pin is
    /// released with [`Sysnum::DmaUnpin`].
    ClientDma = 21,
    /// `(pin)`: IOMMU service only. The pinned range is no longer mapped
    /// for any device and the IOTLB has been invalidated.
    DmaUnpin = 22,
    /// `()`: IOMMU service only. A pin of the caller's whose owner stopped
    /// (posted as [`NOTIFY_DMA_REVOKED`]); returns `(pin)`, or
    /// [`Error::NotFound`] when none is left.
    DmaRevoked = 23,
    /// `(handle, bdf, on)`: IOMMU service only, `handle` its VT-d register
    /// capability. `on = 1`: function `bdf` is attached to a domain with
    /// translation on, so its driver may enable bus mastering. `on = 0`:
    /// it no longer is; the kernel turns bus mastering off.
    DeviceTranslated = 24,
    /// `(handle, irq)`: IOMMU service only, `handle` its VT-d register
    /// capability. Interrupt line `irq` (0, 1, ... in grant order) as the
    /// deployment granted it: returns `(bdf, vector, apic_id, 1)` for the
    /// MSI of a PCI function this unit translates, and `(0, 0, 0, 0)` for
    /// any other line (a VT-d unit's own interrupt, another unit's
    /// device); [`Error::NotFound`] past the last line.
    IrqRoute = 25,
    /// `(handle, irq, irte)`: IOMMU service only. The kernel reprograms
    /// line `irq`'s MSI in remappable format with interrupt handle `irte`
    /// (the IOMMU service has written that entry with the line's source id
    /// and vector); `irte = u64::MAX` goes back to compatibility format.
    IrqRemap = 26,
    /// `(handle)`: the caller's VT-d register capability `handle`, as the
    /// DMAR describes its unit: returns `(host_address_width, segment,
    /// include_pci_all)` (the width in bits; 1 if the unit translates every
    /// function of its segment that no other unit lists).
    VtdInfo = 27,
    /// `(token, handle)`: IOMMU service only. The fault handler grant
    /// ([`CapKind::Faults`]) that the client of the call `token` (pending
    /// on the caller) holds as `handle`; returns `(bdf, unit,
    /// deadline_ms, 0)`: the function whose DMA faults the client may
    /// handle, as for [`Sysnum::ClientPci`], the VT-d unit whose DMAR scope
    /// covers it (or `u64::MAX`), and the deadline the deployment gave the
    /// handler, in milliseconds. Any other kind of capability (a PCI
    /// function included) is [`Error::WrongKind`].
    ClientFaults = 28,
    /// `(token, ptr, len, buf, cap, notify_mask)`: [`Sysnum::Reply`] to the
    /// call `token` names, then [`Sysnum::Recv`] into `buf`, in one entry
    /// (seL4's `ReplyRecv`): the server loop's one system call. The receive
    /// buffer is checked first; if it or the reply is refused, neither half
    /// happens and the error is returned. Returns as `Recv`.
    ReplyRecv = 29,
    /// `(handle, mask)`: [`Sysnum::Notify`] with notification capability
    /// `handle`, then [`Sysnum::Wait`] for `mask` (seL4's `NBSendWait`). A
    /// refused notify returns its error and does not wait. Returns as `Wait`.
    NotifyWait = 30,
    /// `(handle, buf, cap, notify_mask)`: [`Sysnum::Notify`] with `handle`,
    /// then [`Sysnum::Recv`] (seL4's `NBSendRecv`). The receive buffer is
    /// checked first; if it or the notify is refused, neither half happens.
    /// Returns as `Recv`.
    NotifyRecv = 31,
}

impl Sysnum {
    /// Every call, in number order.
    pub const ALL: [Sysnum; 32] = [
        Self::Log,
        Self::Exit,
        Self::Yield,
        Self::Time,
        Self::SetTimer,
        Self::Send,
        Self::Recv,
        Self::Call,
        Self::Reply,
        Self::Notify,
        Self::Wait,
        Self::IrqAck,
        Self::MmioMap,
        Self::DmaAlloc,
        Self::PciConfigRead,
        Self::PciConfigWrite,
        Self::CapLookup,
        Self::TaskStatus,
        Self::TaskRestart,
        Self::IrqInfo,
        Self::ClientPci,
        Self::ClientDma,
        Self::DmaUnpin,
        Self::DmaRevoked,
        Self::DeviceTranslated,
        Self::IrqRoute,
        Self::IrqRemap,
        Self::VtdInfo,
        Self::ClientFaults,
        Self::ReplyRecv,
        Self::NotifyWait,
        Self::NotifyRecv,
    ];

    /// Decodes a number from `rax`.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u64 == raw)
    }
}

/// Why a system call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Error {
    /// No such system call number.
    BadSyscall = 1,
    /// The handle names no capability.
    BadHandle = 2,
    /// The capability is not of the kind the call needs.
    WrongKind = 3,
    /// The capability lacks the right the call needs.
    NoRight = 4,
    /// A pointer is not mapped, not user-accessible, or not writable.
    BadPointer = 5,
    /// A length is out of bounds.
    BadLength = 6,
    /// Some other argument is invalid (alignment, width, range).
    BadArgument = 7,
    /// The peer is not running (faulted, held or exited).
    PeerDead = 8,
    /// The server restarted since this client last talked to it; the call
    /// was not delivered. `rdi` holds the server's new generation.
    PeerRestarted = 9,
    /// The reply token is unknown, used, or from before a restart.
    StaleToken = 10,
    /// A budget (memory, DMA) is exhausted.
    OutOfMemory = 11,
    /// The operation is not permitted on this object.
    NotPermitted = 12,
    /// No capability or task has that name or index.
    NotFound = 13,
    /// The receiver's buffer is smaller than the message; the message was
    /// delivered truncated and `rdi` holds its full length.
    Truncated = 14,
}

impl Error {
    /// Every code.
    pub const ALL: [Error; 14] = [
        Self::BadSyscall,
        Self::BadHandle,
        Self::WrongKind,
        Self::NoRight,
        Self::BadPointer,
        Self::BadLength,
        Self::BadArgument,
        Self::PeerDead,
        Self::PeerRestarted,
        Self::StaleToken,
        Self::OutOfMemory,
        Self::NotPermitted,
        Self::NotFound,
        Self::Truncated,
    ];

    /// Decodes a status from `rax`: `Ok(())` for 0.
    pub fn check(raw: u64) -> Result<(), ErrorOrUnknown> {
        match raw {
            0 => Ok(()),
            r => Err(Self::ALL
                .into_iter()
                .find(|e| *e as u64 == r)
                .map_or(ErrorOrUnknown::Unknown(r), ErrorOrUnknown::Known)),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::BadSyscall => "bad syscall number",
            Self::BadHandle => "bad handle",
            Self::WrongKind => "wrong capability kind",
            Self::NoRight => "missing right",
            Self::BadPointer => "bad pointer",
            Self::BadLength => "bad length",
            Self::BadArgument => "bad argument",
            Self::PeerDead => "peer dead",
            Self::PeerRestarted => "peer restarted",
            Self::StaleToken => "stale reply token",
            Self::OutOfMemory => "out of memory",
            Self::NotPermitted => "not permitted",
            Self::NotFound => "not found",
            Self::Truncated => "truncated",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A status word that is not 0: a known [`Error`] or a number this build
/// does not know (a newer kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorOrUnknown {
    Known(Error),
    Unknown(u64),
}

/// What [`Sysnum::Recv`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum RecvKind {
    /// A call: answer it with the token.
    Call = 0,
    /// A one-way message.
    Send = 1,
    /// Notification bits (in the length slot).
    Notification = 2,
}

impl RecvKind {
    #[inline]
    pub fn from_raw(raw: u64) -> Option<Self> {
        match raw {
            0 => Some(Self::Call),
            1 => Some(Self::Send),
            2 => Some(Self::Notification),
            _ => None,
        }
    }
}

/// The kind of a capability, as [`Sysnum::CapLookup`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum CapKind {
    Client = 1,
    Server = 2,
    Notification = 3,
    Irq = 4,
    Mmio = 5,
    Dma = 6,
    Pci = 7,
    Supervisor = 8,
    /// The right to handle one PCI function's DMA faults (and nothing
    /// else); see [`Sysnum::ClientFaults`].
    Faults = 9,
}

impl CapKind {
    pub const ALL: [CapKind; 9] = [
        Self::Client,
        Self::Server,
        Self::Notification,
        Self::Irq,
        Self::Mmio,
        Self::Dma,
        Self::Pci,
        Self::Supervisor,
        Self::Faults,
    ];

    pub fn from_raw(raw: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u64 == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_and_round_trip() {
        for (i, s) in Sysnum::ALL.iter().enumerate() {
            assert_eq!(*s as u64, i as u64);
            assert_eq!(Sysnum::from_raw(i as u64), Some(*s));
        }
        assert_eq!(Sysnum::from_raw(Sysnum::ALL.len() as u64), None);
        assert_eq!(Sysnum::from_raw(u64::MAX), None);
    }

    #[test]
    fn errors_round_trip_and_zero_is_success() {
        assert_eq!(Error::check(0), Ok(()));
        for e in Error::ALL {
            assert_eq!(Error::check(e as u64), Err(ErrorOrUnknown::Known(e)));
        }
        assert_eq!(Error::check(999), Err(ErrorOrUnknown::Unknown(999)));
    }

    #[test]
    fn kinds_round_trip() {
        for k in CapKind::ALL {
            assert_eq!(CapKind::from_raw(k as u64), Some(k));
        }
        assert_eq!(CapKind::from_raw(0), None);
        for k in [RecvKind::Call, RecvKind::Send, RecvKind::Notification] {
            assert_eq!(RecvKind::from_raw(k as u64), Some(k));
        }
    }

    #[test]
    fn reserved_notification_bits_are_outside_user_bits() {
        let reserved = NOTIFY_TASK_FAULT | NOTIFY_TIMER | NOTIFY_DMA_REVOKED;
        assert_eq!(NOTIFY_USER_BITS & reserved, 0);
        assert_eq!(NOTIFY_USER_BITS | reserved, u32::MAX);
    }
}
