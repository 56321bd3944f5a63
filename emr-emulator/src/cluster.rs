//! A cluster's life as EMR reports it, on a clock tick: the cluster, fleet and step records,
//! STARTING to WAITING, steps started in order up to StepConcurrencyLevel, RUNNING and
//! WAITING, ending after the last step or an idle timeout, a spot loss, and TERMINATING to
//! the final state. Every end goes through [`shut_down`], which kills the step processes and
//! drops the cluster's files. The steps themselves run in `steps.rs`.

use crate::emulator::{EmulatorConfig, Request, Shared};
use crate::steps::start_step;
use serde_json::Value;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const TICK: Duration = Duration::from_millis(20);
/// How long after an armed step starts its cluster is lost.
pub(crate) const LOSS_DELAY: Duration = Duration::from_millis(300);
const LOSS_MESSAGE: &str = "Spot instance termination: Amazon EC2 reclaimed the Spot instances \
     of the primary node and the core nodes, and the cluster was lost.";
pub(crate) const ALIVE: [&str; 4] = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"];
pub(crate) const CLUSTER_STATES: [&str; 7] = [
    "STARTING",
    "BOOTSTRAPPING",
    "RUNNING",
    "WAITING",
    "TERMINATING",
    "TERMINATED",
    "TERMINATED_WITH_ERRORS",
];
pub(crate) const STEP_STATES: [&str; 7] = [
    "PENDING",
    "CANCEL_PENDING",
    "RUNNING",
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "INTERRUPTED",
];

/// An instance fleet, or an instance group (a fleet of one instance type).
pub(crate) struct Fleet {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) kind: String,
    pub(crate) on_demand: u32,
    pub(crate) spot: u32,
    /// Instance type and weighted capacity.
    pub(crate) types: Vec<(String, u32)>,
    pub(crate) launch: Option<Value>,
    /// The instances it provisioned, made when the cluster is asked for.
    pub(crate) instances: Vec<Instance>,
}

/// One EC2 instance of a fleet or group. Its life is its cluster's (created with it, ready
/// when it is, ended when it ends) unless EC2 reclaims it first (`reclaim.rs`), or it came
/// later in the place of one that was.
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) ec2_id: String,
    pub(crate) instance_type: String,
    /// `SPOT` or `ON_DEMAND`.
    pub(crate) market: &'static str,
    /// When it was made, if after its cluster.
    pub(crate) created: Option<SystemTime>,
    /// When EC2 reclaimed it, if before its cluster ended.
    pub(crate) ended: Option<SystemTime>,
}

impl Instance {
    pub(crate) fn new(instance_type: &str, market: &'static str) -> Instance {
        Instance {
            id: random_id("ci-", 13),
            ec2_id: format!("i-{}", hex(&random_id("", 17))),
            instance_type: instance_type.into(),
            market,
            created: None,
            ended: None,
        }
    }
}

impl Fleet {
    /// A fleet's (or group's) instances, by the emulator's rule: every instance is of the
    /// fleet's first instance type, enough of them to meet each target capacity with that
    /// type's weighted capacity (rounded up), spot for the spot target and on-demand for
    /// the on-demand one. Real EMR chooses among the types by its allocation strategy.
    pub(crate) fn provision(&mut self) {
        let Some((instance_type, weight)) = self.types.first() else {
            return;
        };
        let weight = (*weight).max(1);
        let mut instances = Vec::new();
        for (market, target) in [("ON_DEMAND", self.on_demand), ("SPOT", self.spot)] {
            for _ in 0..target.div_ceil(weight) {
                instances.push(Instance::new(instance_type, market));
            }
        }
        self.instances = instances;
    }
}

/// A step as submitted.
#[derive(Clone)]
pub(crate) struct StepSpec {
    pub(crate) name: String,
    pub(crate) action_on_failure: String,
    pub(crate) jar: String,
    pub(crate) args: Vec<String>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) main_class: Option<String>,
}

