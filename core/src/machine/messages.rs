//! What the run loop's machine hears ([`Event`]) and asks for ([`Action`]): the whole
//! interface between [`super::Machine`] and whoever plays the cluster and the
//! store (the engine's driver, or the simulator in virtual time).

pub use crate::contract::event::NoticeKind;
use crate::workflow::{Market, StageId};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The run begins (or resumes). `committed` marks stages whose COMMIT is in the
    /// store and fresh; `published` marks final stages whose output already has `_SUCCESS`.
    Started {
        committed: Vec<bool>,
        published: Vec<bool>,
    },
    /// The cluster asked for by [`Action::Provision`] is up.
    ClusterReady { generation: u32 },
    /// A stage process ended on a live cluster.
    StageExited {
        stage: StageId,
        attempt: u32,
        exit: Exit,
    },
    /// A checkpointed work-table was uploaded and its COMMIT is in the store.
    Committed { stage: StageId, attempt: u32 },
    /// A committed work-table was downloaded into the cluster's scratch.
    Restored { stage: StageId, generation: u32 },
    /// A final output was published with `_SUCCESS`.
    Published { stage: StageId },
    /// The cluster of `generation` is gone with everything on it. `elapsed` is seconds
    /// since the run began. Uploads in flight end with `Committed` (their COMMIT landed)
    /// or `PersistFailed`; the recompute set and the next market are decided once they all
    /// have, so that a COMMIT that landed is never run again. A replacement lost before
    /// it took over is forgotten (the next loss provisions anew).
    ClusterLost {
        generation: u32,
        cause: String,
        elapsed: f64,
    },
    /// Nodes of the cluster of `generation` were reclaimed and took the attempts named
    /// (stage and attempt) with them; the cluster works on with the capacity left and
    /// gets the lost capacity back as its provider replaces nodes. Each attempt named is
    /// interrupted (never a failure) and runs again; its work-tables on other nodes (the
    /// cluster's shared scratch, HDFS's replicas) are kept. `elapsed` is seconds since
    /// this process started: on spot, the deadline rule is checked then, and the run may
    /// leave the cluster ([`Action::Abandon`]).
    AttemptsLost {
        generation: u32,
        attempts: Vec<(StageId, u32)>,
        elapsed: f64,
    },
    /// The cluster of `generation` was warned that it will be reclaimed in about `lead`
    /// seconds (an interruption notice), or that it is at raised risk (a rebalance
    /// recommendation, `lead` 0 when no time is given). `elapsed` is seconds since the
    /// run began. See [`crate::machine::notice`] for what the machine does with it.
    Notice {
        generation: u32,
        kind: NoticeKind,
        lead: f64,
        elapsed: f64,
    },
    /// The interruption announced for `generation` did not come within its lead and a
    /// grace: the cluster works on, and a replacement asked for is released.
    NoticeLapsed { generation: u32 },
    /// An upload asked for by [`Action::Persist`] did not commit (its cluster was lost).
    PersistFailed { stage: StageId, attempt: u32 },
    /// The backoff before a failed stage's next attempt is over.
    RetryDue { stage: StageId },
    /// Stop (Ctrl-C): end what runs and record the run as stopped.
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    Failed {
        code: i32,
    },
    /// The stage ran, but a check refused its output (`code` is the check's exit): the
    /// data, not the machine, is wrong, so the stage is not retried and the run fails.
    Refused {
        code: i32,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start a new cluster on this market (the old one, if any, is gone).
    Provision {
        market: Market,
        generation: u32,
        reason: String,
    },
    /// Download a committed work-table into the cluster's scratch.
    Restore {
        stage: StageId,
        generation: u32,
    },
    Launch {
        stage: StageId,
        attempt: u32,
    },
    /// Upload a finished work-table and create its COMMIT.
    Persist {
        stage: StageId,
        attempt: u32,
    },
    /// Publish a committed final work-table to `outputs/<stage>/<batch>/`.
    Publish {
        stage: StageId,
    },
    /// Wake the machine with [`Event::RetryDue`] after this delay (jitter is the driver's).
    RetryAfter {
        stage: StageId,
        delay: Duration,
    },
    /// `market: auto` chose the market of the next cluster (before the run, and after every
    /// interruption), for this reason in words.
    MarketChosen {
        market: Market,
        reason: String,
    },
    /// What is left would end past the deadline on the market the run is on (checked at
    /// the start and after each loss; see [`crate::plan::fallback::deadline_at_risk`]).
    DeadlineAtRisk {
        reason: String,
    },
    /// Leave the current spot cluster of `generation`: after a partial loss the deadline
    /// is at risk on it, for `reason`. End it and report it lost ([`Event::ClusterLost`]);
    /// nothing more is launched on it meanwhile.
    Abandon {
        generation: u32,
        reason: String,
    },
    /// End every running process and release the cluster.
    Terminate,
    /// Release the cluster of `generation`, which is not the current one: a replacement
    /// asked for on a notice and not needed after all.
    Release {
        generation: u32,
        reason: String,
    },
    /// The run is over.
    Finish(Outcome),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed {
        stage: StageId,
        code: i32,
        attempts: u32,
    },
    Stopped,
}
