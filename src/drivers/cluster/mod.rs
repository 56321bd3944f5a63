//! Cluster providers: where stages run and ephemeral work-tables live.
//!
//! [`local`] is a scratch directory plus the process groups of the stages running in it.
//! Losing a cluster kills every process group and deletes the scratch directory; the
//! engine's driver tells a loss from a stage's own failure by whether the scratch
//! directory is still there when a stage ends.

pub mod local;

pub use local::{LocalCluster, LocalClusters, StageCommand};
