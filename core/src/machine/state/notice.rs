//! What the machine does with a warning before a loss.
//!
//! An **interruption notice** dooms the current cluster: from then on nothing new launches
//! or is restored on it; attempts that run go on (those that end inside the window keep
//! their work); the finished work-tables that are not in the store and that a stage still
//! to run needs are uploaded, the most valuable first, as many as the window's upload time
//! allows ([`Window::budget`]); and the replacement cluster is asked for at once, on the
//! market the loss would choose, so that its provisioning overlaps the window. At the loss
//! the replacement takes over (or is released if nothing is left to run); if the notice
//! lapses (no loss came), the doomed cluster works on and the replacement is released: the
//! cluster that holds the run's work is the cheaper one to keep.
//!
//! A **rebalance recommendation** is softer: only work-tables cheap to save (their upload
//! at most a tenth of what recomputing them would cost) are uploaded, nothing is frozen
//! and nothing is asked for.
//!
//! The value of a work-table is the stage time its loss would cost: its own estimate and
//! that of every producer upstream that is not in the store either. The window's budget is
//! counted in seconds of upload at `checkpoint.write_throughput` (uploads share the link,
//! so their times add up).

use super::{ClusterState, Run, Shape, StageState};
use crate::machine::{Action, NoticeKind};
use crate::workflow::{Market, StageId};

/// A notice the current cluster got.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    generation: u32,
    kind: NoticeKind,
    /// Seconds of upload the window has left for work-tables not planned as checkpoints.
    budget: f64,
}

/// A cluster asked for on a notice, before the loss it is to replace.
#[derive(Clone, Copy, Debug)]
pub(super) struct Replacement {
    pub generation: u32,
    market: Market,
    ready: bool,
}

/// A rebalance recommendation saves a work-table whose recompute costs at least this many
/// times its upload.
const REBALANCE_WORTH: f64 = 10.0;

impl Run {
    /// Nothing new goes on the current cluster: it will be reclaimed.
    pub(super) fn doomed(&self) -> bool {
        self.leaving == Some(self.generation)
            || self.window.is_some_and(|w| {
                w.kind == NoticeKind::Interruption && w.generation == self.generation
            })
    }

    pub(super) fn notice(
        &mut self,
        shape: &Shape,
        generation: u32,
        kind: NoticeKind,
        lead: f64,
        elapsed: f64,
        actions: &mut Vec<Action>,
    ) {
        let up = matches!(
            self.cluster,
            ClusterState::Ready | ClusterState::Provisioning
        );
        if generation != self.generation || !up || self.doomed() {
            return;
        }
        let budget = match kind {
            NoticeKind::Interruption => lead.max(0.0),
            NoticeKind::Rebalance => f64::INFINITY,
        };
        self.window = Some(Window {
            generation,
            kind,
            budget,
        });
        self.save_finished(shape, actions);
        if kind == NoticeKind::Interruption {
            self.request_replacement(shape, elapsed, actions);
        }
    }

    /// The announced loss did not come: the cluster works on; a replacement is released.
    pub(super) fn lapse(&mut self, generation: u32, actions: &mut Vec<Action>) {
        if self.window.is_some_and(|w| w.generation == generation) {
            self.window = None;
            self.restores_due = true;
            let reason = format!(
                "the notice for cluster {generation} lapsed: it holds the run's work and is kept"
            );
            self.release_replacement(&reason, actions);
        }
    }

    /// A stage that just succeeded on a warned cluster: upload its work-table in the
    /// window if a stage still to run needs it, it is worth it and the window has room.
    pub(super) fn save_in_window(&mut self, shape: &Shape, stage: StageId) -> bool {
        if self.window.is_none() || !self.worth_saving(shape, stage) {
            return false;
        }
        let cost = shape.setup.write_time[stage];
        let value = self.loss_value(shape, stage);
        self.spend(cost, value)
    }

    /// Takes `cost` seconds of upload from the window for a work-table worth `value`.
    fn spend(&mut self, cost: f64, value: f64) -> bool {
        let Some(window) = self.window.as_mut() else {
            return false;
        };
        let fits = match window.kind {
            NoticeKind::Interruption => cost <= window.budget,
            NoticeKind::Rebalance => cost * REBALANCE_WORTH <= value,
        };
        if fits {
            window.budget -= cost;
        }
        fits
    }

