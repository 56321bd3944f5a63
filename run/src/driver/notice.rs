//! Warnings before a loss and the replacement cluster they bring: chaos notices on local
//! clusters, handed to the machine as [`Event::Notice`]; a lapse timer for a notice that
//! no loss follows; the replacement the machine asks for, parked until the loss it
//! replaces, and ended when the machine releases it.

use super::handle::seconds;
use super::{Driver, Msg};
use crate::cluster::Cluster;
use respawn_core::contract::event::RunEvent;
use respawn_core::machine::{Event, NoticeKind};
use std::time::Duration;

/// A notice is taken to have lapsed when no loss came in twice its lead (at least this).
const LAPSE_AFTER_AT_LEAST: Duration = Duration::from_secs(1);

impl Driver {
    /// Spot cluster `generation` is up: with chaos, its notices and its loss are timed.
    pub(super) fn schedule_chaos(&mut self, generation: u32) {
        let Some(chaos) = self.chaos.as_mut() else {
            return;
        };
        let fate = chaos.next_fate();
        if fate.one_node {
            let (tx, after) = (self.tx.clone(), fate.loss);
            self.tasks.spawn(async move {
                tokio::time::sleep(after).await;
                let _ = tx.send(Msg::LoseNode { generation });
            });
            return;
        }
        for (at, lead) in fate.notices {
            let tx = self.tx.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(at).await;
                let _ = tx.send(Msg::Notice {
                    generation,
                    kind: NoticeKind::Interruption,
                    lead,
                    instances: Vec::new(),
                });
            });
        }
        let after = fate.loss;
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(Msg::Lose {
                generation,
                cause: format!(
                    "spot interruption (chaos, after {:.1}s)",
                    after.as_secs_f64()
                ),
            });
        });
    }

    /// The cluster of `generation` (the current one, or a replacement not yet in use).
    fn cluster_of(&self, generation: u32) -> Option<&Cluster> {
        if self.gone.contains(&generation) {
            return None;
        }
        [self.cluster.as_ref(), self.replacement.as_ref()]
            .into_iter()
            .flatten()
            .find(|c| c.generation() == generation)
    }

    /// A warning about cluster `generation`, or (`whole` false) about some of its nodes
    /// only: that is recorded and the cluster works on. An attempt whose step fails when
    /// those nodes go is interrupted (`ClusterNews::NodesLost`), and EMR brings the fleet
    /// back to its target capacity.
    pub(super) async fn on_notice(
        &mut self,
        generation: u32,
        kind: NoticeKind,
        lead: Duration,
        instances: Vec<String>,
        whole: bool,
    ) {
        if self.cluster_of(generation).is_none() {
            return;
        }
        let nodes = instances.len();
        self.emit(RunEvent::Notice {
            generation,
            kind,
            lead_s: seconds(lead),
            instances,
        });
        if !whole {
            self.emit(RunEvent::Note {
                message: format!(
                    "the notice names {nodes} node(s) of cluster {generation}, not its primary \
                     or all its core nodes: the cluster works on, and an attempt that fails \
                     when they go runs again"
                ),
            });
            return;
        }
        if kind == NoticeKind::Interruption {
            let tx = self.tx.clone();
            let lapse = (lead * 2).max(LAPSE_AFTER_AT_LEAST);
            self.tasks.spawn(async move {
                tokio::time::sleep(lapse).await;
                let _ = tx.send(Msg::NoticeLapsed { generation });
            });
        }
        let event = Event::Notice {
            generation,
            kind,
            lead: lead.as_secs_f64(),
            elapsed: self.started.elapsed().as_secs_f64(),
        };
        self.apply(event, None).await;
    }

    pub(super) async fn on_notice_lapsed(&mut self, generation: u32) {
        if self.cluster_of(generation).is_none() {
            return;
        }
        self.emit(RunEvent::NoticeLapsed { generation });
        self.apply(Event::NoticeLapsed { generation }, None).await;
    }

    /// The machine does not need the replacement `generation`: end it now, or as soon as
    /// it is up.
    pub(super) async fn release_replacement(&mut self, generation: u32, reason: String) {
        self.emit(RunEvent::Note {
            message: format!("releasing cluster {generation}: {reason}"),
        });
        self.gone.insert(generation);
        if self
            .replacement
            .as_ref()
            .is_some_and(|c| c.generation() == generation)
            && let Some(cluster) = self.replacement.take()
        {
            self.end_unused(cluster).await;
        }
    }

    /// Ends a cluster nothing ran on, and records its release.
    pub(super) async fn end_unused(&mut self, cluster: Cluster) {
        let (generation, market, described) =
            (cluster.generation(), cluster.market(), cluster.describe());
        let usage = cluster
            .terminate(Duration::ZERO, std::future::pending())
            .await;
        self.release(generation, market, described, usage);
    }

    /// A cluster that is up while the current one still works waits for the loss as the
    /// replacement; any other is handed back to become the current one.
    pub(super) fn park_replacement(&mut self, cluster: Cluster) -> Option<Cluster> {
        if self.cluster.is_some() && cluster.generation() != self.machine.generation() {
            self.replacement = Some(cluster);
            return None;
        }
        Some(cluster)
    }

    /// After a loss the machine may have moved to the replacement: it becomes current.
    pub(super) fn take_over(&mut self) {
        if self.cluster.is_none()
            && self
                .replacement
                .as_ref()
                .is_some_and(|c| c.generation() == self.machine.generation())
        {
            self.cluster = self.replacement.take();
        }
    }
}
