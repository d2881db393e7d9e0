//! Payloads on the echo channel, whose every byte is payload (no header):
//! every length round trip, a reply larger than the caller's buffer, and
//! messages one byte over [`MAX_MESSAGE`].

use crate::check::{Why, refused};
use crate::{Caps, ensure, fail};
use conformance_peer::{echo_reply, fill_request, request_byte};
use faultline_ipc::abi::{Error, MAX_MESSAGE};
use userlib::{SysError, call, send};

/// Call and reply at every length 0..=MAX_MESSAGE; every byte of each
/// reply must be the echo server's transform of the request.
pub fn every_length(c: &Caps) -> Result<(), Why> {
    let mut request = [0u8; MAX_MESSAGE];
    let mut reply = [0u8; MAX_MESSAGE];
    for len in 0..=MAX_MESSAGE {
        fill_request(&mut request[..len]);
        reply.fill(0xee);
        let n = match call(c.echo, &request[..len], &mut reply) {
            Ok(n) => n,
            Err(e) => fail!("length {len}: call refused: {e}"),
        };
        ensure!(n == len, "length {len}: {n}-byte reply");
        for (i, &got) in reply[..len].iter().enumerate() {
            let want = !request_byte(len, i);
            ensure!(
                got == want,
                "length {len}: reply byte {i} is {got:#04x}, want {want:#04x}"
            );
        }
    }
    Ok(())
}

/// A 200-byte reply into a 16-byte buffer: `Truncated` with the full
/// length, the first 16 bytes delivered; the next call is whole again.
pub fn truncated_reply(c: &Caps) -> Result<(), Why> {
    let mut request = [0u8; 200];
    fill_request(&mut request);
    let mut want = [0u8; 200];
    echo_reply(&request, &mut want);
    let mut small = [0u8; 16];
    match call(c.echo, &request, &mut small) {
        Err(SysError::Truncated { len: 200 }) => {}
        other => fail!("want Truncated {{ len: 200 }}, got {other:?}"),
    }
    ensure!(
        small == want[..16],
        "the truncated reply is not the reply's first 16 bytes"
    );
    let mut whole = [0u8; MAX_MESSAGE];
    match call(c.echo, &request, &mut whole) {
        Ok(200) if whole[..200] == want => Ok(()),
        other => fail!("the call after a truncated one: {other:?}"),
    }
}

/// A request or one-way message of MAX_MESSAGE + 1 bytes is `BadLength`
/// and reaches nobody (the echo server's next call is ordinary).
pub fn oversize_refused(c: &Caps) -> Result<(), Why> {
    let big = [0x5au8; MAX_MESSAGE + 1];
    let mut reply = [0u8; MAX_MESSAGE];
    refused("call", call(c.echo, &big, &mut reply), Error::BadLength)?;
    refused("send", send(c.ctl, &big), Error::BadLength)?;
    let request = [1u8, 2, 3];
    match call(c.echo, &request, &mut reply) {
        Ok(3) if reply[..3] == [!1, !2, !3] => Ok(()),
        other => fail!("the call after the refusals: {other:?}"),
    }
}
