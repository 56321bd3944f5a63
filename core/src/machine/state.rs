//! The run loop as a pure state machine: `apply(Event) -> Vec<Action>`.
//!
//! It knows the DAG, which work-tables the plan checkpoints, the slots of a cluster and
//! the retry budget; it decides what to launch, persist, restore and publish, and what a
//! cluster loss or a stage failure means. It never sleeps, reads a clock or touches the
//! store: the driver executes the actions and reports what happened as events. The
//! recompute set and the market choice are the planner's functions; the simulator drives
//! this same machine in virtual time, so what launches when is decided here only.
//!
//! Launch order: among the stages whose inputs are on the cluster, the one with the
//! longest remaining path (its bottom level, [`launch_order`]) goes first. A stage holds a
//! slot while it runs; its checkpoint upload and the restores of its inputs do not.

use super::tally::Tally;
use super::{Action, Event, Exit, Outcome, Setup};
use crate::plan::launch_order;
use crate::workflow::{Market, StageId, graph};
use notice::{Replacement, Window};
use std::sync::Arc;
use std::time::Duration;

mod loss;
mod notice;

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

/// What never changes during a run, shared by the clones of a machine (the simulator
/// clones one per trial).
#[derive(Debug)]
struct Shape {
    setup: Setup,
    consumers: Vec<Vec<StageId>>,
    /// Stages by launch priority, highest first.
    launch_order: Vec<StageId>,
    /// Each stage's position in `launch_order`.
    rank: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Machine {
    shape: Arc<Shape>,
    run: Run,
}

/// What changes during a run. Its methods take the shape beside it, so that an event
/// costs no reference count (the simulator's threads share one shape).
#[derive(Clone, Debug)]
struct Run {
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
    /// A notice the current cluster got, while it lasts.
    window: Option<Window>,
    /// The generation of a cluster the run is leaving ([`Action::Abandon`]).
    leaving: Option<u32>,
    /// The cluster asked for on an interruption notice, to take over at the loss.
    replacement: Option<Replacement>,
    finished: bool,
    tally: Tally,
    /// Something may need a restore (a new cluster, a stage waiting again, a commit that
    /// landed after a loss): the next launch pass looks at every waiting stage's inputs.
    restores_due: bool,
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
        let launch_order = launch_order(&setup.needs, &setup.estimate);
        let mut rank = vec![0; n];
        for (position, &stage) in launch_order.iter().enumerate() {
            rank[stage] = position;
        }
        let tally = Tally::new(&setup.needs, &rank);
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
        let run = Run {
            market: setup.market,
            stages: vec![status; n],
            cluster: ClusterState::None,
            generation: 0,
            interruptions: 0,
            failure: None,
            loss: None,
            window: None,
            leaving: None,
            replacement: None,
            finished: false,
            tally,
            restores_due: true,
        };
        Machine {
            shape: Arc::new(Shape {
                setup,
                consumers,
                launch_order,
                rank,
            }),
            run,
        }
    }

    /// Continues a run that an earlier process drove: its cluster generations and
    /// interruptions go on counting from where they were (so a new cluster never reuses
    /// an earlier one's number, and `after_interruptions` counts every loss of the run),
    /// and a run that had fallen back to on-demand stays there. Called before
    /// [`Event::Started`].
    pub fn resume(&mut self, generations: u32, interruptions: u32, market: Option<Market>) {
        self.run.generation = self.run.generation.max(generations);
        self.run.interruptions = self.run.interruptions.max(interruptions);
        if market == Some(Market::OnDemand) {
            self.run.market = Market::OnDemand;
        }
    }

    pub fn stages(&self) -> &[StageStatus] {
        &self.run.stages
    }

    pub fn market(&self) -> Market {
        self.run.market
    }

    pub fn interruptions(&self) -> u32 {
        self.run.interruptions
    }

    /// The generation of the current cluster (the one stages launch on).
    pub fn generation(&self) -> u32 {
        self.run.generation
    }

    pub fn is_finished(&self) -> bool {
        self.run.finished
    }

    /// The order in which the machine launches stages that are ready at the same time.
    pub fn launch_order(&self) -> &[StageId] {
        &self.shape.launch_order
    }

    pub fn apply(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        self.apply_into(event, &mut actions);
        actions
    }

    /// [`Machine::apply`], appending to `actions` (a caller applying millions of events
    /// reuses one buffer).
    pub fn apply_into(&mut self, event: Event, actions: &mut Vec<Action>) {
        self.run.apply(&self.shape, event, actions);
    }
}

impl Run {
    fn set_state(&mut self, shape: &Shape, stage: StageId, state: StageState) {
        let from = std::mem::replace(&mut self.stages[stage].state, state);
        self.tally.change(from, state);
        if state == StageState::Waiting && from != StageState::Waiting {
            self.restores_due = true;
            self.tally.offer(stage, &shape.rank);
        }
    }

