//! How a system call's status reaches typed code: the kernel's `rax` and
//! `rdi` become a [`TransportError`] (or nothing, on success), which
//! becomes a [`ChannelError`], and each says what it is.

use faultline_ipc::abi::Error;
use faultline_ipc::channel::{ChannelError, Refusal, TransportError};
use faultline_ipc::wire::WireError;

#[test]
fn status_zero_is_success_whatever_the_detail() {
    assert_eq!(TransportError::from_status(0, 0), None);
    assert_eq!(TransportError::from_status(0, 77), None);
}

#[test]
fn every_known_status_decodes_with_its_detail_where_it_has_one() {
    for e in Error::ALL {
        let got = TransportError::from_status(e as u64, 42);
        let want = match e {
            // These two carry their detail register.
            Error::PeerRestarted => TransportError::PeerRestarted { generation: 42 },
            Error::Truncated => TransportError::Truncated { len: 42 },
            e => TransportError::Kernel(e),
        };
        assert_eq!(got, Some(want), "{e:?}");
        // And the code comes back out.
        assert_eq!(want.code(), Some(e), "{e:?}");
    }
    assert_eq!(
        TransportError::from_status(Error::PeerRestarted as u64, 1 << 32 | 3),
        Some(TransportError::PeerRestarted { generation: 3 })
    );
}

#[test]
fn an_unknown_status_is_kept_and_has_no_code() {
    let e = TransportError::from_status(999, 5).unwrap();
    assert_eq!(e, TransportError::Unknown(999));
    assert_eq!(e.code(), None);
}

#[test]
fn transport_errors_say_what_happened() {
    assert_eq!(
        TransportError::Kernel(Error::BadHandle).to_string(),
        Error::BadHandle.to_string()
    );
    assert_eq!(
        TransportError::PeerRestarted { generation: 4 }.to_string(),
        "peer restarted (generation 4)"
    );
    assert_eq!(
        TransportError::Truncated { len: 300 }.to_string(),
        "truncated (300-byte message)"
    );
    assert_eq!(TransportError::Unknown(77).to_string(), "unknown error 77");
}

#[test]
fn peer_death_and_restart_become_their_own_channel_errors() {
    assert_eq!(
        ChannelError::from(TransportError::Kernel(Error::PeerDead)),
        ChannelError::PeerDead
    );
    assert_eq!(
        ChannelError::from(TransportError::PeerRestarted { generation: 2 }),
        ChannelError::PeerRestarted { generation: 2 }
    );
    for e in [
        TransportError::Kernel(Error::StaleToken),
        TransportError::Truncated { len: 9 },
        TransportError::Unknown(50),
    ] {
        assert_eq!(ChannelError::from(e), ChannelError::Transport(e));
    }
    assert_eq!(
        ChannelError::from(WireError::Truncated),
        ChannelError::Wire(WireError::Truncated)
    );
}

#[test]
fn channel_errors_say_what_happened() {
    let cases = [
        (
            ChannelError::Transport(TransportError::Unknown(7)),
            "kernel refused: unknown error 7",
        ),
        (ChannelError::Wire(WireError::BadValue), "wire: bad value"),
        (
            ChannelError::Refused(Refusal::Malformed(WireError::UnknownVariant)),
            "server refused the request: unknown variant",
        ),
        (
            ChannelError::Refused(Refusal::Unencodable(WireError::BufferFull)),
            "server could not answer: message does not fit in 256 bytes",
        ),
        (ChannelError::PeerDead, "peer dead"),
        (
            ChannelError::PeerRestarted { generation: 5 },
            "peer restarted (generation 5)",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn postcard_errors_map_onto_the_envelope_s_error_kinds() {
    use postcard::Error as P;
    let cases = [
        (P::DeserializeUnexpectedEnd, WireError::Truncated),
        (P::DeserializeBadEnum, WireError::UnknownVariant),
        (P::SerializeBufferFull, WireError::BufferFull),
        (P::DeserializeBadBool, WireError::BadValue),
        (P::DeserializeBadVarint, WireError::BadValue),
        (P::DeserializeBadUtf8, WireError::BadValue),
        (P::SerdeDeCustom, WireError::BadValue),
        (P::WontImplement, WireError::BadValue),
    ];
    for (e, want) in cases {
        assert_eq!(WireError::from_postcard(&e), want, "{e:?}");
    }
}
