//! The emulator's public face: its configuration, the handle that serves it on a loopback
//! port (and stops it, killing its step processes, when dropped), the control methods tests
//! call, and the views of requests and clusters they assert on. The state behind the handle
//! ([`Shared`]) is what every other module works on.

use crate::cluster::{ALIVE, State, kill, lose, tick};
use crate::server::connection;
use crate::sns::{Published, Topics};
use crate::sqs::{INTERRUPTION_WARNING, Queues, REBALANCE_RECOMMENDATION, ec2_event};
use respawn_run::store::S3Store;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The S3 server steps read and write (the test server: `http://127.0.0.1:N`).
    pub s3_endpoint: String,
    /// Where step processes run and each cluster's "HDFS" lives.
    pub work_dir: PathBuf,
    /// STARTING to WAITING.
    pub start_delay: Duration,
    /// TERMINATING to TERMINATED / TERMINATED_WITH_ERRORS.
    pub shutdown_delay: Duration,
    /// One second of an IdleTimeout lasts this many seconds (0.01: 60 s pass in 0.6 s).
    pub idle_timeout_scale: f64,
    /// Access key id and secret for S3; default: the S3 test server's.
    pub s3_credentials: Option<(String, String)>,
    /// A `spark-submit` (pyspark's, in a virtualenv's `bin/`) to run steps' PySpark
    /// applications with, in local mode; without one a step's `spark-submit app.py`
    /// runs `python3 app.py`.
    pub spark_submit: Option<PathBuf>,
}

impl EmulatorConfig {
    pub fn new(s3_endpoint: impl Into<String>, work_dir: impl Into<PathBuf>) -> EmulatorConfig {
        EmulatorConfig {
            s3_endpoint: s3_endpoint.into(),
            work_dir: work_dir.into(),
            start_delay: Duration::from_millis(500),
            shutdown_delay: Duration::from_millis(200),
            idle_timeout_scale: 1.0,
            s3_credentials: None,
            spark_submit: None,
        }
    }
}

/// One API request as received (control endpoints are not recorded).
#[derive(Clone, Debug, Serialize)]
pub struct Request {
    pub operation: String,
    pub body: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterView {
    pub id: String,
    pub name: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
    /// Whether any fleet or group asks for spot capacity.
    pub spot: bool,
    /// (name, state) of every step, in submission order.
    pub steps: Vec<(String, String)>,
    /// The instances its fleets (or groups) provisioned, in fleet order.
    pub instances: Vec<InstanceView>,
}

/// One provisioned instance, as ListInstances and ListInstanceFleets tell it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceView {
    /// The fleet's (or group's) Name, else its id.
    pub fleet: String,
    /// MASTER, CORE or TASK.
    pub fleet_type: String,
    pub instance_type: String,
    /// SPOT or ON_DEMAND.
    pub market: String,
    pub ec2_id: String,
    /// Reclaimed by EC2 before its cluster ended.
    pub reclaimed: bool,
}

pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) stores: Mutex<HashMap<String, S3Store>>,
    pub(crate) queues: Mutex<Queues>,
    pub(crate) topics: Mutex<Topics>,
}

