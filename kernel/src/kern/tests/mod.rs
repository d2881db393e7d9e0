//! Host tests of the kernel core: IPC rules, refusals, faults, restarts and
//! scheduling, over a [`Platform`] made of plain buffers. This module holds
//! the fake platform and a small deployment; the tests are in [`ipc`],
//! [`rules`], [`delivery`], [`devices`], [`dispatch`], [`hardening`],
//! [`scheduling`], [`supervision`] and [`tokens`].

mod delivery;
mod devices;
mod dispatch;
mod fastpath;
mod fastpath_cases;
mod faults;
mod hardening;
mod iommu;
mod ipc;
mod irq_routes;
mod pins;
mod rules;
mod scheduling;
mod supervision;
mod tokens;

use super::grants::GrantError;
use super::task::{ReplyToken, State};
use super::*;
use faultline_ipc::abi::{CapKind, MAX_MESSAGE, RecvKind, Sysnum};
use faultline_ipc::kconfig::{
    CONFIG_VERSION, CapConfig, ChannelConfig, KernelConfig, RestartPolicy, ServiceConfig, TaskFault,
};
use proptest::prelude::*;
use std::vec::Vec;

/// Each service's memory: `[USER_BASE, USER_BASE + USER_SIZE)`, all writable.
const USER_BASE: u64 = 0x40_0000;
const USER_SIZE: usize = 0x4000;

/// A PCI function's bus, device and function numbers.
type Bdf = (u8, u8, u8);

/// A PCI config write that reached the device: bdf, offset, width, value.
type PciWrite = (Bdf, u16, u8, u32);

/// An MMIO mapping a service asked for: base, length, hole.
type Mapped = (u64, u64, Option<(u64, u64)>);

struct FakePlatform {
    mem: Vec<Vec<u8>>,
    logs: Vec<(String, String)>,
    loads: Vec<usize>,
    now: u64,
    /// Config space of the one fake PCI function (any BDF reads it).
    pci: [u8; 256],
    /// Every PCI config read and write: (bdf, offset, width, value written).
    pci_reads: Vec<(Bdf, u16, u8)>,
    pci_writes: Vec<PciWrite>,
    /// Bytes asked of `alloc_dma`, and the error it gives when set.
    dma_requests: Vec<u64>,
    dma_error: Option<Error>,
    /// Interrupts re-enabled, in order.
    unmasked: Vec<u8>,
    /// `(task, bdf)` of every quiesce.
    quiesced: Vec<(usize, (u8, u8, u8))>,
    rearmed: Vec<u8>,
    mapped: Vec<Mapped>,
    /// `dma_keep` calls: (task, vaddr, bytes).
    kept: Vec<(usize, u64, u64)>,
    /// Frames given back with `dma_free`.
    freed: Vec<u64>,
    /// Functions whose bus mastering the kernel turned off.
    bus_master_off: Vec<Bdf>,
    /// Interrupt lines: a PCI function's MSI, or `None` for a VT-d unit's.
    irq_lines: Vec<Option<Bdf>>,
    /// `irq_remap` calls.
    remapped: Vec<(u8, Option<u16>)>,
}

impl FakePlatform {
    fn new(n: usize) -> Self {
        FakePlatform {
            mem: vec![vec![0; USER_SIZE]; n],
            logs: Vec::new(),
            loads: Vec::new(),
            now: 0,
            pci: edu_config(),
            pci_reads: Vec::new(),
            pci_writes: Vec::new(),
            dma_requests: Vec::new(),
            dma_error: None,
            unmasked: Vec::new(),
            quiesced: Vec::new(),
            rearmed: Vec::new(),
            mapped: Vec::new(),
            kept: Vec::new(),
            freed: Vec::new(),
            bus_master_off: Vec::new(),
            irq_lines: vec![Some((0, 3, 0)), None],
            remapped: Vec::new(),
        }
    }

    fn range(&self, task: usize, ptr: u64, len: usize) -> Result<std::ops::Range<usize>, Error> {
        let start = ptr.checked_sub(USER_BASE).ok_or(Error::BadPointer)? as usize;
        let end = start.checked_add(len).ok_or(Error::BadPointer)?;
        if end > self.mem[task].len() {
            return Err(Error::BadPointer);
        }
        Ok(start..end)
    }

    fn put(&mut self, task: usize, ptr: u64, data: &[u8]) {
        let r = self.range(task, ptr, data.len()).unwrap();
        self.mem[task][r].copy_from_slice(data);
    }

    fn get(&self, task: usize, ptr: u64, len: usize) -> Vec<u8> {
        self.mem[task][self.range(task, ptr, len).unwrap()].to_vec()
    }
}

