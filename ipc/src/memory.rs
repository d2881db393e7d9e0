//! An in-memory model of the kernel's channel semantics, for host tests
//! (feature `memory`, which needs `std`).
//!
//! Each service is a thread holding an [`Endpoint`], which implements
//! [`Transport`] exactly as [`crate::abi`] describes the kernel: `call`
//! and `send` block (on a condition variable) until the server answers or
//! dies, `recv` blocks until a message or a masked notification arrives,
//! `reply` never blocks. The test plays the supervisor through [`Kernel`]:
//! it creates tasks and channels, stops tasks ([`Kernel::stop`], as a fault
//! would) and restarts them ([`Kernel::restart`]).
//!
//! The rules modelled, and what each side sees:
//!
//! - a call to a stopped server, or pending on one that stops (queued, or
//!   held by it as a token) fails with `PeerDead`;
//! - the first call or send after a server's restart fails once with
//!   `PeerRestarted { generation }` and is not delivered;
//! - tokens are single-use; an unknown, used, forged or pre-restart token
//!   is `StaleToken`; replying to a client that stopped is `PeerDead`;
//! - a stopped task's endpoint is inert: every operation, including one it
//!   was blocked in, fails with `NotPermitted` (the real kernel simply
//!   never runs it again), so its thread can finish.
//!
//! Every blocking wait gives up after [`DEADLOCK_TIMEOUT`] with a panic, so
//! a test that would hang fails instead.

use crate::abi::{Error, MAX_MESSAGE};
use crate::channel::{Handle, Received, ReplyToken, Transport, TransportError};
use crate::wire::Frame;
use std::collections::{HashMap, VecDeque};
use std::string::String;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::vec::Vec;

/// How long any blocked operation may wait before the model calls it a
/// deadlock.
pub const DEADLOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A task (service) of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId(pub usize);

/// The model kernel. Cloning it shares the same state.
#[derive(Clone, Default)]
pub struct Kernel {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    tasks: Vec<Task>,
    channels: Vec<Channel>,
    /// Calls and sends in flight, by id.
    pending: HashMap<u64, Pending>,
    tokens: HashMap<u64, Token>,
    next_id: u64,
}

struct Task {
    name: String,
    generation: u32,
    running: bool,
    caps: Vec<Cap>,
    notifications: u32,
}

#[derive(Clone, Copy)]
enum Cap {
    Client(usize),
    Server(usize),
    Notification { target: TaskId, bits: u32 },
}

struct Channel {
    client: TaskId,
    server: TaskId,
    badge: u64,
    /// The server generation the client last saw.
    seen: u32,
    queue: VecDeque<u64>,
}

enum Pending {
    Queued { call: bool, bytes: Vec<u8> },
    Held,
    Done(Result<Vec<u8>, Error>),
}

struct Token {
    pending: u64,
    server: TaskId,
    server_generation: u32,
    client: TaskId,
    client_generation: u32,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn cap(&self, task: TaskId, handle: Handle) -> Result<Cap, TransportError> {
        usize::try_from(handle.0)
            .ok()
            .and_then(|h| self.tasks[task.0].caps.get(h).copied())
            .ok_or(TransportError::Kernel(Error::BadHandle))
    }

    fn add_cap(&mut self, task: TaskId, cap: Cap) -> Handle {
        let caps = &mut self.tasks[task.0].caps;
        caps.push(cap);
        Handle(caps.len() as u64 - 1)
    }
}

