//! Call, send, receive and reply: synchronous IPC between services.
//!
//! A message is copied once from the sender's memory into its task's
//! outbox when it makes the call (so the sender's pointer is checked up
//! front), and once from there into the receiver's buffer when the receiver
//! takes it. Neither side's pointers are trusted: each copy goes through
//! the [`Platform`], which refuses anything not mapped for the service.
//!
//! Who waits for whom: a client blocks in `call` until its server replies
//! (or dies); a server blocks only in `recv`. `reply` never blocks, so a
//! server can never be held up by a client, slow or dead.

use super::caps::Cap;
use super::task::{Blocked, ReplyToken, State};
use super::{Kernel, Platform};
use faultline_ipc::abi::{Error, MAX_MESSAGE, RecvKind};

/// What a syscall handler decided for its caller.
pub enum Outcome {
    /// Return now with status 0 and these values.
    Done([u64; 4]),
    /// The caller blocked (its state says on what); results come later.
    Blocked,
}

impl Kernel {
    /// Checks that `handle` is a client end and its server is alive and the
    /// one this client last saw; returns the channel.
    fn client_channel(&mut self, caller: usize, handle: u64) -> Result<u8, (Error, u64)> {
        let (channel, seen) = match self.tasks[caller].caps.get(handle).map_err(|e| (e, 0))? {
            Cap::Client {
                channel,
                peer_generation,
            } => (*channel, *peer_generation),
            _ => return Err((Error::WrongKind, 0)),
        };
        let server = usize::from(self.channels[usize::from(channel)].server);
        if server == caller {
            return Err((Error::NotPermitted, 0));
        }
        let s = &self.tasks[server];
        if s.state.is_stopped() {
            return Err((Error::PeerDead, 0));
        }
        let generation = s.generation;
        if generation != seen {
            if let Ok(Cap::Client {
                peer_generation, ..
            }) = self.tasks[caller].caps.get_mut(handle)
            {
                *peer_generation = generation;
            }
            return Err((Error::PeerRestarted, u64::from(generation)));
        }
        Ok(channel)
    }

