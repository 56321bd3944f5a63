//! EC2 reclaiming some nodes of a cluster rather than the cluster: the instances chosen end
//! (ListInstances shows them TERMINATED for INSTANCE_FAILURE, "Spot instance termination")
//! after a lead announced on every queue, or at once; the fleet gets new instances in their
//! place; and the steps running then may fail. Also the zone each subnet is in.

use crate::cluster::{ALIVE, Cluster, Instance, kill};
use crate::emulator::Shared;
use crate::sqs::{INTERRUPTION_WARNING, REBALANCE_RECOMMENDATION};
use serde_json::json;
use std::time::{Duration, SystemTime};

/// Instances to reclaim at a time.
pub(crate) struct NodeReclaim {
    pub(crate) at: SystemTime,
    pub(crate) instances: Vec<String>,
    pub(crate) fail_steps: bool,
}

/// The availability zone of a subnet, as the emulator places them: one of six zones of
/// us-east-1, by the sum of the id's bytes (`subnet-0a` and `subnet-0b` are neighbours).
pub fn zone_of(subnet: &str) -> String {
    let sum: u32 = subnet.bytes().map(u32::from).sum();
    let letter = char::from(b'a' + (sum % 6) as u8);
    format!("us-east-1{letter}")
}

impl Shared {
    pub(crate) fn reclaim_nodes(
        &self,
        id: &str,
        fleet_type: &str,
        count: usize,
        lead: Option<Duration>,
        fail_steps: bool,
    ) -> Vec<String> {
        let chosen: Vec<String> = {
            let mut state = self.state.lock().unwrap();
            let Some(cluster) = state
                .clusters
                .iter_mut()
                .find(|c| c.id == id && ALIVE.contains(&c.state))
            else {
                return Vec::new();
            };
            let chosen: Vec<String> = cluster
                .fleets
                .iter()
                .filter(|f| f.kind == fleet_type)
                .flat_map(|f| f.instances.iter())
                .filter(|i| i.market == "SPOT" && i.ended.is_none())
                .take(count)
                .map(|i| i.ec2_id.clone())
                .collect();
            cluster.reclaims.push(NodeReclaim {
                at: SystemTime::now() + lead.unwrap_or_default(),
                instances: chosen.clone(),
                fail_steps,
            });
            chosen
        };
        if lead.is_some() {
            self.announce(REBALANCE_RECOMMENDATION, &chosen);
            self.announce(INTERRUPTION_WARNING, &chosen);
        }
        chosen
    }
}

/// Carries out the reclaims of a live cluster that are due at `now`.
pub(crate) fn due(c: &mut Cluster, now: SystemTime) {
    if !ALIVE.contains(&c.state) || c.reclaims.iter().all(|r| r.at > now) {
        return;
    }
    let (due, later): (Vec<NodeReclaim>, Vec<NodeReclaim>) = std::mem::take(&mut c.reclaims)
        .into_iter()
        .partition(|r| r.at <= now);
    c.reclaims = later;
    for reclaim in due {
        for fleet in &mut c.fleets {
            let mut replacements = Vec::new();
            for instance in &mut fleet.instances {
                if instance.ended.is_none() && reclaim.instances.contains(&instance.ec2_id) {
                    instance.ended = Some(now);
                    let mut new = Instance::new(&instance.instance_type, instance.market);
                    new.created = Some(now);
                    replacements.push(new);
                }
            }
            fleet.instances.extend(replacements);
        }
        if reclaim.fail_steps && !reclaim.instances.is_empty() {
            fail_running_steps(c, now, &reclaim.instances);
        }
    }
}

fn fail_running_steps(c: &mut Cluster, now: SystemTime, instances: &[String]) {
    for step in &mut c.steps {
        if step.state != "RUNNING" {
            continue;
        }
        kill(step, libc::SIGKILL);
        step.state = "FAILED";
        step.ended = Some(now);
        step.failure = Some(json!({
            "Reason": "Unknown Error.",
            "Message": format!(
                "Container lost: the node(s) {} were decommissioned (spot instance \
                 termination) and the application failed.",
                instances.join(", ")
            ),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::zone_of;

    #[test]
    fn neighbouring_subnet_ids_are_in_different_zones_and_a_subnet_keeps_its_zone() {
        assert_ne!(zone_of("subnet-0a"), zone_of("subnet-0b"));
        assert_eq!(zone_of("subnet-0a"), zone_of("subnet-0a"));
        assert!(zone_of("").starts_with("us-east-1"));
    }
}
