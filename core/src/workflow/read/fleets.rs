//! `cluster.emr.primary`, `core` and `task`: an instance fleet's types, capacity and
//! market; and how long a replacement avoids a zone whose capacity was reclaimed.

use super::reader::Reader;
use crate::workflow::defaults;
use crate::workflow::model::{FleetSpec, Market};
use crate::workflow::yaml::Node;
use std::time::Duration;

const FLEET_KEYS: &[&str] = &["instance_types", "capacity", "market"];

/// `cluster.emr.<key>`: the primary fleet has one instance, the others 1 to 1,000.
pub(super) fn read_fleet(r: &mut Reader, node: &Node, key: &str) -> Option<FleetSpec> {
    let what = format_args!("`cluster.emr.{key}`");
    let fields = r.fields(node, what, FLEET_KEYS)?;
    let types_what = format!("`cluster.emr.{key}.instance_types`");
    let types = r
        .required(
            &fields,
            "instance_types",
            what,
            "for example `instance_types: [m5.xlarge, m5a.xlarge]`",
        )
        .and_then(|node| {
            let types = r.string_list(node, &types_what)?;
            if types.is_empty() || types.len() > 30 {
                r.error(
                    node.position,
                    format!(
                        "{types_what} must list 1 to 30 instance types, found {}",
                        types.len()
                    ),
                    Some("several types let EMR find spot capacity".into()),
                );
                return None;
            }
            Some(types)
        });
    let most = if key == "primary" { 1 } else { 1000 };
    let capacity = match fields.get("capacity") {
        Some(node) => r.integer(node, format_args!("`cluster.emr.{key}.capacity`"), 1, most),
        None => Some(defaults::FLEET_CAPACITY),
    };
    let market = match fields.get("market") {
        Some(node) => r
            .choice(
                node,
                format_args!("`cluster.emr.{key}.market`"),
                &[("spot", Market::Spot), ("on-demand", Market::OnDemand)],
            )
            .map(Some),
        None => Some(None),
    };
    Some(FleetSpec {
        instance_types: types?,
        capacity: capacity?,
        market: market?,
    })
}

/// `cluster.emr.avoid_reclaimed_zone`: 30 minutes unless given; `0s` never avoids.
pub(super) fn read_avoid_reclaimed_zone(
    r: &mut Reader,
    node: Option<&Node>,
) -> Option<Option<Duration>> {
    let Some(node) = node else {
        return Some(Some(defaults::AVOID_RECLAIMED_ZONE));
    };
    let value = r.duration(node, "`cluster.emr.avoid_reclaimed_zone`", "30m")?;
    Some((!value.is_zero()).then_some(value))
}

#[cfg(test)]
mod tests {
    use crate::workflow::model::Market;
    use crate::workflow::read::valid;
    use std::time::Duration;

    /// A workflow on EMR whose fleets (and more of `cluster.emr`) are `fleets`.
    fn emr(fleets: &str) -> String {
        format!(
            "name: wf\ncluster:\n  provider: emr\n  emr:\n    release_label: emr-7.5.0\n    \
             service_role: s\n    instance_profile: p\n{fleets}stages:\n  a: {{run: x}}\n"
        )
    }

    #[test]
    fn primary_and_core_beside_a_spot_task_fleet_are_on_demand_unless_the_file_says() {
        let workflow = valid(&emr("    primary: {instance_types: [m5.xlarge]}
    core: {instance_types: [r5.xlarge], capacity: 2}
    task: {instance_types: [r5.xlarge, r5a.xlarge], capacity: 4}
"));
        let spec = workflow.cluster.emr.as_ref().unwrap();
        let task = spec.task.as_ref().unwrap();
        let core = spec.core.as_ref().unwrap();
        assert_eq!(task.capacity, 4);
        assert_eq!(spec.fleet_market(task, true, Market::Spot), Market::Spot);
        assert_eq!(
            spec.fleet_market(core, false, Market::Spot),
            Market::OnDemand
        );
        let primary = &spec.primary;
        assert_eq!(
            spec.fleet_market(primary, false, Market::Spot),
            Market::OnDemand
        );
        assert_eq!(
            spec.fleet_market(task, true, Market::OnDemand),
            Market::OnDemand
        );
        assert_eq!(spec.avoid_reclaimed_zone, Some(Duration::from_secs(1800)));
        let workflow = valid(&emr("    primary: {instance_types: [m5.xlarge]}
    core: {instance_types: [r5.xlarge], market: spot}
    task: {instance_types: [r5.xlarge]}
    avoid_reclaimed_zone: 0s
"));
        let spec = workflow.cluster.emr.as_ref().unwrap();
        let core = spec.core.as_ref().unwrap();
        assert_eq!(spec.fleet_market(core, false, Market::Spot), Market::Spot);
        assert_eq!(spec.avoid_reclaimed_zone, None);
    }

    #[test]
    fn without_a_task_fleet_every_fleet_follows_the_run() {
        let workflow = valid(&emr("    primary: {instance_types: [m5.xlarge]}\n"));
        let spec = workflow.cluster.emr.as_ref().unwrap();
        let primary = &spec.primary;
        assert_eq!(
            spec.fleet_market(primary, false, Market::Spot),
            Market::Spot
        );
        assert_eq!(
            spec.fleet_market(primary, false, Market::OnDemand),
            Market::OnDemand
        );
    }

    #[test]
    fn a_fleet_market_that_is_no_market_is_named_at_its_place() {
        let yaml = emr("    primary: {instance_types: [m5.xlarge]}
    task: {instance_types: [r5.xlarge], market: cheap}
");
        assert_error!(
            &yaml,
            9,
            49,
            "`cluster.emr.task.market` must be one of spot | on-demand"
        );
    }
}
