//! [`Endpoint`]: one task's side of the in-memory kernel, implementing
//! [`Transport`] with the blocking and refusal rules the parent module
//! lists.

use super::{Cap, DEADLOCK_TIMEOUT, Kernel, Pending, State, TaskId, Token};
use crate::abi::{Error, MAX_MESSAGE};
use crate::channel::{Handle, Received, ReplyToken, Transport, TransportError};
use crate::wire::Frame;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};
use std::vec::Vec;

/// One generation of one task: its view of the kernel.
pub struct Endpoint {
    pub(super) kernel: Kernel,
    pub(super) task: TaskId,
    pub(super) generation: u32,
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
