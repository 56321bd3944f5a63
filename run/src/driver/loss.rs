//! Clusters that end: lost (an interruption, a vanished scratch directory), lost before
//! they were up, terminated at the end of a run (SIGTERM, a grace period that a second
//! Ctrl-C cuts short, SIGKILL), or killed because the run cannot go on.

use super::Driver;
use crate::cluster::{Cluster, Usage};
use crate::ledger::{Interruption, timestamp};
use respawn_core::contract::event::RunEvent;
use respawn_core::machine::{Event, StageState};
use respawn_core::workflow::{Market, StageId};

impl Driver {
    /// The cluster of `generation` is gone (`taken`: the provider took it; otherwise
    /// respawn left it): kill what runs on it, delete its scratch, and tell the machine.
    pub(super) async fn lose(&mut self, generation: u32, cause: String, taken: bool) {
        if self.gone.contains(&generation) {
            return;
        }
        let slot = if self.cluster.as_ref().map(Cluster::generation) == Some(generation) {
            &mut self.cluster
        } else if self.replacement.as_ref().map(Cluster::generation) == Some(generation) {
            &mut self.replacement
        } else {
            return;
        };
        let Some(cluster) = slot.take() else {
            return;
        };
        self.gone.insert(generation);
        let market = cluster.market();
        let described = cluster.describe();
        let usage = cluster.lose().await;
        let released = usage.map(|usage| (described, usage));
        self.settle_lost(generation, market, cause, released, taken)
            .await;
    }

    /// A cluster ended before it was up (EMR could not find the capacity, say), with what
    /// its instances used meanwhile when the provider lists them.
    pub(super) async fn lose_while_provisioning(
        &mut self,
        generation: u32,
        cause: String,
        released: Option<(String, Usage)>,
    ) {
        if self.gone.contains(&generation) {
            return;
        }
        self.gone.insert(generation);
        let market = self.machine.market();
        self.settle_lost(generation, market, cause, released, true)
            .await;
    }

    /// A one-node loss (chaos `partial=`): the attempt on the node taken, if one ran
    /// there, is interrupted and runs again; the cluster works on (a local cluster's node
    /// comes back at once) and its next loss is drawn from now.
    pub(super) async fn lose_node(&mut self, generation: u32) {
        let current = self
            .cluster
            .as_ref()
            .is_some_and(|c| c.generation() == generation && c.is_alive());
        if !current || self.gone.contains(&generation) {
            return;
        }
        let nodes = self.workflow.cluster.slots;
        let running: Vec<(StageId, u32)> = (self.machine.stages().iter().enumerate())
            .filter_map(|(s, status)| match status.state {
                StageState::Running { attempt } => Some((s, self.base_attempt[s] + attempt)),
                _ => None,
            })
            .collect();
        let node = self.chaos.as_mut().map_or(0, |c| c.node(nodes as usize));
        let taken: Vec<(StageId, u32)> = running.get(node).copied().into_iter().collect();
        let cause = "spot interruption of one node (chaos)".to_string();
        let lost = Some((1, nodes.saturating_sub(1), cause));
        self.nodes_lost(generation, taken, lost, true).await;
        self.schedule_chaos(generation);
    }

    /// Nodes of cluster `generation` were reclaimed (`lost`: how many, how many remain,
    /// why; `None` when already told) and took the attempts `taken` (numbered over the
    /// run) with them: each is interrupted and runs again, never charged to its retries,
    /// and the cluster works on. `kill` ends attempts that still run; their end, or the
    /// failed step's, is then no news.
    pub(super) async fn nodes_lost(
        &mut self,
        generation: u32,
        taken: Vec<(StageId, u32)>,
        lost: Option<(u32, u32, String)>,
        kill: bool,
    ) {
        let current = self.machine.generation() == generation && !self.gone.contains(&generation);
        if let Some((nodes, remaining, cause)) = lost {
            self.hold_node_loss(generation, nodes, remaining);
            self.emit(RunEvent::CapacityLost {
                generation,
                nodes,
                remaining,
                cause,
            });
        }
        let running = |s: StageId, attempt: u32| {
            matches!(self.machine.stages()[s].state,
                StageState::Running { attempt: a } if self.base_attempt[s] + a == attempt)
        };
        let taken: Vec<(StageId, u32)> = taken
            .into_iter()
            .filter(|&(s, attempt)| current && running(s, attempt))
            .collect();
        for &(stage, attempt) in &taken {
            self.reclaimed.insert((stage, attempt));
            if kill && let Some(cluster) = self.cluster.as_mut() {
                cluster.kill_attempt(stage, attempt);
            }
            let name = self.workflow.stages[stage].name.clone();
            self.emit(RunEvent::Interrupted {
                stage: name,
                attempt,
            });
        }
        let event = Event::AttemptsLost {
            elapsed: self.started.elapsed().as_secs_f64(),
            generation,
            attempts: taken
                .iter()
                .map(|&(s, attempt)| (s, attempt - self.base_attempt[s]))
                .collect(),
        };
        self.apply(event, None).await;
        self.sync_record();
    }