impl Kernel {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("a model thread panicked")
    }

    /// Adds a running task (generation 1).
    pub fn spawn(&self, name: &str) -> TaskId {
        let mut s = self.lock();
        s.tasks.push(Task {
            name: name.into(),
            generation: 1,
            running: true,
            caps: Vec::new(),
            notifications: 0,
        });
        TaskId(s.tasks.len() - 1)
    }

    /// Adds a channel; returns the client's handle and the server's.
    pub fn channel(&self, client: TaskId, server: TaskId, badge: u64) -> (Handle, Handle) {
        let mut s = self.lock();
        let seen = s.tasks[server.0].generation;
        s.channels.push(Channel {
            client,
            server,
            badge,
            seen,
            queue: VecDeque::new(),
        });
        let c = s.channels.len() - 1;
        (
            s.add_cap(client, Cap::Client(c)),
            s.add_cap(server, Cap::Server(c)),
        )
    }

    /// Gives `holder` a capability to post `bits` to `target`.
    pub fn notification(&self, holder: TaskId, target: TaskId, bits: u32) -> Handle {
        self.lock()
            .add_cap(holder, Cap::Notification { target, bits })
    }

    /// The endpoint of `task`'s current generation.
    pub fn endpoint(&self, task: TaskId) -> Endpoint {
        let generation = self.lock().tasks[task.0].generation;
        Endpoint {
            kernel: self.clone(),
            task,
            generation,
        }
    }

    pub fn name(&self, task: TaskId) -> String {
        self.lock().tasks[task.0].name.clone()
    }

    pub fn generation(&self, task: TaskId) -> u32 {
        self.lock().tasks[task.0].generation
    }

    pub fn is_running(&self, task: TaskId) -> bool {
        self.lock().tasks[task.0].running
    }

    /// Calls and sends queued for `server`, not yet received.
    pub fn queued_on(&self, server: TaskId) -> usize {
        let s = self.lock();
        let on = |c: &&Channel| c.server == server;
        s.channels.iter().filter(on).map(|c| c.queue.len()).sum()
    }

    /// Reply tokens `server` holds (calls received, not yet answered).
    pub fn held_by(&self, server: TaskId) -> usize {
        self.lock()
            .tokens
            .values()
            .filter(|t| t.server == server)
            .count()
    }

    /// Blocks until `condition` holds (polling), or panics after
    /// [`DEADLOCK_TIMEOUT`] saying what it waited for.
    pub fn wait_until(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + DEADLOCK_TIMEOUT;
        while !condition(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops `task` as a fault or exit would.
    pub fn stop(&self, task: TaskId) {
        let mut s = self.lock();
        let t = &mut s.tasks[task.0];
        t.running = false;
        t.notifications = 0;
        let State {
            channels,
            pending,
            tokens,
            ..
        } = &mut *s;
        for c in channels.iter_mut() {
            if c.server == task {
                for id in c.queue.drain(..) {
                    pending.insert(id, Pending::Done(Err(Error::PeerDead)));
                }
            }
            if c.client == task {
                for id in c.queue.drain(..) {
                    pending.remove(&id);
                }
            }
        }
        tokens.retain(|_, t| {
            if t.server == task {
                pending.insert(t.pending, Pending::Done(Err(Error::PeerDead)));
            }
            t.server != task
        });
        self.shared.changed.notify_all();
    }

    /// Restarts a stopped task: new generation, same capabilities. Panics if
    /// it is running (the kernel refuses that with `NotPermitted`).
    pub fn restart(&self, task: TaskId) -> u32 {
        let mut s = self.lock();
        let t = &mut s.tasks[task.0];
        assert!(!t.running, "restart of running task {}", t.name);
        t.generation += 1;
        t.running = true;
        t.generation
    }
}

/// One generation of one task: its view of the kernel.
pub struct Endpoint {
    kernel: Kernel,
    task: TaskId,
    generation: u32,
}

impl Endpoint {
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// Locks the state, refusing if this generation no longer runs.
    fn live(&self) -> Result<MutexGuard<'_, State>, TransportError> {
        let s = self.kernel.lock();
        let t = &s.tasks[self.task.0];
        if t.running && t.generation == self.generation {
            Ok(s)
        } else {
            Err(TransportError::Kernel(Error::NotPermitted))
        }
    }

    /// Waits for a change, then re-checks that this generation runs.
    fn block<'a>(
        &'a self,
        s: MutexGuard<'a, State>,
        since: Instant,
    ) -> Result<MutexGuard<'a, State>, TransportError> {
        let waited = since.elapsed();
        assert!(
            waited < DEADLOCK_TIMEOUT,
            "{} blocked for {waited:?}: deadlock",
            s.tasks[self.task.0].name
        );
        let (s, _) = self
            .kernel
            .shared
            .changed
            .wait_timeout(s, Duration::from_millis(50))
            .expect("a model thread panicked");
        drop(s);
        self.live()
    }

    /// Stops this task (as its exit would).
    pub fn exit(self) {
        self.kernel.stop(self.task);
    }

    /// Posts a notification capability's bits.
    pub fn notify(&mut self, handle: Handle) -> Result<(), TransportError> {
        let mut s = self.live()?;
        let Cap::Notification { target, bits } = s.cap(self.task, handle)? else {
            return Err(TransportError::Kernel(Error::WrongKind));
        };
        let t = &mut s.tasks[target.0];
        if !t.running {
            return Err(TransportError::Kernel(Error::PeerDead));
        }
        t.notifications |= bits;
        self.kernel.shared.changed.notify_all();
        Ok(())
    }

    /// Blocks until a bit in `mask` is pending; returns and clears them.
    pub fn wait(&mut self, mask: u32) -> Result<u32, TransportError> {
        let since = Instant::now();
        let mut s = self.live()?;
        loop {
            let t = &mut s.tasks[self.task.0];
            let bits = t.notifications & mask;
            if bits != 0 {
                t.notifications &= !bits;
                return Ok(bits);
            }
            s = self.block(s, since)?;
        }
    }

    /// Queues a call or send on client channel `handle`, then waits for
    /// its outcome.
    fn submit(
        &mut self,
        handle: Handle,
        bytes: &[u8],
        call: bool,
    ) -> Result<Vec<u8>, TransportError> {
        let mut s = self.live()?;
        let Cap::Client(c) = s.cap(self.task, handle)? else {
            return Err(TransportError::Kernel(Error::WrongKind));
        };
        if bytes.len() > MAX_MESSAGE {
            return Err(TransportError::Kernel(Error::BadLength));
        }
        let server = s.channels[c].server;
        let (running, generation) = (s.tasks[server.0].running, s.tasks[server.0].generation);
        if !running {
            return Err(TransportError::Kernel(Error::PeerDead));
        }
        if s.channels[c].seen != generation {
            s.channels[c].seen = generation;
            return Err(TransportError::PeerRestarted { generation });
        }
        let id = s.id();
        let bytes = bytes.to_vec();
        s.pending.insert(id, Pending::Queued { call, bytes });
        s.channels[c].queue.push_back(id);
        self.kernel.shared.changed.notify_all();
        let since = Instant::now();
        loop {
            if let Some(Pending::Done(_)) = s.pending.get(&id) {
                let Some(Pending::Done(outcome)) = s.pending.remove(&id) else {
                    unreachable!()
                };
                return outcome.map_err(TransportError::Kernel);
            }
            s = self.block(s, since)?;
        }
    }
}

