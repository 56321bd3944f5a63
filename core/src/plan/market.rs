//! `cluster.market: auto`: spot or on-demand, whichever is expected to cost less while
//! the deadline (`cluster.fallback.deadline`) is met with high probability.
//!
//! Before the run the simulator measures what the plan costs on spot (its mean over trials,
//! the engine's own run loop, the configured fallback included) and on demand, and
//! [`decide`] chooses. After every interruption [`compare`] chooses again for what remains:
//! the remaining failure-free time on demand, against the expected time on spot
//! ([`super::fallback::expected_on_spot`], scaled so that at the start it agrees with the
//! simulator). The anchor is "Can't Be Late" (NSDI 2024): spot while it pays and the
//! deadline is safe; the deadline rule of [`super::fallback::next_market`] stays the safety net.

use super::fallback::{MarketDecision, MarketSituation, expected_on_spot};
use crate::workflow::units::format_seconds as fmt;
use crate::workflow::{FallbackSpec, Market};

/// The share of runs that must meet the deadline.
pub const DEADLINE_SHARE: f64 = 0.99;

/// Whether the simulated runs met the deadline often enough: their share, less two
/// standard errors of it (the trials are a sample), is at least [`DEADLINE_SHARE`].
/// Always true without a deadline.
pub fn meets_deadline(e: &Expectation) -> bool {
    e.deadline_share.is_none_or(|share| {
        let error = (share * (1.0 - share) / f64::from(e.trials.max(1))).sqrt();
        share - 2.0 * error >= DEADLINE_SHARE
    })
}

/// What a market is expected to do for the whole run.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// Mean makespan and mean cost over the simulated trials (one trial on demand).
    pub makespan: f64,
    pub cost: f64,
    /// Share of trials that finished by the deadline; `None` without a deadline.
    pub deadline_share: Option<f64>,
    /// How many trials the figures are means of.
    pub trials: u32,
}

/// What `market: auto` decided before the run, with the numbers it decides again with.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoMarket {
    pub decision: MarketDecision,
    pub currency: String,
    pub spot_per_hour: f64,
    pub on_demand_per_hour: f64,
    pub spot: Expectation,
    pub on_demand: Expectation,
    /// The simulated spot makespan over [`expected_on_spot`]'s estimate for the whole run:
    /// what the estimate is multiplied by after an interruption.
    pub spot_calibration: f64,
    /// The on-demand makespan over the whole run's remaining time (the failure-free
    /// lower bound of [`super::schedule::remaining_time`]).
    pub on_demand_factor: f64,
    /// The most work one loss can destroy, in seconds: the largest unprotected work of a
    /// stage (its own and its ephemeral inputs'), plus its checkpoint write.
    pub exposure: f64,
}

#[cfg(test)]
impl AutoMarket {
    /// For tests: spot chosen, at a third of on-demand's price, a 10-hour run, estimates
    /// taken as they come.
    pub(crate) fn example(exposure: f64) -> AutoMarket {
        let expect = |hours: f64, cost: f64| Expectation {
            makespan: hours * 3600.0,
            cost,
            deadline_share: None,
            trials: 1,
        };
        AutoMarket {
            decision: MarketDecision {
                market: Market::Spot,
                reason: "spot: chosen before the run".into(),
            },
            currency: "USD".into(),
            spot_per_hour: 1.0,
            on_demand_per_hour: 3.0,
            spot: expect(12.0, 12.0),
            on_demand: expect(10.0, 30.0),
            spot_calibration: 1.0,
            on_demand_factor: 1.0,
            exposure,
        }
    }
}

fn money(currency: &str, amount: f64) -> String {
    format!("{currency} {amount:.2}")
}

fn share(share: f64) -> String {
    let percent = share * 100.0;
    if !(99.0..99.95).contains(&percent) {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.1}%")
    }
}

