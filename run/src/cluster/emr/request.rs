//! `RunJobFlow`: the request that starts a cluster, with its instance fleets,
//! configurations, bootstrap actions, auto-termination policy and tags.

use super::client::again;
use super::{EmrClusters, EmrError};
use aws_sdk_emr::types::{
    Application, AutoTerminationPolicy, BootstrapActionConfig, Configuration, InstanceFleetConfig,
    InstanceFleetProvisioningSpecifications, InstanceFleetType, InstanceTypeConfig,
    JobFlowInstancesConfig, OnDemandProvisioningAllocationStrategy,
    OnDemandProvisioningSpecification, ScriptBootstrapActionConfig,
    SpotProvisioningAllocationStrategy, SpotProvisioningSpecification,
    SpotProvisioningTimeoutAction, Tag,
};
use respawn_core::workflow::{EmrConfiguration, EmrSpec, FleetSpec, Market};

pub const TAG_WORKFLOW: &str = "respawn:workflow";
pub const TAG_RUN: &str = "respawn:run";
pub const TAG_BATCH: &str = "respawn:batch";
pub const TAG_GENERATION: &str = "respawn:generation";
pub const TAG_STORE: &str = "respawn:store";

/// What a cluster with spot task nodes needs, after EMR's advice for them: YARN places
/// application masters on core nodes only (so a reclaimed task node never takes a Spark
/// driver), and Spark decommissions the executors of a node EC2 reclaims, migrating its
/// shuffle and cached blocks, so only the tasks that ran there run again.
const TASK_SETTINGS: &[(&str, &[(&str, &str)])] = &[
    (
        "yarn-site",
        &[
            ("yarn.node-labels.enabled", "true"),
            ("yarn.node-labels.am.default-node-label-expression", "CORE"),
        ],
    ),
    (
        "spark-defaults",
        &[
            ("spark.decommission.enabled", "true"),
            ("spark.storage.decommission.enabled", "true"),
            ("spark.storage.decommission.shuffleBlocks.enabled", "true"),
            ("spark.storage.decommission.rddBlocks.enabled", "true"),
        ],
    ),
];