/// A running emulator; stopped (and its step processes killed) when dropped.
pub struct EmrEmulator {
    endpoint: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmrEmulator {
    /// An emulator on a free loopback port.
    pub fn start(config: EmulatorConfig) -> std::io::Result<EmrEmulator> {
        EmrEmulator::serve(config, "127.0.0.1:0")
    }

    pub fn serve(config: EmulatorConfig, address: &str) -> std::io::Result<EmrEmulator> {
        std::fs::create_dir_all(&config.work_dir)?;
        crate::tools::install(&config.work_dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            stores: Mutex::new(HashMap::new()),
            queues: Mutex::new(Queues::default()),
            topics: Mutex::new(Topics::default()),
        });
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let served = shared.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a listening socket");
                let ticker = tokio::spawn(tick(served.clone()));
                loop {
                    tokio::select! {
                        accepted = listener.accept() => if let Ok((socket, _)) = accepted {
                            tokio::spawn(connection(served.clone(), socket));
                        },
                        _ = &mut stop => break,
                    }
                }
                ticker.abort();
            });
            runtime.shutdown_background();
        });
        Ok(EmrEmulator {
            endpoint,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:port`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Loses a live cluster as to a spot interruption. False if it is unknown or ending.
    pub fn lose_cluster(&self, id: &str) -> bool {
        self.shared.lose(id)
    }

    /// The next time a step whose name starts with `prefix` starts, its cluster is lost
    /// 300 ms later.
    pub fn lose_when_step_starts(&self, prefix: &str) {
        self.shared.state.lock().unwrap().lose_on_step = Some(prefix.into());
    }

    /// An SNS topic of `region` that alerts can be published to; returns its ARN.
    pub fn create_topic(&self, region: &str, name: &str) -> String {
        self.shared.topics.lock().unwrap().create(region, name)
    }

    /// What was published to a topic, oldest first.
    pub fn published(&self, arn: &str) -> Vec<Published> {
        self.shared.topics.lock().unwrap().messages(arn)
    }

    /// The next `n` publishes fail with SNS's `InternalError` (HTTP 500).
    pub fn fail_publishes(&self, n: u32) {
        self.shared.topics.lock().unwrap().failures = n;
    }

    /// An SQS queue that EC2's spot events reach (as through an EventBridge rule on
    /// `aws.ec2`); returns its URL. Every queue gets every event.
    pub fn create_queue(&self, name: &str) -> String {
        self.shared
            .queues
            .lock()
            .unwrap()
            .create(&self.endpoint, name)
    }

    /// Puts `body` on a queue as someone else's message would be; false if no such queue.
    pub fn send_message(&self, queue_url: &str, body: &str) -> bool {
        self.shared
            .queues
            .lock()
            .unwrap()
            .send(queue_url, body.into())
    }

    /// The messages still on a queue (received or not), oldest first.
    pub fn queue_messages(&self, queue_url: &str) -> Vec<String> {
        self.shared.queues.lock().unwrap().bodies(queue_url)
    }

    /// EC2 reclaims the spot instances of a live cluster in `lead`: a rebalance
    /// recommendation and an interruption warning per spot instance go to every queue now,
    /// and the cluster is lost when the lead has passed. Returns the instance ids warned
    /// (none if the cluster is unknown, ending or has no spot instance).
    pub fn reclaim(&self, cluster_id: &str, lead: Duration) -> Vec<String> {
        self.shared.reclaim(cluster_id, lead)
    }

    /// EC2 reclaims `count` live spot instances of the cluster's fleet of type `fleet_type`
    /// (`MASTER`, `CORE` or `TASK`): after `lead`, with a rebalance recommendation and an
    /// interruption warning for each to every queue now, or at once and unannounced
    /// (`None`). The fleet gets new instances in their place, as EMR keeps a fleet at its
    /// target capacity; with `fail_steps`, the steps running then fail, as a Spark step
    /// whose driver or shuffle was on them does. Returns the EC2 ids chosen.
    pub fn reclaim_nodes(
        &self,
        cluster_id: &str,
        fleet_type: &str,
        count: usize,
        lead: Option<Duration>,
        fail_steps: bool,
    ) -> Vec<String> {
        self.shared
            .reclaim_nodes(cluster_id, fleet_type, count, lead, fail_steps)
    }

    /// A rebalance recommendation for each spot instance of a live cluster, and no loss.
    pub fn recommend_rebalance(&self, cluster_id: &str) -> Vec<String> {
        self.shared.recommend_rebalance(cluster_id)
    }

    /// The next `n` API requests fail with ThrottlingException "Rate exceeded".
    pub fn throttle(&self, n: u32) {
        self.shared.state.lock().unwrap().throttle = n;
    }

    /// How many requests were refused with ThrottlingException so far.
    pub fn throttled(&self) -> u32 {
        self.shared.state.lock().unwrap().throttled
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    pub fn clusters(&self) -> Vec<ClusterView> {
        self.shared.clusters()
    }
}

impl Drop for EmrEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        for step in state.clusters.iter_mut().flat_map(|c| c.steps.iter_mut()) {
            kill(step, libc::SIGKILL);
        }
    }
}

impl Shared {
    pub(crate) fn lose(&self, id: &str) -> bool {
        let mut state = self.state.lock().unwrap();
        let now = SystemTime::now();
        match state.clusters.iter_mut().find(|c| c.id == id) {
            Some(cluster) => lose(cluster, &self.config, now),
            None => false,
        }
    }

    /// The EC2 ids of a live cluster's spot instances.
    fn spot_instances(&self, id: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .clusters
            .iter()
            .filter(|c| c.id == id && ALIVE.contains(&c.state))
            .flat_map(|c| c.fleets.iter().flat_map(|f| f.instances.iter()))
            .filter(|i| i.market == "SPOT")
            .map(|i| i.ec2_id.clone())
            .collect()
    }

    pub(crate) fn announce(&self, detail_type: &str, instances: &[String]) {
        let now = SystemTime::now();
        let mut queues = self.queues.lock().unwrap();
        for instance in instances {
            queues.broadcast(&ec2_event(detail_type, instance, now));
        }
    }

    pub(crate) fn recommend_rebalance(&self, id: &str) -> Vec<String> {
        let instances = self.spot_instances(id);
        self.announce(REBALANCE_RECOMMENDATION, &instances);
        instances
    }

    pub(crate) fn reclaim(&self, id: &str, lead: Duration) -> Vec<String> {
        let instances = self.spot_instances(id);
        if instances.is_empty() {
            return instances;
        }
        self.announce(REBALANCE_RECOMMENDATION, &instances);
        self.announce(INTERRUPTION_WARNING, &instances);
        let mut state = self.state.lock().unwrap();
        if let Some(cluster) = state.clusters.iter_mut().find(|c| c.id == id) {
            cluster.lose_at = Some(SystemTime::now() + lead);
        }
        instances
    }

    pub(crate) fn clusters(&self) -> Vec<ClusterView> {
        let state = self.state.lock().unwrap();
        state
            .clusters
            .iter()
            .map(|c| ClusterView {
                id: c.id.clone(),
                name: c.name.clone(),
                state: c.state.into(),
                tags: c.tags.iter().cloned().collect(),
                spot: c.fleets.iter().any(|f| f.spot > 0),
                steps: c
                    .steps
                    .iter()
                    .map(|s| (s.spec.name.clone(), s.state.to_string()))
                    .collect(),
                instances: c
                    .fleets
                    .iter()
                    .flat_map(|f| {
                        f.instances.iter().map(|i| InstanceView {
                            fleet: f.name.clone().unwrap_or_else(|| f.id.clone()),
                            fleet_type: f.kind.clone(),
                            instance_type: i.instance_type.clone(),
                            market: i.market.into(),
                            ec2_id: i.ec2_id.clone(),
                            reclaimed: i.ended.is_some(),
                        })
                    })
                    .collect(),
            })
            .collect()
    }
}
