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

mod endpoint;

pub use endpoint::Endpoint;

use crate::abi::Error;
use crate::channel::{Handle, TransportError};
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
