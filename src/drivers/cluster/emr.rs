//! EMR clusters: one transient cluster per run generation, stages as `command-runner.jar`
//! steps.
//!
//! - A cluster is started with instance fleets (several instance types each), spot
//!   fleets first and on-demand fleets once the fallback policy decided, an
//!   auto-termination (idle timeout) policy so that a dead orchestrator never leaks a
//!   running cluster, and the tags `respawn:workflow`, `respawn:run`, `respawn:batch`,
//!   `respawn:generation` and `respawn:store`.
//! - A stage attempt is the step `respawn:<run>:<stage>:<attempt>`, whose arguments are
//!   `bash -c <the rendered run: line>`; checkpointed outputs are written straight to the
//!   store's S3 prefix, ephemeral ones to HDFS.
//! - One watcher task per cluster polls `DescribeCluster` and the steps it was given, with
//!   jitter; the SDK's own retry (standard mode) absorbs throttling and transient errors.
//! - Loss is told from failure by the cluster's state-change reason: a cluster that ends
//!   for capacity or instance reasons is an interruption, `USER_REQUEST` is a stop, and
//!   a configuration problem (`VALIDATION_ERROR`, `BOOTSTRAP_FAILURE`) fails the run.
//! - An orchestrator restarted while its cluster lives adopts it (found by tag) and
//!   attaches to the steps it finds there by name instead of submitting them again.

use super::{ClusterEnd, ClusterNews, Notify, StepEnd};
use crate::workflow::{EmrConfiguration, EmrSpec, FleetSpec, Market, StageId};
use aws_sdk_emr::Client;
use aws_sdk_emr::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_emr::types::{
    ActionOnFailure, Application, AutoTerminationPolicy, BootstrapActionConfig, ClusterState,
    ClusterStateChangeReasonCode, Configuration, HadoopJarStepConfig, InstanceFleetConfig,
    InstanceFleetProvisioningSpecifications, InstanceFleetType, InstanceTypeConfig,
    JobFlowInstancesConfig, OnDemandProvisioningAllocationStrategy,
    OnDemandProvisioningSpecification, ScriptBootstrapActionConfig,
    SpotProvisioningAllocationStrategy, SpotProvisioningSpecification,
    SpotProvisioningTimeoutAction, StepConfig, StepState, Tag,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TAG_WORKFLOW: &str = "respawn:workflow";
pub const TAG_RUN: &str = "respawn:run";
pub const TAG_BATCH: &str = "respawn:batch";
pub const TAG_GENERATION: &str = "respawn:generation";
pub const TAG_STORE: &str = "respawn:store";

/// Cluster states in which a cluster still costs money and can be adopted.
pub const LIVE_STATES: [ClusterState; 4] = [
    ClusterState::Starting,
    ClusterState::Bootstrapping,
    ClusterState::Running,
    ClusterState::Waiting,
];

/// An EMR API call that failed after the SDK's own retries.
#[derive(Debug, Clone)]
pub struct EmrError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub detail: String,
}

impl std::fmt::Display for EmrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EMR {} failed: {}", self.operation, self.detail)
    }
}

impl EmrError {
    /// EMR asks the caller to slow down.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException")
        )
    }

    /// A request EMR refuses as such (retrying the same request cannot help).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "ValidationException"
                    | "InvalidRequestException"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
            )
        )
    }

    fn from_sdk<E, R>(operation: &'static str, error: aws_sdk_emr::error::SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = error
            .as_service_error()
            .and_then(|e| e.code())
            .map(String::from);
        let detail = match error.as_service_error() {
            Some(service) => format!(
                "{}: {}",
                service.code().unwrap_or("error"),
                service.message().unwrap_or("(no message)")
            ),
            None => DisplayErrorContext(&error).to_string(),
        };
        EmrError {
            operation,
            code,
            detail,
        }
    }
}

/// How a cluster start ended when it did not give a cluster.
#[derive(Debug)]
pub enum ProvisionError {
    /// The cluster ended while starting, for a reason that is an interruption.
    Lost(String),
    /// It cannot work (a refused request, a bootstrap failure): the run fails.
    Broken(String),
}

