//! An EMR cluster priced per instance: the instance-hours EMR listed for each fleet,
//! instance type and market, times that type's price on that market plus EMR's fee
//! (`cost.instances.<type>` through `plan::prices::instance_rate`). A type without a
//! price there is priced at the cluster's mean instance price, and says so. Records
//! written before the instances were kept only have a cluster's total instance-hours:
//! those are priced at the mean instance price too ([`mean_instance_rate`]).

use crate::contract::event::InstanceUse;
use crate::plan::prices::{self as rates, Rate};
use crate::workflow::{Market, Provider, Workflow};
use serde::Serialize;

/// What one kind of instance of one fleet cost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceCost {
    pub fleet: String,
    /// `MASTER`, `CORE` or `TASK`, as EMR names the fleet's role.
    pub fleet_type: String,
    #[serde(rename = "type")]
    pub instance_type: String,
    pub market: Market,
    pub count: u32,
    pub instance_hours: f64,
    /// One instance for an hour, EMR's fee included.
    pub price_per_hour: f64,
    pub cost: f64,
    pub source: String,
}

/// The mean price of one instance of the workflow's EMR cluster on `market`: the cluster's
/// price (its fleets' capacities times their first types' prices, `plan::prices`) over its
/// instances. `None` for a local cluster.
pub fn mean_instance_rate(workflow: &Workflow, market: Market) -> Option<Rate> {
    let emr = match (&workflow.cluster.provider, &workflow.cluster.emr) {
        (Provider::Emr, Some(emr)) => emr,
        _ => return None,
    };
    let count = emr.primary.capacity
        + emr.core.as_ref().map_or(0, |c| c.capacity)
        + emr.task.as_ref().map_or(0, |t| t.capacity);
    if count == 0 {
        return None;
    }
    let cluster = rates::cluster_rate(workflow, market);
    Some(Rate {
        per_hour: cluster.per_hour / f64::from(count),
        source: format!("({}) / {count} instances", cluster.source),
    })
}

