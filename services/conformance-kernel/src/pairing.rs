//! Who talks to whom: the badge a server sees, and replies reaching only
//! their own callers.

use crate::check::{Why, ask};
use crate::{Caps, ensure, fail};
use conformance_peer::{HOLD_REPORT, Hex, Msg, badge, op, status_name};
use faultline_ipc::abi::{Error, MAX_MESSAGE};

/// Each server sees the badge the deployment gave the caller's channel,
/// whatever the caller claims: the driver claiming the second client's
/// badge, the second client claiming the driver's, and the victim's
/// channel.
pub fn badge_identity(c: &Caps) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    let cases = [
        ("driver on ctl", c.ctl, op::WHOAMI, badge::PAIR, badge::CTL),
        (
            "second client on pair",
            c.go,
            op::WHOAMI_VIA_PAIR,
            badge::CTL,
            badge::PAIR,
        ),
        (
            "driver on victim",
            c.victim,
            op::WHOAMI,
            badge::CTL,
            badge::VICTIM,
        ),
    ];
    for (who, h, opcode, claim, want) in cases {
        let mut r = ask(who, h, Msg::op(opcode).u64(claim).as_bytes(), &mut out, 16)?;
        let (seen, echoed) = (r.u64(), r.u64());
        ensure!(
            echoed == Some(claim),
            "{who}: the claim came back as {}",
            Hex(echoed)
        );
        ensure!(
            seen == Some(want),
            "{who}: the server saw badge {} (claimed {claim:#x}), want {want:#x}",
            Hex(seen)
        );
    }
    Ok(())
}

/// Two clients (the driver and the second client) call `HOLD` on one
/// server, which keeps both tokens and answers the newest first; each
/// answer must carry its own caller's badge and nonce. While the calls are
/// held the server tries the misuses of [`HOLD_REPORT`], each refused with
/// the kernel's typed error and none reaching a caller.
pub fn reply_reaches_only_its_caller(c: &Caps) -> Result<(), Why> {
    let mut out = [0u8; MAX_MESSAGE];
    // Start clean: no verdict, no report left from before.
    let _ = userlib::call(c.go, &[op::VERDICT], &mut out);
    ask("clearing the report", c.ctl, &[op::REPORT], &mut out, 40)?;
    let nonce: u32 = 0xa11c_e5e5;
    let mut r = ask(
        "HOLD",
        c.ctl,
        Msg::op(op::HOLD).u32(nonce).as_bytes(),
        &mut out,
        12,
    )?;
    let (b, n) = (r.u64(), r.u32());
    ensure!(
        b == Some(badge::CTL) && n == Some(nonce),
        "the driver's reply is not its own: badge {}, nonce {}",
        Hex(b),
        Hex(n)
    );
    let verdict = match userlib::call(c.go, &[op::VERDICT], &mut out) {
        Ok(n) => &out[..n.min(MAX_MESSAGE)],
        Err(e) => fail!("VERDICT: {e}"),
    };
    if verdict != [0] {
        let text = core::str::from_utf8(verdict.get(1..).unwrap_or(&[])).unwrap_or("?");
        fail!("second client: {text}");
    }
    let mut r = ask("REPORT", c.ctl, &[op::REPORT], &mut out, 40)?;
    let want = [
        Error::StaleToken,
        Error::StaleToken,
        Error::StaleToken,
        Error::StaleToken,
        Error::BadLength,
    ];
    for (what, want) in HOLD_REPORT.iter().zip(want) {
        let got = r.u64().unwrap_or(u64::MAX);
        ensure!(
            got == want as u64,
            "{what}: {} ({got}), want {want:?}",
            status_name(got)
        );
    }
    Ok(())
}