/// A live cluster of this run found by its tags.
#[derive(Clone, Debug)]
pub struct Found {
    pub id: String,
    pub market: Market,
    pub generation: u32,
}

/// A step seen on an adopted cluster.
#[derive(Clone, Debug)]
struct SeenStep {
    id: String,
    attempt: u32,
    args: Vec<String>,
}

/// What a user of `respawn clusters` sees of one cluster.
#[derive(Clone, Debug)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
    pub created: Option<String>,
}

/// The EMR side of one run.
pub struct EmrClusters {
    client: Client,
    spec: EmrSpec,
    workflow: String,
    run_id: String,
    batch: String,
    store_url: String,
    poll: Duration,
    /// A live cluster of this run found at start, adopted by the first provision.
    adoptable: Mutex<Option<Found>>,
}

/// The client every EMR call goes through: the standard credential chain and region,
/// `endpoint` when given (else `AWS_ENDPOINT_URL_EMR` / `AWS_ENDPOINT_URL` as the SDK
/// reads them), and the SDK's standard retry mode with up to 5 attempts, which backs
/// off with jitter on `ThrottlingException` and transient errors; [`again`] retries
/// on top of it.
pub async fn client(region: Option<&str>, endpoint: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(5)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(5)),
    );
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    Client::new(&config)
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

/// A step's name: how an adopting orchestrator recognises the attempt.
pub fn step_name(run_id: &str, stage: &str, attempt: u32) -> String {
    format!("respawn:{run_id}:{stage}:{attempt}")
}

fn parse_step_name(name: &str, run_id: &str) -> Option<(String, u32)> {
    let rest = name
        .strip_prefix("respawn:")?
        .strip_prefix(run_id)?
        .strip_prefix(':')?;
    let (stage, attempt) = rest.rsplit_once(':')?;
    Some((stage.to_string(), attempt.parse().ok()?))
}

/// What a cluster's end means for the run.
fn classify(code: Option<&ClusterStateChangeReasonCode>) -> ClusterEnd {
    match code {
        Some(ClusterStateChangeReasonCode::UserRequest) => ClusterEnd::Stopped,
        Some(
            ClusterStateChangeReasonCode::ValidationError
            | ClusterStateChangeReasonCode::BootstrapFailure,
        ) => ClusterEnd::Broken,
        _ => ClusterEnd::Lost,
    }
}

/// The state of a cluster, as a watcher reads it.
struct Seen {
    state: ClusterState,
    code: Option<ClusterStateChangeReasonCode>,
    message: String,
}

impl EmrClusters {
    pub fn new(
        client: Client,
        spec: EmrSpec,
        workflow: &str,
        run_id: &str,
        batch: &str,
        store_url: &str,
        poll: Duration,
    ) -> EmrClusters {
        EmrClusters {
            client,
            spec,
            workflow: workflow.into(),
            run_id: run_id.into(),
            batch: batch.into(),
            store_url: store_url.into(),
            poll,
            adoptable: Mutex::new(None),
        }
    }

    pub fn spec(&self) -> &EmrSpec {
        &self.spec
    }

    /// Finds the live clusters of this run. One is kept for adoption (the newest); any
    /// other is terminated, so that a run never has two. Returns what it did, in words.
    pub async fn prepare(&self) -> Result<Vec<String>, EmrError> {
        let mut found = find_live(&self.client, Some(&self.run_id)).await?;
        found.sort_by_key(|(f, _)| f.generation);
        let mut notes = Vec::new();
        let newest = found.pop();
        for (extra, _) in found {
            terminate(&self.client, &extra.id).await?;
            notes.push(format!(
                "terminated {} (an older cluster of this run that was still up)",
                extra.id
            ));
        }
        if let Some((cluster, _)) = newest {
            notes.push(format!(
                "found {} ({}) of this run still up: adopting it",
                cluster.id,
                cluster.market.as_str()
            ));
            *self.adoptable.lock().unwrap_or_else(|e| e.into_inner()) = Some(cluster);
        }
        Ok(notes)
    }

