//! Reply tokens and saved registers: the two things the kernel packs into
//! a service's registers.

use super::task::Regs;
use super::*;

proptest! {
    /// Every token the kernel can issue (task below 128, any channel,
    /// sequence and 16-bit generation) survives the trip through a register,
    /// and is never 0.
    #[test]
    fn tokens_round_trip_and_are_never_zero(
        task in 0u8..128,
        channel: u8,
        generation in 0u32..0x1_0000,
        seq: u32,
    ) {
        let t = ReplyToken { task, generation, channel, seq };
        let raw = t.encode();
        prop_assert_ne!(raw, 0);
        prop_assert_eq!(raw >> 63, 1);
        prop_assert_eq!(ReplyToken::decode(raw), Some(t));
    }

    /// A value without the top bit was never a token.
    #[test]
    fn values_without_the_top_bit_are_not_tokens(raw in 0u64..(1 << 63)) {
        prop_assert_eq!(ReplyToken::decode(raw), None);
    }
}

#[test]
fn token_fields_sit_where_the_layout_says() {
    let t = ReplyToken {
        task: 0x05,
        generation: 0x1_2345,
        channel: 0xa7,
        seq: 0xdead_beef,
    };
    // 1 | task (7 bits) | channel | generation (low 16 bits) | seq.
    assert_eq!(t.encode(), 0x85a7_2345_dead_beef);
    let back = ReplyToken::decode(0x85a7_2345_dead_beef).unwrap();
    assert_eq!((back.task, back.channel), (0x05, 0xa7));
    assert_eq!((back.generation, back.seq), (0x2345, 0xdead_beef));
    // The task field is 7 bits: the top bit is the marker, not part of it.
    assert_eq!(ReplyToken::decode(u64::MAX).unwrap().task, 0x7f);
}

#[test]
fn generations_compare_on_the_16_bits_a_token_carries() {
    let t = ReplyToken {
        task: 1,
        generation: 2,
        channel: 0,
        seq: 0,
    };
    assert!(t.matches_generation(2));
    assert!(t.matches_generation(0x1_0002));
    assert!(!t.matches_generation(3));
    assert!(!t.matches_generation(0xffff));
    assert!(!t.matches_generation(0x2_0000));
    let zero = ReplyToken { generation: 0, ..t };
    assert!(zero.matches_generation(0x1_0000));
    assert!(!zero.matches_generation(0xffff));
}

#[test]
fn a_service_starts_at_its_entry_with_interrupts_on_and_all_else_zero() {
    let r = Regs::entry(0x40_1000, 0x7fff_f000);
    assert_eq!(
        r,
        Regs {
            rip: 0x40_1000,
            rsp: 0x7fff_f000,
            rflags: 0x202,
            ..Regs::default()
        }
    );
    let (k, _) = world();
    assert_eq!(k.tasks[CLIENT].regs.rip, USER_BASE);
    assert_eq!(k.tasks[CLIENT].regs.rflags, task::USER_RFLAGS);
}

#[test]
fn syscall_arguments_and_results_use_the_abi_registers() {
    let r = Regs {
        rdi: 1,
        rsi: 2,
        rdx: 3,
        r10: 4,
        r8: 5,
        r9: 6,
        rcx: 99,
        ..Regs::default()
    };
    assert_eq!(r.args(), [1, 2, 3, 4, 5, 6]);
    let mut r = Regs {
        r8: 5,
        r9: 6,
        ..Regs::default()
    };
    r.set_result(7, [10, 20, 30, 40]);
    assert_eq!((r.rax, r.rdi, r.rsi, r.rdx, r.r10), (7, 10, 20, 30, 40));
    // Registers that carry no result keep their values.
    assert_eq!((r.r8, r.r9), (5, 6));
}
