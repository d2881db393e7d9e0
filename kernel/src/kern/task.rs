//! A service as the kernel keeps it: saved registers, state, capabilities,
//! pending notifications, and the message it is trying to deliver.

use super::caps::CapTable;
use faultline_ipc::abi::MAX_MESSAGE;
use faultline_ipc::kconfig::{Name, RestartPolicy, TaskFault};

/// A service's user-mode registers, saved whenever it enters the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
}

/// RFLAGS a service starts with: interrupts enabled (bit 9), reserved bit 1.
pub const USER_RFLAGS: u64 = 0x202;

impl Regs {
    /// The registers a service starts with.
    pub fn entry(rip: u64, rsp: u64) -> Self {
        Regs {
            rip,
            rsp,
            rflags: USER_RFLAGS,
            ..Regs::default()
        }
    }

    /// The six syscall arguments (`rdi, rsi, rdx, r10, r8, r9`).
    pub fn args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }

    /// Stores a syscall's status and results.
    pub fn set_result(&mut self, status: u64, values: [u64; 4]) {
        self.rax = status;
        [self.rdi, self.rsi, self.rdx, self.r10] = values;
    }
}

/// Why a service is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// In `call`, waiting for the server to receive the request.
    CallQueued {
        channel: u8,
        reply_buf: u64,
        reply_cap: u64,
        /// The platform's hint for `reply_buf` ([`super::Platform::writable`]).
        hint: u64,
        stamp: u64,
    },
    /// In `call`, the server has the request; waiting for the reply.
    AwaitingReply {
        channel: u8,
        reply_buf: u64,
        reply_cap: u64,
        hint: u64,
        seq: u32,
    },
    /// In `send`, waiting for the server to receive the message.
    SendQueued { channel: u8, stamp: u64 },
    /// In `recv`; `hint` is the platform's for `buf`.
    Recv {
        buf: u64,
        cap: u64,
        hint: u64,
        mask: u32,
    },
    /// In `wait`.
    Wait { mask: u32 },
}

/// A service's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Runnable,
    Blocked(Blocked),
    /// Stopped by a CPU fault; the supervisor decides.
    Faulted,
    /// Stopped by `exit`.
    Exited {
        code: u32,
    },
}

impl State {
    pub fn is_stopped(&self) -> bool {
        matches!(self, State::Faulted | State::Exited { .. })
    }
}

/// One service.
pub struct Task {
    pub name: Name,
    pub priority: u8,
    pub state: State,
    pub regs: Regs,
    /// Starts at 1, +1 per restart. Peers see it in reply tokens and in
    /// [`faultline_ipc::abi::Error::PeerRestarted`].
    pub generation: u32,
    pub restarts: u32,
    pub fault: Option<TaskFault>,
    pub policy: RestartPolicy,
    pub caps: CapTable,
    /// Notification bits posted and not yet taken.
    pub notifications: u32,
    /// `ns_since_boot` at which to post NOTIFY_TIMER, if armed.
    pub timer: Option<u64>,
    /// The message this service is sending (request or one-way), copied in
    /// when the call was made.
    pub outbox: [u8; MAX_MESSAGE],
    pub outbox_len: usize,
    /// Sequence number of this service's calls, for reply tokens.
    pub call_seq: u32,
    /// Refused syscalls, for rate-limited logging.
    pub refusals: u32,
    /// A grant the kernel refused at boot: the service never runs.
    pub refused: Option<super::Refusal>,
    /// The DMA buffers this instance allocated, by number.
    pub dma: heapless::Vec<super::dma::Buffer, { super::dma::MAX_BUFFERS }>,
}

impl Task {
    pub fn new(name: Name, priority: u8, policy: RestartPolicy, caps: CapTable) -> Self {
        Task {
            name,
            priority,
            state: State::Faulted,
            regs: Regs::default(),
            generation: 1,
            restarts: 0,
            fault: None,
            policy,
            caps,
            notifications: 0,
            timer: None,
            outbox: [0; MAX_MESSAGE],
            outbox_len: 0,
            call_seq: 0,
            refusals: 0,
            dma: heapless::Vec::new(),
            refused: None,
        }
    }
}

impl Task {
    /// Marks this task's queued call on `channel` (it is task `index`) as
    /// received: it now awaits the reply, under a fresh sequence number.
    /// Returns the reply token its server answers with.
    pub fn call_received(
        &mut self,
        index: usize,
        channel: u8,
        reply_buf: u64,
        reply_cap: u64,
        hint: u64,
    ) -> u64 {
        self.call_seq = self.call_seq.wrapping_add(1);
        let seq = self.call_seq;
        self.state = State::Blocked(Blocked::AwaitingReply {
            channel,
            reply_buf,
            reply_cap,
            hint,
            seq,
        });
        ReplyToken {
            task: index as u8,
            generation: self.generation,
            channel,
            seq,
        }
        .encode()
    }
}

/// A reply token: which caller, at which generation, which call. Opaque to
/// services; the kernel checks every field on reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyToken {
    pub task: u8,
    pub generation: u32,
    pub channel: u8,
    pub seq: u32,
}

impl ReplyToken {
    /// Packs into one register; never 0, so 0 can mean "no token".
    pub fn encode(self) -> u64 {
        (1u64 << 63)
            | (u64::from(self.task) << 56)
            | (u64::from(self.channel) << 48)
            | ((u64::from(self.generation) & 0xffff) << 32)
            | u64::from(self.seq)
    }

    pub fn decode(raw: u64) -> Option<Self> {
        if raw >> 63 != 1 {
            return None;
        }
        Some(ReplyToken {
            task: ((raw >> 56) & 0x7f) as u8,
            channel: (raw >> 48) as u8,
            generation: ((raw >> 32) & 0xffff) as u32,
            seq: raw as u32,
        })
    }

    /// Whether this token was issued to `generation` (compared modulo the
    /// 16 bits the token carries).
    pub fn matches_generation(self, generation: u32) -> bool {
        self.generation == generation & 0xffff
    }
}
