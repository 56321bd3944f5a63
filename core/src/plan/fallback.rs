//! The spot/on-demand decision after a cluster loss.

use super::formulas::{daly_interval, expected_segment_time};
use crate::workflow::{FallbackSpec, Market};

/// What the policy knows when a new cluster is needed.
#[derive(Clone, Copy, Debug)]
pub struct MarketSituation {
    pub current: Market,
    /// Interruptions so far in this run.
    pub interruptions: u32,
    /// Seconds since the run started.
    pub elapsed: f64,
    /// Failure-free time of what remains, in seconds: the longer of the remaining
    /// critical path and the remaining work spread over the slots
    /// ([`super::schedule::remaining_time`]). Read by the deadline rule
    /// (`fallback.deadline`) and by `market: auto`.
    pub remaining_critical: f64,
    pub mtti: f64,
    pub provision_time: f64,
    /// A typical checkpoint write and restore, in seconds.
    pub checkpoint_cost: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MarketDecision {
    pub market: Market,
    pub reason: String,
}

/// Time the remaining work is expected to take on spot, with checkpoints at Daly's interval.
pub fn expected_on_spot(situation: &MarketSituation) -> f64 {
    let work = situation.remaining_critical;
    if work <= 0.0 || !situation.mtti.is_finite() {
        return work;
    }
    let interval = daly_interval(situation.checkpoint_cost.max(1.0), situation.mtti).max(1.0);
    let per_interval = expected_segment_time(
        interval,
        situation.checkpoint_cost,
        situation.provision_time,
        situation.checkpoint_cost,
        situation.mtti,
    );
    work * per_interval / interval
}

/// Whether the deadline (`fallback.deadline`, or a date's `publish_by`) is at risk on the
/// current market, and why in words: the time to the next cluster plus what remains (on
/// spot inflated by the expected cost of interruptions, on demand as it is) ends past it.
/// The one rule for falling back on a deadline and for the `deadline-at-risk` alert.
pub fn deadline_at_risk(spec: &FallbackSpec, situation: &MarketSituation) -> Option<String> {
    use crate::workflow::units::format_seconds as f;
    let deadline = spec.deadline?.as_secs_f64();
    let remaining = match situation.current {
        Market::Spot => expected_on_spot(situation),
        Market::OnDemand => situation.remaining_critical,
    };
    let expected = situation.elapsed + situation.provision_time + remaining;
    (expected > deadline).then(|| {
        format!(
            "deadline {} at risk: {} elapsed + {} expected on {} > {}",
            f(deadline),
            f(situation.elapsed),
            f(expected - situation.elapsed),
            situation.current.as_str(),
            f(deadline)
        )
    })
}

/// On-demand stays on-demand; spot switches after `after_interruptions` losses, or when the
/// remaining critical path, inflated by the expected cost of interruptions, would no longer
/// finish before the deadline (a safety net in the spirit of "Can't Be Late", NSDI'24).
/// With `market: auto` (`auto` is what was decided before the run), spot then stays only
/// while it is expected to cost less than on-demand for what remains
/// ([`super::market::compare`]).
pub fn next_market(
    spec: &FallbackSpec,
    situation: &MarketSituation,
    auto: Option<&super::market::AutoMarket>,
) -> MarketDecision {
    if situation.current == Market::OnDemand {
        return MarketDecision {
            market: Market::OnDemand,
            reason: "on-demand stays on-demand".into(),
        };
    }
    if let Some(limit) = spec.after_interruptions
        && situation.interruptions >= limit
    {
        return MarketDecision {
            market: Market::OnDemand,
            reason: format!(
                "{} interruptions reached fallback.after_interruptions = {limit}",
                situation.interruptions
            ),
        };
    }
    if let Some(reason) = deadline_at_risk(spec, situation) {
        return MarketDecision {
            market: Market::OnDemand,
            reason,
        };
    }
    if let Some(auto) = auto {
        return super::market::compare(auto, spec, situation);
    }
    MarketDecision {
        market: Market::Spot,
        reason: "spot: fallback conditions not met".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn situation(interruptions: u32, elapsed: f64, remaining: f64) -> MarketSituation {
        MarketSituation {
            current: Market::Spot,
            interruptions,
            elapsed,
            remaining_critical: remaining,
            mtti: 7200.0,
            provision_time: 600.0,
            checkpoint_cost: 60.0,
        }
    }

    #[test]
    fn switches_after_the_configured_number_of_interruptions() {
        let spec = FallbackSpec {
            after_interruptions: Some(2),
            deadline: None,
        };
        assert_eq!(
            next_market(&spec, &situation(1, 0.0, 3600.0), None).market,
            Market::Spot
        );
        assert_eq!(
            next_market(&spec, &situation(2, 0.0, 3600.0), None).market,
            Market::OnDemand
        );
    }

    #[test]
    fn switches_when_the_deadline_is_at_risk() {
        let spec = FallbackSpec {
            after_interruptions: None,
            deadline: Some(Duration::from_secs(8 * 3600)),
        };
        assert_eq!(
            next_market(&spec, &situation(1, 3600.0, 3.0 * 3600.0), None).market,
            Market::Spot
        );
        let late = next_market(&spec, &situation(1, 5.0 * 3600.0, 2.9 * 3600.0), None);
        assert_eq!(late.market, Market::OnDemand);
        assert!(late.reason.contains("deadline 8h at risk"));
    }

    #[test]
    fn on_demand_stays_on_demand() {
        let mut s = situation(0, 0.0, 1.0);
        s.current = Market::OnDemand;
        assert_eq!(
            next_market(&FallbackSpec::default(), &s, None).market,
            Market::OnDemand
        );
    }
}
