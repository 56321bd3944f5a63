//! Every default of the workflow file in one place: what a key means when it is left out.
//!
//! The reader starts each section from these values and overwrites what the file says;
//! nothing else in the reader invents a default. Bounds (the smallest and largest value a
//! key accepts) are not defaults and stay beside the key they check.

use super::model::{
    Catchup, CheckpointPolicy, CheckpointSpec, Cleanup, ClusterSpec, CostSpec, FallbackSpec,
    Market, MarketChoice, Provider, StageCheckpoint,
};
use std::time::Duration;

// The workflow.

/// `cleanup`: delete the run's work-tables once it succeeded.
pub const CLEANUP: Cleanup = Cleanup::OnSuccess;
/// `retries`: a stage's own failures tolerated before the run fails (interruptions do not count).
pub const RETRIES: u32 = 2;

// `cluster`.

/// `cluster.provider`: stages run as local processes.
pub const PROVIDER: Provider = Provider::Local;
/// `cluster.market`: spot, the point of respawn.
pub const MARKET: MarketChoice = MarketChoice::Fixed(Market::Spot);
/// `cluster.mtti`: the expected mean time to interruption on spot.
pub const MTTI: Duration = Duration::from_secs(2 * 3600);
/// `cluster.provision_time`: the time to get a new cluster after a loss.
pub const PROVISION_TIME: Duration = Duration::from_secs(10 * 60);
/// `cluster.slots`: stages that run at once on a local cluster.
pub const SLOTS: u32 = 2;
/// `cluster.fallback`: none; the run stays on its market whatever happens.
pub const FALLBACK: FallbackSpec = FallbackSpec {
    after_interruptions: None,
    deadline: None,
};

/// The `cluster` section when the file has none, or before its keys are read.
pub fn cluster() -> ClusterSpec {
    ClusterSpec {
        provider: PROVIDER,
        market: MARKET,
        mtti: MTTI,
        provision_time: PROVISION_TIME,
        // `cluster.notice`: none. Notices reach respawn from chaos on local clusters, and on
        // EMR from `cluster.emr.notice_queue`, with which it is EC2's two minutes
        // ([`EC2_NOTICE`]); without the queue no notice arrives to plan with.
        notice: None,
        slots: SLOTS,
        fallback: FALLBACK,
        emr: None,
        interruptions: None,
        learned_trace: None,
    }
}

// `cluster.emr` (its `release_label`, `service_role`, `instance_profile` and `primary` are
// required; `region`, `log_uri`, `subnets` and `core` are absent unless given).

/// `cluster.emr.applications`.
pub const EMR_APPLICATIONS: &[&str] = &["Spark"];
/// `cluster.emr.spot_allocation_strategy`: what AWS recommends for interruptible work.
pub const SPOT_ALLOCATION_STRATEGY: &str = "price-capacity-optimized";
/// `cluster.emr.spot_timeout`: how long a spot fleet may wait for capacity.
pub const SPOT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// `cluster.emr.idle_timeout`: an idle cluster ends on its own after this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// `cluster.emr.hdfs_dir`: where ephemeral work-tables go on the cluster.
pub const HDFS_DIR: &str = "/respawn";
/// `cluster.notice` on EMR with a `notice_queue`: EC2 warns two minutes before it reclaims
/// a spot instance.
pub const EC2_NOTICE: Duration = Duration::from_secs(120);
/// `cluster.emr.avoid_reclaimed_zone`: a replacement cluster avoids a zone where capacity
/// was reclaimed this recently, when other subnets are given.
pub const AVOID_RECLAIMED_ZONE: Duration = Duration::from_secs(30 * 60);
/// `capacity` of a `cluster.emr` fleet, in instances.
pub const FLEET_CAPACITY: u32 = 1;
/// `cluster.emr.step_concurrency`: as many steps at once as `cluster.slots` says (EMR
/// accepts 1 to 256).
pub fn step_concurrency(slots: u32) -> u32 {
    slots.clamp(1, 256)
}

// `checkpoint`.

