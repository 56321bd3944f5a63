//! The EMR operations: one request body in, the response body or an API error out, under
//! the state's lock. RunJobFlow, DescribeCluster, ListClusters, AddJobFlowSteps, ListSteps,
//! DescribeStep, CancelSteps, TerminateJobFlows, AddTags, PutAutoTerminationPolicy,
//! GetAutoTerminationPolicy, ListInstanceFleets and ListInstances; lists page by 50, newest first. The
//! shapes of the responses are in `responses.rs`.

use crate::cluster::{
    ALIVE, CLUSTER_STATES, Cluster, STEP_STATES, State, add_step, kill, random_id, shut_down,
};
use crate::emulator::Shared;
use crate::instances::parse_capacity;
use crate::responses::{
    cluster_arn, cluster_status, describe_cluster, fleet_json, instance_json, instance_status,
    normalized_hours, seconds, step_json,
};
use crate::storage::parse_s3;
use crate::validate::{
    ApiError, ApiResult, Obj, idle_timeout, invalid_request, parse_steps, parse_tags,
    require_nonempty, validation,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::SystemTime;

const PAGE: usize = 50;

pub(crate) fn call(shared: &Arc<Shared>, operation: &str, body: &Value) -> ApiResult<Value> {
    let o = Obj::root(body)?;
    let config = &shared.config;
    let mut guard = shared.state.lock().unwrap();
    let state = &mut *guard;
    let now = SystemTime::now();
    match operation {
        "RunJobFlow" => run_job_flow(state, &o, now),
        "DescribeCluster" => {
            let cluster = find(state, o.req_str("ClusterId")?)?;
            Ok(json!({ "Cluster": describe_cluster(cluster, now) }))
        }
        "ListClusters" => list_clusters(state, &o, now),
        "AddJobFlowSteps" => {
            let id = o.req_str("JobFlowId")?;
            let steps = parse_steps(&o, "Steps")?;
            require_nonempty(&o, "Steps", &steps)?;
            let cluster = state
                .clusters
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(|| validation(format!("Cluster id '{id}' is not valid.")))?;
            if !ALIVE.contains(&cluster.state) {
                return Err(validation(
                    "A job flow that is shutting down, terminated, or finished may not be modified.",
                ));
            }
            let ids: Vec<String> = steps
                .into_iter()
                .map(|spec| add_step(cluster, spec, now))
                .collect();
            Ok(json!({ "StepIds": ids }))
        }
        "ListSteps" => {
            let cluster = find(state, o.req_str("ClusterId")?)?;
            let states = o.enums("StepStates", &STEP_STATES)?;
            let ids = o.strs("StepIds", 100)?;
            let steps: Vec<Value> = cluster
                .steps
                .iter()
                .rev()
                .filter(|s| states.is_empty() || states.iter().any(|x| x == s.state))
                .filter(|s| ids.is_empty() || ids.contains(&s.id))
                .map(step_json)
                .collect();
            let (page, marker) = page(steps, o.str("Marker")?)?;
            Ok(json!({ "Steps": page, "Marker": marker }))
        }
        "DescribeStep" => {
            let cluster = find(state, o.req_str("ClusterId")?)?;
            let id = o.req_str("StepId")?;
            let step = cluster
                .steps
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(|| invalid_request(format!("Step id '{id}' is not valid.")))?;
            Ok(json!({ "Step": step_json(step) }))
        }
        "CancelSteps" => cancel_steps(state, &o, now),
        "TerminateJobFlows" => {
            let ids = o.strs("JobFlowIds", 10_000)?;
            require_nonempty(&o, "JobFlowIds", &ids)?;
            if let Some(id) = ids
                .iter()
                .find(|id| !state.clusters.iter().any(|c| &c.id == *id))
            {
                return Err(validation(format!("Cluster id '{id}' is not valid.")));
            }
            for cluster in state.clusters.iter_mut().filter(|c| ids.contains(&c.id)) {
                let reason = ("USER_REQUEST", "Terminated by user request".to_string());
                shut_down(cluster, config, now, "TERMINATED", reason, "CANCELLED");
            }
            Ok(json!({}))
        }
        "AddTags" => {
            let id = o.req_str("ResourceId")?;
            let tags = parse_tags(&o)?;
            require_nonempty(&o, "Tags", &tags)?;
            let cluster = find_mut(state, id)?;
            for (key, value) in tags {
                match cluster.tags.iter_mut().find(|(k, _)| *k == key) {
                    Some(tag) => tag.1 = value,
                    None => cluster.tags.push((key, value)),
                }
            }
            Ok(json!({}))
        }
        "PutAutoTerminationPolicy" => {
            let id = o.req_str("ClusterId")?;
            let timeout = idle_timeout(&o)?;
            find_mut(state, id)?.idle_timeout = timeout;
            Ok(json!({}))
        }
        "GetAutoTerminationPolicy" => {
            let cluster = find(state, o.req_str("ClusterId")?)?;
            let policy = cluster.idle_timeout.map(|t| json!({ "IdleTimeout": t }));
            Ok(json!({ "AutoTerminationPolicy": policy }))
        }
        "ListInstanceFleets" => {
            let cluster = find(state, o.req_str("ClusterId")?)?;
            let fleets: Vec<Value> = if cluster.instance_groups {
                Vec::new()
            } else {
                cluster
                    .fleets
                    .iter()
                    .map(|f| fleet_json(cluster, f))
                    .collect()
            };
            let (page, marker) = page(fleets, o.str("Marker")?)?;
            Ok(json!({ "InstanceFleets": page, "Marker": marker }))
        }
        "ListInstances" => list_instances(state, &o),
        _ => Err(ApiError {
            kind: "UnknownOperationException",
            message: format!("the EMR emulator does not implement {operation}"),
        }),
    }
}

/// ListInstances: every instance of the cluster (the emulator forgets nothing, where EMR
/// keeps terminated ones for 30 days), in fleet order, filtered as asked.
fn list_instances(state: &State, o: &Obj) -> ApiResult<Value> {
    let cluster = find(state, o.req_str("ClusterId")?)?;
    let kinds = ["MASTER", "CORE", "TASK"];
    let fleet_id = o.str("InstanceFleetId")?;
    let fleet_type = o.enumerated("InstanceFleetType", &kinds)?;
    let group_id = o.str("InstanceGroupId")?;
    let group_types = o.enums("InstanceGroupTypes", &kinds)?;
    let states = &o.enums("InstanceStates", &INSTANCE_STATES)?;
    let groups = cluster.instance_groups;
    let instances: Vec<Value> = cluster
        .fleets
        .iter()
        .filter(|f| fleet_id.is_none_or(|id| !groups && f.id == id))
        .filter(|f| fleet_type.is_none_or(|kind| !groups && f.kind == kind))
        .filter(|f| group_id.is_none_or(|id| groups && f.id == id))
        .filter(|f| group_types.is_empty() || (groups && group_types.contains(&f.kind)))
        .flat_map(|f| {
            f.instances
                .iter()
                .filter(move |i| {
                    let status = instance_status(cluster, i);
                    states.is_empty() || states.iter().any(|s| s == status)
                })
                .map(move |i| instance_json(cluster, f, i))
        })
        .collect();
    let (page, marker) = page(instances, o.str("Marker")?)?;
    Ok(json!({ "Instances": page, "Marker": marker }))
}

const INSTANCE_STATES: [&str; 5] = [
    "AWAITING_FULFILLMENT",
    "PROVISIONING",
    "BOOTSTRAPPING",
    "RUNNING",
    "TERMINATED",
];

fn find<'a>(state: &'a State, id: &str) -> ApiResult<&'a Cluster> {
    state
        .clusters
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| invalid_request(format!("Cluster id '{id}' is not valid.")))
}

