//! The run loop as a pure state machine: `apply(Event) -> Vec<Action>`. The driver
//! executes its actions against real clusters and stores; the simulator plays them in
//! virtual time.

mod messages;
mod setup;
mod state;
mod tally;

pub use messages::{Action, Event, Exit, NoticeKind, Outcome};
pub use setup::Setup;
pub use state::{Machine, StageState, StageStatus, retry_delay};

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod notice_tests;
#[cfg(test)]
mod partial_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod upload_tests;