/// `checkpoint.policy`: the planner decides.
pub const CHECKPOINT_POLICY: CheckpointPolicy = CheckpointPolicy::Auto;
/// `checkpoint.write_throughput`, in bytes per second. `checkpoint.read_throughput`
/// defaults to the write throughput the file gives, or to this.
pub const WRITE_THROUGHPUT: u64 = 100_000_000;
/// `checkpoint.every`: the `interval` policy's checkpoint interval off the critical path.
pub const EVERY: Duration = Duration::from_secs(3 * 3600);
/// `checkpoint.every_critical`: the same on the critical path.
pub const EVERY_CRITICAL: Duration = Duration::from_secs(3600);

/// The `checkpoint` section when the file has none, or before its keys are read.
pub fn checkpoint() -> CheckpointSpec {
    CheckpointSpec {
        policy: CHECKPOINT_POLICY,
        write_throughput: WRITE_THROUGHPUT,
        read_throughput: WRITE_THROUGHPUT,
        every: EVERY,
        every_critical: EVERY_CRITICAL,
    }
}

// `cost`.

/// `cost.spot_per_hour`, per cluster-hour.
pub const SPOT_PER_HOUR: f64 = 0.35;
/// `cost.on_demand_per_hour`, per cluster-hour.
pub const ON_DEMAND_PER_HOUR: f64 = 1.00;
/// `cost.currency`.
pub const CURRENCY: &str = "USD";
/// `cost.storage_per_gb_month`: S3 Standard's first tier in us-east-1.
pub const STORAGE_PER_GB_MONTH: f64 = 0.023;
/// `cost.instances.<type>.emr_fee` when an entry leaves it out.
pub const EMR_FEE_PER_HOUR: f64 = 0.0;

/// The `cost` section when the file has none, or before its keys are read.
pub fn cost() -> CostSpec {
    CostSpec {
        currency: CURRENCY.to_string(),
        spot_per_hour: SPOT_PER_HOUR,
        on_demand_per_hour: ON_DEMAND_PER_HOUR,
        storage_per_gb_month: STORAGE_PER_GB_MONTH,
        instances: Vec::new(),
    }
}

// `schedule` (its `cron` and `start` are required; `end` is absent unless given).

/// `schedule.timezone`: cron expressions are read on UTC's wall clock.
pub const TIMEZONE: &str = "UTC";
/// `schedule.catchup`: after a downtime only the latest missed date runs; the older ones
/// are recorded as `missed` (never dropped silently) and `backfill` runs them on request.
/// The issue names no default; running every missed date at once is the catch-up storm
/// that Airflow's users complain about, so a file asks for `all` or `N` explicitly.
pub const CATCHUP: Catchup = Catchup::Latest(1);
/// `schedule.max_active`: runs of the workflow at once.
pub const MAX_ACTIVE: u32 = 1;
/// `schedule.batch` of a schedule whose times are a day or more apart.
pub const BATCH_DAILY: &str = "%Y-%m-%d";
/// `schedule.batch` of a schedule whose times are an hour or more apart.
pub const BATCH_HOURLY: &str = "%Y-%m-%dT%H";
/// `schedule.batch` of a finer schedule (cron has no seconds, so minutes tell dates apart).
pub const BATCH_FINER: &str = "%Y-%m-%dT%H%M";

/// `schedule.batch` when the file gives none, from the shortest time between two
/// consecutive scheduled times (a daily schedule's day is 23 hours long in spring).
pub fn batch_format(shortest: Duration) -> &'static str {
    if shortest >= Duration::from_secs(23 * 3600) {
        BATCH_DAILY
    } else if shortest >= Duration::from_secs(3600) {
        BATCH_HOURLY
    } else {
        BATCH_FINER
    }
}

// A stage (`run` is required; `needs`, `version` and `description` are empty unless given).

/// `estimate` of a stage.
pub const ESTIMATE: Duration = Duration::from_secs(10 * 60);
/// `output_size` of a stage, in bytes.
pub const OUTPUT_SIZE: u64 = 1_000_000_000;
/// `checkpoint` of a stage: the workflow's policy decides.
pub const STAGE_CHECKPOINT: StageCheckpoint = StageCheckpoint::Auto;
/// `final` of a stage: a stage is final when no other stage needs it (a sink).
pub fn is_final(has_consumers: bool) -> bool {
    !has_consumers
}