/// The workflow's configurations, with [`TASK_SETTINGS`] added where the cluster has a task
/// fleet; a property the workflow sets itself is left as it set it.
fn with_task_settings(spec: &EmrSpec) -> Vec<EmrConfiguration> {
    let mut all = spec.configurations.clone();
    if spec.task.is_none() {
        return all;
    }
    for (classification, properties) in TASK_SETTINGS {
        let at = match all.iter().position(|c| c.classification == *classification) {
            Some(at) => at,
            None => {
                all.push(EmrConfiguration {
                    classification: classification.to_string(),
                    properties: Vec::new(),
                    configurations: Vec::new(),
                });
                all.len() - 1
            }
        };
        let set = &mut all[at].properties;
        for (key, value) in *properties {
            if !set.iter().any(|(k, _)| k == key) {
                set.push((key.to_string(), value.to_string()));
            }
        }
    }
    all
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn configuration(config: &EmrConfiguration) -> Configuration {
    Configuration::builder()
        .classification(&config.classification)
        .set_properties(
            (!config.properties.is_empty()).then(|| config.properties.iter().cloned().collect()),
        )
        .set_configurations(
            (!config.configurations.is_empty())
                .then(|| config.configurations.iter().map(configuration).collect()),
        )
        .build()
}

impl EmrClusters {
    fn fleet(
        &self,
        name: &str,
        kind: InstanceFleetType,
        fleet: &FleetSpec,
        market: Market,
    ) -> InstanceFleetConfig {
        let types = fleet
            .instance_types
            .iter()
            .map(|t| {
                InstanceTypeConfig::builder()
                    .instance_type(t)
                    .weighted_capacity(1)
                    .build()
            })
            .collect::<Vec<_>>();
        let capacity = i32::try_from(fleet.capacity).unwrap_or(i32::MAX);
        let specification = match market {
            Market::Spot => InstanceFleetProvisioningSpecifications::builder()
                .spot_specification(
                    SpotProvisioningSpecification::builder()
                        .timeout_duration_minutes(
                            i32::try_from(self.spec.spot_timeout.as_secs() / 60).unwrap_or(1440),
                        )
                        .timeout_action(SpotProvisioningTimeoutAction::TerminateCluster)
                        .allocation_strategy(SpotProvisioningAllocationStrategy::from(
                            self.spec.spot_allocation_strategy.as_str(),
                        ))
                        .build(),
                )
                .build(),
            Market::OnDemand => InstanceFleetProvisioningSpecifications::builder()
                .on_demand_specification(
                    OnDemandProvisioningSpecification::builder()
                        .allocation_strategy(OnDemandProvisioningAllocationStrategy::LowestPrice)
                        .build(),
                )
                .build(),
        };
        let (spot, on_demand) = match market {
            Market::Spot => (capacity, 0),
            Market::OnDemand => (0, capacity),
        };
        InstanceFleetConfig::builder()
            .name(name)
            .instance_fleet_type(kind)
            .target_spot_capacity(spot)
            .target_on_demand_capacity(on_demand)
            .set_instance_type_configs(Some(types))
            .launch_specifications(specification)
            .build()
    }

    /// `RunJobFlow` for a new cluster; returns its id.
    /// `RunJobFlow` for a new cluster; returns its id. Retried only when refused for
    /// throttling: after any other error the cluster may exist, and a retry would make a
    /// second one (a restarted orchestrator finds it by its tags instead).
    pub(super) async fn start(
        &self,
        generation: u32,
        market: Market,
        subnets: Vec<String>,
    ) -> Result<String, EmrError> {
        again(false, || self.start_once(generation, market, &subnets)).await
    }

    /// The cluster's fleets, each on its market ([`EmrSpec::fleet_market`]).
    fn fleet_configs(&self, market: Market) -> Vec<InstanceFleetConfig> {
        let spec = &self.spec;
        let on = |fleet: &FleetSpec, task: bool| spec.fleet_market(fleet, task, market);
        let mut fleets = vec![self.fleet(
            "primary",
            InstanceFleetType::Master,
            &spec.primary,
            on(&spec.primary, false),
        )];
        if let Some(core) = &spec.core {
            fleets.push(self.fleet("core", InstanceFleetType::Core, core, on(core, false)));
        }
        if let Some(task) = &spec.task {
            fleets.push(self.fleet("task", InstanceFleetType::Task, task, on(task, true)));
        }
        fleets
    }

    async fn start_once(
        &self,
        generation: u32,
        market: Market,
        subnets: &[String],
    ) -> Result<String, EmrError> {
        let spec = &self.spec;
        let instances = JobFlowInstancesConfig::builder()
            .set_instance_fleets(Some(self.fleet_configs(market)))
            .keep_job_flow_alive_when_no_steps(true)
            .termination_protected(false)
            .set_ec2_subnet_ids((!subnets.is_empty()).then(|| subnets.to_vec()))
            .build();
        let bootstrap = spec
            .bootstrap_actions
            .iter()
            .map(|action| {
                BootstrapActionConfig::builder()
                    .name(&action.name)
                    .script_bootstrap_action(
                        ScriptBootstrapActionConfig::builder()
                            .path(&action.path)
                            .set_args(Some(action.args.clone()))
                            .build(),
                    )
                    .build()
            })
            .collect::<Vec<_>>();
        let name = format!("respawn:{}:{}:{generation}", self.workflow, self.run_id);
        let output = self
            .client
            .run_job_flow()
            .name(name)
            .release_label(&spec.release_label)
            .set_log_uri(spec.log_uri.clone())
            .service_role(&spec.service_role)
            .job_flow_role(&spec.instance_profile)
            .instances(instances)
            .set_applications(Some(
                spec.applications
                    .iter()
                    .map(|a| Application::builder().name(a).build())
                    .collect(),
            ))
            .set_bootstrap_actions((!bootstrap.is_empty()).then_some(bootstrap))
            .set_configurations({
                let all = with_task_settings(spec);
                (!all.is_empty()).then(|| all.iter().map(configuration).collect())
            })
            .auto_termination_policy(
                AutoTerminationPolicy::builder()
                    .idle_timeout(spec.idle_timeout.as_secs() as i64)
                    .build(),
            )
            .step_concurrency_level(spec.step_concurrency as i32)
            .visible_to_all_users(true)
            .tags(tag(TAG_WORKFLOW, &self.workflow))
            .tags(tag(TAG_RUN, &self.run_id))
            .tags(tag(TAG_BATCH, &self.batch))
            .tags(tag(TAG_GENERATION, &generation.to_string()))
            .tags(tag(TAG_STORE, &self.store_url))
            // AmazonEMRServicePolicy_v2 only acts on resources tagged so (see infra/).
            .tags(tag("for-use-with-amazon-emr-managed-policies", "true"))
            .send()
            .await
            .map_err(|e| EmrError::from_sdk("RunJobFlow", e))?;
        output
            .job_flow_id()
            .map(String::from)
            .ok_or_else(|| EmrError::incomplete_answer("RunJobFlow", "the answer has no JobFlowId"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use respawn_core::workflow::parse;

    fn spec(task: &str) -> EmrSpec {
        let yaml = format!(
            "name: wf\ncluster:\n  provider: emr\n  emr:\n    release_label: emr-7.5.0\n    \
             service_role: s\n    instance_profile: p\n    primary: {{instance_types: [m5.xlarge]}}\n\
             {task}    configurations:\n      - classification: spark-defaults\n        \
             properties: {{spark.decommission.enabled: 'false', spark.executor.cores: '4'}}\n\
             stages:\n  a: {{run: x}}\n"
        );
        parse("wf.yaml", &yaml).unwrap().cluster.emr.unwrap()
    }

    #[test]
    fn a_task_fleet_brings_decommissioning_and_core_only_app_masters_and_keeps_the_files_own() {
        let all = with_task_settings(&spec("    task: {instance_types: [r5.xlarge]}\n"));
        let spark = all
            .iter()
            .find(|c| c.classification == "spark-defaults")
            .unwrap();
        let value = |key: &str| {
            spark
                .properties
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            value("spark.decommission.enabled"),
            Some("false"),
            "the file's own"
        );
        assert_eq!(value("spark.executor.cores"), Some("4"));
        assert_eq!(value("spark.storage.decommission.enabled"), Some("true"));
        let yarn = all
            .iter()
            .find(|c| c.classification == "yarn-site")
            .unwrap();
        assert!(yarn.properties.contains(&(
            "yarn.node-labels.am.default-node-label-expression".into(),
            "CORE".into()
        )));
        let without = with_task_settings(&spec(""));
        assert_eq!(without.len(), 1, "no task fleet, nothing added");
        assert_eq!(without[0].properties.len(), 2);
    }
}
