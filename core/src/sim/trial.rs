//! One simulated run: the engine's machine driven in virtual time.
//!
//! The simulator plays the cluster and the store for [`Machine::apply`], with these times:
//! a launched stage exits after its estimate; a checkpoint upload commits after the
//! work-table's write time (the stage's slot is free meanwhile, as in the engine); a
//! restore lands after the read time; publishing takes no time. The first cluster is
//! ready at time 0 (the makespan is counted from there); a new cluster after a loss takes
//! `provision_time` and is billed from when its capacity is there: at once, or on a
//! capacity trace when the spell of no capacity ends; a spot request that would wait past
//! the spot timeout (`cluster.emr.spot_timeout`, 20m unless set) fails then, as an EMR spot
//! fleet does, and counts as a loss. A spot cluster is lost at exponential
//! intervals with mean MTTI, drawn when it becomes ready, or at the times of a trace; an
//! on-demand cluster never is. A loss ends every running stage and fails every upload in
//! flight (the work-table was on the lost cluster). A trial costs its clusters plus its
//! intermediate checkpoints' storage until the run ends.

use super::{MAX_INTERRUPTIONS, TrialInterruptions, TrialOutcome};
use crate::machine::{Action, Event, Exit, Machine, NoticeKind, Setup};
use crate::plan::Plan;
use crate::plan::prices::storage_rate;
use crate::workflow::{Market, StageId, Workflow};
use rand::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

mod losses;

/// The simulator for one plan: a machine ready to start, and the workflow's numbers.
pub struct Simulator<'w> {
    workflow: &'w Workflow,
    machine: Machine,
    work: Vec<f64>,
    write: Vec<f64>,
    restore: Vec<f64>,
    size_gb: Vec<f64>,
    provision_time: f64,
    /// Seconds of warning before each loss of a spot cluster (`cluster.notice`).
    notice: Option<f64>,
    time_limit: f64,
    /// The cluster's price per hour on spot and on-demand, read once.
    prices: [f64; 2],
    /// The share of losses that take one node (slot) of the cluster, not all of it.
    partial: f64,
    slots: usize,
    /// How long a spot request waits for capacity before it fails (EMR's spot timeout).
    spot_timeout: f64,
}

/// What a trial fed the machine, kept when asked for (tests replay it into a fresh machine).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrialEvents {
    pub events: Vec<Event>,
    /// Launches in the order the machine asked for them: (stage, attempt).
    pub launches: Vec<(StageId, u32)>,
}

/// Something the simulated cluster or store will report at a time.
#[derive(Clone, Copy, Debug)]
enum Due {
    Ready {
        generation: u32,
    },
    Lost {
        generation: u32,
    },
    /// `nodes` nodes of cluster `generation` are reclaimed (see [`Simulator::with_partial`]
    /// and capacity traces).
    NodeLost {
        generation: u32,
        nodes: usize,
    },
    Notice {
        generation: u32,
        loss_at: f64,
    },
    Exited {
        stage: StageId,
        attempt: u32,
    },
    Committed {
        stage: StageId,
        attempt: u32,
    },
    Restored {
        stage: StageId,
        generation: u32,
    },
    Published {
        stage: StageId,
    },
    BackoffOver {
        stage: StageId,
    },
}

/// A due report, ordered by time, then by the order it was scheduled in.
struct Pending {
    at: f64,
    sequence: u64,
    due: Due,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at
            .total_cmp(&other.at)
            .then(self.sequence.cmp(&other.sequence))
    }
}

/// The simulated world of one trial: the clock, the cluster and the reports to come.
struct World {
    now: f64,
    sequence: u64,
    queue: BinaryHeap<Reverse<Pending>>,
    /// The generation of the cluster that is up or coming, its market, and when its bill began.
    generation: u32,
    market: Market,
    billed_since: f64,
    /// The current cluster is asked for or up (not lost or released).
    alive: bool,
    /// When the current cluster will be lost, once drawn.
    loss_at: Option<f64>,
    /// A cluster asked for on a notice: generation, market, when it was asked for, ready.
    replacement: Option<(u32, Market, f64, bool)>,
    /// The attempt running per stage and when it started: what a loss throws away.
    running: Vec<Option<(u32, f64)>>,
    /// Stages that succeeded once: running them again recomputes a lost work-table.
    succeeded: Vec<bool>,
    /// Uploads in flight: (stage, attempt).
    uploads: Vec<(StageId, u32)>,
    committed_at: Vec<Option<f64>>,
    trace_position: usize,
    finished: bool,
}

