//! The contracts every layer shares: the run events, the run record, the store layout of
//! the ledger, the stage fingerprint and what a cluster's instances ran. The run crate
//! reads and writes them; the planner, the reports and the CLI read them; none of them
//! does I/O here.

pub mod event;
pub mod fingerprint;
mod layout;
mod record;
mod usage;

pub use layout::{Layout, timestamp};
pub use record::{
    CheckRecord, FORMAT, HeldCluster, Interruption, MarketChange, NodeLoss, RunRecord, RunStatus,
    StageRecord,
};
pub use usage::InstanceUse;
