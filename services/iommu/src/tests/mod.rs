//! Host tests of the service's logic: the real driver core on the VT-d
//! model of `faultline-iommu-core`, and a fake kernel that knows which
//! client holds which device and DMA buffer. Each test states its rule.

pub(crate) mod desk;
mod interrupts;
mod ipc_model;
mod pages;
mod pages_prop;
mod pieces;
mod report;
mod requests;
mod revoke;

use std::collections::{BTreeMap, BTreeSet};

use faultline_iommu_core::model::{Model, ModelConfig, ModelDelay, ModelMemory, ModelRegisters};
use faultline_iommu_core::{Config, SourceId, Unit};
use faultline_ipc::abi::Error as AbiError;
use faultline_ipc::channel::ReplyToken;
use faultline_ipc::protocol::iommu::{Access, IommuRequest, IommuResponse, PageSize};
use userlib::{Pinned, SysError};

use crate::kernel::Kernel;
use crate::service::Service;

type TestService = Service<ModelRegisters, ModelMemory, ModelDelay>;

/// Two clients (badges) and their devices.
const A: u64 = 7;
const B: u64 = 9;
/// 00:03.0, held by A as handle 0.
const EDU: u16 = 0x0018;
/// 00:04.0, held by B as handle 0.
const NIC: u16 = 0x0020;
const MIB: u64 = 1 << 20;

/// A DMA buffer of a client: where its frames are.
#[derive(Clone, Copy)]
struct Buffer {
    paddr: u64,
    len: u64,
}

/// The kernel as the service sees it. A call's token is the caller's
/// badge (the fake's way of knowing whose call is being served).
#[derive(Default)]
struct FakeKernel {
    devices: BTreeMap<(u64, u8), u16>,
    /// Fault grants: (client, handle) → (function, deadline in ms).
    faults: BTreeMap<(u64, u8), (u16, u32)>,
    buffers: BTreeMap<(u64, u8), Buffer>,
    /// Live pins: pin → (client, paddr, len).
    pins: BTreeMap<u64, (u64, u64, u64)>,
    next_pin: u64,
    released: Vec<u64>,
    translated: BTreeSet<u16>,
    refuse_translated: bool,
    /// Checked on every unpin: the device's DMA to this IOVA must already
    /// fault (the pin is released only after the IOTLB let go of it).
    unpin_probe: Option<(Model, u16, u64)>,
}

impl FakeKernel {
    /// A holds EDU as handle 0 and buffer 1 (64 KiB at 0x10_0000) and
    /// buffer 2 (4 MiB at 0x4000_0000, 2 MiB-aligned); B holds NIC as
    /// handle 0 and buffer 1 (16 KiB at 0x20_0000).
    fn new() -> Self {
        let mut k = Self {
            next_pin: 100,
            ..Self::default()
        };
        k.devices.insert((A, 0), EDU);
        k.devices.insert((B, 0), NIC);
        k.buffers.insert(
            (A, 1),
            Buffer {
                paddr: 0x10_0000,
                len: 0x1_0000,
            },
        );
        k.buffers.insert(
            (A, 2),
            Buffer {
                paddr: 0x4000_0000,
                len: 4 * MIB,
            },
        );
        k.buffers.insert(
            (B, 1),
            Buffer {
                paddr: 0x20_0000,
                len: 0x4000,
            },
        );
        k
    }

    fn live_pins(&self) -> usize {
        self.pins.len()
    }
}

impl Kernel for FakeKernel {
    fn client_pci(
        &mut self,
        token: &ReplyToken,
        handle: u8,
    ) -> Result<(u16, Option<u8>), SysError> {
        let bdf = self
            .devices
            .get(&(token.raw(), handle))
            .copied()
            .ok_or(SysError::Kernel(AbiError::BadHandle))?;
        // Unit 0 covers bus 0 only.
        Ok((bdf, (bdf >> 8 == 0).then_some(0)))
    }

    fn client_faults(&mut self, token: &ReplyToken, handle: u8) -> Result<(u16, u32), SysError> {
        self.faults
            .get(&(token.raw(), handle))
            .copied()
            .ok_or(SysError::Kernel(AbiError::WrongKind))
    }

    fn client_dma(
        &mut self,
        token: &ReplyToken,
        buffer: u8,
        offset: u64,
        len: u64,
    ) -> Result<Pinned, SysError> {
        // The kernel's answers: an unknown buffer is NotFound, a misaligned
        // range BadArgument, one past the buffer's end BadLength.
        let b = self
            .buffers
            .get(&(token.raw(), buffer))
            .ok_or(SysError::Kernel(AbiError::NotFound))?;
        if !offset.is_multiple_of(4096) || !len.is_multiple_of(4096) {
            return Err(SysError::Kernel(AbiError::BadArgument));
        }
        if offset + len > b.len {
            return Err(SysError::Kernel(AbiError::BadLength));
        }
        let pin = self.next_pin;
        self.next_pin += 1;
        self.pins.insert(pin, (token.raw(), b.paddr + offset, len));
        Ok(Pinned {
            paddr: b.paddr + offset,
            pin,
        })
    }

    fn dma_unpin(&mut self, pin: u64) -> Result<(), SysError> {
        if let Some((model, bdf, iova)) = &self.unpin_probe {
            assert!(
                model.translate(SourceId(*bdf), *iova, false).is_err(),
                "pin {pin} released while {iova:#x} still translates"
            );
        }
        self.released.push(pin);
        self.pins
            .remove(&pin)
            .map(drop)
            .ok_or(SysError::Kernel(AbiError::NotFound))
    }

    fn device_translated(&mut self, unit: u8, bdf: u16, on: bool) -> Result<(), SysError> {
        assert_eq!(unit, 0, "only unit 0 is up");
        if self.refuse_translated {
            return Err(SysError::Kernel(AbiError::NotPermitted));
        }
        if on {
            self.translated.insert(bdf);
        } else {
            self.translated.remove(&bdf);
        }
        Ok(())
    }
}

/// A service with one unit (QEMU's, or `config`) brought up on the model.
fn service(config: ModelConfig) -> (Model, TestService, FakeKernel) {
    let model = Model::new(config);
    let unit = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config::default(),
    )
    .expect("bring-up");
    let mut service = Service::new();
    assert!(service.add_unit(0, unit).is_ok());
    (model, service, FakeKernel::new())
}

fn qemu() -> (Model, TestService, FakeKernel) {
    service(ModelConfig::qemu())
}

/// Client `badge` calls with `request`.
fn call(
    s: &mut TestService,
    k: &mut FakeKernel,
    badge: u64,
    request: IommuRequest,
) -> IommuResponse {
    s.handle(k, badge, &ReplyToken::from_raw(badge), request)
}

fn attach(pci: u8) -> IommuRequest {
    IommuRequest::Attach { pci }
}

/// Maps `len` bytes of buffer `buffer` from `offset` at `iova`, read-write,
/// in 4 KiB pages.
fn map(pci: u8, iova: u64, buffer: u8, offset: u64, len: u64) -> IommuRequest {
    IommuRequest::Map {
        pci,
        iova,
        buffer,
        offset,
        len,
        access: Access::READ_WRITE,
        page: PageSize::Small,
    }
}

fn unmap(pci: u8, iova: u64, len: u64) -> IommuRequest {
    IommuRequest::Unmap { pci, iova, len }
}

fn source(bdf: u16) -> SourceId {
    SourceId(bdf)
}
