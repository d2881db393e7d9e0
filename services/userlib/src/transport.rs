//! [`KernelTransport`]: typed channels over the kernel's system calls.

use crate::syscalls::{self, SysError};
use faultline_ipc::channel::{Handle, Received, ReplyToken, Transport};
use faultline_ipc::wire::Frame;

/// The kernel as a [`Transport`]. It holds nothing: handles name channels,
/// and the kernel knows which service is asking.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelTransport;

impl Transport for KernelTransport {
    fn call(
        &mut self,
        handle: Handle,
        request: &[u8],
        reply: &mut [u8],
    ) -> Result<usize, SysError> {
        syscalls::call(handle, request, reply)
    }

    fn send(&mut self, handle: Handle, message: &[u8]) -> Result<(), SysError> {
        syscalls::send(handle, message)
    }

    fn recv(&mut self, buf: &mut Frame, notify_mask: u32) -> Result<Received, SysError> {
        syscalls::recv(buf, notify_mask)
    }

    fn reply(&mut self, token: ReplyToken, message: &[u8]) -> Result<(), SysError> {
        syscalls::reply(token, message)
    }
}