fn find_mut<'a>(state: &'a mut State, id: &str) -> ApiResult<&'a mut Cluster> {
    state
        .clusters
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or_else(|| invalid_request(format!("Cluster id '{id}' is not valid.")))
}

/// One page of 50 and the marker of the next.
fn page(items: Vec<Value>, marker: Option<&str>) -> ApiResult<(Vec<Value>, Option<String>)> {
    let start = match marker {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= items.len())
            .ok_or_else(|| invalid_request("Marker is not valid."))?,
    };
    let end = (start + PAGE).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

fn run_job_flow(state: &mut State, o: &Obj, now: SystemTime) -> ApiResult<Value> {
    let name = o.req_str("Name")?;
    let release = o.req_str("ReleaseLabel")?;
    let version: Vec<&str> = release
        .strip_prefix("emr-")
        .unwrap_or("")
        .split('.')
        .collect();
    if version.len() != 3 || version.iter().any(|p| p.parse::<u32>().is_err()) {
        return Err(validation(format!(
            "The supplied release label '{release}' is not valid (expected emr-x.y.z)."
        )));
    }
    let instances = o.req_obj("Instances")?;
    let (fleets, instance_groups) = parse_capacity(&instances)?;
    let keep_alive = instances
        .bool("KeepJobFlowAliveWhenNoSteps")?
        .unwrap_or(false);
    instances.bool("TerminationProtected")?;
    let mut subnets = instances.strs("Ec2SubnetIds", 100)?;
    if let Some(subnet) = instances.str("Ec2SubnetId")? {
        subnets.insert(0, subnet.into());
    }
    let job_flow_role = o.req_str("JobFlowRole")?;
    let service_role = o.req_str("ServiceRole")?;
    let log_uri = o.str("LogUri")?;
    if let Some(uri) = log_uri
        && parse_s3(uri).is_none()
    {
        return Err(validation(format!(
            "The log URI '{uri}' is not valid: expected s3://bucket/prefix."
        )));
    }
    let mut applications = Vec::new();
    for app in o.objs("Applications", 100)? {
        applications.push(json!({ "Name": app.req_str("Name")? }));
    }
    for action in o.objs("BootstrapActions", 16)? {
        action.req_str("Name")?;
        action.req_obj("ScriptBootstrapAction")?.req_str("Path")?;
    }
    let configurations = o.list("Configurations", 10_000)?;
    let tags = parse_tags(o)?;
    let idle_timeout = idle_timeout(o)?;
    let concurrency = o.int("StepConcurrencyLevel", 1, 256)?.unwrap_or(1) as usize;
    let visible = o.bool("VisibleToAllUsers")?.unwrap_or(true);
    let specs = parse_steps(o, "Steps")?;
    let id = random_id("j-", 13);
    let mut cluster = Cluster {
        id: id.clone(),
        name: name.into(),
        release_label: release.into(),
        log_uri: log_uri.map(String::from),
        job_flow_role: job_flow_role.into(),
        service_role: service_role.into(),
        fleets,
        instance_groups,
        subnets,
        applications: Value::Array(applications),
        configurations: Value::Array(configurations.into_iter().map(|(_, v)| v.clone()).collect()),
        tags,
        keep_alive,
        idle_timeout,
        concurrency,
        visible,
        state: "STARTING",
        reason: Some(("", "Configuring cluster software".into())),
        created: now,
        ready: None,
        ended: None,
        idle_since: now,
        end_at: None,
        final_state: "TERMINATED",
        lose_at: None,
        reclaims: Vec::new(),
        steps: Vec::new(),
    };
    for spec in specs {
        add_step(&mut cluster, spec, now);
    }
    let arn = cluster_arn(&id);
    state.clusters.push(cluster);
    Ok(json!({ "JobFlowId": id, "ClusterArn": arn }))
}

