//! The validated workflow: what the planner, the simulator and the engine consume.
//! Every value here has passed validation; stages are in a topological order.

use super::template::Template;
use std::time::Duration;

/// Index of a stage in [`Workflow::stages`]. Stages are in topological order, so every
/// stage's `needs` have smaller ids.
pub type StageId = usize;

#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub name: String,
    /// The file the workflow was read from, as the user named it.
    pub file: String,
    pub store: Option<String>,
    pub cluster: ClusterSpec,
    pub checkpoint: CheckpointSpec,
    pub cleanup: Cleanup,
    pub retries: u32,
    pub cost: CostSpec,
    /// `schedule`: absent for a workflow that runs only when told to.
    pub schedule: Option<ScheduleSpec>,
    /// `alerts`: who is told what while runs go on (default none).
    pub alerts: Vec<AlertSpec>,
    pub stages: Vec<Stage>,
}

/// One entry of `alerts:`: where alerts go, and which kinds.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertSpec {
    pub sink: AlertSink,
    /// The kinds sent there (`on:`; every kind by default).
    pub on: Vec<AlertKind>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertSink {
    /// An `http://` or `https://` URL that gets each alert as a JSON POST.
    Webhook(String),
    /// A shell command that gets each alert as JSON on its standard input.
    Command(String),
    /// An SNS topic, by ARN, that each alert is published to.
    Sns(SnsTopic),
}

/// An SNS topic ARN, `arn:PARTITION:sns:REGION:ACCOUNT:NAME`, with its region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnsTopic {
    pub arn: String,
    pub region: String,
}

impl SnsTopic {
    /// The topic `arn` names, or why it names none.
    pub fn parse(arn: &str) -> Result<SnsTopic, String> {
        let parts: Vec<&str> = arn.split(':').collect();
        let [prefix, partition, service, region, account, name] = parts[..] else {
            return Err("has not the six parts of `arn:aws:sns:REGION:ACCOUNT:TOPIC`".into());
        };
        if prefix != "arn" || !partition.starts_with("aws") {
            return Err("does not start with `arn:aws`".into());
        }
        if service != "sns" {
            return Err(format!("is an ARN of `{service}`, not of `sns`"));
        }
        let region_ok = !region.is_empty()
            && (region.chars()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(format!("has no region (found `{region}`)"));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("has no 12-digit account id (found `{account}`)"));
        }
        let name_ok = (1..=256).contains(&name.len())
            && (name.chars()).all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            return Err(format!(
                "has no topic name of letters, digits, `-` and `_` (found `{name}`)"
            ));
        }
        Ok(SnsTopic {
            arn: arn.to_string(),
            region: region.to_string(),
        })
    }
}

impl AlertSink {
    /// The sink for messages: `webhook URL` or `command LINE`.
    pub fn describe(&self) -> String {
        match self {
            AlertSink::Webhook(url) => format!("webhook {url}"),
            AlertSink::Command(line) => format!("command {line}"),
            AlertSink::Sns(topic) => format!("sns {}", topic.arn),
        }
    }
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// A run ended `failed`.
    Failed,
    /// An `error` check refused a stage's output.
    CheckFailed,
    /// A run moved from spot to on-demand.
    Fallback,
    /// What is left of a run would end past its deadline on the market it is on.
    DeadlineAtRisk,
    /// A date's `publish_by` passed before its output was published.
    Late,
    /// A batch whose earlier run failed succeeded.
    Recovered,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::Failed,
        AlertKind::CheckFailed,
        AlertKind::Fallback,
        AlertKind::DeadlineAtRisk,
        AlertKind::Late,
        AlertKind::Recovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Failed => "failed",
            AlertKind::CheckFailed => "check-failed",
            AlertKind::Fallback => "fallback",
            AlertKind::DeadlineAtRisk => "deadline-at-risk",
            AlertKind::Late => "late",
            AlertKind::Recovered => "recovered",
        }
    }
}

impl Workflow {
    /// For each stage, the stages that need it (see [`graph::consumers`](super::graph::consumers)).
    pub fn consumers(&self) -> Vec<Vec<StageId>> {
        let needs: Vec<&[StageId]> = self.stages.iter().map(|s| s.needs.as_slice()).collect();
        super::graph::consumers(&needs)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    pub run: Template,
    pub needs: Vec<StageId>,
    pub estimate: Duration,
    pub output_size: u64,
    pub is_final: bool,
    pub checkpoint: StageCheckpoint,
    /// Bumped by hand to force a re-run when the code behind `run` changed.
    pub version: Option<String>,
    pub description: Option<String>,
    /// Commands run on the stage's output after it exits 0 and before its work-table is
    /// committed or published, in file order.
    pub checks: Vec<Check>,
    /// Line of the stage's name in the workflow file, for messages about it later.
    pub line: u32,
}

/// `checks:` of a stage: a command with the stage's templating and environment, run on the
/// same cluster after the stage succeeded; exit 0 passes.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub name: String,
    pub run: Template,
    pub severity: Severity,
}

