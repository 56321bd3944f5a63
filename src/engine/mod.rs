//! The engine: the run loop as a pure state machine ([`machine`]); the async driver that
//! executes its actions against a store and a cluster provider builds on it.

pub mod clock;
pub mod driver;
pub mod event;
pub mod fingerprint;
pub mod inspect;
pub mod machine;
pub mod messages;
pub mod session;
pub mod setup;
mod tally;

pub use machine::{Action, Event, Exit, Machine, Outcome, Setup, StageState};

#[cfg(test)]
mod properties;
