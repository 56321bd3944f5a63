//! After a loss: what runs again and on which market, and the market of a resumed run.

use super::{ClusterState, Run, Shape, StageState};
use crate::machine::Action;
use crate::plan::fallback::{MarketDecision, MarketSituation, deadline_at_risk, next_market};
use crate::plan::market::{AutoMarket, compare, deadline_risk};
use crate::plan::recompute::recompute_set;
use crate::plan::remaining_time;
use crate::workflow::Market;

impl Run {
    /// A partial loss: the attempts named end as interrupted and wait for a slot again;
    /// everything else on the cluster stays. On spot, when the deadline rule says one
    /// more loss could no longer be made up on demand, the run leaves the cluster.
    pub(super) fn lose_attempts(
        &mut self,
        shape: &Shape,
        generation: u32,
        attempts: &[(usize, u32)],
        elapsed: f64,
        actions: &mut Vec<Action>,
    ) {
        if generation != self.generation || self.cluster != ClusterState::Ready {
            return;
        }
        let mut lost = false;
        for &(stage, attempt) in attempts {
            if self.stages[stage].state == (StageState::Running { attempt }) {
                self.stages[stage].interrupted += 1;
                self.set_state(shape, stage, StageState::Waiting);
                lost = true;
            }
        }
        if lost
            && self.market == Market::Spot
            && self.leaving.is_none()
            && let Some(reason) = self.spot_at_risk(shape, elapsed)
        {
            self.leaving = Some(generation);
            actions.push(Action::Abandon { generation, reason });
        }
    }

    /// The deadline rule on the spot cluster the run is on, `elapsed` seconds in: `market:
    /// auto`'s ([`deadline_risk`], with no time to a next cluster) or the fallback's.
    fn spot_at_risk(&self, shape: &Shape, elapsed: f64) -> Option<String> {
        let setup = &shape.setup;
        setup.fallback.deadline?;
        let situation = self.situation(shape, elapsed, &self.rerun_if_lost(shape));
        match &setup.auto_market {
            Some(auto) => deadline_risk(auto, &setup.fallback, &situation, 0.0),
            None => deadline_at_risk(&setup.fallback, &situation),
        }
    }

    /// `market: auto` at the start: the choice made before the run, or, when a run resumes
    /// on spot with stages already done, the choice for what remains.
    pub(super) fn resumed_choice(&self, shape: &Shape, auto: &AutoMarket) -> MarketDecision {
        let setup = &shape.setup;
        let to_run = self.to_run();
        let left = to_run.iter().filter(|r| **r).count();
        if self.market == Market::OnDemand && self.interruptions > 0 {
            return MarketDecision {
                market: Market::OnDemand,
                reason: format!(
                    "resumed on on-demand, where the run went after {} interruption(s)",
                    self.interruptions
                ),
            };
        }
        if self.market != Market::Spot || left == to_run.len() {
            return auto.decision.clone();
        }
        let situation = self.situation(shape, 0.0, &to_run);
        let decision = compare(auto, &setup.fallback, &situation);
        MarketDecision {
            market: decision.market,
            reason: format!(
                "resumed with {left} of {} stages to run: {}",
                to_run.len(),
                decision.reason
            ),
        }
    }

    /// Says so ([`Action::DeadlineAtRisk`]) when what is left, on the market the run is
    /// on, would end past the deadline: at the start and after each loss, `elapsed`
    /// seconds into this run's process.
    pub(super) fn check_deadline(&self, shape: &Shape, elapsed: f64, actions: &mut Vec<Action>) {
        let setup = &shape.setup;
        if setup.fallback.deadline.is_none() {
            return;
        }
        let situation = self.situation(shape, elapsed, &self.to_run());
        if let Some(reason) = deadline_at_risk(&setup.fallback, &situation) {
            actions.push(Action::DeadlineAtRisk { reason });
        }
    }

    /// The stages not done.
    fn to_run(&self) -> Vec<bool> {
        (self.stages.iter())
            .map(|s| s.state != StageState::Done)
            .collect()
    }

    /// Where the run stands for a market decision: on its market, `elapsed` seconds in,
    /// with `to_run` left.
    fn situation(&self, shape: &Shape, elapsed: f64, to_run: &[bool]) -> MarketSituation {
        let setup = &shape.setup;
        MarketSituation {
            current: self.market,
            interruptions: self.interruptions,
            elapsed,
            remaining_critical: remaining_time(
                &shape.consumers,
                &setup.estimate,
                to_run,
                setup.slots,
            ),
            mtti: setup.mtti,
            provision_time: setup.provision_time,
            checkpoint_cost: setup.checkpoint_cost,
        }
    }

    /// What runs again if the cluster is lost now: the unfinished stages and the producers
    /// of the uncommitted work-tables they need.
    pub(super) fn rerun_if_lost(&self, shape: &Shape) -> Vec<bool> {
        let finished: Vec<bool> = self
            .stages
            .iter()
            .map(|s| s.state == StageState::Done)
            .collect();
        let committed: Vec<bool> = self.stages.iter().map(|s| s.committed).collect();
        recompute_set(&shape.setup.needs, &finished, &committed)
    }

    /// After a loss, once no upload is in flight: what runs again, and on which market.
    pub(super) fn settle_loss(&mut self, shape: &Shape, actions: &mut Vec<Action>) {
        let setup = &shape.setup;
        let Some((cause, elapsed)) = self.loss.take() else {
            return;
        };
        let rerun = self.rerun_if_lost(shape);
        for (s, again) in rerun.iter().enumerate() {
            if *again && self.stages[s].state == StageState::Done {
                self.set_state(shape, s, StageState::Waiting);
            }
        }
        if self.adopt_replacement(&rerun, actions) {
            return;
        }
        let decision = self.market_after_loss(shape, self.interruptions, elapsed, &rerun);
        let chosen_again = setup.auto_market.is_some() && self.market == Market::Spot;
        self.market = decision.market;
        self.cluster = ClusterState::None;
        if self.failure.is_none() && rerun.iter().any(|r| *r) {
            if chosen_again {
                actions.push(Action::MarketChosen {
                    market: decision.market,
                    reason: if setup.explain {
                        decision.reason.clone()
                    } else {
                        String::new()
                    },
                });
            }
            let reason = if setup.explain {
                format!(
                    "after interruption {} ({cause}): {}",
                    self.interruptions, decision.reason
                )
            } else {
                String::new()
            };
            self.check_deadline(shape, elapsed, actions);
            self.provision(reason, actions);
        }
    }

    /// The market of the cluster that follows a loss: the fallback rules and `market:
    /// auto`, on what `rerun` leaves to do after `interruptions` losses.
    pub(super) fn market_after_loss(
        &self,
        shape: &Shape,
        interruptions: u32,
        elapsed: f64,
        rerun: &[bool],
    ) -> MarketDecision {
        let setup = &shape.setup;
        next_market(
            &setup.fallback,
            &MarketSituation {
                current: self.market,
                interruptions,
                elapsed,
                // Only the deadline rule and `market: auto` read it.
                remaining_critical: if setup.fallback.deadline.is_some()
                    || setup.auto_market.is_some()
                {
                    remaining_time(&shape.consumers, &setup.estimate, rerun, setup.slots)
                } else {
                    0.0
                },
                mtti: setup.mtti,
                provision_time: setup.provision_time,
                checkpoint_cost: setup.checkpoint_cost,
            },
            setup.auto_market.as_ref(),
        )
    }
}
