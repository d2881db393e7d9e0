//! Host tests of the driver core against the VT-d model. Each test states
//! the rule it guards; they run the real `Unit` on `model::Model` views.

mod bringup;
mod faults;
mod interrupts;
mod invalidation;
mod map;
mod model;
mod prop;
mod prq;
mod prq_check;
mod prq_hooks;
mod prq_model;
mod scalable;
mod takeover;

use crate::model::{Model, ModelConfig, ModelDelay, ModelMemory, ModelRegisters};
use crate::{Config, SourceId, Unit};

type TestUnit = Unit<ModelRegisters, ModelMemory, ModelDelay>;

/// A model with `config` and a unit brought up on it.
fn up(config: ModelConfig) -> (Model, TestUnit) {
    let model = Model::new(config);
    let unit = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config::default(),
    )
    .expect("bring-up");
    (model, unit)
}

/// A model with `config` and a unit brought up on it in scalable mode.
fn up_scalable(config: ModelConfig) -> (Model, TestUnit) {
    let model = Model::new(config);
    let unit = Unit::bring_up(
        model.registers(),
        model.memory(),
        model.delay(),
        Config {
            mode: faultline_vtd::TranslationMode::Scalable,
            ..Config::default()
        },
    )
    .expect("bring-up");
    (model, unit)
}

fn qemu() -> (Model, TestUnit) {
    up(ModelConfig::qemu())
}

/// QEMU's CAP with SAGAW replaced.
fn with_sagaw(config: ModelConfig, sagaw: u64) -> ModelConfig {
    ModelConfig {
        cap: config.cap & !(0x1f << 8) | sagaw << 8,
        ..config
    }
}

/// QEMU's CAP with SLLPS replaced.
fn with_sllps(config: ModelConfig, sllps: u64) -> ModelConfig {
    ModelConfig {
        cap: config.cap & !(0xf << 34) | sllps << 34,
        ..config
    }
}

const EDU: SourceId = SourceId(0x0008); // 00:01.0
const OTHER: SourceId = SourceId(0x0310); // 03:02.0

const MIB: u64 = 1 << 20;