impl Transport for Endpoint {
    fn call(
        &mut self,
        handle: Handle,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, TransportError> {
        let answer = self.submit(handle, request, true)?;
        let n = answer.len().min(reply.len());
        reply[..n].copy_from_slice(&answer[..n]);
        if n < answer.len() {
            return Err(TransportError::Truncated { len: answer.len() });
        }
        Ok(n)
    }

    fn send(&mut self, handle: Handle, message: &[u8]) -> Result<(), TransportError> {
        self.submit(handle, message, false).map(drop)
    }

    fn recv(&mut self, buf: &mut Frame, notify_mask: u32) -> Result<Received, TransportError> {
        let since = Instant::now();
        let mut s = self.live()?;
        loop {
            let t = &mut s.tasks[self.task.0];
            let bits = t.notifications & notify_mask;
            if bits != 0 {
                t.notifications &= !bits;
                return Ok(Received::Notification { bits });
            }
            let me = self.task;
            // The oldest message first, on whichever server channel.
            let oldest = s.tasks[me.0]
                .caps
                .iter()
                .filter_map(|cap| match *cap {
                    Cap::Server(c) => s.channels[c].queue.front().map(|&id| (id, c)),
                    _ => None,
                })
                .min();
            if let Some((_, c)) = oldest {
                let id = s.channels[c].queue.pop_front().expect("not empty");
                let badge = s.channels[c].badge;
                let client = s.channels[c].client;
                let client_generation = s.tasks[client.0].generation;
                let Some(Pending::Queued { call, bytes }) = s.pending.remove(&id) else {
                    unreachable!("queued ids are pending")
                };
                let len = bytes.len();
                buf[..len].copy_from_slice(&bytes);
                if !call {
                    s.pending.insert(id, Pending::Done(Ok(Vec::new())));
                    self.kernel.shared.changed.notify_all();
                    return Ok(Received::Send { len, badge });
                }
                s.pending.insert(id, Pending::Held);
                let raw = s.id();
                let token = Token {
                    pending: id,
                    server: me,
                    server_generation: self.generation,
                    client,
                    client_generation,
                };
                s.tokens.insert(raw, token);
                let token = ReplyToken::from_raw(raw);
                return Ok(Received::Call { len, badge, token });
            }
            s = self.block(s, since)?;
        }
    }

    fn reply(&mut self, token: ReplyToken, message: &[u8]) -> Result<(), TransportError> {
        let mut s = self.live()?;
        let raw = token.raw();
        let stale = TransportError::Kernel(Error::StaleToken);
        let t = s.tokens.get(&raw).ok_or(stale)?;
        if t.server != self.task || t.server_generation != self.generation {
            return Err(stale);
        }
        if message.len() > MAX_MESSAGE {
            return Err(TransportError::Kernel(Error::BadLength));
        }
        let t = s.tokens.remove(&raw).expect("looked up above");
        let c = &s.tasks[t.client.0];
        if !c.running || c.generation != t.client_generation {
            s.pending.remove(&t.pending);
            return Err(TransportError::Kernel(Error::PeerDead));
        }
        s.pending
            .insert(t.pending, Pending::Done(Ok(message.to_vec())));
        self.kernel.shared.changed.notify_all();
        Ok(())
    }
}