impl World {
    /// The world before the run starts: no cluster, nothing run.
    fn new(stages: usize, market: Market) -> World {
        World {
            now: 0.0,
            sequence: 0,
            queue: BinaryHeap::new(),
            generation: 0,
            market,
            billed_since: 0.0,
            alive: false,
            loss_at: None,
            replacement: None,
            running: vec![None; stages],
            succeeded: vec![false; stages],
            uploads: Vec::new(),
            committed_at: vec![None; stages],
            trace_position: 0,
            finished: false,
        }
    }

    fn schedule(&mut self, at: f64, due: Due) {
        self.sequence += 1;
        self.queue.push(Reverse(Pending {
            at,
            sequence: self.sequence,
            due,
        }));
    }
}

impl<'w> Simulator<'w> {
    pub fn new(workflow: &'w Workflow, plan: &Plan, time_limit: f64) -> Self {
        let mut setup = Setup::new(workflow, plan);
        setup.explain = false;
        Simulator {
            workflow,
            machine: Machine::new(setup),
            work: workflow
                .stages
                .iter()
                .map(|s| s.estimate.as_secs_f64())
                .collect(),
            write: plan.stages.iter().map(|s| s.checkpoint_cost).collect(),
            restore: plan.stages.iter().map(|s| s.restore_cost).collect(),
            size_gb: workflow
                .stages
                .iter()
                .map(|s| s.output_size as f64 / 1e9)
                .collect(),
            provision_time: plan.provision_time,
            notice: plan.notice,
            time_limit,
            prices: [
                super::price_per_hour(workflow, Market::Spot),
                super::price_per_hour(workflow, Market::OnDemand),
            ],
            partial: 0.0,
            slots: workflow.cluster.slots as usize,
            spot_timeout: workflow
                .cluster
                .emr
                .as_ref()
                .map_or(crate::workflow::defaults::SPOT_TIMEOUT, |e| e.spot_timeout)
                .as_secs_f64(),
        }
    }

    /// Makes that share of losses take one node, drawn among `cluster.slots`: the attempt
    /// on it (if any) is lost work and runs again on the same cluster (the machine's
    /// `AttemptsLost`, as a run's), and the cluster's next loss is drawn from there.
    pub fn with_partial(mut self, share: f64) -> Self {
        self.partial = share.clamp(0.0, 1.0);
        self
    }

    fn price(&self, market: Market) -> f64 {
        match market {
            Market::Spot => self.prices[0],
            Market::OnDemand => self.prices[1],
        }
    }

    /// Runs the workflow once. `rng` draws exponential interruptions.
    pub fn run(&self, interruptions: TrialInterruptions, rng: &mut impl Rng) -> TrialOutcome {
        self.run_inner(interruptions, rng, None)
    }

    /// [`Simulator::run`], keeping every event fed to the machine and every launch.
    pub fn run_recorded(
        &self,
        interruptions: TrialInterruptions,
        rng: &mut impl Rng,
    ) -> (TrialOutcome, TrialEvents) {
        let mut record = TrialEvents::default();
        let outcome = self.run_inner(interruptions, rng, Some(&mut record));
        (outcome, record)
    }

    fn run_inner(
        &self,
        interruptions: TrialInterruptions,
        rng: &mut impl Rng,
        mut record: Option<&mut TrialEvents>,
    ) -> TrialOutcome {
        let n = self.work.len();
        let mut machine = self.machine.clone();
        let mut outcome = TrialOutcome::default();
        let start_market = machine.market();
        let mut world = World::new(n, start_market);
        let mut actions = Vec::new();
        // Events to feed the machine now, before the clock moves on.
        let mut inbox = VecDeque::from([Event::Started {
            committed: vec![false; n],
            published: vec![false; n],
        }]);
        loop {
            while let Some(event) = inbox.pop_front() {
                if let Some(record) = record.as_deref_mut() {
                    record.events.push(event.clone());
                }
                machine.apply_into(event, &mut actions);
                for action in actions.drain(..) {
                    if let Action::Launch { stage, attempt } = action
                        && let Some(record) = record.as_deref_mut()
                    {
                        record.launches.push((stage, attempt));
                    }
                    self.act(
                        action,
                        &mut world,
                        &mut outcome,
                        start_market,
                        interruptions,
                    );
                }
            }
            if world.finished {
                break;
            }
            let Some(Reverse(next)) = world.queue.pop() else {
                // Nothing more will happen and the run is not over: a broken graph.
                outcome.censored = true;
                break;
            };
            world.now = next.at;
            if !self.happen(
                next.due,
                &mut world,
                &mut outcome,
                interruptions,
                rng,
                &mut inbox,
            ) {
                outcome.censored = true;
                break;
            }
        }
        self.settle(&world, &mut outcome);
        outcome
    }