    /// Uploads the finished work-tables worth saving, most stage time per second of upload
    /// first, while the window has room.
    fn save_finished(&mut self, shape: &Shape, actions: &mut Vec<Action>) {
        let setup = &shape.setup;
        let mut candidates: Vec<(f64, StageId)> = (0..self.stages.len())
            .filter(|&s| self.stages[s].state == StageState::Done && self.worth_saving(shape, s))
            .map(|s| (self.loss_value(shape, s), s))
            .collect();
        let per_second = |(value, s): &(f64, StageId)| value / setup.write_time[*s].max(1e-9);
        candidates.sort_by(|a, b| per_second(b).total_cmp(&per_second(a)).then(a.1.cmp(&b.1)));
        for (value, stage) in candidates {
            if self.spend(setup.write_time[stage], value) {
                let attempt = self.stages[stage].attempts;
                self.set_state(shape, stage, StageState::Persisting { attempt });
                actions.push(Action::Persist { stage, attempt });
            }
        }
    }

    /// On the cluster, not in the store, and needed by a stage still to run.
    fn worth_saving(&self, shape: &Shape, stage: StageId) -> bool {
        let status = &self.stages[stage];
        shape.setup.may_save[stage]
            && status.local
            && !status.committed
            && shape.consumers[stage]
                .iter()
                .any(|&c| self.stages[c].state != StageState::Done)
    }

    /// The stage time lost with `stage`'s work-table: its own and that of every producer
    /// upstream whose work-table is not in the store either.
    fn loss_value(&self, shape: &Shape, stage: StageId) -> f64 {
        let setup = &shape.setup;
        let mut seen = vec![false; self.stages.len()];
        let mut stack = vec![stage];
        let mut total = 0.0;
        seen[stage] = true;
        while let Some(s) = stack.pop() {
            total += setup.estimate[s];
            for &input in &setup.needs[s] {
                if !seen[input] && !self.stages[input].committed {
                    seen[input] = true;
                    stack.push(input);
                }
            }
        }
        total
    }

    /// Asks at once for the cluster the loss will need, on the market the loss would
    /// choose (counting the loss to come), so that it is provisioned during the window.
    fn request_replacement(&mut self, shape: &Shape, elapsed: f64, actions: &mut Vec<Action>) {
        if self.replacement.is_some() || self.failure.is_some() {
            return;
        }
        let rerun = self.rerun_if_lost(shape);
        let decision = self.market_after_loss(shape, self.interruptions + 1, elapsed, &rerun);
        if shape.setup.auto_market.is_some() && self.market == Market::Spot {
            actions.push(Action::MarketChosen {
                market: decision.market,
                reason: decision.reason.clone(),
            });
        }
        let generation = self.generation + 1;
        self.replacement = Some(Replacement {
            generation,
            market: decision.market,
            ready: false,
        });
        let reason = if shape.setup.explain {
            format!(
                "replacement for cluster {}, asked for on its interruption notice: {}",
                self.generation, decision.reason
            )
        } else {
            String::new()
        };
        actions.push(Action::Provision {
            market: decision.market,
            generation,
            reason,
        });
    }

    pub(super) fn replacement_ready(&mut self, generation: u32) {
        if let Some(replacement) = self.replacement.as_mut()
            && replacement.generation == generation
        {
            replacement.ready = true;
        }
    }

    /// At a loss, once its uploads ended: the replacement takes over if there is work
    /// left, and is released otherwise. False when there was no replacement.
    pub(super) fn adopt_replacement(&mut self, rerun: &[bool], actions: &mut Vec<Action>) -> bool {
        let Some(replacement) = self.replacement.take() else {
            return false;
        };
        if self.failure.is_some() || !rerun.iter().any(|r| *r) {
            self.cluster = ClusterState::None;
            actions.push(Action::Release {
                generation: replacement.generation,
                reason: "nothing is left to run".into(),
            });
            return true;
        }
        self.generation = replacement.generation;
        self.market = replacement.market;
        self.cluster = if replacement.ready {
            ClusterState::Ready
        } else {
            ClusterState::Provisioning
        };
        self.restores_due = true;
        true
    }

    /// Releases the replacement asked for on a notice, if any.
    pub(super) fn release_replacement(&mut self, reason: &str, actions: &mut Vec<Action>) {
        if let Some(replacement) = self.replacement.take() {
            actions.push(Action::Release {
                generation: replacement.generation,
                reason: reason.to_string(),
            });
        }
    }
}