/// A step as it runs.
pub(crate) struct Step {
    pub(crate) id: String,
    pub(crate) spec: StepSpec,
    pub(crate) state: &'static str,
    pub(crate) failure: Option<Value>,
    pub(crate) created: SystemTime,
    pub(crate) started: Option<SystemTime>,
    pub(crate) ended: Option<SystemTime>,
    /// Process group of the running command.
    pub(crate) pid: Option<i32>,
    pub(crate) task: Option<tokio::task::AbortHandle>,
}

/// A cluster as requested, and where it is in its life.
pub(crate) struct Cluster {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) release_label: String,
    pub(crate) log_uri: Option<String>,
    pub(crate) job_flow_role: String,
    pub(crate) service_role: String,
    pub(crate) fleets: Vec<Fleet>,
    pub(crate) instance_groups: bool,
    pub(crate) subnets: Vec<String>,
    pub(crate) applications: Value,
    pub(crate) configurations: Value,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) keep_alive: bool,
    pub(crate) idle_timeout: Option<i64>,
    pub(crate) concurrency: usize,
    pub(crate) visible: bool,
    pub(crate) state: &'static str,
    pub(crate) reason: Option<(&'static str, String)>,
    pub(crate) created: SystemTime,
    pub(crate) ready: Option<SystemTime>,
    pub(crate) ended: Option<SystemTime>,
    pub(crate) idle_since: SystemTime,
    pub(crate) end_at: Option<SystemTime>,
    pub(crate) final_state: &'static str,
    pub(crate) lose_at: Option<SystemTime>,
    /// Instances EC2 is to reclaim, and when.
    pub(crate) reclaims: Vec<crate::reclaim::NodeReclaim>,
    pub(crate) steps: Vec<Step>,
}

/// Everything the emulator knows, behind one lock.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) clusters: Vec<Cluster>,
    pub(crate) requests: Vec<Request>,
    pub(crate) throttle: u32,
    /// Requests refused with ThrottlingException so far.
    pub(crate) throttled: u32,
    pub(crate) lose_on_step: Option<String>,
}

pub(crate) fn add_step(cluster: &mut Cluster, spec: StepSpec, now: SystemTime) -> String {
    let id = random_id("s-", 13);
    cluster.steps.push(Step {
        id: id.clone(),
        spec,
        state: "PENDING",
        failure: None,
        created: now,
        started: None,
        ended: None,
        pid: None,
        task: None,
    });
    id
}

/// An id as EMR makes them: `prefix` and `len` characters of `[A-Z0-9]`.
pub(crate) fn random_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let random = std::collections::hash_map::RandomState::new();
    let mut id = String::from(prefix);
    let mut bits = 0u64;
    for i in 0..len {
        if i % 10 == 0 {
            let mut hasher = random.build_hasher();
            hasher.write_usize(i);
            bits = hasher.finish();
        }
        id.push(ALPHABET[(bits % 36) as usize] as char);
        bits /= 36;
    }
    id
}

/// EC2's ids are hexadecimal: each character of `id` mapped to one hex digit.
fn hex(id: &str) -> String {
    id.bytes()
        .map(|b| char::from_digit(u32::from(b) % 16, 16).unwrap_or('0'))
        .collect()
}

/// Moves every cluster on, every 20 ms, until the runtime stops.
pub(crate) async fn tick(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let mut state = shared.state.lock().unwrap();
        advance(&shared, &mut state, SystemTime::now());
    }
}

fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or_default()
}

fn active(step: &Step) -> bool {
    matches!(step.state, "RUNNING" | "CANCEL_PENDING")
}

