//! respawn's pure core: no I/O, no async, no clock, no AWS. Top to bottom inside it:
//! [`workflow`] (the model and its reader), [`contract`] (what every layer shares: run
//! events, the run record, the store layout), [`learn`] (figures learned from the run
//! history), [`plan`] (critical path, checkpoint
//! placement, recompute sets, fallback and market rules, calendars), [`machine`] (the run
//! loop as a state machine), [`sim`] (that machine in virtual time), [`planner`] (choices
//! made by simulating) and [`report`] (what a run's events say it did and cost).

// Graph code indexes several per-stage arrays by the same stage id; iterator chains over
// one of them would hide that.
#![allow(clippy::needless_range_loop)]

pub mod contract;
pub mod learn;
pub mod machine;
pub mod plan;
pub mod planner;
pub mod report;
pub mod sim;
pub mod workflow;