    /// The stage's work-table is now on the cluster.
    fn make_local(&mut self, shape: &Shape, stage: StageId) {
        if !std::mem::replace(&mut self.stages[stage].local, true) {
            if self.stages[stage].committed {
                self.tally.away -= 1;
            }
            self.tally.arrived(&shape.consumers[stage], &shape.rank);
        }
        self.stages[stage].restoring = false;
    }

    fn apply(&mut self, shape: &Shape, event: Event, actions: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        match event {
            Event::Started {
                committed,
                published,
            } => self.start(shape, &committed, &published, actions),
            Event::ClusterReady { generation } => {
                if generation == self.generation && self.cluster == ClusterState::Provisioning {
                    self.cluster = ClusterState::Ready;
                    self.restores_due = true;
                }
                self.replacement_ready(generation);
            }
            Event::StageExited {
                stage,
                attempt,
                exit,
            } => {
                if self.stages[stage].state != (StageState::Running { attempt }) {
                    // An attempt from a lost cluster: already counted as interrupted.
                    return;
                }
                self.exited(shape, stage, attempt, exit, actions);
            }
            Event::PersistFailed { stage, attempt } => {
                if self.stages[stage].state == (StageState::Persisting { attempt }) {
                    self.set_state(shape, stage, StageState::Waiting);
                }
            }
            Event::Committed { stage, .. } => self.committed(shape, stage, actions),
            Event::Restored { stage, generation } => {
                if generation == self.generation {
                    self.make_local(shape, stage);
                }
            }
            Event::Published { stage } => self.stages[stage].published = true,
            Event::ClusterLost {
                generation,
                cause,
                elapsed,
            } => self.lose_cluster(shape, generation, cause, elapsed),
            Event::AttemptsLost {
                generation,
                attempts,
                elapsed,
            } => self.lose_attempts(shape, generation, &attempts, elapsed, actions),
            Event::Notice {
                generation,
                kind,
                lead,
                elapsed,
            } => self.notice(shape, generation, kind, lead, elapsed, actions),
            Event::NoticeLapsed { generation } => self.lapse(generation, actions),
            Event::RetryDue { stage } => {
                if self.stages[stage].state == StageState::Backoff {
                    self.set_state(shape, stage, StageState::Waiting);
                }
            }
            Event::Stop => {
                self.release_replacement("the run stops", actions);
                actions.push(Action::Terminate);
                actions.push(Action::Finish(Outcome::Stopped));
                self.finished = true;
                return;
            }
        }
        if self.cluster == ClusterState::Lost && self.tally.persisting == 0 {
            self.settle_loss(shape, actions);
        }
        self.advance(shape, actions);
    }

    /// The run starts (or resumes) with what the store holds: only what a final output
    /// still needs runs, and a cluster is asked for when anything does.
    fn start(
        &mut self,
        shape: &Shape,
        committed: &[bool],
        published: &[bool],
        actions: &mut Vec<Action>,
    ) {
        let setup = &shape.setup;
        for (s, status) in self.stages.iter_mut().enumerate() {
            status.committed = committed.get(s).copied().unwrap_or(false);
            status.published = published.get(s).copied().unwrap_or(false) && status.committed;
        }
        self.tally.away = self.stages.iter().filter(|s| s.committed).count();
        // An uncommitted stage whose consumers are all committed is left alone.
        let n = self.stages.len();
        let mut needed = vec![false; n];
        for s in (0..n).rev() {
            needed[s] = !self.stages[s].committed
                && (setup.is_final[s] || shape.consumers[s].iter().any(|&c| needed[c]));
        }
        for (s, needed) in needed.into_iter().enumerate() {
            if !needed {
                self.set_state(shape, s, StageState::Done);
            }
        }
        // Committed finals that are not published yet need no cluster.
        for s in 0..self.stages.len() {
            if setup.is_final[s] && self.stages[s].committed && !self.stages[s].published {
                actions.push(Action::Publish { stage: s });
            }
        }
        if self.stages.iter().all(|s| s.state == StageState::Done) {
            return;
        }
        let reason = match &setup.auto_market {
            Some(auto) => {
                let decision = self.resumed_choice(shape, auto);
                self.market = decision.market;
                actions.push(Action::MarketChosen {
                    market: decision.market,
                    reason: decision.reason.clone(),
                });
                format!("start: {}", decision.reason)
            }
            None => "start".into(),
        };
        self.check_deadline(shape, 0.0, actions);
        self.provision(reason, actions);
    }