impl Platform for FakePlatform {
    fn read_user(&mut self, task: usize, ptr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let r = self.range(task, ptr, buf.len())?;
        buf.copy_from_slice(&self.mem[task][r]);
        Ok(())
    }
    fn write_user(&mut self, task: usize, ptr: u64, data: &[u8]) -> Result<(), Error> {
        let r = self.range(task, ptr, data.len())?;
        self.mem[task][r].copy_from_slice(data);
        Ok(())
    }
    fn check_writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<(), Error> {
        self.range(task, ptr, len as usize).map(|_| ())
    }
    fn writable(&mut self, task: usize, ptr: u64, len: u64) -> Result<u64, Error> {
        self.check_writable(task, ptr, len)?;
        Ok(hint(task, ptr))
    }
    fn copy_between(
        &mut self,
        from: usize,
        src: u64,
        to: usize,
        dst: u64,
        dst_hint: u64,
        len: usize,
    ) -> Result<(), Error> {
        // The kernel hands back exactly the hint `writable` gave for `dst`.
        assert!(
            dst_hint == 0 || dst_hint == hint(to, dst),
            "copy_between: hint {dst_hint:#x} is not the one given for task {to}'s {dst:#x}"
        );
        let mut bounce = vec![0; len];
        self.read_user(from, src, &mut bounce)?;
        self.write_user(to, dst, &bounce)
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
    fn tsc(&self) -> (u64, u64) {
        (self.now, 1_000_000_000)
    }
    fn log(&mut self, _: Option<usize>, name: &str, line: &[u8]) {
        self.logs
            .push((name.into(), String::from_utf8_lossy(line).into()));
    }
    fn map_mmio(
        &mut self,
        _: usize,
        base: u64,
        len: u64,
        hole: Option<(u64, u64)>,
    ) -> Result<u64, Error> {
        self.mapped.push((base, len, hole));
        Ok(0x7000_0000_0000 | base)
    }
    fn alloc_dma(&mut self, _: usize, bytes: u64) -> Result<(u64, u64), Error> {
        self.dma_requests.push(bytes);
        match self.dma_error {
            Some(e) => Err(e),
            // Each buffer 1 MiB apart, in both spaces.
            None => {
                let n = self.dma_requests.len() as u64 - 1;
                Ok((
                    0x6000_0000_0000 + n * 0x10_0000,
                    0x1234_5000 + n * 0x10_0000,
                ))
            }
        }
    }
    fn pci_read(&mut self, bdf: (u8, u8, u8), offset: u16, width: u8) -> u32 {
        self.pci_reads.push((bdf, offset, width));
        (0..u16::from(width)).fold(0, |v, i| {
            let b = self.pci.get(usize::from(offset + i)).copied().unwrap_or(0);
            v | (u32::from(b) << (8 * i))
        })
    }
    fn pci_write(&mut self, bdf: (u8, u8, u8), offset: u16, width: u8, value: u32) {
        self.pci_writes.push((bdf, offset, width, value));
        for i in 0..u16::from(width) {
            if let Some(b) = self.pci.get_mut(usize::from(offset + i)) {
                *b = (value >> (8 * i)) as u8;
            }
        }
    }
    fn irq_msi(&self, irq: u8) -> (u64, u32) {
        (0xfee0_0000, u32::from(irq))
    }
    fn irq_unmask(&mut self, irq: u8) {
        self.unmasked.push(irq);
    }
    fn irq_rearm(&mut self, irq: u8) {
        self.rearmed.push(irq);
    }
    fn quiesce(&mut self, task: usize, bdf: (u8, u8, u8)) {
        self.quiesced.push((task, bdf));
    }
    fn dma_keep(&mut self, task: usize, vaddr: u64, bytes: u64) {
        self.kept.push((task, vaddr, bytes));
    }
    fn dma_free(&mut self, paddr: u64) {
        self.freed.push(paddr);
    }
    fn bus_master_off(&mut self, bdf: (u8, u8, u8)) {
        self.bus_master_off.push(bdf);
    }
    fn irq_route(&self, irq: u8) -> Result<crate::kern::IrqRouteInfo, Error> {
        match self.irq_lines.get(usize::from(irq)) {
            Some(Some(bdf)) => Ok((*bdf, 0x40 + irq, 7)),
            Some(None) => Err(Error::WrongKind),
            None => Err(Error::NotFound),
        }
    }
    fn vtd_unit_of(&self, bdf: (u8, u8, u8)) -> Option<u8> {
        // One unit, listing every function of bus 0.
        (bdf.0 == 0).then_some(0)
    }
    fn vtd_info(&self, unit: u8) -> Option<(u8, u16, bool)> {
        (unit == 0).then_some((39, 0, true))
    }
    fn irq_remap(&mut self, irq: u8, irte: Option<u16>) -> Result<(), Error> {
        self.remapped.push((irq, irte));
        Ok(())
    }
    fn load(&mut self, task: usize) -> Result<Regs, Error> {
        self.loads.push(task);
        self.mem[task].fill(0);
        Ok(Regs::entry(USER_BASE, USER_BASE + USER_SIZE as u64))
    }
}

/// The hint the fake platform gives for a writable buffer: unique per
/// service and address, so a hint handed back for the wrong buffer shows.
fn hint(task: usize, ptr: u64) -> u64 {
    (1 << 63) | ((task as u64) << 48) | ptr
}

/// An edu-like endpoint: header type 0, a capability list with MSI
/// (64-bit) at 0x40 and a vendor-specific capability at 0x50, BAR0 at
/// 0xfea00000, command register 0.
fn edu_config() -> [u8; 256] {
    let mut c = [0u8; 256];
    c[0..4].copy_from_slice(&[0x34, 0x12, 0xe8, 0x11]);
    c[0x06] = 1 << 4; // capability list
    c[0x0b] = 0x00; // class: unclassified
    c[0x10..0x14].copy_from_slice(&0xfea0_0000u32.to_le_bytes());
    c[0x34] = 0x40;
    c[0x40..0x44].copy_from_slice(&[0x05, 0x50, 0x80, 0x00]); // MSI, 64-bit
    c[0x50..0x53].copy_from_slice(&[0x09, 0x00, 0x08]); // vendor, 8 bytes
    c
}

struct NoDevices;
impl Resolver for NoDevices {
    fn pci(&mut self, _: u16, _: u16, _: u8) -> Result<(u8, u8, u8), GrantError> {
        Err(GrantError::Absent)
    }
    fn pci_bar(&mut self, _: (u8, u8, u8), _: u8) -> Result<MmioRegion, GrantError> {
        Err(GrantError::Absent)
    }
    fn mmio(&mut self, _: u64, _: u64) -> Result<(), GrantError> {
        Ok(())
    }
    fn vtd_unit(&mut self, _: u8) -> Option<(u64, u64)> {
        Some((0xfed9_0000, 0x1000))
    }
    fn vtd_irq(&mut self, _: u8, _: u8, _: u32) -> Result<u8, GrantError> {
        Ok(1)
    }
    fn irq(&mut self, _: u8, _: u32, _: (u8, u8, u8)) -> Result<u8, GrantError> {
        Ok(0)
    }
}

/// One device at 00:03.0 with a 1 MiB BAR0 whose last page holds an MSI-X
/// table; raw MMIO grants are checked against `machine`; IRQ vectors are
/// handed out from 0x50.
struct OneDevice {
    machine: grants::MachineMap,
    irqs: Vec<(u8, u32, (u8, u8, u8))>,
    /// VT-d unit 0's registers, on a machine with an IOMMU.
    vtd: Option<(u64, u64)>,
}

impl Resolver for OneDevice {
    fn pci(&mut self, vendor: u16, device: u16, index: u8) -> Result<(u8, u8, u8), GrantError> {
        match (vendor, device, index) {
            (0x1234, 0x11e8, 0) => Ok((0, 3, 0)),
            (0x8086, 0x29c0, 0) => Err(GrantError::Bridge {
                class: 6,
                subclass: 0,
            }),
            _ => Err(GrantError::Absent),
        }
    }
    fn pci_bar(&mut self, bdf: (u8, u8, u8), bar: u8) -> Result<MmioRegion, GrantError> {
        assert_eq!(bdf, (0, 3, 0));
        match bar {
            0 => Ok(MmioRegion {
                base: 0xfea0_0000,
                len: 0x10_0000,
                hole: Some((0xf_f000, 0x1000)),
            }),
            _ => Err(GrantError::NotMemoryBar { bar }),
        }
    }
    fn mmio(&mut self, base: u64, len: u64) -> Result<(), GrantError> {
        self.machine.check_mmio(base, len)
    }
    fn vtd_unit(&mut self, unit: u8) -> Option<(u64, u64)> {
        self.vtd.filter(|_| unit == 0)
    }
    fn vtd_irq(&mut self, task: u8, _: u8, bits: u32) -> Result<u8, GrantError> {
        self.irqs.push((task, bits, (0xff, 0xff, 0xff)));
        Ok(0x50 + self.irqs.len() as u8 - 1)
    }
    fn irq(&mut self, task: u8, bits: u32, bdf: (u8, u8, u8)) -> Result<u8, GrantError> {
        self.irqs.push((task, bits, bdf));
        Ok(0x50 + self.irqs.len() as u8 - 1)
    }
}

impl OneDevice {
    /// The device, with raw MMIO grants checked against an empty map.
    fn new() -> Self {
        OneDevice {
            machine: grants::MachineMap::default(),
            irqs: Vec::new(),
            vtd: None,
        }
    }
}

/// The edu function [`OneDevice`] resolves, to hold before an IRQ grant.
fn edu() -> CapConfig {
    cap(
        "edu",
        CapSpec::Pci {
            vendor: 0x1234,
            device: 0x11e8,
            index: 0,
        },
    )
}

fn cap(name: &str, kind: CapSpec) -> CapConfig {
    CapConfig {
        name: name.try_into().unwrap(),
        kind,
    }
}

fn service(name: &str, priority: u8, caps: &[CapConfig]) -> ServiceConfig {
    ServiceConfig {
        name: name.try_into().unwrap(),
        image: 0,
        priority,
        memory_pages: 16,
        stack_pages: 1,
        restart: RestartPolicy::Restart {
            backoff_ms: 1,
            max_restarts: 3,
        },
        caps: caps.iter().cloned().collect(),
    }
}

const SUP: usize = 0;
const SERVER: usize = 1;
const CLIENT: usize = 2;
const CLIENT2: usize = 3;

/// supervisor, a server, two clients (channels 0 and 1), plus a notification
/// from the client to the server.
fn world() -> (Kernel, FakePlatform) {
    let config = KernelConfig {
        version: CONFIG_VERSION,
        deployment: "t".try_into().unwrap(),
        services: [
            service("sup", 0, &[cap("supervisor", CapSpec::Supervisor)]),
            service(
                "server",
                1,
                &[
                    cap(
                        "c1",
                        CapSpec::Server {
                            channel: 0,
                            badge: 11,
                        },
                    ),
                    cap(
                        "c2",
                        CapSpec::Server {
                            channel: 1,
                            badge: 22,
                        },
                    ),
                    cap(
                        "edu",
                        CapSpec::Pci {
                            vendor: 0x1234,
                            device: 0x11e8,
                            index: 0,
                        },
                    ),
                    cap("vtd", CapSpec::VtdMmio { unit: 0 }),
                ],
            ),
            service(
                "client",
                2,
                &[
                    cap("server", CapSpec::Client { channel: 0 }),
                    cap("poke", CapSpec::Notification { target: 1, bits: 4 }),
                    cap("dma", CapSpec::Dma { bytes: 8192 }),
                ],
            ),
            service(
                "client2",
                2,
                &[cap("server", CapSpec::Client { channel: 1 })],
            ),
        ]
        .into_iter()
        .collect(),
        channels: [
            ChannelConfig {
                name: "c1".try_into().unwrap(),
                client: 2,
                server: 1,
            },
            ChannelConfig {
                name: "c2".try_into().unwrap(),
                client: 3,
                server: 1,
            },
        ]
        .into_iter()
        .collect(),
    };
    let mut k = Kernel::new(&config, &mut NoDevices).unwrap();
    let mut p = FakePlatform::new(4);
    k.start_all(&mut p).unwrap();
    (k, p)
}

/// Puts system call `nr` with `args` in `task`'s registers, as its
/// `syscall` instruction would.
fn load(k: &mut Kernel, task: usize, nr: Sysnum, args: [u64; 6]) {
    let r = &mut k.tasks[task].regs;
    r.rax = nr as u64;
    [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
}

fn sys(k: &mut Kernel, p: &mut FakePlatform, task: usize, nr: Sysnum, args: [u64; 6]) -> After {
    load(k, task, nr, args);
    k.syscall(p, task)
}

/// Status and the four result registers of `task`.
fn result(k: &Kernel, task: usize) -> (u64, [u64; 4]) {
    let r = &k.tasks[task].regs;
    (r.rax, [r.rdi, r.rsi, r.rdx, r.r10])
}

const BUF: u64 = USER_BASE + 0x1000;
const REQ: u64 = USER_BASE + 0x2000;
const REPLY: u64 = USER_BASE + 0x3000;

fn recv(k: &mut Kernel, p: &mut FakePlatform, mask: u64) -> After {
    sys(
        k,
        p,
        SERVER,
        Sysnum::Recv,
        [BUF, MAX_MESSAGE as u64, mask, 0, 0, 0],
    )
}

fn call(k: &mut Kernel, p: &mut FakePlatform, client: usize, msg: &[u8]) -> After {
    p.put(client, REQ, msg);
    sys(
        k,
        p,
        client,
        Sysnum::Call,
        [0, REQ, msg.len() as u64, REPLY, MAX_MESSAGE as u64, 0],
    )
}