    /// What comes due now, as the events it gives the machine (into `inbox`); false when
    /// the trial must stop (it hit the simulation's limits).
    fn happen(
        &self,
        due: Due,
        world: &mut World,
        outcome: &mut TrialOutcome,
        interruptions: TrialInterruptions,
        rng: &mut impl Rng,
        inbox: &mut VecDeque<Event>,
    ) -> bool {
        let event = match due {
            Due::Ready { generation } => self.cluster_ready(generation, interruptions, world, rng),
            Due::NodeLost { generation, nodes } => {
                self.node_lost(generation, nodes, interruptions, world, outcome, rng)
            }
            Due::Lost { generation } => {
                let Some(events) = self.cluster_lost(generation, world, outcome) else {
                    return false;
                };
                inbox.extend(events);
                None
            }
            Due::Notice {
                generation,
                loss_at,
            } => {
                let current = generation == world.generation && world.alive;
                let waiting = world.replacement.is_some_and(|r| r.0 == generation);
                (current || waiting).then_some(Event::Notice {
                    generation,
                    kind: NoticeKind::Interruption,
                    lead: loss_at - world.now,
                    elapsed: world.now,
                })
            }
            Due::Exited { stage, attempt } => {
                if world.running[stage].is_some_and(|(a, _)| a == attempt) {
                    world.running[stage] = None;
                    if std::mem::replace(&mut world.succeeded[stage], true) {
                        outcome.lost_work += self.work[stage];
                    }
                }
                Some(Event::StageExited {
                    stage,
                    attempt,
                    exit: Exit::Success,
                })
            }
            Due::Committed { stage, attempt } => {
                // An upload no longer listed failed with its cluster.
                let at = world.uploads.iter().position(|&u| u == (stage, attempt));
                at.map(|at| {
                    world.uploads.swap_remove(at);
                    world.committed_at[stage] = Some(world.now);
                    Event::Committed { stage, attempt }
                })
            }
            Due::Restored { stage, generation } => Some(Event::Restored { stage, generation }),
            Due::Published { stage } => Some(Event::Published { stage }),
            Due::BackoffOver { stage } => Some(Event::RetryDue { stage }),
        };
        inbox.extend(event);
        true
    }

    /// The trial's end: its makespan, the cluster billed to the end, and the storage of
    /// the checkpoints of stages that are not final.
    fn settle(&self, world: &World, outcome: &mut TrialOutcome) {
        outcome.makespan = world.now;
        if !world.finished {
            outcome.cost +=
                (world.now - world.billed_since).max(0.0) / 3600.0 * self.price(world.market);
        }
        let n = self.work.len();
        outcome.checkpoint_gb_hours = (0..n)
            .filter(|&s| !self.workflow.stages[s].is_final)
            .filter_map(|s| world.committed_at[s].map(|at| (s, at)))
            // A fold from +0.0: summing no floats gives -0.0.
            .fold(0.0, |total, (s, at)| {
                total + self.size_gb[s] * (world.now - at) / 3600.0
            });
        // Checkpoint storage is part of the bill, as `respawn cost` counts it.
        outcome.cost += outcome.checkpoint_gb_hours * storage_rate(&self.workflow.cost).per_hour;
    }