/// The choice before the run, from the simulated spot runs and the on-demand run.
pub fn decide(
    spot: &Expectation,
    on_demand: &Expectation,
    deadline: Option<f64>,
    currency: &str,
) -> MarketDecision {
    let both = format!(
        "expected {} and {} on spot, {} and {} on demand",
        fmt(spot.makespan),
        money(currency, spot.cost),
        fmt(on_demand.makespan),
        money(currency, on_demand.cost)
    );
    let spot_share = spot.deadline_share.unwrap_or(1.0);
    let on_demand_share = on_demand.deadline_share.unwrap_or(1.0);
    if let Some(deadline) = deadline
        && !meets_deadline(spot)
    {
        let reason = if on_demand_share >= spot_share {
            format!(
                "on-demand: deadline {} met by {} of {} spot runs, short of {:.0}% by two standard errors; by {} on demand; {both}",
                fmt(deadline),
                share(spot_share),
                spot.trials,
                DEADLINE_SHARE * 100.0,
                share(on_demand_share)
            )
        } else {
            return MarketDecision {
                market: Market::Spot,
                reason: format!(
                    "spot: deadline {} cannot be met on demand, spot meets it in {} of runs; {both}",
                    fmt(deadline),
                    share(spot_share)
                ),
            };
        };
        return MarketDecision {
            market: Market::OnDemand,
            reason,
        };
    }
    let deadline_words = match deadline {
        Some(deadline) => format!(
            ", deadline {} met with {}",
            fmt(deadline),
            share(spot_share)
        ),
        None => String::new(),
    };
    if spot.cost < on_demand.cost {
        MarketDecision {
            market: Market::Spot,
            reason: format!(
                "spot: expected {} and {} < on-demand {}{deadline_words}",
                fmt(spot.makespan),
                money(currency, spot.cost),
                money(currency, on_demand.cost)
            ),
        }
    } else {
        MarketDecision {
            market: Market::OnDemand,
            reason: format!(
                "on-demand: {} in {} <= spot's expected {} in {}",
                money(currency, on_demand.cost),
                fmt(on_demand.makespan),
                money(currency, spot.cost),
                fmt(spot.makespan)
            ),
        }
    }
}

/// The deadline rule of `market: auto`, "Can't Be Late"'s safety net: spot may go on only
/// while one more loss, however late before the next checkpoint, still leaves time to
/// provision an on-demand cluster and finish there. `provision` is the time to the next
/// cluster (zero before the first one, as the simulator counts). `None` when it is safe,
/// else the reason to go on demand.
pub fn deadline_risk(
    auto: &AutoMarket,
    spec: &FallbackSpec,
    situation: &MarketSituation,
    provision: f64,
) -> Option<String> {
    let deadline = spec.deadline?.as_secs_f64();
    let on_demand_s =
        situation.provision_time + auto.on_demand_factor * situation.remaining_critical;
    let worst = situation.elapsed + provision + auto.exposure + on_demand_s;
    (worst > deadline).then(|| {
        format!(
            "on-demand: deadline {} at risk on spot: {} elapsed + {} to a cluster + {} one loss can cost + {} on demand = {}",
            fmt(deadline),
            fmt(situation.elapsed),
            fmt(provision),
            fmt(auto.exposure),
            fmt(on_demand_s),
            fmt(worst)
        )
    })
}

/// After an interruption on spot: on demand if the deadline is at risk
/// ([`deadline_risk`]), else spot again or on demand for what remains, by expected cost.
/// A new cluster is needed either way, so both pay `provision_time`.
pub fn compare(
    auto: &AutoMarket,
    spec: &FallbackSpec,
    situation: &MarketSituation,
) -> MarketDecision {
    if let Some(reason) = deadline_risk(auto, spec, situation, situation.provision_time) {
        return MarketDecision {
            market: Market::OnDemand,
            reason,
        };
    }
    let remaining = situation.remaining_critical;
    let spot_s = situation.provision_time + auto.spot_calibration * expected_on_spot(situation);
    let on_demand_s = situation.provision_time + auto.on_demand_factor * remaining;
    let spot_cost = spot_s / 3600.0 * auto.spot_per_hour;
    let on_demand_cost = on_demand_s / 3600.0 * auto.on_demand_per_hour;
    let deadline = match spec.deadline {
        Some(deadline) => format!(
            ", deadline {} (on demand would end at {})",
            fmt(deadline.as_secs_f64()),
            fmt(situation.elapsed + on_demand_s)
        ),
        None => String::new(),
    };
    let currency = &auto.currency;
    if on_demand_cost <= spot_cost {
        MarketDecision {
            market: Market::OnDemand,
            reason: format!(
                "on-demand for what remains: {} in {} <= spot's expected {} in {}",
                money(currency, on_demand_cost),
                fmt(on_demand_s),
                money(currency, spot_cost),
                fmt(spot_s)
            ),
        }
    } else {
        MarketDecision {
            market: Market::Spot,
            reason: format!(
                "spot for what remains: expected {} and {} < on-demand {}{deadline}",
                fmt(spot_s),
                money(currency, spot_cost),
                money(currency, on_demand_cost)
            ),
        }
    }
}

