//! respawn: run long data workflows on spot capacity without losing work.
//!
//! The layers of `design.md`, top to bottom: [`spec`] (YAML to a validated workflow),
//! [`plan`] (critical path, checkpoint placement, recompute sets, market choice; pure),
//! [`sim`] (a discrete-event simulator driving the same plan code; pure), and [`cli`].

// Graph code indexes several per-stage arrays by the same stage id; iterator chains over
// one of them would hide that.
#![allow(clippy::needless_range_loop)]

pub mod cli;
pub mod drivers;
pub mod engine;
pub mod plan;
pub mod report;
pub mod sim;
pub mod workflow;