    /// The running attempt of `stage` exited: persist it, retry it, or give up on it.
    fn exited(
        &mut self,
        shape: &Shape,
        stage: StageId,
        attempt: u32,
        exit: Exit,
        actions: &mut Vec<Action>,
    ) {
        let setup = &shape.setup;
        match exit {
            Exit::Success => {
                self.make_local(shape, stage);
                let planned = setup.checkpoint[stage] && !self.stages[stage].committed;
                if planned || self.save_in_window(shape, stage) {
                    self.set_state(shape, stage, StageState::Persisting { attempt });
                    actions.push(Action::Persist { stage, attempt });
                } else {
                    self.set_state(shape, stage, StageState::Done);
                }
            }
            Exit::Failed { .. } if self.stages[stage].failures < setup.retries => {
                self.stages[stage].failures += 1;
                self.set_state(shape, stage, StageState::Backoff);
                actions.push(Action::RetryAfter {
                    stage,
                    delay: retry_delay(self.stages[stage].failures),
                });
            }
            Exit::Failed { code } | Exit::Refused { code } => {
                self.stages[stage].failures += 1;
                self.set_state(shape, stage, StageState::Waiting);
                self.failure.get_or_insert((stage, code));
            }
        }
    }

    /// A COMMIT landed: it is durable even if the cluster was lost meanwhile.
    fn committed(&mut self, shape: &Shape, stage: StageId, actions: &mut Vec<Action>) {
        if !std::mem::replace(&mut self.stages[stage].committed, true) && !self.stages[stage].local
        {
            self.tally.away += 1;
            self.restores_due = true;
        }
        if matches!(
            self.stages[stage].state,
            StageState::Persisting { .. } | StageState::Waiting
        ) {
            self.set_state(shape, stage, StageState::Done);
        }
        if shape.setup.is_final[stage] && !self.stages[stage].published {
            actions.push(Action::Publish { stage });
        }
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

    fn lose_cluster(&mut self, shape: &Shape, generation: u32, cause: String, elapsed: f64) {
        if self.replacement.is_some_and(|r| r.generation == generation) {
            self.interruptions += 1;
            self.replacement = None;
            return;
        }
        if generation != self.generation
            || matches!(self.cluster, ClusterState::None | ClusterState::Lost)
        {
            return;
        }
        self.window = None;
        self.interruptions += 1;
        for stage in 0..self.stages.len() {
            if let StageState::Running { .. } = self.stages[stage].state {
                self.stages[stage].interrupted += 1;
                self.set_state(shape, stage, StageState::Waiting);
            }
            // A stage still `Persisting` stays so until its upload ends: its COMMIT may
            // have landed (`Committed`) or not (`PersistFailed`, and it runs again).
            self.stages[stage].local = false;
            self.stages[stage].restoring = false;
        }
        self.tally.all_gone(&shape.setup.needs, &shape.rank);
        self.tally.away = self.stages.iter().filter(|s| s.committed).count();
        self.cluster = ClusterState::Lost;
        self.loss = Some((cause, elapsed));
    }

    /// Launches and restores what can go, and finishes the run when nothing is left.
    fn advance(&mut self, shape: &Shape, actions: &mut Vec<Action>) {
        let setup = &shape.setup;
        let busy = self.tally.busy > 0;
        if let Some((stage, code)) = self.failure {
            if !busy {
                self.release_replacement("the run failed", actions);
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
        let all_done = self.tally.done == self.stages.len();
        if all_done {
            let unpublished =
                (0..self.stages.len()).any(|s| setup.is_final[s] && !self.stages[s].published);
            self.release_replacement("every stage is done", actions);
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
        if self.cluster != ClusterState::Ready || self.doomed() {
            return;
        }
        // Inputs must be on this cluster; committed ones can be brought back.
        if std::mem::replace(&mut self.restores_due, false) && self.tally.away > 0 {
            for &stage in &shape.launch_order {
                if self.stages[stage].state != StageState::Waiting || self.tally.missing[stage] == 0
                {
                    continue;
                }
                for &input in &setup.needs[stage] {
                    let input_status = &self.stages[input];
                    if !input_status.local && input_status.committed && !input_status.restoring {
                        self.stages[input].restoring = true;
                        actions.push(Action::Restore {
                            stage: input,
                            generation: self.generation,
                        });
                    }
                }
            }
        }
        // Ready stages, highest priority first, while a slot is free.
        while self.tally.running < setup.slots {
            let Some(rank) = self.tally.ready.pop() else {
                break;
            };
            let stage = shape.launch_order[rank.0];
            if self.stages[stage].state != StageState::Waiting || self.tally.missing[stage] != 0 {
                continue; // offered when it was ready; it is not any more
            }
            self.stages[stage].attempts += 1;
            let attempt = self.stages[stage].attempts;
            self.set_state(shape, stage, StageState::Running { attempt });
            actions.push(Action::Launch { stage, attempt });
        }
    }
}
