//! The run loop as a pure state machine: `apply(Event) -> Vec<Action>`.
//!
//! It knows the DAG, which work-tables the plan checkpoints, the slots of a cluster and
//! the retry budget; it decides what to launch, persist, restore and publish, and what a
//! cluster loss or a stage failure means. It never sleeps, reads a clock or touches the
//! store: the driver executes the actions and reports what happened as events. The
//! recompute set and the market choice are the planner's functions, shared with the
//! simulator.

use crate::plan::fallback::{MarketDecision, MarketSituation, next_market};
use crate::plan::recompute::recompute_set;
use crate::plan::remaining_critical;
use crate::workflow::{FallbackSpec, Market, StageId, graph};
use std::time::Duration;

/// What the machine needs to know about a workflow and its plan.
#[derive(Clone, Debug)]
pub struct Setup {
    pub needs: Vec<Vec<StageId>>,
    /// Work-tables the plan persists (finals included).
    pub checkpoint: Vec<bool>,
    pub is_final: Vec<bool>,
    /// Estimated seconds of work per stage (for the deadline check).
    pub estimate: Vec<f64>,
    pub slots: usize,
    /// Failures of a stage retried before the run fails.
    pub retries: u32,
    pub market: Market,
    pub fallback: FallbackSpec,
    pub mtti: f64,
    pub provision_time: f64,
    /// A typical checkpoint write and restore, in seconds.
    pub checkpoint_cost: f64,
}

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
    /// The cluster is gone with everything on it. `elapsed` is seconds since the run began.
    /// Uploads in flight end with `Committed` (their COMMIT landed) or `PersistFailed`;
    /// the recompute set and the next market are decided once they all have, so that a
    /// COMMIT that landed is never run again.
    ClusterLost { cause: String, elapsed: f64 },
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
    Failed { code: i32 },
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
    /// End every running process and release the cluster.
    Terminate,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageState {
    /// Not run yet in this cluster generation, or to be run again.
    Waiting,
    Running {
        attempt: u32,
    },
    /// Exited successfully; its checkpoint is being written.
    Persisting {
        attempt: u32,
    },
    /// Failed; waiting for the backoff before the next attempt.
    Backoff,
    Done,
}

#[derive(Clone, Debug)]
pub struct StageStatus {
    pub state: StageState,
    /// Attempts started in this run.
    pub attempts: u32,
    /// Attempts that failed on their own (these use up `retries`).
    pub failures: u32,
    pub interrupted: u32,
    pub committed: bool,
    pub published: bool,
    /// Its work-table is on the current cluster.
    pub local: bool,
    pub restoring: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClusterState {
    None,
    Provisioning,
    Ready,
    /// Lost; waiting for the uploads that were in flight to end.
    Lost,
}

pub struct Machine {
    setup: Setup,
    consumers: Vec<Vec<StageId>>,
    stages: Vec<StageStatus>,
    cluster: ClusterState,
    generation: u32,
    market: Market,
    interruptions: u32,
    /// Set when a stage used up its retries: nothing new starts, the run fails once
    /// what runs has ended (so that finished work is kept for a fixed re-run).
    failure: Option<(StageId, i32)>,
    /// The cause and time of a loss whose uploads are still ending.
    loss: Option<(String, f64)>,
    finished: bool,
}

/// Base delay before retrying a stage after its `failures`-th failure: 1 s, 2 s, 4 s, ...
/// up to a minute. The driver adds jitter.
pub fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

impl Machine {
    pub fn new(setup: Setup) -> Machine {
        let n = setup.needs.len();
        let consumers = graph::consumers(&setup.needs);
        let status = StageStatus {
            state: StageState::Waiting,
            attempts: 0,
            failures: 0,
            interrupted: 0,
            committed: false,
            published: false,
            local: false,
            restoring: false,
        };
        Machine {
            market: setup.market,
            setup,
            consumers,
            stages: vec![status; n],
            cluster: ClusterState::None,
            generation: 0,
            interruptions: 0,
            failure: None,
            loss: None,
            finished: false,
        }
    }

    pub fn stages(&self) -> &[StageStatus] {
        &self.stages
    }

    pub fn market(&self) -> Market {
        self.market
    }

