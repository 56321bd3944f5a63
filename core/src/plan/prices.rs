//! What capacity and storage cost, from the workflow's `cost:` section. The simulator, the
//! market choice and the cost report all price through here, and every rate says where
//! its number came from so that reports can show it.

use crate::workflow::model::{CostSpec, FleetSpec, Market, Provider, Workflow};

/// A price per hour in the workflow's currency, and where it came from, in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    pub per_hour: f64,
    pub source: String,
}

/// One whole cluster for an hour on `market`. Local clusters use `cost.spot_per_hour` or
/// `cost.on_demand_per_hour`. An EMR cluster is the sum over its fleets of capacity times
/// the price of the fleet's first instance type plus EMR's fee, from `cost.instances`, each
/// fleet on its own market ([`crate::workflow::EmrSpec::fleet_market`]: with a task fleet,
/// a spot cluster's primary and core are on-demand); a
/// fleet whose type has no price there is priced at the cluster-hour price, and the source
/// says so.
pub fn cluster_rate(wf: &Workflow, market: Market) -> Rate {
    let cost = &wf.cost;
    let emr = match (wf.cluster.provider, &wf.cluster.emr) {
        (Provider::Emr, Some(emr)) => emr,
        _ => return cluster_hour(cost, market),
    };
    let fleets = std::iter::once(("primary", &emr.primary, false))
        .chain(emr.core.as_ref().map(|core| ("core", core, false)))
        .chain(emr.task.as_ref().map(|task| ("task", task, true)));
    let mut per_hour = 0.0;
    let mut sources = Vec::new();
    for (name, fleet, task) in fleets {
        let rate = fleet_rate(cost, fleet, emr.fleet_market(fleet, task, market));
        per_hour += rate.per_hour;
        sources.push(format!("{name}: {}", rate.source));
    }
    Rate {
        per_hour,
        source: sources.join("; "),
    }
}

fn fleet_rate(cost: &CostSpec, fleet: &FleetSpec, market: Market) -> Rate {
    let count = f64::from(fleet.capacity);
    let instance_type = fleet.instance_types.first().map_or("", String::as_str);
    match instance_rate(cost, instance_type, market) {
        Some(rate) => Rate {
            per_hour: count * rate.per_hour,
            source: format!("{} x {}", fleet.capacity, rate.source),
        },
        None => {
            let hour = cluster_hour(cost, market);
            Rate {
                per_hour: hour.per_hour,
                source: format!(
                    "{instance_type} has no price in cost.instances, so {}",
                    hour.source
                ),
            }
        }
    }
}

/// A local cluster-hour on `market`.
fn cluster_hour(cost: &CostSpec, market: Market) -> Rate {
    let (per_hour, key) = match market {
        Market::Spot => (cost.spot_per_hour, "spot_per_hour"),
        Market::OnDemand => (cost.on_demand_per_hour, "on_demand_per_hour"),
    };
    Rate {
        per_hour,
        source: format!("cost.{key} {} {}/h", cost.currency, per_hour),
    }
}

/// One instance of `instance_type` for an hour on `market`, EMR's fee included, or `None`
/// when `cost.instances` has no price for the type.
pub fn instance_rate(cost: &CostSpec, instance_type: &str, market: Market) -> Option<Rate> {
    let price = cost
        .instances
        .iter()
        .find(|p| p.instance_type == instance_type)?;
    let (market_price, key) = match market {
        Market::Spot => (price.spot_per_hour, "spot"),
        Market::OnDemand => (price.on_demand_per_hour, "on_demand"),
    };
    Some(Rate {
        per_hour: market_price + price.emr_fee_per_hour,
        source: format!(
            "cost.instances.{instance_type} {key} {} + emr_fee {} {}/h",
            market_price, price.emr_fee_per_hour, cost.currency
        ),
    })
}

/// Checkpoint storage per GB-hour (a month is counted as 730 hours, as AWS bills).
pub fn storage_rate(cost: &CostSpec) -> Rate {
    Rate {
        per_hour: cost.storage_per_gb_month / HOURS_PER_MONTH,
        source: format!(
            "cost.storage_per_gb_month {} {}/GB-month over {HOURS_PER_MONTH} h",
            cost.storage_per_gb_month, cost.currency
        ),
    }
}

/// The hours in a billing month, as AWS counts them.
pub const HOURS_PER_MONTH: f64 = 730.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(yaml: &str) -> Workflow {
        crate::workflow::parse("test.yaml", yaml).unwrap_or_else(|d| panic!("{d}"))
    }

    const EMR: &str = "name: wf
store: s3://bucket/prefix
cluster:
  provider: emr
  emr:
    release_label: emr-7.5.0
    service_role: EMR_DefaultRole
    instance_profile: EMR_EC2_DefaultRole
    subnets: [subnet-1]
    primary: {instance_types: [m5.xlarge]}
    core: {instance_types: [r5.2xlarge, r5a.2xlarge], capacity: 4}
cost:
  currency: EUR
  spot_per_hour: 3
  on_demand_per_hour: 9
  instances:
    m5.xlarge: {spot: 0.07, on_demand: 0.192, emr_fee: 0.048}
stages:
  a: {run: x}
";

    #[test]
    fn a_local_cluster_costs_its_cluster_hour_price_on_each_market() {
        let wf = workflow(
            "name: wf\ncost: {spot_per_hour: 0.3, on_demand_per_hour: 1.2}\nstages:\n  a: {run: x}\n",
        );
        assert_eq!(cluster_rate(&wf, Market::Spot).per_hour, 0.3);
        let on_demand = cluster_rate(&wf, Market::OnDemand);
        assert_eq!(on_demand.per_hour, 1.2);
        assert_eq!(on_demand.source, "cost.on_demand_per_hour USD 1.2/h");
    }

    #[test]
    fn an_emr_cluster_sums_its_fleets_and_names_a_type_without_a_price() {
        let wf = workflow(EMR);
        let spot = cluster_rate(&wf, Market::Spot);
        // primary: 1 x (0.07 + 0.048); core: r5.2xlarge has no price, so the cluster-hour 3.
        assert!((spot.per_hour - (0.118 + 3.0)).abs() < 1e-9, "{spot:?}");
        assert!(
            spot.source
                .contains("1 x cost.instances.m5.xlarge spot 0.07 + emr_fee 0.048 EUR/h")
        );
        assert!(
            spot.source
                .contains("r5.2xlarge has no price in cost.instances")
        );
        let on_demand = cluster_rate(&wf, Market::OnDemand);
        assert!(
            (on_demand.per_hour - (0.24 + 9.0)).abs() < 1e-9,
            "{on_demand:?}"
        );
    }

    #[test]
    fn an_instance_hour_includes_the_emr_fee_on_both_markets() {
        let wf = workflow(EMR);
        let rate = instance_rate(&wf.cost, "m5.xlarge", Market::OnDemand).unwrap();
        assert!((rate.per_hour - 0.24).abs() < 1e-9);
        assert_eq!(instance_rate(&wf.cost, "r5.2xlarge", Market::Spot), None);
    }

    #[test]
    fn storage_is_priced_per_gb_hour_from_the_monthly_price() {
        let cost = crate::workflow::defaults::cost();
        let rate = storage_rate(&cost);
        assert!((rate.per_hour * HOURS_PER_MONTH - 0.023).abs() < 1e-12);
    }
}
