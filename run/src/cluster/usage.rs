//! What a cluster's instances were and how long each ran, summed per fleet, instance type
//! and market: what the cost report prices per instance type. EMR lists every instance of
//! a cluster with its fleet, type, market and timeline (ListInstances), so the sums come
//! from what it actually provisioned, not from what the workflow asked for.

pub use respawn_core::contract::InstanceUse;
use respawn_core::workflow::Market;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cluster's instance-hours, in all and per kind of instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub instance_hours: f64,
    pub instances: Vec<InstanceUse>,
}

/// One instance as the provider lists it; times are seconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedInstance {
    pub fleet: String,
    pub fleet_type: String,
    pub instance_type: String,
    pub market: Market,
    pub created: Option<f64>,
    pub ready: Option<f64>,
    pub ended: Option<f64>,
}

/// Sums instances per (fleet, type, market), in the order they were listed. An instance
/// is counted from its creation (EC2 bills from launch, so provisioning is included; its
/// ready time when the creation is missing) to its end, or to `now` while it runs; one
/// with neither time counts no hours. Hours are rounded to a millionth (3.6 ms).
pub fn usage(instances: &[ListedInstance], now: f64) -> Usage {
    let mut kinds: Vec<(InstanceUse, Option<f64>, Option<f64>, bool)> = Vec::new();
    for instance in instances {
        let start = instance.created.or(instance.ready);
        let end = instance.ended.unwrap_or(now);
        let hours = start.map_or(0.0, |start| (end - start).max(0.0) / 3600.0);
        let same = |(kind, ..): &&mut (InstanceUse, Option<f64>, Option<f64>, bool)| {
            kind.fleet == instance.fleet
                && kind.instance_type == instance.instance_type
                && kind.market == instance.market
        };
        match kinds.iter_mut().find(same) {
            Some((kind, first, last, running)) => {
                kind.count += 1;
                kind.instance_hours += hours;
                *first = earliest(*first, start);
                *last = latest(*last, instance.ended);
                *running |= instance.ended.is_none();
            }
            None => kinds.push((
                InstanceUse {
                    fleet: instance.fleet.clone(),
                    fleet_type: instance.fleet_type.clone(),
                    instance_type: instance.instance_type.clone(),
                    market: instance.market,
                    count: 1,
                    instance_hours: hours,
                    from: None,
                    until: None,
                },
                start,
                instance.ended,
                instance.ended.is_none(),
            )),
        }
    }
    let instances: Vec<InstanceUse> = kinds
        .into_iter()
        .map(|(mut kind, first, last, running)| {
            kind.instance_hours = round(kind.instance_hours);
            kind.from = first.map(rfc3339);
            kind.until = last.filter(|_| !running).map(rfc3339);
            kind
        })
        .collect();
    Usage {
        instance_hours: round(instances.iter().map(|k| k.instance_hours).sum()),
        instances,
    }
}

fn earliest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Hours to a millionth, so that records stay short and sums add up when read back.
pub fn round(hours: f64) -> f64 {
    (hours * 1e6).round() / 1e6
}

fn rfc3339(seconds: f64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0));
    crate::ledger::timestamp(at)
}

/// Seconds since the Unix epoch now, for instances still running.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(
        fleet: &str,
        kind: &str,
        market: Market,
        times: [Option<f64>; 3],
    ) -> ListedInstance {
        ListedInstance {
            fleet: fleet.into(),
            fleet_type: if fleet == "primary" { "MASTER" } else { "CORE" }.into(),
            instance_type: kind.into(),
            market,
            created: times[0],
            ready: times[1],
            ended: times[2],
        }
    }

    #[test]
    fn instances_are_summed_per_fleet_type_and_market_from_creation_to_end_or_now() {
        let spot = Market::Spot;
        let h = 3600.0;
        let listed = [
            instance(
                "primary",
                "m5.xlarge",
                spot,
                [Some(0.0), Some(0.1 * h), Some(2.0 * h)],
            ),
            instance("core", "r5.2xlarge", spot, [Some(0.0), None, Some(2.0 * h)]),
            instance("core", "r5.2xlarge", spot, [Some(h), None, Some(2.0 * h)]),
            // Still running when listed at 3 h.
            instance("core", "r5a.2xlarge", spot, [Some(h), None, None]),
            instance(
                "core",
                "r5.2xlarge",
                Market::OnDemand,
                [None, Some(h), Some(1.5 * h)],
            ),
            instance(
                "core",
                "r5.2xlarge",
                Market::OnDemand,
                [None, None, Some(h)],
            ),
        ];
        let used = usage(&listed, 3.0 * h);
        let kinds: Vec<(&str, &str, Market, u32, f64)> = used
            .instances
            .iter()
            .map(|k| {
                (
                    k.fleet.as_str(),
                    k.instance_type.as_str(),
                    k.market,
                    k.count,
                    k.instance_hours,
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("primary", "m5.xlarge", spot, 1, 2.0),
                ("core", "r5.2xlarge", spot, 2, 3.0),
                ("core", "r5a.2xlarge", spot, 1, 2.0),
                ("core", "r5.2xlarge", Market::OnDemand, 2, 0.5),
            ]
        );
        assert_eq!(used.instance_hours, 7.5);
        assert_eq!(used.instances[0].fleet_type, "MASTER");
        assert_eq!(
            used.instances[1].from.as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            used.instances[1].until.as_deref(),
            Some("1970-01-01T02:00:00Z")
        );
        assert_eq!(used.instances[2].until, None, "one still runs");
    }
}