    pub fn interruptions(&self) -> u32 {
        self.interruptions
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn apply(&mut self, event: Event) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        let mut actions = Vec::new();
        match event {
            Event::Started {
                committed,
                published,
            } => {
                for (s, status) in self.stages.iter_mut().enumerate() {
                    status.committed = committed.get(s).copied().unwrap_or(false);
                    status.published =
                        published.get(s).copied().unwrap_or(false) && status.committed;
                }
                // Only what a final output still needs runs: an uncommitted stage whose
                // consumers are all committed is left alone.
                let n = self.stages.len();
                let mut needed = vec![false; n];
                for s in (0..n).rev() {
                    needed[s] = !self.stages[s].committed
                        && (self.setup.is_final[s] || self.consumers[s].iter().any(|&c| needed[c]));
                }
                for (s, status) in self.stages.iter_mut().enumerate() {
                    if !needed[s] {
                        status.state = StageState::Done;
                    }
                }
                // Committed finals that are not published yet need no cluster.
                for s in 0..self.stages.len() {
                    if self.setup.is_final[s]
                        && self.stages[s].committed
                        && !self.stages[s].published
                    {
                        actions.push(Action::Publish { stage: s });
                    }
                }
                if self.stages.iter().any(|s| s.state != StageState::Done) {
                    self.provision("start".into(), &mut actions);
                }
            }
            Event::ClusterReady { generation } => {
                if generation == self.generation && self.cluster == ClusterState::Provisioning {
                    self.cluster = ClusterState::Ready;
                }
            }
            Event::StageExited {
                stage,
                attempt,
                exit,
            } => {
                let status = &mut self.stages[stage];
                if status.state != (StageState::Running { attempt }) {
                    // An attempt from a lost cluster: already counted as interrupted.
                    return actions;
                }
                match exit {
                    Exit::Success => {
                        status.local = true;
                        if self.setup.checkpoint[stage] && !status.committed {
                            status.state = StageState::Persisting { attempt };
                            actions.push(Action::Persist { stage, attempt });
                        } else {
                            status.state = StageState::Done;
                        }
                    }
                    Exit::Failed { code } => {
                        status.failures += 1;
                        if status.failures <= self.setup.retries {
                            status.state = StageState::Backoff;
                            actions.push(Action::RetryAfter {
                                stage,
                                delay: retry_delay(status.failures),
                            });
                        } else {
                            status.state = StageState::Waiting;
                            self.failure.get_or_insert((stage, code));
                        }
                    }
                }
            }
            Event::PersistFailed { stage, attempt } => {
                if self.stages[stage].state == (StageState::Persisting { attempt }) {
                    self.stages[stage].state = StageState::Waiting;
                }
            }
            Event::Committed { stage, .. } => {
                let status = &mut self.stages[stage];
                // A COMMIT that landed is durable even if the cluster was lost meanwhile.
                status.committed = true;
                if matches!(
                    status.state,
                    StageState::Persisting { .. } | StageState::Waiting
                ) {
                    status.state = StageState::Done;
                }
                if self.setup.is_final[stage] && !status.published {
                    actions.push(Action::Publish { stage });
                }
            }
            Event::Restored { stage, generation } => {
                if generation == self.generation {
                    self.stages[stage].local = true;
                    self.stages[stage].restoring = false;
                }
            }
            Event::Published { stage } => self.stages[stage].published = true,
            Event::ClusterLost { cause, elapsed } => self.lose_cluster(cause, elapsed),
            Event::RetryDue { stage } => {
                if self.stages[stage].state == StageState::Backoff {
                    self.stages[stage].state = StageState::Waiting;
                }
            }
            Event::Stop => {
                actions.push(Action::Terminate);
                actions.push(Action::Finish(Outcome::Stopped));
                self.finished = true;
                return actions;
            }
        }
        if self.cluster == ClusterState::Lost
            && !self
                .stages
                .iter()
                .any(|s| matches!(s.state, StageState::Persisting { .. }))
        {
            self.settle_loss(&mut actions);
        }
        self.advance(&mut actions);
        actions
    }

    fn provision(&mut self, reason: String, actions: &mut Vec<Action>) {
        self.generation += 1;
        self.cluster = ClusterState::Provisioning;
        actions.push(Action::Provision {
            market: self.market,
            generation: self.generation,
            reason,
        });
    }