    /// Plays one action of the machine: schedules what the cluster or store reports back.
    fn act(
        &self,
        action: Action,
        world: &mut World,
        outcome: &mut TrialOutcome,
        start: Market,
        interruptions: TrialInterruptions,
    ) {
        let now = world.now;
        match action {
            Action::Provision {
                market, generation, ..
            } => {
                if market != start {
                    outcome.fell_back = true;
                }
                // Capacity, and the bill, come when the market has it; a spot request
                // that waits past the spot timeout fails then, billed nothing.
                let capacity = match market {
                    Market::Spot => self.capacity_at(now, interruptions),
                    Market::OnDemand => Some(now),
                };
                let billed_from = capacity.unwrap_or(now + self.spot_timeout);
                if world.alive {
                    // Asked for on a notice, while the current cluster still works.
                    world.replacement = Some((generation, market, billed_from, false));
                } else {
                    world.generation = generation;
                    world.market = market;
                    world.alive = true;
                    world.loss_at = None;
                    world.billed_since = billed_from;
                }
                // The first cluster is ready at time 0; later ones take provision_time.
                let delay = if generation == 1 {
                    0.0
                } else {
                    self.provision_time
                };
                match capacity {
                    Some(at) => world.schedule(at + delay, Due::Ready { generation }),
                    None => world.schedule(billed_from, Due::Lost { generation }),
                }
            }
            Action::Release { generation, .. } => {
                if let Some((g, market, since, _)) = world.replacement
                    && g == generation
                {
                    outcome.cost += (now - since).max(0.0) / 3600.0 * self.price(market);
                    world.replacement = None;
                }
            }
            Action::Restore { stage, generation } => {
                world.schedule(
                    now + self.restore[stage],
                    Due::Restored { stage, generation },
                );
            }
            Action::Launch { stage, attempt } => {
                outcome.attempts += 1;
                world.running[stage] = Some((attempt, now));
                world.schedule(now + self.work[stage], Due::Exited { stage, attempt });
            }
            Action::Persist { stage, attempt } => {
                world.uploads.push((stage, attempt));
                world.schedule(now + self.write[stage], Due::Committed { stage, attempt });
            }
            Action::Publish { stage } => world.schedule(now, Due::Published { stage }),
            // Leaving the cluster is a loss now, reported as one.
            Action::Abandon { generation, .. } => world.schedule(now, Due::Lost { generation }),
            Action::MarketChosen { .. } | Action::DeadlineAtRisk { .. } => {}
            Action::RetryAfter { stage, delay } => {
                world.schedule(now + delay.as_secs_f64(), Due::BackoffOver { stage });
            }
            Action::Terminate => {
                outcome.cost +=
                    (now - world.billed_since).max(0.0) / 3600.0 * self.price(world.market);
                world.billed_since = now;
                // Reports of the released cluster are void.
                world.generation += 1;
                world.alive = false;
            }
            Action::Finish(_) => world.finished = true,
        }
    }
}

impl Simulator<'_> {
    /// A cluster is up: the current one, or a replacement waiting for the current one's
    /// loss. A spot cluster's loss is drawn now (a replacement's, in a trace, after the
    /// loss it replaces), with its notice ahead of it.
    fn cluster_ready(
        &self,
        generation: u32,
        interruptions: TrialInterruptions,
        world: &mut World,
        rng: &mut impl Rng,
    ) -> Option<Event> {
        let (market, after) = if generation == world.generation && world.alive {
            (world.market, world.now)
        } else if let Some((g, market, _, ready)) = world.replacement.as_mut()
            && *g == generation
        {
            *ready = true;
            (*market, world.loss_at.unwrap_or(world.now).max(world.now))
        } else {
            return None; // released, or lost while it was asked for
        };
        if market == Market::Spot {
            self.schedule_loss(generation, after, interruptions, world, rng);
        }
        Some(Event::ClusterReady { generation })
    }

    /// A spot cluster is reclaimed. The current one: its bill ends, its running attempts
    /// are lost work, a replacement (if asked for) becomes current; the loss and the
    /// uploads it failed are returned for the machine. A replacement before it took over:
    /// only its bill and the loss. `None` when the trial hit its limits.
    fn cluster_lost(
        &self,
        generation: u32,
        world: &mut World,
        outcome: &mut TrialOutcome,
    ) -> Option<Vec<Event>> {
        let lost = Event::ClusterLost {
            generation,
            cause: String::new(),
            elapsed: world.now,
        };
        if let Some((g, market, since, _)) = world.replacement
            && g == generation
        {
            outcome.interruptions += 1;
            outcome.cost += (world.now - since).max(0.0) / 3600.0 * self.price(market);
            world.replacement = None;
            return Some(vec![lost]);
        }
        if generation != world.generation || !world.alive {
            return Some(Vec::new());
        }
        outcome.interruptions += 1;
        outcome.cost +=
            (world.now - world.billed_since).max(0.0) / 3600.0 * self.price(world.market);
        for running in world.running.iter_mut() {
            if let Some((_, started)) = running.take() {
                outcome.lost_work += world.now - started;
            }
        }
        match world.replacement.take() {
            Some((g, market, since, _)) => {
                world.generation = g;
                world.market = market;
                world.billed_since = since;
                world.loss_at = None;
            }
            None => {
                // The next cluster is billed from the loss on; its generation voids the
                // reports of the lost one.
                world.billed_since = world.now;
                world.generation += 1;
                world.alive = false;
            }
        }
        if outcome.interruptions >= MAX_INTERRUPTIONS || world.now >= self.time_limit {
            return None;
        }
        let mut events = vec![lost];
        for (stage, attempt) in world.uploads.drain(..) {
            events.push(Event::PersistFailed { stage, attempt });
        }
        Some(events)
    }
}