    /// A cluster for `generation`: the adoptable one when its market fits, else a new
    /// one, waited for until it is up. Starts its watcher.
    pub async fn create(
        self: &Arc<Self>,
        generation: u32,
        market: Market,
        notify: Notify,
    ) -> Result<EmrCluster, ProvisionError> {
        let adopt = self
            .adoptable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (id, market, steps) = match adopt {
            Some(found) if found.market == market => {
                let steps = self
                    .steps_of(&found.id)
                    .await
                    .map_err(|e| ProvisionError::Broken(e.to_string()))?;
                (found.id, found.market, steps)
            }
            other => {
                if let Some(found) = other {
                    terminate(&self.client, &found.id)
                        .await
                        .map_err(|e| ProvisionError::Broken(e.to_string()))?;
                }
                let id = self
                    .start(generation, market)
                    .await
                    .map_err(|e| ProvisionError::Broken(e.to_string()))?;
                (id, market, BTreeMap::new())
            }
        };
        self.wait_until_up(&id).await?;
        let watched = Arc::new(Mutex::new(BTreeMap::new()));
        let watcher = tokio::spawn(watch(
            self.clone(),
            id.clone(),
            generation,
            watched.clone(),
            notify,
        ));
        Ok(EmrCluster {
            id,
            generation,
            market,
            adopted: steps,
            watched,
            watcher,
            owner: self.clone(),
        })
    }

    async fn steps_of(&self, cluster: &str) -> Result<BTreeMap<String, Vec<SeenStep>>, EmrError> {
        again(true, || self.steps_of_once(cluster)).await
    }

    async fn steps_of_once(
        &self,
        cluster: &str,
    ) -> Result<BTreeMap<String, Vec<SeenStep>>, EmrError> {
        let mut steps: BTreeMap<String, Vec<SeenStep>> = BTreeMap::new();
        let mut pages = self
            .client
            .list_steps()
            .cluster_id(cluster)
            .step_states(StepState::Pending)
            .step_states(StepState::Running)
            .step_states(StepState::Completed)
            .into_paginator()
            .items()
            .send();
        while let Some(step) = pages.next().await {
            let step = step.map_err(|e| EmrError::from_sdk("ListSteps", e))?;
            let Some((stage, attempt)) = step
                .name()
                .and_then(|name| parse_step_name(name, &self.run_id))
            else {
                continue;
            };
            steps.entry(stage).or_default().push(SeenStep {
                id: step.id().unwrap_or_default().to_string(),
                attempt,
                args: step.config().map(|c| c.args().to_vec()).unwrap_or_default(),
            });
        }
        Ok(steps)
    }

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
    async fn start(&self, generation: u32, market: Market) -> Result<String, EmrError> {
        again(false, || self.start_once(generation, market)).await
    }

    async fn start_once(&self, generation: u32, market: Market) -> Result<String, EmrError> {
        let spec = &self.spec;
        let mut fleets =
            vec![self.fleet("primary", InstanceFleetType::Master, &spec.primary, market)];
        if let Some(core) = &spec.core {
            fleets.push(self.fleet("core", InstanceFleetType::Core, core, market));
        }
        let instances = JobFlowInstancesConfig::builder()
            .set_instance_fleets(Some(fleets))
            .keep_job_flow_alive_when_no_steps(true)
            .termination_protected(false)
            .set_ec2_subnet_ids((!spec.subnets.is_empty()).then(|| spec.subnets.clone()))
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
            .set_configurations(
                (!spec.configurations.is_empty())
                    .then(|| spec.configurations.iter().map(configuration).collect()),
            )
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
            .ok_or_else(|| EmrError {
                operation: "RunJobFlow",
                code: None,
                detail: "the answer has no JobFlowId".into(),
            })
    }