    /// Tells the machine that cluster `generation` is gone, and records it, with what its
    /// instances used when the provider lists them.
    async fn settle_lost(
        &mut self,
        generation: u32,
        market: Market,
        cause: String,
        released: Option<(String, Usage)>,
        taken: bool,
    ) {
        // A replacement lost before it took over had nothing on it.
        let current = generation == self.machine.generation();
        let interrupted: Vec<RunEvent> = self
            .machine
            .stages()
            .iter()
            .enumerate()
            .filter_map(|(s, status)| match status.state {
                StageState::Running { attempt } if current => Some(RunEvent::Interrupted {
                    stage: self.workflow.stages[s].name.clone(),
                    attempt: self.base_attempt[s] + attempt,
                }),
                _ => None,
            })
            .collect();
        for event in interrupted {
            self.emit(event);
        }
        let at = timestamp(self.clock.now());
        self.add_held(generation, market, taken);
        self.with_record(|record| {
            record.interruptions.push(Interruption {
                at,
                market: market.as_str().into(),
                cause: cause.clone(),
            })
        });
        if current {
            self.local = vec![None; self.workflow.stages.len()];
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let actions = self.machine.apply(Event::ClusterLost {
            generation,
            cause: cause.clone(),
            elapsed,
        });
        self.emit(RunEvent::ClusterLost {
            generation,
            market,
            cause,
            interruptions: self.machine.interruptions(),
        });
        if let Some((cluster, usage)) = released {
            self.release(generation, market, cluster, Some(usage));
        }
        self.sync_record();
        self.take_over();
        self.execute(actions).await;
    }

    /// Ends every process of the cluster (SIGTERM, then SIGKILL after the grace period or
    /// at a second Ctrl-C) and deletes its scratch directory.
    pub(super) async fn terminate(&mut self) {
        if let Some(replacement) = self.replacement.take() {
            self.gone.insert(replacement.generation());
            self.end_unused(replacement).await;
        }
        let Some(cluster) = self.cluster.take() else {
            return;
        };
        let generation = cluster.generation();
        let market = cluster.market();
        let described = cluster.describe();
        self.gone.insert(generation);
        let signals = &mut self.signals;
        let hurry = async move {
            match signals.as_mut() {
                Some(signals) => signals.next_stop().await,
                None => std::future::pending().await,
            }
        };
        let usage = cluster.terminate(self.settings.stop_grace, hurry).await;
        self.release(generation, market, described, usage);
    }

    /// Records a cluster's end: its instance-hours in the run record, and the event with
    /// its instances per fleet, type and market.
    pub(super) fn release(
        &mut self,
        generation: u32,
        market: Market,
        cluster: String,
        usage: Option<Usage>,
    ) {
        self.add_held(generation, market, false);
        self.add_hours(market, usage.as_ref().map(|u| u.instance_hours));
        self.emit(RunEvent::ClusterReleased {
            generation,
            cluster,
            instance_hours: usage.as_ref().map(|u| u.instance_hours),
            instances: usage.map(|u| u.instances),
        });
    }

    /// Kills what runs, at once (the run cannot go on).
    pub(super) async fn kill_everything(&mut self) {
        if let Some(replacement) = self.replacement.take() {
            let market = replacement.market();
            self.add_held(replacement.generation(), market, false);
            let usage = replacement.lose().await;
            self.add_hours(market, usage.map(|u| u.instance_hours));
        }
        if let Some(cluster) = self.cluster.take() {
            let market = cluster.market();
            self.add_held(cluster.generation(), market, false);
            let usage = cluster.lose().await;
            self.add_hours(market, usage.map(|u| u.instance_hours));
        }
    }
}