    fn lose_cluster(&mut self, cause: String, elapsed: f64) {
        if matches!(self.cluster, ClusterState::None | ClusterState::Lost) {
            return;
        }
        self.interruptions += 1;
        for status in &mut self.stages {
            if let StageState::Running { .. } = status.state {
                status.interrupted += 1;
                status.state = StageState::Waiting;
            }
            // A stage still `Persisting` stays so until its upload ends: its COMMIT may
            // have landed (`Committed`) or not (`PersistFailed`, and it runs again).
            status.local = false;
            status.restoring = false;
        }
        self.cluster = ClusterState::Lost;
        self.loss = Some((cause, elapsed));
    }

    /// After a loss, once no upload is in flight: what runs again, and on which market.
    fn settle_loss(&mut self, actions: &mut Vec<Action>) {
        let Some((cause, elapsed)) = self.loss.take() else {
            return;
        };
        let finished: Vec<bool> = self
            .stages
            .iter()
            .map(|s| s.state == StageState::Done)
            .collect();
        let committed: Vec<bool> = self.stages.iter().map(|s| s.committed).collect();
        let rerun = recompute_set(&self.setup.needs, &finished, &committed);
        for (s, again) in rerun.iter().enumerate() {
            if *again && self.stages[s].state == StageState::Done {
                self.stages[s].state = StageState::Waiting;
            }
        }
        let decision: MarketDecision = next_market(
            &self.setup.fallback,
            &MarketSituation {
                current: self.market,
                interruptions: self.interruptions,
                elapsed,
                remaining_critical: remaining_critical(
                    &self.consumers,
                    &self.setup.estimate,
                    &rerun,
                ),
                mtti: self.setup.mtti,
                provision_time: self.setup.provision_time,
                checkpoint_cost: self.setup.checkpoint_cost,
            },
        );
        self.market = decision.market;
        self.cluster = ClusterState::None;
        if self.failure.is_none() && rerun.iter().any(|r| *r) {
            self.provision(
                format!(
                    "after interruption {} ({cause}): {}",
                    self.interruptions, decision.reason
                ),
                actions,
            );
        }
    }

    /// Launches and restores what can go, and finishes the run when nothing is left.
    fn advance(&mut self, actions: &mut Vec<Action>) {
        let busy = self.stages.iter().any(|s| {
            matches!(
                s.state,
                StageState::Running { .. } | StageState::Persisting { .. } | StageState::Backoff
            )
        });
        if let Some((stage, code)) = self.failure {
            if !busy {
                actions.push(Action::Terminate);
                actions.push(Action::Finish(Outcome::Failed {
                    stage,
                    code,
                    attempts: self.stages[stage].attempts,
                }));
                self.finished = true;
            }
            return;
        }
        let all_done = self.stages.iter().all(|s| s.state == StageState::Done);
        if all_done {
            let unpublished =
                (0..self.stages.len()).any(|s| self.setup.is_final[s] && !self.stages[s].published);
            if !unpublished {
                if self.cluster != ClusterState::None {
                    actions.push(Action::Terminate);
                    self.cluster = ClusterState::None;
                }
                actions.push(Action::Finish(Outcome::Succeeded));
                self.finished = true;
            } else if self.cluster != ClusterState::None {
                // Publishing needs only the store: release the cluster now.
                actions.push(Action::Terminate);
                self.cluster = ClusterState::None;
            }
            return;
        }
        if self.cluster == ClusterState::None {
            // Lost with nothing left to recompute, then a failure cleared: start again.
            let reason = "work left to do".to_string();
            self.provision(reason, actions);
            return;
        }
        if self.cluster != ClusterState::Ready {
            return;
        }
        let mut running = self
            .stages
            .iter()
            .filter(|s| matches!(s.state, StageState::Running { .. }))
            .count();
        for stage in 0..self.stages.len() {
            if self.stages[stage].state != StageState::Waiting {
                continue;
            }
            // Inputs must be on this cluster; committed ones can be brought back.
            let mut ready = true;
            for &input in &self.setup.needs[stage] {
                let input_status = &self.stages[input];
                if input_status.local {
                    continue;
                }
                ready = false;
                if input_status.committed && !input_status.restoring {
                    self.stages[input].restoring = true;
                    actions.push(Action::Restore {
                        stage: input,
                        generation: self.generation,
                    });
                }
            }
            if ready && running < self.setup.slots {
                let status = &mut self.stages[stage];
                status.attempts += 1;
                status.state = StageState::Running {
                    attempt: status.attempts,
                };
                actions.push(Action::Launch {
                    stage,
                    attempt: status.attempts,
                });
                running += 1;
            }
        }
    }
}