fn advance(shared: &Arc<Shared>, state: &mut State, now: SystemTime) {
    let config = &shared.config;
    let State {
        clusters,
        lose_on_step,
        ..
    } = state;
    for c in clusters.iter_mut() {
        if c.lose_at.is_some_and(|t| t <= now) {
            lose(c, config, now);
        }
        crate::reclaim::due(c, now);
        match c.state {
            "TERMINATING" if c.end_at.is_some_and(|t| t <= now) => {
                c.state = c.final_state;
                c.ended = Some(now);
            }
            "STARTING" if elapsed(c.created, now) >= config.start_delay => {
                c.state = "WAITING";
                c.ready = Some(now);
                c.idle_since = now;
                c.reason = None;
            }
            _ => {}
        }
        if !matches!(c.state, "RUNNING" | "WAITING") {
            continue;
        }
        let mut running = c.steps.iter().filter(|s| active(s)).count();
        for i in 0..c.steps.len() {
            if running >= c.concurrency {
                break;
            }
            if c.steps[i].state == "PENDING" {
                start_step(shared, c, i, now, lose_on_step);
                running += 1;
            }
        }
        if running > 0 {
            c.state = "RUNNING";
        } else if c.state == "RUNNING" {
            c.state = "WAITING";
            c.idle_since = now;
        }
        if c.state != "WAITING" {
            continue;
        }
        if !c.keep_alive {
            let reason = ("ALL_STEPS_COMPLETED", "Steps completed".to_string());
            shut_down(c, config, now, "TERMINATED", reason, "CANCELLED");
        } else if let Some(idle) = c.idle_timeout
            && elapsed(c.idle_since, now).as_secs_f64() >= idle as f64 * config.idle_timeout_scale
        {
            let message = format!(
                "The cluster was idle for {idle} seconds and was terminated by its \
                 auto-termination policy."
            );
            shut_down(
                c,
                config,
                now,
                "TERMINATED",
                ("ALL_STEPS_COMPLETED", message),
                "CANCELLED",
            );
        }
    }
}

pub(crate) fn lose(c: &mut Cluster, config: &EmulatorConfig, now: SystemTime) -> bool {
    let reason = ("INSTANCE_FAILURE", LOSS_MESSAGE.to_string());
    shut_down(
        c,
        config,
        now,
        "TERMINATED_WITH_ERRORS",
        reason,
        "INTERRUPTED",
    )
}

/// Kills the steps, drops the cluster's files, and starts TERMINATING. False if already
/// ending.
pub(crate) fn shut_down(
    c: &mut Cluster,
    config: &EmulatorConfig,
    now: SystemTime,
    final_state: &'static str,
    reason: (&'static str, String),
    running_become: &'static str,
) -> bool {
    if !ALIVE.contains(&c.state) {
        return false;
    }
    for step in &mut c.steps {
        if active(step) {
            kill(step, libc::SIGKILL);
            step.state = running_become;
            step.ended = Some(now);
        } else if step.state == "PENDING" {
            step.state = "CANCELLED";
            step.ended = Some(now);
        }
    }
    c.state = "TERMINATING";
    c.reason = Some(reason);
    c.final_state = final_state;
    c.end_at = Some(now + config.shutdown_delay);
    c.lose_at = None;
    let _ = std::fs::remove_dir_all(config.work_dir.join(&c.id));
    true
}

pub(crate) fn kill(step: &mut Step, signal: i32) {
    if let Some(pid) = step.pid.take() {
        // SAFETY: kill(2) on a process group this emulator started.
        unsafe { libc::kill(-pid, signal) };
    }
    if let Some(task) = step.task.take() {
        task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_provisions_its_first_type_rounded_up_by_its_weight_on_each_market() {
        let mut fleet = Fleet {
            id: "if-1".into(),
            name: Some("core".into()),
            kind: "CORE".into(),
            on_demand: 3,
            spot: 4,
            types: vec![("r5.2xlarge".into(), 2), ("r5.xlarge".into(), 1)],
            launch: None,
            instances: Vec::new(),
        };
        fleet.provision();
        let got: Vec<(&str, &str)> = fleet
            .instances
            .iter()
            .map(|i| (i.instance_type.as_str(), i.market))
            .collect();
        // On-demand 3 at weight 2: 2 instances; spot 4 at weight 2: 2 instances.
        assert_eq!(
            got,
            [
                ("r5.2xlarge", "ON_DEMAND"),
                ("r5.2xlarge", "ON_DEMAND"),
                ("r5.2xlarge", "SPOT"),
                ("r5.2xlarge", "SPOT")
            ]
        );
        let ids: std::collections::BTreeSet<&str> =
            fleet.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids.len(), 4, "ids are distinct");
        assert!(
            fleet.instances[0].ec2_id[2..]
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
    }
}