/// What a failing check does: `error` keeps the output from being committed or published
/// and fails the run (the data is wrong, so nothing retries); `warn` is recorded and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Local,
    Emr,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    Spot,
    OnDemand,
}

impl Market {
    pub fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::OnDemand => "on-demand",
        }
    }

    /// The market [`Market::as_str`] names.
    pub fn from_name(name: &str) -> Option<Market> {
        [Market::Spot, Market::OnDemand]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// `cluster.market`: a market fixed by the user, or `auto`, where respawn chooses spot or
/// on-demand before the run and after every interruption (`sim::market`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MarketChoice {
    Fixed(Market),
    Auto,
}

impl MarketChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            MarketChoice::Fixed(market) => market.as_str(),
            MarketChoice::Auto => "auto",
        }
    }

    /// The market a fixed choice names; `auto` plans its checkpoints as on spot.
    pub fn planning_market(self) -> Market {
        match self {
            MarketChoice::Fixed(market) => market,
            MarketChoice::Auto => Market::Spot,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub provider: Provider,
    pub market: MarketChoice,
    /// Expected mean time to interruption on spot.
    pub mtti: Duration,
    /// Time to get a new cluster after a loss.
    pub provision_time: Duration,
    /// Warning before a spot loss, for planning and simulation (`None`: none).
    pub notice: Option<Duration>,
    /// Local clusters: how many stages run at once.
    pub slots: u32,
    pub fallback: FallbackSpec,
    /// `provider: emr`: how to start the cluster (required then, refused otherwise).
    pub emr: Option<EmrSpec>,
    /// `interruptions: {trace: FILE}`: a capacity trace as the planning model, in place of
    /// exponential losses with `mtti`.
    pub interruptions: Option<TraceModel>,
    /// The spot clusters earlier runs held, as a capacity trace: the planning model when
    /// the file names no trace and the history lost enough clusters. Set by
    /// [`crate::learn::History::apply`], never by the file.
    pub learned_trace: Option<std::sync::Arc<super::capacity::CapacityTrace>>,
}

/// `cluster.interruptions.trace`: the capacity trace plans are made with.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceModel {
    /// As the file gives it; relative to the workflow file's folder.
    pub path: String,
    /// Where the file names it.
    pub line: u32,
    pub column: u32,
    /// The trace, once [`super::load`] has read it (never for a workflow only parsed).
    pub trace: Option<std::sync::Arc<super::capacity::CapacityTrace>>,
}

/// `cluster.emr`: a transient EMR cluster per run, with instance fleets.
#[derive(Clone, Debug, PartialEq)]
pub struct EmrSpec {
    /// The AWS region; the standard chain (`AWS_REGION`, profile) when absent.
    pub region: Option<String>,
    /// For example `emr-7.5.0`.
    pub release_label: String,
    /// Where EMR writes step and node logs (`s3://...`).
    pub log_uri: Option<String>,
    pub service_role: String,
    /// The EC2 instance profile of the nodes (`JobFlowRole`).
    pub instance_profile: String,
    pub subnets: Vec<String>,
    pub applications: Vec<String>,
    pub primary: FleetSpec,
    pub core: Option<FleetSpec>,
    /// Task nodes: compute without HDFS, the fleet that is on spot when primary and core
    /// are on-demand (EMR's advice for clusters that must not be lost).
    pub task: Option<FleetSpec>,
    /// Spot fleets' allocation strategy.
    pub spot_allocation_strategy: String,
    /// How long a spot fleet may wait for capacity before the cluster ends (5m to 24h).
    pub spot_timeout: Duration,
    /// The auto-termination policy: an idle cluster ends on its own (1m to 7d).
    pub idle_timeout: Duration,
    /// Steps that run at once (1 to 256); `cluster.slots` when absent.
    pub step_concurrency: u32,
    pub bootstrap_actions: Vec<BootstrapAction>,
    pub configurations: Vec<EmrConfiguration>,
    /// The HDFS folder ephemeral work-tables go under.
    pub hdfs_dir: String,
    /// The SQS queue EC2's spot interruption warnings and rebalance recommendations reach
    /// (through an EventBridge rule): respawn turns those about its clusters into notices.
    pub notice_queue: Option<String>,
    /// With several subnets, how long a replacement cluster avoids the zone where its
    /// predecessor's capacity was reclaimed (`None`: never).
    pub avoid_reclaimed_zone: Option<Duration>,
}

