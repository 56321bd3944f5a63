//! EMR clusters: one transient cluster per run generation, stages as `command-runner.jar`
//! steps.
//!
//! - A cluster is started with instance fleets (several instance types each), spot
//!   fleets first and on-demand fleets once the fallback policy decided, an
//!   auto-termination (idle timeout) policy so that a dead orchestrator never leaks a
//!   running cluster, and the tags `respawn:workflow`, `respawn:run`, `respawn:batch`,
//!   `respawn:generation` and `respawn:store`.
//! - A stage attempt is the step `respawn:<run>:<stage>:<attempt>`, whose arguments are
//!   `bash -c <the rendered run: line>`; checkpointed outputs are written straight to the
//!   store's S3 prefix, ephemeral ones to HDFS; in a notice's window an ephemeral one is
//!   saved to the store by an `s3-dist-cp` step ([`save`]).
//! - One watcher task per cluster polls `DescribeCluster` and the steps it was given, with
//!   jitter; the SDK's own retry (standard mode) absorbs throttling and transient errors.
//! - Loss is told from failure by the cluster's state-change reason: a cluster that ends
//!   for capacity or instance reasons is an interruption, `USER_REQUEST` is a stop, and
//!   a configuration problem (`VALIDATION_ERROR`, `BOOTSTRAP_FAILURE`) fails the run.
//! - With `cluster.emr.notice_queue`, one listener per cluster reads EC2's interruption
//!   warnings and rebalance recommendations from SQS and tells those about the cluster's
//!   instances as notices ([`notices`]).
//! - A step that fails while instances of its cluster were reclaimed (ListInstances) is an
//!   interruption of its attempt, never a charge to its retries; with a `task` fleet,
//!   primary and core are on-demand and Spark decommissions executors of reclaimed task
//!   nodes ([`request`]). A replacement avoids the zone that was just reclaimed
//!   ([`zones`]).
//! - When a cluster ends, the instances EMR lists for it (ListInstances) are summed per
//!   fleet, instance type and market: what the cost report prices.
//! - An orchestrator restarted while its cluster lives adopts it (found by tag) and
//!   attaches to the steps it finds there by name instead of submitting them again.

mod adopt;
mod client;
mod cluster;
mod error;
mod instances;
mod notices;
mod request;
mod save;
mod steps;
mod watch;
mod zones;

pub use adopt::{Found, LIVE_STATES, Listed, find_live};
pub use client::client;
pub use cluster::{EmrCluster, EmrClusters, terminate};
pub use error::{EmrError, EmrErrorKind, ProvisionError};
pub use notices::NoticeQueue;
pub use request::{TAG_BATCH, TAG_GENERATION, TAG_RUN, TAG_STORE, TAG_WORKFLOW};
pub use save::Saver;
pub use steps::{step_args, step_name};
pub use watch::Placement;