    fn load_outbox(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        ptr: u64,
        len: u64,
    ) -> Result<(), Error> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_MESSAGE)
            .ok_or(Error::BadLength)?;
        let t = &mut self.tasks[caller];
        p.read_user(caller, ptr, &mut t.outbox[..len])?;
        t.outbox_len = len;
        Ok(())
    }

    pub(super) fn call(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, req, req_len, reply_buf, reply_cap, _]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        let channel = self.client_channel(caller, handle)?;
        self.load_outbox(p, caller, req, req_len)
            .map_err(|e| (e, 0))?;
        let reply_cap = reply_cap.min(MAX_MESSAGE as u64);
        let hint = p
            .writable(caller, reply_buf, reply_cap)
            .map_err(|e| (e, 0))?;
        let stamp = self.next_stamp();
        self.tasks[caller].state = State::Blocked(Blocked::CallQueued {
            channel,
            reply_buf,
            reply_cap,
            hint,
            stamp,
        });
        self.note(caller);
        let server = usize::from(self.channels[usize::from(channel)].server);
        self.try_deliver(p, server);
        Ok(Outcome::Blocked)
    }

    pub(super) fn send(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, ptr, len, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        let channel = self.client_channel(caller, handle)?;
        self.load_outbox(p, caller, ptr, len).map_err(|e| (e, 0))?;
        let stamp = self.next_stamp();
        self.tasks[caller].state = State::Blocked(Blocked::SendQueued { channel, stamp });
        self.note(caller);
        let server = usize::from(self.channels[usize::from(channel)].server);
        self.try_deliver(p, server);
        Ok(Outcome::Blocked)
    }

    pub(super) fn recv(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [buf, cap, mask, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        let cap = cap.min(MAX_MESSAGE as u64);
        let hint = p.writable(caller, buf, cap).map_err(|e| (e, 0))?;
        let mask = mask as u32;
        self.tasks[caller].state = State::Blocked(Blocked::Recv {
            buf,
            cap,
            hint,
            mask,
        });
        self.note(caller);
        let t = &mut self.tasks[caller];
        let ready = t.notifications & mask;
        if ready != 0 {
            t.notifications &= !ready;
            t.state = State::Runnable;
            self.note(caller);
            return Ok(Outcome::Done([
                RecvKind::Notification as u64,
                u64::from(ready),
                0,
                0,
            ]));
        }
        self.try_deliver(p, caller);
        Ok(Outcome::Blocked)
    }

    /// If `server` waits in `recv` and a client has a message for it, hands
    /// over the most important (then oldest) one.
    pub(super) fn try_deliver(&mut self, p: &mut impl Platform, server: usize) {
        let State::Blocked(Blocked::Recv { buf, cap, .. }) = self.tasks[server].state else {
            return;
        };
        let mut best: Option<(u8, u64, usize)> = None;
        for (i, t) in self.tasks.iter().enumerate() {
            let (channel, stamp) = match t.state {
                State::Blocked(Blocked::CallQueued { channel, stamp, .. }) => (channel, stamp),
                State::Blocked(Blocked::SendQueued { channel, stamp }) => (channel, stamp),
                _ => continue,
            };
            if usize::from(self.channels[usize::from(channel)].server) != server {
                continue;
            }
            if best.is_none_or(|(prio, s, _)| (t.priority, stamp) < (prio, s)) {
                best = Some((t.priority, stamp, i));
            }
        }
        let Some((_, _, client)) = best else { return };
        let (c, s) = two(&mut self.tasks, client, server);
        let len = c.outbox_len.min(cap as usize);
        let status = match p.write_user(server, buf, &c.outbox[..len]) {
            Ok(()) if len < c.outbox_len => Error::Truncated as u64,
            Ok(()) => 0,
            // The server's buffer was checked when it called recv; it can only
            // fail now if the server's memory changed under it. Tell the server.
            Err(e) => e as u64,
        };
        let (channel, kind, token) = match c.state {
            State::Blocked(Blocked::CallQueued {
                channel,
                reply_buf,
                reply_cap,
                hint,
                ..
            }) => {
                let token = c.call_received(client, channel, reply_buf, reply_cap, hint);
                (channel, RecvKind::Call, token)
            }
            State::Blocked(Blocked::SendQueued { channel, .. }) => {
                c.state = State::Runnable;
                c.regs.set_result(0, [0; 4]);
                (channel, RecvKind::Send, 0)
            }
            _ => return,
        };
        let badge = self.channels[usize::from(channel)].badge;
        s.regs
            .set_result(status, [kind as u64, c.outbox_len as u64, badge, token]);
        s.state = State::Runnable;
        self.note(client);
        self.note(server);
    }

    /// The client whose call `raw` names and is pending on `caller`, with
    /// its reply buffer (address, capacity, platform hint): `StaleToken` for an unknown, used, forged or
    /// foreign token, `PeerDead` if the client died or restarted since.
    pub(super) fn pending_call(
        &self,
        caller: usize,
        raw: u64,
    ) -> Result<(usize, u64, u64, u64), (Error, u64)> {
        let token = ReplyToken::decode(raw).ok_or((Error::StaleToken, 0))?;
        let client = usize::from(token.task);
        let channel = usize::from(token.channel);
        if self
            .channels
            .get(channel)
            .is_none_or(|c| usize::from(c.server) != caller)
        {
            return Err((Error::StaleToken, 0));
        }
        let c = self.tasks.get(client).ok_or((Error::StaleToken, 0))?;
        if !token.matches_generation(c.generation) || c.state.is_stopped() {
            return Err((Error::PeerDead, 0));
        }
        let State::Blocked(Blocked::AwaitingReply {
            channel: ch,
            reply_buf,
            reply_cap,
            hint,
            seq,
        }) = c.state
        else {
            return Err((Error::StaleToken, 0));
        };
        if usize::from(ch) != channel || seq != token.seq {
            return Err((Error::StaleToken, 0));
        }
        Ok((client, reply_buf, reply_cap, hint))
    }

    pub(super) fn reply(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [raw, ptr, len, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        let (client, reply_buf, reply_cap, _) = self.pending_call(caller, raw)?;
        let (msg, len) = super::syscalls::read_bounded::<MAX_MESSAGE>(p, caller, ptr, len)
            .map_err(|e| (e, 0))?;
        let n = len.min(reply_cap as usize);
        let status = match p.write_user(client, reply_buf, &msg[..n]) {
            Ok(()) if n < len => Error::Truncated as u64,
            Ok(()) => 0,
            Err(e) => e as u64,
        };
        let c = &mut self.tasks[client];
        c.regs.set_result(status, [len as u64, 0, 0, 0]);
        c.state = State::Runnable;
        self.note(client);
        Ok(Outcome::Done([0; 4]))
    }

    /// `Reply` then `Recv`: the receive buffer is checked before the
    /// reply, so a refusal of either leaves both undone.
    pub(super) fn reply_recv(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [raw, ptr, len, buf, cap, mask]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        p.check_writable(caller, buf, cap.min(MAX_MESSAGE as u64))
            .map_err(|e| (e, 0))?;
        self.reply(p, caller, [raw, ptr, len, 0, 0, 0])?;
        self.recv(p, caller, [buf, cap, mask, 0, 0, 0])
    }

    /// `Notify` then `Wait`; a refused notify does not wait.
    pub(super) fn notify_wait(
        &mut self,
        caller: usize,
        [handle, mask, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        self.notify(caller, handle)?;
        Ok(self.wait(caller, mask))
    }

    /// `Notify` then `Recv`, the receive buffer checked first.
    pub(super) fn notify_recv(
        &mut self,
        p: &mut impl Platform,
        caller: usize,
        [handle, buf, cap, mask, ..]: [u64; 6],
    ) -> Result<Outcome, (Error, u64)> {
        p.check_writable(caller, buf, cap.min(MAX_MESSAGE as u64))
            .map_err(|e| (e, 0))?;
        self.notify(caller, handle)?;
        self.recv(p, caller, [buf, cap, mask, 0, 0, 0])
    }

    pub(super) fn wait(&mut self, caller: usize, mask: u64) -> Outcome {
        let t = &mut self.tasks[caller];
        let mask = mask as u32;
        let ready = t.notifications & mask;
        if ready != 0 {
            t.notifications &= !ready;
            return Outcome::Done([u64::from(ready), 0, 0, 0]);
        }
        t.state = State::Blocked(Blocked::Wait { mask });
        self.note(caller);
        Outcome::Blocked
    }
}

/// Two distinct tasks, mutably.
fn two<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b, "a task cannot be its own peer");
    if a < b {
        let (lo, hi) = v.split_at_mut(b);
        (&mut lo[a], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(a);
        (&mut hi[0], &mut lo[b])
    }
}
