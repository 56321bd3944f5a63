//! The Instances member of RunJobFlow: instance fleets (with their launch specifications),
//! instance groups, or the MasterInstanceType shorthand, validated as EMR does (one MASTER of
//! capacity 1, one CORE fleet, not fleets and groups both) and turned into the capacities a
//! cluster reports, and the instances each provisions ([`Fleet::provision`]).

use crate::cluster::{Fleet, random_id};
use crate::validate::{ApiResult, Obj, require_nonempty, validation};

/// Instance fleets, instance groups, or the MasterInstanceType shorthand (as groups).
pub(crate) fn parse_capacity(instances: &Obj) -> ApiResult<(Vec<Fleet>, bool)> {
    let fleet_objs = instances.objs("InstanceFleets", 5)?;
    let group_objs = instances.objs("InstanceGroups", 50)?;
    let master_type = instances.str("MasterInstanceType")?;
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    if !fleet_objs.is_empty() {
        if !group_objs.is_empty() || master_type.is_some() {
            return Err(validation(
                "Specify either InstanceFleets or InstanceGroups (or MasterInstanceType), not both.",
            ));
        }
        let mut fleets = Vec::new();
        for f in &fleet_objs {
            let kind = f.enumerated("InstanceFleetType", &["MASTER", "CORE", "TASK"])?;
            let kind = f.required("InstanceFleetType", kind)?;
            let on_demand = count(
                f.int("TargetOnDemandCapacity", 0, i64::from(i32::MAX))?
                    .unwrap_or(0),
            );
            let spot = count(
                f.int("TargetSpotCapacity", 0, i64::from(i32::MAX))?
                    .unwrap_or(0),
            );
            let configs = f.objs("InstanceTypeConfigs", 30)?;
            require_nonempty(f, "InstanceTypeConfigs", &configs)?;
            let mut types = Vec::new();
            for t in &configs {
                let weight = t
                    .int("WeightedCapacity", 1, i64::from(i32::MAX))?
                    .unwrap_or(1);
                t.int("BidPriceAsPercentageOfOnDemandPrice", 0, 1000)?;
                types.push((t.req_str("InstanceType")?.to_string(), count(weight)));
            }
            let launch = f.obj("LaunchSpecifications")?;
            if let Some(launch) = &launch {
                if let Some(spot_spec) = launch.obj("SpotSpecification")? {
                    let minutes = spot_spec.int("TimeoutDurationMinutes", 5, 1440)?;
                    spot_spec.required("TimeoutDurationMinutes", minutes)?;
                    let actions = ["SWITCH_TO_ON_DEMAND", "TERMINATE_CLUSTER"];
                    let action = spot_spec.enumerated("TimeoutAction", &actions)?;
                    spot_spec.required("TimeoutAction", action)?;
                    spot_spec.enumerated(
                        "AllocationStrategy",
                        &[
                            "capacity-optimized",
                            "price-capacity-optimized",
                            "lowest-price",
                            "diversified",
                            "capacity-optimized-prioritized",
                        ],
                    )?;
                }
                if let Some(od) = launch.obj("OnDemandSpecification")? {
                    let strategy =
                        od.enumerated("AllocationStrategy", &["lowest-price", "prioritized"])?;
                    od.required("AllocationStrategy", strategy)?;
                }
            }
            if kind == "MASTER" && on_demand + spot != 1 {
                return Err(validation(format!(
                    "The master instance fleet must have a total target capacity of 1, not {}.",
                    on_demand + spot
                )));
            }
            if fleets.iter().any(|x: &Fleet| x.kind == kind) && kind != "TASK" {
                return Err(validation(format!(
                    "Only one {kind} instance fleet is allowed."
                )));
            }
            fleets.push(Fleet {
                id: random_id("if-", 13),
                name: f.str("Name")?.map(String::from),
                kind: kind.into(),
                on_demand,
                spot,
                types,
                launch: f.get("LaunchSpecifications").cloned(),
                instances: Vec::new(),
            });
        }
        if !fleets.iter().any(|f| f.kind == "MASTER") {
            return Err(validation("An instance fleet of type MASTER is required."));
        }
        fleets.iter_mut().for_each(Fleet::provision);
        return Ok((fleets, false));
    }
    let mut groups = Vec::new();
    for g in &group_objs {
        let role = g.enumerated("InstanceRole", &["MASTER", "CORE", "TASK"])?;
        let role = g.required("InstanceRole", role)?;
        let market = g.enumerated("Market", &["ON_DEMAND", "SPOT"])?;
        let instance_type = g.req_str("InstanceType")?;
        let n = g.int("InstanceCount", 0, i64::from(i32::MAX))?;
        let n = count(g.required("InstanceCount", n)?);
        if role == "MASTER" && n != 1 && n != 3 {
            return Err(validation(
                "The master instance group must have 1 or 3 instances.",
            ));
        }
        let spot = market == Some("SPOT");
        groups.push(Fleet {
            id: random_id("ig-", 13),
            name: g.str("Name")?.map(String::from),
            kind: role.into(),
            on_demand: if spot { 0 } else { n },
            spot: if spot { n } else { 0 },
            types: vec![(instance_type.into(), 1)],
            launch: None,
            instances: Vec::new(),
        });
    }
    if let Some(master) = master_type {
        let n = count(
            instances
                .int("InstanceCount", 1, i64::from(i32::MAX))?
                .unwrap_or(1),
        );
        let core = instances.str("SlaveInstanceType")?.unwrap_or(master);
        for (kind, instance_type, n) in [("MASTER", master, 1), ("CORE", core, n - 1)] {
            if n > 0 {
                groups.push(Fleet {
                    id: random_id("ig-", 13),
                    name: None,
                    kind: kind.into(),
                    on_demand: n,
                    spot: 0,
                    types: vec![(instance_type.into(), 1)],
                    launch: None,
                    instances: Vec::new(),
                });
            }
        }
    }
    if !groups.iter().any(|g| g.kind == "MASTER") {
        return Err(validation(
            "Instances must have InstanceFleets or InstanceGroups with a MASTER, or a MasterInstanceType.",
        ));
    }
    groups.iter_mut().for_each(Fleet::provision);
    Ok((groups, true))
}