    async fn describe(&self, id: &str) -> Result<Seen, EmrError> {
        let output = self
            .client
            .describe_cluster()
            .cluster_id(id)
            .send()
            .await
            .map_err(|e| EmrError::from_sdk("DescribeCluster", e))?;
        let status = output.cluster().and_then(|c| c.status());
        let reason = status.and_then(|s| s.state_change_reason());
        Ok(Seen {
            state: status
                .and_then(|s| s.state())
                .cloned()
                .unwrap_or(ClusterState::Starting),
            code: reason.and_then(|r| r.code()).cloned(),
            message: reason
                .and_then(|r| r.message())
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// Polls until the cluster is up (`RUNNING` or `WAITING`) or has ended.
    async fn wait_until_up(&self, id: &str) -> Result<(), ProvisionError> {
        loop {
            let seen = match self.describe(id).await {
                Ok(seen) => seen,
                Err(e) if e.is_permanent() => return Err(ProvisionError::Broken(e.to_string())),
                Err(e) => {
                    tracing::warn!("{e} (will poll again)");
                    tokio::time::sleep(self.jittered()).await;
                    continue;
                }
            };
            match seen.state {
                ClusterState::Running | ClusterState::Waiting => return Ok(()),
                ClusterState::Terminating
                | ClusterState::Terminated
                | ClusterState::TerminatedWithErrors => {
                    let cause = end_cause(id, &seen);
                    return Err(match classify(seen.code.as_ref()) {
                        ClusterEnd::Lost => ProvisionError::Lost(cause),
                        ClusterEnd::Stopped | ClusterEnd::Broken => ProvisionError::Broken(cause),
                    });
                }
                _ => tokio::time::sleep(self.jittered()).await,
            }
        }
    }

    fn jittered(&self) -> Duration {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.poll
            .mul_f64(0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0)
    }

    /// Adds a step; retried only when refused for throttling (see [`EmrClusters::start`]).
    async fn submit(&self, cluster: &str, name: &str, line: &str) -> Result<String, EmrError> {
        again(false, || self.submit_once(cluster, name, line)).await
    }

    async fn submit_once(&self, cluster: &str, name: &str, line: &str) -> Result<String, EmrError> {
        let step = StepConfig::builder()
            .name(name)
            .action_on_failure(ActionOnFailure::Continue)
            .hadoop_jar_step(
                HadoopJarStepConfig::builder()
                    .jar("command-runner.jar")
                    .set_args(Some(step_args(line)))
                    .build(),
            )
            .build();
        let output = self
            .client
            .add_job_flow_steps()
            .job_flow_id(cluster)
            .steps(step)
            .send()
            .await
            .map_err(|e| EmrError::from_sdk("AddJobFlowSteps", e))?;
        output.step_ids().first().cloned().ok_or_else(|| EmrError {
            operation: "AddJobFlowSteps",
            code: None,
            detail: "the answer has no step id".into(),
        })
    }

    /// Instance-hours of a cluster (provisioned capacity times its lifetime so far).
    async fn instance_hours(&self, id: &str) -> Result<f64, EmrError> {
        again(true, || self.instance_hours_once(id)).await
    }

    async fn instance_hours_once(&self, id: &str) -> Result<f64, EmrError> {
        let described = self
            .client
            .describe_cluster()
            .cluster_id(id)
            .send()
            .await
            .map_err(|e| EmrError::from_sdk("DescribeCluster", e))?;
        let timeline = described
            .cluster()
            .and_then(|c| c.status())
            .and_then(|s| s.timeline());
        let start = timeline
            .and_then(|t| t.ready_date_time().or(t.creation_date_time()))
            .map(|t| t.as_secs_f64());
        let end = timeline
            .and_then(|t| t.end_date_time())
            .map(|t| t.as_secs_f64())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
            });
        let Some(start) = start else {
            return Ok(0.0);
        };
        let mut instances = 0i64;
        let mut pages = self
            .client
            .list_instance_fleets()
            .cluster_id(id)
            .into_paginator()
            .items()
            .send();
        while let Some(fleet) = pages.next().await {
            let fleet = fleet.map_err(|e| EmrError::from_sdk("ListInstanceFleets", e))?;
            let provisioned = i64::from(fleet.provisioned_on_demand_capacity().unwrap_or(0))
                + i64::from(fleet.provisioned_spot_capacity().unwrap_or(0));
            let target = i64::from(fleet.target_on_demand_capacity().unwrap_or(0))
                + i64::from(fleet.target_spot_capacity().unwrap_or(0));
            instances += provisioned.max(if provisioned == 0 { target } else { 0 });
        }
        Ok(instances as f64 * ((end - start).max(0.0) / 3600.0))
    }
}

/// Retries an EMR call with jittered exponential backoff (0.5 s to 20 s, 8 times) while it
/// fails for a reason that may pass: what the SDK's own retries could not absorb, as when
/// its retry quota runs out under sustained throttling. `any_transient` retries every
/// error but a refused request; otherwise only throttling is retried.
async fn again<T, Fut>(any_transient: bool, call: impl FnMut() -> Fut) -> Result<T, EmrError>
where
    Fut: std::future::Future<Output = Result<T, EmrError>>,
{
    use backon::Retryable;
    // backon's jitter is seeded the same in every process unless told otherwise.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
        ^ u64::from(std::process::id());
    call.retry(
        backon::ExponentialBuilder::default()
            .with_jitter()
            .with_jitter_seed(seed)
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(20))
            .with_max_times(8),
    )
    .when(|e: &EmrError| {
        if any_transient {
            !e.is_permanent()
        } else {
            e.is_throttling()
        }
    })
    .notify(|e, after| tracing::warn!("{e}; retrying in {after:?}"))
    .await
}

