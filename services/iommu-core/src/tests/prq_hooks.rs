//! A register accessor for the page request tests: it logs every page
//! request register access the driver makes (offset and, for writes, the
//! value), in order, and can run a scripted device action just before an
//! IQT write reaches the model, i.e. while the unit is about to execute
//! what the driver queued (a request "in flight" when a drain starts).

use std::cell::RefCell;
use std::rc::Rc;

use crate::hw::Registers;
use crate::model::{Model, ModelDelay, ModelMemory, ModelRegisters};
use crate::{Config, Unit};

/// One logged register access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read(usize),
    Write(usize, u64),
}

/// Page request registers: PQH, PQT, PQA, PRS and the event registers.
const LOGGED: [usize; 8] = [0xc0, 0xc8, 0xd0, 0xdc, 0xe0, 0xe4, 0xe8, 0xec];
const IQT: usize = 0x88;

pub type Log = Rc<RefCell<Vec<Access>>>;
pub type Hook = Rc<RefCell<Option<Box<dyn FnMut()>>>>;

/// Wraps the model's registers; see the module doc.
pub struct Recorder {
    inner: ModelRegisters,
    log: Log,
    before_iqt: Hook,
}

impl Recorder {
    fn note(&self, access: Access) {
        let offset = match access {
            Access::Read(o) | Access::Write(o, _) => o,
        };
        if LOGGED.contains(&offset) {
            self.log.borrow_mut().push(access);
        }
    }

    fn before_write(&self, offset: usize) {
        if offset == IQT
            && let Some(hook) = self.before_iqt.borrow_mut().as_mut()
        {
            hook();
        }
    }
}

impl Registers for Recorder {
    fn read32(&mut self, offset: usize) -> u32 {
        self.note(Access::Read(offset));
        self.inner.read32(offset)
    }
    fn write32(&mut self, offset: usize, value: u32) {
        self.note(Access::Write(offset, u64::from(value)));
        self.before_write(offset);
        self.inner.write32(offset, value);
    }
    fn read64(&mut self, offset: usize) -> u64 {
        self.note(Access::Read(offset));
        self.inner.read64(offset)
    }
    fn write64(&mut self, offset: usize, value: u64) {
        self.note(Access::Write(offset, value));
        self.before_write(offset);
        self.inner.write64(offset, value);
    }
}

pub type RecordedUnit = Unit<Recorder, ModelMemory, ModelDelay>;

/// A unit brought up (legacy mode) on `model` through a [`Recorder`]; the
/// log and the IQT hook (empty) are returned beside it.
pub fn recorded_unit(model: &Model) -> (RecordedUnit, Log, Hook) {
    let log = Log::default();
    let hook = Hook::default();
    let registers = Recorder {
        inner: model.registers(),
        log: log.clone(),
        before_iqt: hook.clone(),
    };
    let unit = Unit::bring_up(registers, model.memory(), model.delay(), Config::default())
        .expect("bring-up");
    (unit, log, hook)
}