impl EmrSpec {
    /// The market of a fleet of a cluster asked for on the run's market `run`.
    ///
    /// On-demand runs are on-demand throughout. On spot, a fleet's own `market` decides;
    /// without one, the task fleet and the fleets of a cluster that has no task fleet are
    /// on spot, and primary and core beside a task fleet are on-demand.
    pub fn fleet_market(&self, fleet: &FleetSpec, is_task: bool, run: Market) -> Market {
        match (run, fleet.market) {
            (Market::OnDemand, _) => Market::OnDemand,
            (Market::Spot, Some(market)) => market,
            (Market::Spot, None) if is_task || self.task.is_none() => Market::Spot,
            (Market::Spot, None) => Market::OnDemand,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FleetSpec {
    /// Several types let EMR find capacity; the first is the preferred one.
    pub instance_types: Vec<String>,
    /// Target capacity in instances (the primary fleet always has 1).
    pub capacity: u32,
    /// `market:` as the workflow fixes it (see [`EmrSpec::fleet_market`]).
    pub market: Option<Market>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BootstrapAction {
    pub name: String,
    pub path: String,
    pub args: Vec<String>,
}

/// An EMR configuration classification (`spark-defaults`, say), nested as EMR takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct EmrConfiguration {
    pub classification: String,
    pub properties: Vec<(String, String)>,
    pub configurations: Vec<EmrConfiguration>,
}

pub const SPOT_ALLOCATION_STRATEGIES: &[&str] = &[
    "price-capacity-optimized",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
    "diversified",
];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FallbackSpec {
    /// Switch to on-demand after this many interruptions.
    pub after_interruptions: Option<u32>,
    /// Switch to on-demand when the remaining work no longer fits before this much time
    /// after the run started.
    pub deadline: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointPolicy {
    Auto,
    All,
    None,
    Interval,
}

impl CheckpointPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointPolicy::Auto => "auto",
            CheckpointPolicy::All => "all",
            CheckpointPolicy::None => "none",
            CheckpointPolicy::Interval => "interval",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointSpec {
    pub policy: CheckpointPolicy,
    /// Bytes per second when persisting a work-table to the store.
    pub write_throughput: u64,
    /// Bytes per second when restoring a work-table from the store.
    pub read_throughput: u64,
    /// `interval` policy: checkpoint after this much unprotected work off the critical path.
    pub every: Duration,
    /// `interval` policy: the same on the critical path.
    pub every_critical: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageCheckpoint {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    OnSuccess,
    Never,
}

/// Prices per cluster-hour, for the simulator's cost column.
#[derive(Clone, Debug, PartialEq)]
pub struct CostSpec {
    /// What every price is in (`cost.currency`, three capital letters such as `USD`).
    pub currency: String,
    /// A local cluster's price per cluster-hour on spot capacity.
    pub spot_per_hour: f64,
    /// A local cluster's price per cluster-hour on demand.
    pub on_demand_per_hour: f64,
    /// Checkpoint storage, per GB-month (`cost.storage_per_gb_month`).
    pub storage_per_gb_month: f64,
    /// `cost.instances`: EMR prices per instance-hour, by instance type, in file order.
    pub instances: Vec<InstancePrice>,
}

/// One entry of `cost.instances`: what an instance of this type costs per hour.
#[derive(Clone, Debug, PartialEq)]
pub struct InstancePrice {
    pub instance_type: String,
    pub spot_per_hour: f64,
    pub on_demand_per_hour: f64,
    /// EMR's own charge per instance-hour, paid on both markets.
    pub emr_fee_per_hour: f64,
}

/// `schedule`: when the workflow runs on its own. Consecutive scheduled times bound
/// intervals; an interval's start is its logical date, and the logical date written with
/// `batch` is its batch id (see `workflow/schedule.rs` and `plan/calendar.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleSpec {
    /// A time is scheduled when one of these matches it on the wall clock of `timezone`.
    pub crons: Vec<croner::Cron>,
    pub timezone: jiff::tz::TimeZone,
    /// The first logical date is the first scheduled time at or after this.
    pub start: jiff::Timestamp,
    /// The last instant a logical date may be (`end:` is inclusive: a civil date there
    /// reaches to the end of that day).
    pub end: Option<jiff::Timestamp>,
    pub catchup: Catchup,
    /// Runs of this workflow at once.
    pub max_active: u32,
    /// strftime-style format of a logical date as a batch id.
    pub batch: String,
    /// `publish_by`: when each date's output is due (default: no time).
    pub publish_by: Option<PublishBy>,
}

/// `schedule.publish_by`: when a date's output is due, from the end of its interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishBy {
    /// This long after the interval ends (`6h`).
    After(std::time::Duration),
    /// The first time it is this time of day on the schedule's wall clock at or after the
    /// interval ends (`"07:30"`).
    TimeOfDay(jiff::civil::Time),
}

/// `schedule.catchup`: which of the dates missed during a downtime still run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Catchup {
    /// Every missed date runs, oldest first.
    All,
    /// The N latest missed dates run, oldest first (`latest` is 1); the older ones are
    /// recorded as missed.
    Latest(u32),
}
