//! The planner's choices, made by simulating: which checkpoint placement `auto` keeps
//! ([`chosen_plan`]), which market `cluster.market: auto` takes before the run, and the
//! policy comparison `respawn simulate` prints. It sits above the simulator, which drives
//! the run's own state machine, and below everything that runs or reports.

mod choose;
mod compare;
mod market;

pub use choose::{MAX_STAGES_COMPARED, chosen_plan};
pub use compare::{PolicySummary, SimReport, policy_plans, simulate};