/// The factors [`compare`] scales its estimates with, from the whole run's numbers.
pub fn calibration(
    spot_makespan: f64,
    on_demand_makespan: f64,
    whole: &MarketSituation,
) -> (f64, f64) {
    let estimate = expected_on_spot(whole);
    let spot = if estimate > 0.0 {
        spot_makespan / estimate
    } else {
        1.0
    };
    let on_demand = if whole.remaining_critical > 0.0 {
        on_demand_makespan / whole.remaining_critical
    } else {
        1.0
    };
    (spot.max(0.0), on_demand.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn expect(makespan_h: f64, cost: f64, share: Option<f64>) -> Expectation {
        Expectation {
            makespan: makespan_h * 3600.0,
            cost,
            deadline_share: share,
            trials: 2000,
        }
    }

    #[test]
    fn the_cheaper_market_is_chosen_and_the_reason_gives_both_numbers() {
        let spot = expect(14.0 + 1.0 / 6.0, 41.0, Some(0.999));
        let on_demand = expect(10.0, 103.0, Some(1.0));
        let d = decide(&spot, &on_demand, Some(20.0 * 3600.0), "USD");
        assert_eq!(d.market, Market::Spot);
        assert_eq!(
            d.reason,
            "spot: expected 14h10m and USD 41.00 < on-demand USD 103.00, deadline 20h met with 99.9%"
        );
        let d = decide(&expect(30.0, 120.0, None), &on_demand, None, "EUR");
        assert_eq!(d.market, Market::OnDemand);
        assert!(
            d.reason
                .starts_with("on-demand: EUR 103.00 in 10h <= spot's expected EUR 120.00")
        );
    }

    #[test]
    fn a_cheaper_spot_that_misses_the_deadline_too_often_is_refused() {
        let spot = expect(14.0, 41.0, Some(0.97));
        let on_demand = expect(10.0, 103.0, Some(1.0));
        let d = decide(&spot, &on_demand, Some(16.0 * 3600.0), "USD");
        assert_eq!(d.market, Market::OnDemand);
        assert!(
            d.reason
                .contains("deadline 16h met by 97% of 2000 spot runs, short of 99%"),
            "{}",
            d.reason
        );
        // 99.4% of 2,000 runs: 99% is within two standard errors (0.17% each).
        let deadline = Some(16.0 * 3600.0);
        let d = decide(
            &expect(14.0, 41.0, Some(0.994)),
            &on_demand,
            deadline,
            "USD",
        );
        assert_eq!(d.market, Market::Spot, "{}", d.reason);
        // 99.1% of them is not.
        let d = decide(
            &expect(14.0, 41.0, Some(0.991)),
            &on_demand,
            deadline,
            "USD",
        );
        assert_eq!(d.market, Market::OnDemand, "{}", d.reason);
    }

    #[test]
    fn after_an_interruption_the_remaining_work_is_priced_on_both_markets() {
        let auto = AutoMarket::example(1800.0);
        let mut situation = MarketSituation {
            current: Market::Spot,
            interruptions: 1,
            elapsed: 3600.0,
            remaining_critical: 5.0 * 3600.0,
            mtti: 10.0 * 3600.0,
            provision_time: 600.0,
            checkpoint_cost: 60.0,
        };
        let spec = FallbackSpec::default();
        assert_eq!(compare(&auto, &spec, &situation).market, Market::Spot);
        // Interruptions every 5 minutes: spot would take far more than 3x as long.
        situation.mtti = 300.0;
        let d = compare(&auto, &spec, &situation);
        assert_eq!(d.market, Market::OnDemand, "{}", d.reason);
        assert!(
            d.reason
                .starts_with("on-demand for what remains: USD 15.50 in 5h10m"),
            "{}",
            d.reason
        );
        let spec = FallbackSpec {
            after_interruptions: None,
            deadline: Some(Duration::from_secs(20 * 3600)),
        };
        situation.mtti = 10.0 * 3600.0;
        assert!(
            compare(&auto, &spec, &situation)
                .reason
                .contains("deadline 20h")
        );
    }

    #[test]
    fn spot_goes_on_only_while_one_more_loss_leaves_time_for_on_demand() {
        let auto = AutoMarket::example(3600.0);
        let spec = FallbackSpec {
            after_interruptions: None,
            deadline: Some(Duration::from_secs(10 * 3600)),
        };
        let at = |elapsed_h: f64| MarketSituation {
            current: Market::Spot,
            interruptions: 1,
            elapsed: elapsed_h * 3600.0,
            remaining_critical: 4.0 * 3600.0,
            mtti: 10.0 * 3600.0,
            provision_time: 600.0,
            checkpoint_cost: 60.0,
        };
        // 4h elapsed + 10m + 1h + 4h10m = 9h20m <= 10h: spot is safe.
        assert_eq!(compare(&auto, &spec, &at(4.0)).market, Market::Spot);
        // 5h elapsed: 10h20m > 10h.
        let late = compare(&auto, &spec, &at(5.0));
        assert_eq!(late.market, Market::OnDemand);
        assert!(
            late.reason.contains("deadline 10h at risk on spot"),
            "{}",
            late.reason
        );
    }
}