/// `bash -c LINE`: the rendered `run:` line keeps its shell meaning on the cluster.
pub fn step_args(line: &str) -> Vec<String> {
    vec!["bash".into(), "-c".into(), line.into()]
}

fn end_cause(id: &str, seen: &Seen) -> String {
    let code = seen
        .code
        .as_ref()
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "no reason given".into());
    if seen.message.is_empty() {
        format!("EMR cluster {id} ended ({}, {code})", seen.state.as_str())
    } else {
        format!(
            "EMR cluster {id} ended ({}, {code}: {})",
            seen.state.as_str(),
            seen.message
        )
    }
}

/// Requests the end of a cluster (already ended is fine).
pub async fn terminate(client: &Client, id: &str) -> Result<(), EmrError> {
    again(true, || terminate_once(client, id)).await
}

async fn terminate_once(client: &Client, id: &str) -> Result<(), EmrError> {
    client
        .terminate_job_flows()
        .job_flow_ids(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| EmrError::from_sdk("TerminateJobFlows", e))
}

/// Live clusters started by respawn (of one run when given), with their tags.
pub async fn find_live(
    client: &Client,
    run_id: Option<&str>,
) -> Result<Vec<(Found, Listed)>, EmrError> {
    again(true, || find_live_once(client, run_id)).await
}