/// Each kind of instance at its own price.
pub fn price_instances(workflow: &Workflow, instances: &[InstanceUse]) -> Vec<InstanceCost> {
    instances
        .iter()
        .map(|used| {
            let rate = rates::instance_rate(&workflow.cost, &used.instance_type, used.market)
                .unwrap_or_else(|| {
                    let mean = mean_instance_rate(workflow, used.market)
                        .map(|mean| ("the mean instance price", mean))
                        .unwrap_or_else(|| {
                            (
                                "the cluster-hour price",
                                rates::cluster_rate(workflow, used.market),
                            )
                        });
                    Rate {
                        per_hour: mean.1.per_hour,
                        source: format!(
                            "{} has no price in cost.instances, so {} {}",
                            used.instance_type, mean.0, mean.1.source
                        ),
                    }
                });
            InstanceCost {
                fleet: used.fleet.clone(),
                fleet_type: used.fleet_type.clone(),
                instance_type: used.instance_type.clone(),
                market: used.market,
                count: used.count,
                instance_hours: used.instance_hours,
                price_per_hour: rate.per_hour,
                cost: used.instance_hours * rate.per_hour,
                source: rate.source,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::RunEvent;
    use crate::report::timeline::tests::{at, provision, ready};
    use crate::report::timeline::timeline;

    const EMR: &str = "name: wf\nstore: s3://bucket/prefix\ncluster:\n  provider: emr\n  emr:\n    \
        release_label: emr-7.5.0\n    service_role: R\n    instance_profile: P\n    \
        subnets: [subnet-1]\n    primary: {instance_types: [m5.xlarge]}\n    \
        core: {instance_types: [r5.2xlarge, r5a.2xlarge], capacity: 4}\n\
        cost:\n  spot_per_hour: 5\n  on_demand_per_hour: 15\n  instances:\n    \
        m5.xlarge: {spot: 0.07, on_demand: 0.192, emr_fee: 0.048}\n    \
        r5.2xlarge: {spot: 0.15, on_demand: 0.504, emr_fee: 0.126}\n\
        stages:\n  a: {run: x}\n";

    fn used(fleet: &str, kind: &str, market: Market, count: u32, hours: f64) -> InstanceUse {
        InstanceUse {
            fleet: fleet.into(),
            fleet_type: if fleet == "primary" { "MASTER" } else { "CORE" }.into(),
            instance_type: kind.into(),
            market,
            count,
            instance_hours: hours,
            from: None,
            until: None,
        }
    }

    /// An EMR cluster released with the instances it had.
    fn released(generation: u32, instances: Vec<InstanceUse>) -> RunEvent {
        RunEvent::ClusterReleased {
            generation,
            cluster: format!("j-{generation}"),
            instance_hours: Some(instances.iter().map(|i| i.instance_hours).sum()),
            instances: Some(instances),
        }
    }

    /// The run's first interruption, of spot cluster `generation`.
    fn lost_spot(generation: u32) -> RunEvent {
        RunEvent::ClusterLost {
            generation,
            market: Market::Spot,
            cause: "spot".into(),
            interruptions: 1,
        }
    }

    #[test]
    fn each_fleets_instance_type_costs_its_hours_at_its_own_price_plus_the_emr_fee() {
        let workflow = crate::workflow::parse("emr.yaml", EMR).unwrap_or_else(|d| panic!("{d}"));
        let priced = price_instances(
            &workflow,
            &[
                used("primary", "m5.xlarge", Market::Spot, 1, 2.0),
                used("core", "r5.2xlarge", Market::Spot, 4, 8.0),
                used("core", "r5.2xlarge", Market::OnDemand, 1, 0.5),
            ],
        );
        // Hand computation: 2 h x (0.07 + 0.048) = 0.236; 8 h x (0.15 + 0.126) = 2.208;
        // 0.5 h x (0.504 + 0.126) = 0.315.
        let costs: Vec<f64> = priced.iter().map(|p| p.cost).collect();
        for (got, want) in costs.iter().zip([0.236, 2.208, 0.315]) {
            assert!((got - want).abs() < 1e-9, "{priced:#?}");
        }
        assert!((priced[1].price_per_hour - 0.276).abs() < 1e-12);
        assert_eq!(
            priced[0].source,
            "cost.instances.m5.xlarge spot 0.07 + emr_fee 0.048 USD/h"
        );
        assert_eq!(
            priced[2].source,
            "cost.instances.r5.2xlarge on_demand 0.504 + emr_fee 0.126 USD/h"
        );
    }

    #[test]
    fn a_type_without_a_price_costs_the_mean_instance_price_and_says_so() {
        let workflow = crate::workflow::parse("emr.yaml", EMR).unwrap_or_else(|d| panic!("{d}"));
        let priced = price_instances(
            &workflow,
            &[used("core", "r5a.2xlarge", Market::Spot, 1, 1.0)],
        );
        // The spot cluster: 1 x 0.118 + 4 x 0.276 = 1.222 over 5 instances.
        assert!(
            (priced[0].price_per_hour - 1.222 / 5.0).abs() < 1e-9,
            "{priced:#?}"
        );
        assert!(
            priced[0].source.starts_with(
                "r5a.2xlarge has no price in cost.instances, so the mean instance price ("
            ),
            "{}",
            priced[0].source
        );
        assert!(priced[0].source.ends_with(") / 5 instances"));
    }

    #[test]
    fn emr_clusters_cost_each_fleets_instance_types_at_their_own_prices_by_hand() {
        let text = "name: wf\nstore: s3://bucket/prefix\ncluster:\n  provider: emr\n  emr:\n    \
                    release_label: emr-7.5.0\n    service_role: R\n    instance_profile: P\n    \
                    subnets: [subnet-1]\n    primary: {instance_types: [m5.xlarge]}\n    \
                    core: {instance_types: [r5.2xlarge], capacity: 4}\ncost:\n  instances:\n    \
                    m5.xlarge: {spot: 0.07, on_demand: 0.192, emr_fee: 0.048}\n    \
                    r5.2xlarge: {spot: 0.15, on_demand: 0.504, emr_fee: 0.126}\n\
                    stages:\n  a: {run: x}\n";
        let workflow = crate::workflow::parse("emr.yaml", text).unwrap_or_else(|d| panic!("{d}"));
        let (spot, od) = (Market::Spot, Market::OnDemand);
        let h = 3600.0;
        // A spot cluster lost at 2 h (its 5 instances up 2 h each), then an on-demand one
        // from 2 h to 3 h (5 instances, 1 h each).
        let events = vec![
            at(0.0, provision(1, spot)),
            at(0.2 * h, ready(1, spot)),
            at(2.0 * h, lost_spot(1)),
            at(
                2.0 * h,
                released(
                    1,
                    vec![
                        used("primary", "m5.xlarge", spot, 1, 2.0),
                        used("core", "r5.2xlarge", spot, 4, 8.0),
                    ],
                ),
            ),
            at(2.0 * h, provision(2, od)),
            at(2.2 * h, ready(2, od)),
            at(
                3.0 * h,
                released(
                    2,
                    vec![
                        used("primary", "m5.xlarge", od, 1, 1.0),
                        used("core", "r5.2xlarge", od, 4, 4.0),
                    ],
                ),
            ),
        ];
        let cost = super::super::cost::cost(&workflow, &timeline(&events, false));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // Spot: 2 h x (0.07 + 0.048) + 8 h x (0.15 + 0.126) = 0.236 + 2.208 = 2.444.
        // On-demand: 1 h x (0.192 + 0.048) + 4 h x (0.504 + 0.126) = 0.24 + 2.52 = 2.76.
        let (first, second) = (&cost.generations[0], &cost.generations[1]);
        assert!(close(first.cost, 2.444), "{cost:#?}");
        assert!(close(second.cost, 2.76), "{cost:#?}");
        assert!(close(cost.cluster_cost, 5.204));
        // The spot cluster's hourly price: 1 x 0.118 + 4 x 0.276.
        assert!(close(first.per_hour, 1.222));
        assert_eq!(first.instances.len(), 2);
        assert!(close(first.instances[1].cost, 2.208));
        assert!(close(second.instances[1].price_per_hour, 0.63));
        assert_eq!(
            second.instances[0].source,
            "cost.instances.m5.xlarge on_demand 0.192 + emr_fee 0.048 USD/h"
        );
        assert!(
            first
                .source
                .ends_with("primary 1 x m5.xlarge spot, core 4 x r5.2xlarge spot"),
            "{}",
            first.source
        );
        let json = serde_json::to_value(&cost).unwrap();
        let core = &json["generations"][0]["instances"][1];
        assert_eq!(core["fleet"], "core");
        assert_eq!(core["type"], "r5.2xlarge");
        assert_eq!(core["market"], "spot");
        assert_eq!(core["instance_hours"], 8.0);
    }

    #[test]
    fn the_on_demand_run_and_the_waste_are_priced_from_the_instances_emr_listed_by_hand() {
        let text = "name: wf\nstore: s3://bucket/prefix\ncluster:\n  provider: emr\n  emr:\n    \
                    release_label: emr-7.5.0\n    service_role: R\n    instance_profile: P\n    \
                    subnets: [subnet-1]\n    step_concurrency: 2\n    \
                    primary: {instance_types: [m5.xlarge]}\n    \
                    core: {instance_types: [r5.2xlarge, r5a.2xlarge], capacity: 4}\n\
                    cost:\n  instances:\n    \
                    m5.xlarge: {spot: 0.07, on_demand: 0.192, emr_fee: 0.048}\n    \
                    r5.2xlarge: {spot: 0.15, on_demand: 0.504, emr_fee: 0.126}\n    \
                    r5a.2xlarge: {spot: 0.14, on_demand: 0.452, emr_fee: 0.113}\n\
                    stages:\n  a: {run: x}\n";
        let workflow = crate::workflow::parse("emr.yaml", text).unwrap_or_else(|d| panic!("{d}"));
        let (spot, od) = (Market::Spot, Market::OnDemand);
        let h = 3600.0;
        // A spot cluster asked at 0, up at 0.2 h, lost at 2 h with `a`'s first attempt; EMR
        // gave its core fleet the second type. An on-demand one asked at 2 h, up at 2.2 h;
        // `a` runs 0.7 h and commits in 36 s; released at 3 h.
        let events = vec![
            at(0.0, provision(1, spot)),
            at(0.2 * h, ready(1, spot)),
            at(
                0.2 * h,
                RunEvent::Launch {
                    stage: "a".into(),
                    attempt: 1,
                    market: spot,
                    generation: 1,
                    log: "l".into(),
                },
            ),
            at(
                2.0 * h,
                RunEvent::Interrupted {
                    stage: "a".into(),
                    attempt: 1,
                },
            ),
            at(2.0 * h, lost_spot(1)),
            at(
                2.0 * h,
                released(
                    1,
                    vec![
                        used("primary", "m5.xlarge", spot, 1, 2.0),
                        used("core", "r5a.2xlarge", spot, 4, 8.0),
                    ],
                ),
            ),
            at(2.0 * h, provision(2, od)),
            at(2.2 * h, ready(2, od)),
            at(
                2.2 * h,
                RunEvent::Launch {
                    stage: "a".into(),
                    attempt: 2,
                    market: od,
                    generation: 2,
                    log: "l".into(),
                },
            ),
            at(
                2.9 * h,
                RunEvent::Exit {
                    stage: "a".into(),
                    attempt: 2,
                    code: 0,
                    log: None,
                },
            ),
            at(
                2.9 * h,
                RunEvent::Committed {
                    stage: "a".into(),
                    attempt: 2,
                    files: 1,
                    bytes: 0,
                    seconds: 36.0,
                    window: false,
                },
            ),
            at(
                3.0 * h,
                released(
                    2,
                    vec![
                        used("primary", "m5.xlarge", od, 1, 1.0),
                        used("core", "r5.2xlarge", od, 4, 4.0),
                    ],
                ),
            ),
        ];
        let cost = super::super::cost::cost(&workflow, &timeline(&events, false));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // Spot: 2 x (0.07 + 0.048) + 8 x (0.14 + 0.113) = 2.26 in 2 h: 1.13 an hour.
        // On-demand: 1 x (0.192 + 0.048) + 4 x (0.504 + 0.126) = 2.76 in 1 h.
        assert!(close(cost.generations[0].cost, 2.26), "{cost:#?}");
        assert!(close(cost.generations[1].cost, 2.76), "{cost:#?}");
        // All on-demand: 0.2 h provisioning + 0.7 h of `a`, at the listed instance-hours'
        // on-demand prices over the clusters' 3 hours: (3 x 0.24 + 4 x 0.63 + 8 x 0.565) / 3
        // = 7.76 / 3 an hour (the fleets as configured would say 2.76).
        assert!(close(cost.on_demand_hours, 0.9), "{cost:#?}");
        assert!(close(cost.on_demand_cost, 0.9 * 7.76 / 3.0), "{cost:#?}");
        assert!(
            cost.on_demand_source
                .starts_with("the instances EMR listed at on-demand prices"),
            "{}",
            cost.on_demand_source
        );
        assert!(cost.on_demand_source.contains(
            "8 instance-h x (cost.instances.r5a.2xlarge on_demand 0.452 + emr_fee 0.113 USD/h)"
        ));
        // Waste at each cluster's own hourly cost, over its 2 slots: the lost 1.8 h at
        // 1.13, the commit's 0.01 h at 2.76; the replacement's 0.2 h in full at 2.76.
        let waste = &cost.waste;
        assert!(
            close(waste.interrupted_attempts.cost, 1.8 * 1.13 / 2.0),
            "{waste:#?}"
        );
        assert!(
            close(waste.checkpoint_writes.cost, 0.01 * 2.76 / 2.0),
            "{waste:#?}"
        );
        assert!(close(waste.provisioning.cost, 0.2 * 2.76), "{waste:#?}");
        assert!(
            waste
                .interrupted_attempts
                .source
                .starts_with("cluster 1's cost / its hours, 1.1300 USD/h"),
            "{}",
            waste.interrupted_attempts.source
        );
        assert!(waste.interrupted_attempts.source.ends_with(" / 2 slots"));
        assert!(
            waste
                .provisioning
                .source
                .starts_with("cluster 2's cost / its hours")
        );
    }
}
