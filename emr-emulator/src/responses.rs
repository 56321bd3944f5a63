//! The JSON EMR answers with, from the records: a cluster (its status and timeline, its
//! summary, the normalized instance hours), a fleet, an instance, a step. Timestamps are epoch seconds,
//! as awsJson1.1 has them; members that are null are left out by the server.

use crate::cluster::{Cluster, Fleet, Instance, Step};
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as f64 / 1000.0
}

fn epoch(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| json!(seconds(t)))
}

pub(crate) fn cluster_arn(id: &str) -> String {
    format!("arn:aws:elasticmapreduce:us-east-1:123456789012:cluster/{id}")
}

pub(crate) fn cluster_status(c: &Cluster) -> Value {
    let reason = match &c.reason {
        Some((code, message)) => json!({
            "Code": (!code.is_empty()).then_some(*code),
            "Message": message,
        }),
        None if c.state == "WAITING" => json!({ "Message": "Cluster ready to run steps." }),
        None => json!({}),
    };
    json!({
        "State": c.state,
        "StateChangeReason": reason,
        "Timeline": {
            "CreationDateTime": epoch(Some(c.created)),
            "ReadyDateTime": epoch(c.ready),
            "EndDateTime": epoch(c.ended),
        },
    })
}

pub(crate) fn describe_cluster(c: &Cluster, now: SystemTime) -> Value {
    let tags: Vec<Value> = c
        .tags
        .iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    json!({
        "Id": c.id,
        "Name": c.name,
        "Status": cluster_status(c),
        "Ec2InstanceAttributes": {
            "Ec2SubnetId": c.subnets.first(),
            "RequestedEc2SubnetIds": c.subnets,
            "Ec2AvailabilityZone": crate::reclaim::zone_of(c.subnets.first().map_or("", |s| s.as_str())),
            "IamInstanceProfile": c.job_flow_role,
        },
        "InstanceCollectionType": if c.instance_groups { "INSTANCE_GROUP" } else { "INSTANCE_FLEET" },
        "LogUri": c.log_uri,
        "ReleaseLabel": c.release_label,
        "AutoTerminate": !c.keep_alive,
        "TerminationProtected": false,
        "VisibleToAllUsers": c.visible,
        "Applications": c.applications,
        "Tags": tags,
        "ServiceRole": c.service_role,
        "NormalizedInstanceHours": normalized_hours(c, now),
        "MasterPublicDnsName": c.ready.map(|_| "localhost"),
        "Configurations": c.configurations,
        "ClusterArn": cluster_arn(&c.id),
        "StepConcurrencyLevel": c.concurrency,
    })
}

/// Instances x the normalization factor of their size x started hours.
pub(crate) fn normalized_hours(c: &Cluster, now: SystemTime) -> u64 {
    let Some(ready) = c.ready else {
        return 0;
    };
    let until = c.ended.unwrap_or(now);
    let hours = until.duration_since(ready).unwrap_or_default().as_secs() / 3600 + 1;
    let factor = |instance_type: &str| match instance_type.split('.').nth(1).unwrap_or("") {
        "nano" | "micro" | "small" => 1,
        "medium" => 2,
        "large" => 4,
        "metal" => 192,
        size => size
            .strip_suffix("xlarge")
            .map(|n| n.parse::<u64>().unwrap_or(1) * 8)
            .unwrap_or(8),
    };
    let units: u64 = c
        .fleets
        .iter()
        .map(|f| u64::from(f.on_demand + f.spot) * factor(f.types.first().map_or("", |t| &t.0)))
        .sum();
    units * hours
}