async fn find_live_once(
    client: &Client,
    run_id: Option<&str>,
) -> Result<Vec<(Found, Listed)>, EmrError> {
    let mut out = Vec::new();
    let mut pages = client
        .list_clusters()
        .set_cluster_states(Some(LIVE_STATES.to_vec()))
        .into_paginator()
        .items()
        .send();
    let mut ids = Vec::new();
    while let Some(summary) = pages.next().await {
        let summary = summary.map_err(|e| EmrError::from_sdk("ListClusters", e))?;
        // respawn names its clusters `respawn:<workflow>:<run>:<generation>`.
        let ours = summary.name().is_some_and(|n| n.starts_with("respawn:"));
        let this_run = match run_id {
            Some(run) => summary
                .name()
                .is_some_and(|n| n.split(':').nth(2) == Some(run)),
            None => true,
        };
        if ours
            && this_run
            && let Some(id) = summary.id()
        {
            ids.push(id.to_string());
        }
    }
    for id in ids {
        let described = match client.describe_cluster().cluster_id(&id).send().await {
            Ok(described) => described,
            Err(error) => {
                let error = EmrError::from_sdk("DescribeCluster", error);
                // The orchestrator's policy only lets it see clusters tagged as respawn's.
                if error.code.as_deref() == Some("AccessDeniedException") {
                    continue;
                }
                return Err(error);
            }
        };
        let Some(cluster) = described.cluster() else {
            continue;
        };
        let tags: BTreeMap<String, String> = cluster
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        if run_id.is_some_and(|run| tags.get(TAG_RUN).map(String::as_str) != Some(run)) {
            continue;
        }
        if !tags.contains_key(TAG_RUN) {
            continue;
        }
        let mut spot = false;
        let mut fleets = client
            .list_instance_fleets()
            .cluster_id(&id)
            .into_paginator()
            .items()
            .send();
        while let Some(fleet) = fleets.next().await {
            let fleet = fleet.map_err(|e| EmrError::from_sdk("ListInstanceFleets", e))?;
            spot |= fleet.target_spot_capacity().unwrap_or(0) > 0;
        }
        let status = cluster.status();
        out.push((
            Found {
                id: id.clone(),
                market: if spot { Market::Spot } else { Market::OnDemand },
                generation: tags
                    .get(TAG_GENERATION)
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(0),
            },
            Listed {
                id: id.clone(),
                name: cluster.name().unwrap_or_default().to_string(),
                state: status
                    .and_then(|s| s.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                created: status
                    .and_then(|s| s.timeline())
                    .and_then(|t| t.creation_date_time())
                    .and_then(|t| {
                        t.fmt(aws_sdk_emr::primitives::DateTimeFormat::DateTime)
                            .ok()
                    }),
                tags,
            },
        ));
    }
    Ok(out)
}

/// One EMR cluster of the run.
pub struct EmrCluster {
    pub id: String,
    pub generation: u32,
    pub market: Market,
    /// Steps found on the cluster when it was adopted, by stage.
    adopted: BTreeMap<String, Vec<SeenStep>>,
    /// Steps the watcher follows: step id to (stage, attempt).
    watched: Arc<Mutex<BTreeMap<String, (StageId, u32)>>>,
    watcher: tokio::task::JoinHandle<()>,
    owner: Arc<EmrClusters>,
}

impl EmrCluster {
    /// The attempt of the newest step of `stage` found on an adopted cluster.
    pub fn adopted_attempt(&self, stage: &str) -> Option<u32> {
        self.adopted
            .get(stage)
            .and_then(|steps| steps.iter().map(|s| s.attempt).max())
    }

    /// Whether a step found at adoption is attempt `attempt` of `stage` running `line`.
    pub fn adopted_runs(&self, stage: &str, attempt: u32, line: &str) -> bool {
        let args = step_args(line);
        self.adopted
            .get(stage)
            .is_some_and(|steps| steps.iter().any(|s| s.attempt == attempt && s.args == args))
    }

    /// Where an ephemeral work-table goes on this cluster.
    pub fn hdfs_output(&self, stage: &str, attempt: u32) -> String {
        format!(
            "hdfs://{}/{}/{stage}/{attempt}",
            self.owner.spec.hdfs_dir, self.owner.run_id
        )
    }

    /// Runs an attempt as a step, or attaches to the same step found on an adopted
    /// cluster; the watcher reports its end.
    pub fn launch(&mut self, stage: StageId, name: &str, attempt: u32, line: &str, notify: Notify) {
        let args = step_args(line);
        let existing = self.adopted.get_mut(name).and_then(|steps| {
            let at = steps
                .iter()
                .position(|s| s.attempt == attempt && s.args == args)?;
            Some(steps.remove(at))
        });
        let generation = self.generation;
        if let Some(step) = existing {
            self.watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(step.id, (stage, attempt));
            return;
        }
        let owner = self.owner.clone();
        let cluster = self.id.clone();
        let watched = self.watched.clone();
        let step_name = step_name(&owner.run_id, name, attempt);
        let line = line.to_string();
        tokio::spawn(async move {
            match owner.submit(&cluster, &step_name, &line).await {
                Ok(step) => {
                    watched
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(step, (stage, attempt));
                }
                Err(error) => notify(ClusterNews::Exited {
                    generation,
                    stage,
                    attempt,
                    end: StepEnd::Failed {
                        code: 1,
                        detail: Some(format!("respawn could not add the step: {error}")),
                    },
                }),
            }
        });
    }

    /// Ends the cluster; returns its instance-hours when EMR tells them.
    pub async fn terminate(self) -> Option<f64> {
        self.watcher.abort();
        if let Err(error) = terminate(&self.owner.client, &self.id).await {
            tracing::warn!("{error}");
        }
        match self.owner.instance_hours(&self.id).await {
            Ok(hours) => Some(hours),
            Err(error) => {
                tracing::warn!("{error}");
                None
            }
        }
    }

    /// Leaves the cluster running (another orchestrator owns the run now).
    pub fn abandon(self) {
        self.watcher.abort();
    }
}

/// Polls one cluster and the steps given to it until the cluster ends.
async fn watch(
    owner: Arc<EmrClusters>,
    id: String,
    generation: u32,
    watched: Arc<Mutex<BTreeMap<String, (StageId, u32)>>>,
    notify: Notify,
) {
    loop {
        tokio::time::sleep(owner.jittered()).await;
        let seen = match owner.describe(&id).await {
            Ok(seen) => seen,
            Err(error) => {
                tracing::warn!("{error} (will poll again)");
                continue;
            }
        };
        if matches!(
            seen.state,
            ClusterState::Terminating
                | ClusterState::Terminated
                | ClusterState::TerminatedWithErrors
        ) {
            notify(ClusterNews::Ended {
                generation,
                end: classify(seen.code.as_ref()),
                cause: end_cause(&id, &seen),
            });
            return;
        }
        let steps: Vec<(String, (StageId, u32))> = watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (step, (stage, attempt)) in steps {
            let described = match owner
                .client
                .describe_step()
                .cluster_id(&id)
                .step_id(&step)
                .send()
                .await
            {
                Ok(described) => described,
                Err(error) => {
                    tracing::warn!(
                        "{} (will poll again)",
                        EmrError::from_sdk("DescribeStep", error)
                    );
                    continue;
                }
            };
            let status = described.step().and_then(|s| s.status());
            let end = match status.and_then(|s| s.state()) {
                Some(StepState::Completed) => StepEnd::Success,
                Some(StepState::Failed) => {
                    let details = status.and_then(|s| s.failure_details());
                    let mut detail = format!("EMR step {step} on {id} FAILED");
                    if let Some(d) = details {
                        for part in [d.reason(), d.message()].into_iter().flatten() {
                            detail.push_str(&format!("\n{part}"));
                        }
                        if let Some(log) = d.log_file() {
                            detail.push_str(&format!("\nstep log: {log}"));
                        }
                    }
                    StepEnd::Failed {
                        code: 1,
                        detail: Some(detail),
                    }
                }
                Some(StepState::Cancelled | StepState::Interrupted) => StepEnd::Failed {
                    code: 1,
                    detail: Some(format!(
                        "EMR step {step} on {id} was {}",
                        status
                            .and_then(|s| s.state())
                            .map(|s| s.as_str())
                            .unwrap_or("cancelled")
                    )),
                },
                _ => continue,
            };
            watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&step);
            notify(ClusterNews::Exited {
                generation,
                stage,
                attempt,
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip_and_other_runs_are_ignored() {
        let name = step_name("20261121-a1b2", "sessions", 3);
        assert_eq!(name, "respawn:20261121-a1b2:sessions:3");
        assert_eq!(
            parse_step_name(&name, "20261121-a1b2"),
            Some(("sessions".to_string(), 3))
        );
        assert_eq!(parse_step_name(&name, "20261121-a1b"), None);
        assert_eq!(parse_step_name("respawn:x:s:notanumber", "x"), None);
    }

    #[test]
    fn a_user_request_is_a_stop_a_bootstrap_failure_is_broken_the_rest_is_a_loss() {
        assert_eq!(
            classify(Some(&ClusterStateChangeReasonCode::UserRequest)),
            ClusterEnd::Stopped
        );
        assert_eq!(
            classify(Some(&ClusterStateChangeReasonCode::BootstrapFailure)),
            ClusterEnd::Broken
        );
        for code in [
            ClusterStateChangeReasonCode::InstanceFailure,
            ClusterStateChangeReasonCode::InstanceFleetTimeout,
            ClusterStateChangeReasonCode::InternalError,
            ClusterStateChangeReasonCode::AllStepsCompleted,
        ] {
            assert_eq!(classify(Some(&code)), ClusterEnd::Lost, "{code:?}");
        }
        assert_eq!(classify(None), ClusterEnd::Lost);
    }
}