fn list_clusters(state: &State, o: &Obj, now: SystemTime) -> ApiResult<Value> {
    let after = o.time("CreatedAfter")?;
    let before = o.time("CreatedBefore")?;
    let states = o.enums("ClusterStates", &CLUSTER_STATES)?;
    let summaries: Vec<Value> = state
        .clusters
        .iter()
        .rev()
        .filter(|c| states.is_empty() || states.iter().any(|s| s == c.state))
        .filter(|c| after.is_none_or(|t| seconds(c.created) >= t))
        .filter(|c| before.is_none_or(|t| seconds(c.created) <= t))
        .map(|c| {
            json!({
                "Id": c.id,
                "Name": c.name,
                "Status": cluster_status(c),
                "NormalizedInstanceHours": normalized_hours(c, now),
                "ClusterArn": cluster_arn(&c.id),
            })
        })
        .collect();
    let (page, marker) = page(summaries, o.str("Marker")?)?;
    Ok(json!({ "Clusters": page, "Marker": marker }))
}

fn cancel_steps(state: &mut State, o: &Obj, now: SystemTime) -> ApiResult<Value> {
    let cluster = find_mut(state, o.req_str("ClusterId")?)?;
    let ids = o.strs("StepIds", 256)?;
    require_nonempty(o, "StepIds", &ids)?;
    let option = o
        .enumerated(
            "StepCancellationOption",
            &["SEND_INTERRUPT", "TERMINATE_PROCESS"],
        )?
        .unwrap_or("SEND_INTERRUPT");
    let mut infos = Vec::new();
    for id in ids {
        let (status, reason) = match cluster.steps.iter_mut().find(|s| s.id == id) {
            None => ("FAILED", Some(format!("Step id '{id}' is not valid."))),
            Some(step) => match step.state {
                "PENDING" => {
                    step.state = "CANCELLED";
                    step.ended = Some(now);
                    ("SUBMITTED", None)
                }
                "RUNNING" if option == "TERMINATE_PROCESS" => {
                    kill(step, libc::SIGKILL);
                    step.state = "CANCELLED";
                    step.ended = Some(now);
                    ("SUBMITTED", None)
                }
                "RUNNING" => {
                    // SIGTERM; the step is CANCELLED once its process has exited.
                    if let Some(pid) = step.pid {
                        // SAFETY: kill(2) on a process group this emulator started.
                        unsafe { libc::kill(-pid, libc::SIGTERM) };
                    }
                    step.state = "CANCEL_PENDING";
                    ("SUBMITTED", None)
                }
                other => (
                    "FAILED",
                    Some(format!("The step is {other} and cannot be cancelled.")),
                ),
            },
        };
        infos.push(json!({ "StepId": id, "Status": status, "Reason": reason }));
    }
    Ok(json!({ "CancelStepsInfoList": infos }))
}