pub(crate) fn fleet_json(c: &Cluster, f: &Fleet) -> Value {
    let state = match c.state {
        "STARTING" | "BOOTSTRAPPING" => "PROVISIONING",
        "RUNNING" | "WAITING" => "RUNNING",
        "TERMINATING" => "TERMINATING",
        _ => "TERMINATED",
    };
    let reason = match (&c.reason, state) {
        (Some(("INSTANCE_FAILURE", message)), "TERMINATING" | "TERMINATED") => {
            json!({ "Code": "INSTANCE_FAILURE", "Message": message })
        }
        (_, "TERMINATING" | "TERMINATED") => {
            json!({ "Code": "CLUSTER_TERMINATED", "Message": "The cluster was terminated." })
        }
        _ => json!({}),
    };
    let up = state == "RUNNING";
    let types: Vec<Value> = f
        .types
        .iter()
        .map(|(t, w)| json!({ "InstanceType": t, "WeightedCapacity": w }))
        .collect();
    json!({
        "Id": f.id,
        "Name": f.name,
        "Status": {
            "State": state,
            "StateChangeReason": reason,
            "Timeline": {
                "CreationDateTime": epoch(Some(c.created)),
                "ReadyDateTime": epoch(c.ready),
                "EndDateTime": epoch(c.ended),
            },
        },
        "InstanceFleetType": f.kind,
        "TargetOnDemandCapacity": f.on_demand,
        "TargetSpotCapacity": f.spot,
        "ProvisionedOnDemandCapacity": if up { f.on_demand } else { 0 },
        "ProvisionedSpotCapacity": if up { f.spot } else { 0 },
        "InstanceTypeSpecifications": types,
        "LaunchSpecifications": f.launch,
    })
}

/// One instance of a fleet (or group) as ListInstances has it. Its state and timeline are
/// its cluster's: PROVISIONING while the cluster starts, RUNNING while it is up or shutting
/// down, TERMINATED (with the cluster's end time and reason) once it ended.
pub(crate) fn instance_json(c: &Cluster, f: &Fleet, i: &Instance) -> Value {
    let state = instance_status(c, i);
    let reason = match (&c.reason, state) {
        _ if i.ended.is_some() => json!({
            "Code": "INSTANCE_FAILURE",
            "Message": "Spot instance termination: Amazon EC2 reclaimed this Spot instance.",
        }),
        (Some(("INSTANCE_FAILURE", message)), "TERMINATED") => {
            json!({ "Code": "INSTANCE_FAILURE", "Message": message })
        }
        (_, "TERMINATED") => {
            json!({ "Code": "CLUSTER_TERMINATED", "Message": "The cluster was terminated." })
        }
        _ => json!({}),
    };
    let (fleet_id, group_id) = if c.instance_groups {
        (None, Some(&f.id))
    } else {
        (Some(&f.id), None)
    };
    json!({
        "Id": i.id,
        "Ec2InstanceId": i.ec2_id,
        "PrivateDnsName": "localhost",
        "PrivateIpAddress": "127.0.0.1",
        "Status": {
            "State": state,
            "StateChangeReason": reason,
            "Timeline": {
                "CreationDateTime": epoch(Some(i.created.unwrap_or(c.created))),
                "ReadyDateTime": epoch(i.created.or(c.ready)),
                "EndDateTime": epoch(i.ended.or(c.ended)),
            },
        },
        "InstanceFleetId": fleet_id,
        "InstanceGroupId": group_id,
        "Market": i.market,
        "InstanceType": i.instance_type,
        "EbsVolumes": [],
    })
}

/// The state of one instance: its cluster's, unless EC2 reclaimed it.
pub(crate) fn instance_status(c: &Cluster, i: &Instance) -> &'static str {
    if i.ended.is_some() {
        "TERMINATED"
    } else {
        instance_state(c)
    }
}

/// The state of a cluster's instances (ListInstances' InstanceState).
pub(crate) fn instance_state(c: &Cluster) -> &'static str {
    match c.state {
        "STARTING" => "PROVISIONING",
        "BOOTSTRAPPING" => "BOOTSTRAPPING",
        "RUNNING" | "WAITING" | "TERMINATING" => "RUNNING",
        _ => "TERMINATED",
    }
}

pub(crate) fn step_json(s: &Step) -> Value {
    let properties: Map<String, Value> = s
        .spec
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "Id": s.id,
        "Name": s.spec.name,
        "Config": {
            "Jar": s.spec.jar,
            "Properties": properties,
            "MainClass": s.spec.main_class,
            "Args": s.spec.args,
        },
        "ActionOnFailure": s.spec.action_on_failure,
        "Status": {
            "State": s.state,
            "StateChangeReason": {},
            "FailureDetails": s.failure,
            "Timeline": {
                "CreationDateTime": epoch(Some(s.created)),
                "StartDateTime": epoch(s.started),
                "EndDateTime": epoch(s.ended),
            },
        },
    })
}
