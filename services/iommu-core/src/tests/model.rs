//! The model is strict: these tests show it rejects what QEMU or the
//! hardware rejects, so a driver that did the same would fail.

use super::*;
use crate::hw::{DmaMemory, Registers};
use crate::queue::Descriptor;

/// Rule: an 8-byte write to a 32-bit register aborts QEMU; the model panics.
#[test]
#[should_panic(expected = "8-byte write")]
fn wrong_width_write_panics() {
    Model::qemu().registers().write64(0x34, 1);
}

/// Rule: a 4-byte read of a 64-bit register is not the architectural width.
#[test]
#[should_panic(expected = "4-byte read")]
fn wrong_width_read_panics() {
    Model::qemu().registers().read32(0x08);
}

/// Rule: GCMD is write-only.
#[test]
#[should_panic(expected = "write-only GCMD")]
fn gcmd_read_panics() {
    Model::qemu().registers().read32(0x18);
}

/// Rule: one GCMD write changes one thing.
#[test]
#[should_panic(expected = "more than one thing")]
fn gcmd_two_commands_panics() {
    Model::qemu().registers().write32(0x18, 1 << 30 | 1 << 26);
}

/// Rule: translation cannot be enabled before a root table is set.
#[test]
#[should_panic(expected = "before a root table")]
fn te_before_root_panics() {
    Model::qemu().registers().write32(0x18, 1 << 31);
}

/// Sets up a bare queue on `model` and submits `descriptor` alone,
/// returning FSTS afterwards.
pub(super) fn submit_raw(descriptor: Descriptor) -> (Model, u32) {
    let model = Model::qemu();
    let mut regs = model.registers();
    let mut mem = model.memory();
    let queue = mem.alloc_frame().unwrap();
    regs.write64(0x90, queue);
    regs.write32(0x18, 1 << 26);
    mem.write_u64(queue, descriptor.low);
    mem.write_u64(queue + 8, descriptor.high);
    regs.write64(0x88, 0x10);
    let fsts = regs.read32(0x34);
    (model, fsts)
}

pub(super) const IQE: u32 = 1 << 4;

/// Rule: malformed descriptors set FSTS.IQE; well-formed ones do not.
#[test]
fn queue_rejects_malformed_descriptors() {
    let (model, fsts) = submit_raw(Descriptor::context_global());
    assert_eq!(fsts & IQE, 0, "{:?}", model.queue_errors());
    let status_frame = 0x4000_0000;
    let both = Descriptor {
        low: Descriptor::wait(status_frame, 1).low | 1 << 4,
        high: status_frame,
    };
    let neither = Descriptor {
        low: 5,
        high: status_frame,
    };
    let reserved = Descriptor {
        low: Descriptor::context_global().low | 1 << 8,
        high: 0,
    };
    let unknown = Descriptor { low: 0xf, high: 0 };
    let big_mask = Descriptor::iotlb_pages(1, 0, 19, 0);
    let unaligned = Descriptor::iotlb_pages(1, 0x1000, 1, 0);
    for bad in [both, neither, reserved, unknown, big_mask, unaligned] {
        let (model, fsts) = submit_raw(bad);
        assert_eq!(fsts & IQE, IQE, "{bad:x?} accepted");
        assert_eq!(model.queue_errors().len(), 1);
    }
}

/// Rule: a wait descriptor's status write lands in memory.
#[test]
fn wait_writes_status() {
    let model = Model::qemu();
    let mut regs = model.registers();
    let mut mem = model.memory();
    let queue = mem.alloc_frame().unwrap();
    let status = mem.alloc_frame().unwrap();
    regs.write64(0x90, queue);
    regs.write32(0x18, 1 << 26);
    let wait = Descriptor::wait(status + 8, 0x1234_5678);
    mem.write_u64(queue, wait.low);
    mem.write_u64(queue + 8, wait.high);
    regs.write64(0x88, 0x10);
    assert_eq!(mem.read_u64(status + 8), 0x1234_5678);
    assert_eq!(regs.read64(0x80), 0x10, "IQH advanced");
}

const STALE: u64 = 0xa5a5_a5a5_a5a5_a5a5;

/// Rule: with ECAP.C = 0 the walk reads memory, not the CPU cache: an
/// entry written but not flushed is not seen, nor are a new frame's zeros.
#[test]
fn unflushed_writes_are_invisible_to_the_walk() {
    let model = Model::qemu();
    let mut mem = model.memory();
    let frame = mem.alloc_frame().unwrap();
    mem.write_u64(frame + 16, 0xabc);
    assert_eq!(mem.read_u64(frame + 16), 0xabc);
    let state = model.0.borrow();
    assert_eq!(state.memory.device_read(frame + 16), Some(STALE));
    drop(state);
    mem.flush(frame + 16, 8);
    let state = model.0.borrow();
    assert_eq!(state.memory.device_read(frame + 16), Some(0xabc));
    assert_eq!(state.memory.device_read(frame + 64), Some(STALE));
}
