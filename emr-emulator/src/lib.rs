//! An Amazon EMR emulator on loopback, for tests and for trying the EMR provider without AWS.
//!
//! **The wire protocol is EMR's own** (awsJson1.1): `POST /` with `X-Amz-Target:
//! ElasticMapReduce.<Operation>`, JSON bodies with the member names of the EMR API (checked
//! against aws-sdk-emr 1.102's serializers), timestamps as epoch seconds, errors as HTTP 400
//! with `{"__type": "...", "message": "..."}`. A real `aws_sdk_emr::Client` talks to it. A
//! SigV4 `Authorization` header for the `elasticmapreduce` service is required but its
//! signature is not checked.
//!
//! **Operations**: RunJobFlow, DescribeCluster, ListClusters, AddJobFlowSteps, ListSteps,
//! DescribeStep, CancelSteps, TerminateJobFlows, AddTags, PutAutoTerminationPolicy,
//! GetAutoTerminationPolicy, ListInstanceFleets. Requests are validated as EMR does (required
//! members, enum values, ranges, list lengths) with EMR's message format ("1 validation error
//! detected: Value 'x' at 'instances.instanceFleets.1.member...' failed to satisfy constraint:
//! ..."). JobFlowRole, ServiceRole and ReleaseLabel are required here (EMR requires them in
//! practice). Lists page by 50 with an opaque `Marker`; clusters and steps come newest first.
//!
//! **Cluster life**: STARTING, then after `start_delay` WAITING (no BOOTSTRAPPING: bootstrap
//! actions are validated, not run), RUNNING while a step runs. Steps run in order, at most
//! StepConcurrencyLevel at once. Without KeepJobFlowAliveWhenNoSteps (default false, as in
//! the API) the cluster ends after its last step (ALL_STEPS_COMPLETED, "Steps completed");
//! with it, an AutoTerminationPolicy ends it after IdleTimeout seconds idle (times
//! `idle_timeout_scale`), also as ALL_STEPS_COMPLETED (EMR's exact idle code and message are
//! a guess). Every end goes through TERMINATING for `shutdown_delay`. TerminateJobFlows:
//! TERMINATED, USER_REQUEST "Terminated by user request". A failed step with ActionOnFailure
//! TERMINATE_CLUSTER / TERMINATE_JOB_FLOW: TERMINATED_WITH_ERRORS, STEP_FAILURE "Shut down as
//! step failed"; CANCEL_AND_WAIT cancels the pending steps; CONTINUE (the default here)
//! goes on. A spot loss ([`EmrEmulator::lose_cluster`]): TERMINATED_WITH_ERRORS,
//! INSTANCE_FAILURE with a message about the Spot instances of the primary and core nodes.
//! When a cluster ends, PENDING steps become CANCELLED and RUNNING ones CANCELLED (user or
//! policy) or INTERRUPTED (instance failure): what real EMR reports for a running step is
//! a guess. Fleets report PROVISIONING / RUNNING (with Provisioned = Target capacities) /
//! TERMINATING / TERMINATED. NormalizedInstanceHours = instances x the size factor of their
//! first instance type (large 4, xlarge 8, 2xlarge 16, ...) x started hours.
//!
//! **Steps run as local processes.** Only `command-runner.jar` is emulated (any other Jar
//! fails the step). Its Args are an argv, mapped so that a workflow written for EMR runs
//! locally, in `<work_dir>/<cluster-id>/steps/<step-id>/` (in its own process group, stdout
//! and stderr to files there):
//! - `spark-submit [options] app.py [args]` (as argv[0], or anywhere in the line of
//!   `bash -c` / `sh -c`) becomes `python3 app.py [args]`; options are dropped. A `.jar`
//!   application fails the step. An `s3://` app brings every object under its folder along
//!   (sibling modules).
//! - `hdfs:///path` and `hdfs://host[:port]/path` become `<work_dir>/<cluster-id>/hdfs/path`
//!   (parent folders created); that folder goes when the cluster ends, as HDFS does.
//! - Any other `s3://`, `s3a://` or `s3n://` URL: objects under it (as a folder) are an input,
//!   downloaded into a fresh folder that replaces the URL; a single object is downloaded as a
//!   file; nothing there makes it an output: an empty folder replaces it, and after exit 0
//!   every file in it is uploaded under the URL (like Spark's S3A committer). A failed
//!   upload fails the step. S3 I/O goes through respawn's own store code.
//!   A URL with objects under it is always taken as an input, so a step that rewrites an
//!   existing prefix uploads nothing (give every attempt a fresh output prefix).
//! - Exit 0: COMPLETED. Otherwise FAILED with FailureDetails {Reason, Message (the end of
//!   stderr), LogFile}. With a LogUri, `stdout` and `stderr` are uploaded to
//!   `<LogUri>/<cluster-id>/steps/<step-id>/` when the step ends (real EMR gzips them and
//!   uploads minutes later). Ending a cluster SIGKILLs its step process groups.
//!
//! **Not emulated**: instance groups beyond their capacities, resizing, managed scaling,
//! security configurations, bootstrap actions, applications, EMR on EKS / Serverless, IAM,
//! real Spark (no Spark configuration is applied), and any operation not listed above.
//!
//! **Control**: [`EmrEmulator`] methods, and over HTTP `POST /_emulator/lose/<cluster-id>`,
//! `POST /_emulator/throttle/<n>`, `GET /_emulator/clusters`.
//!
//! Used by respawn's `tests/emr.rs` and `tests/emr_emulator.rs`, and by
//! `examples/emr-emulator.rs` (the emulator on its own).

#![allow(dead_code)]

use respawn::drivers::store::{S3Options, S3Store, Store, StoreError, TransferOptions, upload_dir};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The S3 test server's credentials (tests/support/s3_server.rs), the default.
const TEST_ACCESS_KEY: &str = "respawn-test-access";
const TEST_SECRET_KEY: &str = "respawn-test-secret-key";
const PAGE: usize = 50;
const TICK: Duration = Duration::from_millis(20);
/// How long after an armed step starts its cluster is lost.
const LOSS_DELAY: Duration = Duration::from_millis(300);
const LOSS_MESSAGE: &str = "Spot instance termination: Amazon EC2 reclaimed the Spot instances \
     of the primary node and the core nodes, and the cluster was lost.";
const ALIVE: [&str; 4] = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"];
const ACTIONS: [&str; 4] = [
    "TERMINATE_JOB_FLOW",
    "TERMINATE_CLUSTER",
    "CANCEL_AND_WAIT",
    "CONTINUE",
];
const CLUSTER_STATES: [&str; 7] = [
    "STARTING",
    "BOOTSTRAPPING",
    "RUNNING",
    "WAITING",
    "TERMINATING",
    "TERMINATED",
    "TERMINATED_WITH_ERRORS",
];
const STEP_STATES: [&str; 7] = [
    "PENDING",
    "CANCEL_PENDING",
    "RUNNING",
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "INTERRUPTED",
];

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
}

struct Fleet {
    id: String,
    name: Option<String>,
    kind: String,
    on_demand: u32,
    spot: u32,
    /// Instance type and weighted capacity.
    types: Vec<(String, u32)>,
    launch: Option<Value>,
}

#[derive(Clone)]
struct StepSpec {
    name: String,
    action_on_failure: String,
    jar: String,
    args: Vec<String>,
    properties: Vec<(String, String)>,
    main_class: Option<String>,
}

struct Step {
    id: String,
    spec: StepSpec,
    state: &'static str,
    failure: Option<Value>,
    created: SystemTime,
    started: Option<SystemTime>,
    ended: Option<SystemTime>,
    /// Process group of the running command.
    pid: Option<i32>,
    task: Option<tokio::task::AbortHandle>,
}

struct Cluster {
    id: String,
    name: String,
    release_label: String,
    log_uri: Option<String>,
    job_flow_role: String,
    service_role: String,
    fleets: Vec<Fleet>,
    instance_groups: bool,
    subnets: Vec<String>,
    applications: Value,
    configurations: Value,
    tags: Vec<(String, String)>,
    keep_alive: bool,
    idle_timeout: Option<i64>,
    concurrency: usize,
    visible: bool,
    state: &'static str,
    reason: Option<(&'static str, String)>,
    created: SystemTime,
    ready: Option<SystemTime>,
    ended: Option<SystemTime>,
    idle_since: SystemTime,
    end_at: Option<SystemTime>,
    final_state: &'static str,
    lose_at: Option<SystemTime>,
    steps: Vec<Step>,
}

#[derive(Default)]
struct State {
    clusters: Vec<Cluster>,
    requests: Vec<Request>,
    throttle: u32,
    /// Requests refused with ThrottlingException so far.
    throttled: u32,
    lose_on_step: Option<String>,
}

struct Shared {
    config: EmulatorConfig,
    state: Mutex<State>,
    stores: Mutex<HashMap<String, S3Store>>,
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
    fn lose(&self, id: &str) -> bool {
        let mut state = self.state.lock().unwrap();
        let now = SystemTime::now();
        match state.clusters.iter_mut().find(|c| c.id == id) {
            Some(cluster) => lose(cluster, &self.config, now),
            None => false,
        }
    }

    fn clusters(&self) -> Vec<ClusterView> {
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
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1, just what the SDK's client needs: Content-Length bodies, keep-alive.

async fn connection(shared: Arc<Shared>, mut socket: tokio::net::TcpStream) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 << 10 {
                return;
            }
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or("").split(' ');
        let method = request_line.next().unwrap_or("").to_string();
        let path = request_line.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (status, body, content_type) = if header("transfer-encoding").is_some() {
            let error = error_json("SerializationException", "a Content-Length is required");
            (411, error, "application/x-amz-json-1.1")
        } else {
            if length > 16 << 20 {
                return;
            }
            if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
                && socket
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .is_err()
            {
                return;
            }
            while buf.len() < head_end + length {
                match socket.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            route(
                &shared,
                &method,
                &path,
                header("x-amz-target"),
                header("authorization"),
                &buf[head_end..head_end + length],
            )
        };
        buf.drain(..(head_end + length).min(buf.len()));
        let text = body.to_string();
        let response = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             x-amzn-RequestId: {}\r\n{}\r\n{text}",
            if status == 200 { "OK" } else { "Error" },
            text.len(),
            random_id("", 16).to_lowercase(),
            if close { "Connection: close\r\n" } else { "" },
        );
        if socket.write_all(response.as_bytes()).await.is_err() || close || status == 411 {
            return;
        }
    }
}

fn error_json(kind: &str, message: &str) -> Value {
    json!({ "__type": kind, "message": message })
}

fn route(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    target: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> (u16, Value, &'static str) {
    const AMZ_JSON: &str = "application/x-amz-json-1.1";
    if let Some(control) = path.strip_prefix("/_emulator/") {
        let (status, body) = control_route(shared, method, control);
        return (status, body, "application/json");
    }
    let Some(operation) = target.and_then(|t| t.strip_prefix("ElasticMapReduce.")) else {
        let error = error_json(
            "UnknownOperationException",
            "no ElasticMapReduce X-Amz-Target",
        );
        return (400, error, AMZ_JSON);
    };
    if method != "POST" || path != "/" {
        let error = error_json("UnknownOperationException", "requests are POST /");
        return (400, error, AMZ_JSON);
    }
    let parsed: Result<Value, _> = if body.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_slice(body)
    };
    {
        let mut state = shared.state.lock().unwrap();
        state.requests.push(Request {
            operation: operation.into(),
            body: parsed.as_ref().cloned().unwrap_or(Value::Null),
        });
        let signed = authorization.is_some_and(|a| {
            a.starts_with("AWS4-HMAC-SHA256") && a.contains("/elasticmapreduce/aws4_request")
        });
        if !signed {
            let error = error_json(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            );
            return (400, error, AMZ_JSON);
        }
        if state.throttle > 0 {
            state.throttle -= 1;
            state.throttled += 1;
            return (
                400,
                error_json("ThrottlingException", "Rate exceeded"),
                AMZ_JSON,
            );
        }
    }
    let Ok(body) = parsed else {
        let error = error_json("SerializationException", "the body is not JSON");
        return (400, error, AMZ_JSON);
    };
    match call(shared, operation, &body) {
        Ok(value) => (200, strip_nulls(value), AMZ_JSON),
        Err(e) => (400, error_json(e.kind, &e.message), AMZ_JSON),
    }
}

fn control_route(shared: &Arc<Shared>, method: &str, path: &str) -> (u16, Value) {
    match (method, path.split_once('/').unwrap_or((path, ""))) {
        ("POST", ("lose", id)) => {
            let lost = shared.lose(id);
            (if lost { 200 } else { 404 }, json!({ "lost": lost }))
        }
        ("POST", ("throttle", n)) => match n.parse::<u32>() {
            Ok(n) => {
                shared.state.lock().unwrap().throttle = n;
                (200, json!({ "throttle": n }))
            }
            Err(_) => (
                400,
                json!({ "message": "expected /_emulator/throttle/<n>" }),
            ),
        },
        ("GET", ("clusters", "")) => (200, json!(shared.clusters())),
        _ => (404, json!({ "message": "unknown control endpoint" })),
    }
}

/// Absent members are left out, as EMR does.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// Validation, with EMR's error messages.

struct ApiError {
    kind: &'static str,
    message: String,
}

type ApiResult<T> = Result<T, ApiError>;

fn validation(message: impl Into<String>) -> ApiError {
    ApiError {
        kind: "ValidationException",
        message: message.into(),
    }
}

fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError {
        kind: "InvalidRequestException",
        message: message.into(),
    }
}

fn constraint(value: &str, path: &str, rule: &str) -> ApiError {
    validation(format!(
        "1 validation error detected: Value {value} at '{path}' failed to satisfy constraint: {rule}"
    ))
}

fn serialization(path: &str) -> ApiError {
    ApiError {
        kind: "SerializationException",
        message: format!("Unexpected value type at '{path}'"),
    }
}

/// A JSON object of a request, with the path of its members for messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn root(value: &'a Value) -> ApiResult<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                path: String::new(),
            }),
            _ => Err(serialization("")),
        }
    }

    /// `instances.instanceFleets.1.member.name`, as EMR names members.
    fn at(&self, key: &str) -> String {
        let mut chars = key.chars();
        let camel: String = chars
            .next()
            .map(|c| c.to_ascii_lowercase())
            .into_iter()
            .chain(chars)
            .collect();
        if self.path.is_empty() {
            camel
        } else {
            format!("{}.{camel}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> ApiResult<T> {
        value.ok_or_else(|| constraint("null", &self.at(key), "Member must not be null"))
    }

    fn str(&self, key: &str) -> ApiResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(serialization(&self.at(key))),
        }
    }

    fn req_str(&self, key: &str) -> ApiResult<&'a str> {
        let value = self.str(key)?;
        let value = self.required(key, value)?;
        if value.is_empty() {
            let rule = "Member must have length greater than or equal to 1";
            return Err(constraint("''", &self.at(key), rule));
        }
        Ok(value)
    }

    fn bool(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(serialization(&self.at(key))),
        }
    }

    fn int(&self, key: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let n = value.as_i64().ok_or_else(|| serialization(&self.at(key)))?;
        let value = format!("'{n}'");
        if n < min {
            let rule = format!("Member must have value greater than or equal to {min}");
            return Err(constraint(&value, &self.at(key), &rule));
        }
        if n > max {
            let rule = format!("Member must have value less than or equal to {max}");
            return Err(constraint(&value, &self.at(key), &rule));
        }
        Ok(Some(n))
    }

    fn time(&self, key: &str) -> ApiResult<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| serialization(&self.at(key))),
        }
    }

    fn enumerated(&self, key: &str, allowed: &[&str]) -> ApiResult<Option<&'a str>> {
        let value = self.str(key)?;
        if let Some(v) = value
            && !allowed.contains(&v)
        {
            let rule = format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            );
            return Err(constraint(&format!("'{v}'"), &self.at(key), &rule));
        }
        Ok(value)
    }

    fn obj(&self, key: &str) -> ApiResult<Option<Obj<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                path: self.at(key),
            })),
            Some(_) => Err(serialization(&self.at(key))),
        }
    }

    fn req_obj(&self, key: &str) -> ApiResult<Obj<'a>> {
        let value = self.obj(key)?;
        self.required(key, value)
    }

    /// The items of a list member (none if absent), each with its path.
    fn list(&self, key: &str, max: usize) -> ApiResult<Vec<(String, &'a Value)>> {
        let items = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(serialization(&self.at(key))),
        };
        if items.len() > max {
            let rule = format!("Member must have length less than or equal to {max}");
            return Err(constraint("'[...]'", &self.at(key), &rule));
        }
        let path = self.at(key);
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}.{}.member", i + 1), v))
            .collect())
    }

    fn objs(&self, key: &str, max: usize) -> ApiResult<Vec<Obj<'a>>> {
        self.list(key, max)?
            .into_iter()
            .map(|(path, v)| match v {
                Value::Object(map) => Ok(Obj { map, path }),
                _ => Err(serialization(&path)),
            })
            .collect()
    }

    fn strs(&self, key: &str, max: usize) -> ApiResult<Vec<String>> {
        self.list(key, max)?
            .into_iter()
            .map(|(path, v)| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| serialization(&path))
            })
            .collect()
    }

    fn enums(&self, key: &str, allowed: &[&str]) -> ApiResult<Vec<String>> {
        let values = self.strs(key, 100)?;
        for (i, v) in values.iter().enumerate() {
            if !allowed.contains(&v.as_str()) {
                let rule = format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                );
                let path = format!("{}.{}.member", self.at(key), i + 1);
                return Err(constraint(&format!("'{v}'"), &path, &rule));
            }
        }
        Ok(values)
    }
}

fn require_nonempty<T>(o: &Obj, key: &str, items: &[T]) -> ApiResult<()> {
    if items.is_empty() {
        let rule = "Member must have length greater than or equal to 1";
        let value = if o.get(key).is_some() { "'[]'" } else { "null" };
        return Err(constraint(value, &o.at(key), rule));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Operations.

fn call(shared: &Arc<Shared>, operation: &str, body: &Value) -> ApiResult<Value> {
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
        _ => Err(ApiError {
            kind: "UnknownOperationException",
            message: format!("the EMR emulator does not implement {operation}"),
        }),
    }
}

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

fn idle_timeout(o: &Obj) -> ApiResult<Option<i64>> {
    match o.obj("AutoTerminationPolicy")? {
        Some(policy) => policy.int("IdleTimeout", 60, 604_800),
        None => Ok(None),
    }
}

fn parse_tags(o: &Obj) -> ApiResult<Vec<(String, String)>> {
    o.objs("Tags", 50)?
        .iter()
        .map(|t| {
            let key = t.req_str("Key")?;
            if key.len() > 128 {
                let rule = "Member must have length less than or equal to 128";
                return Err(constraint(&format!("'{key}'"), &t.at("Key"), rule));
            }
            Ok((key.to_string(), t.str("Value")?.unwrap_or("").to_string()))
        })
        .collect()
}

fn parse_steps(o: &Obj, key: &str) -> ApiResult<Vec<StepSpec>> {
    o.objs(key, 256)?
        .iter()
        .map(|s| {
            let name = s.req_str("Name")?;
            let action = s
                .enumerated("ActionOnFailure", &ACTIONS)?
                .unwrap_or("CONTINUE");
            let hadoop = s.req_obj("HadoopJarStep")?;
            let properties = hadoop
                .objs("Properties", 1000)?
                .iter()
                .map(|p| {
                    Ok((
                        p.str("Key")?.unwrap_or("").to_string(),
                        p.str("Value")?.unwrap_or("").to_string(),
                    ))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(StepSpec {
                name: name.into(),
                action_on_failure: action.into(),
                jar: hadoop.req_str("Jar")?.into(),
                args: hadoop.strs("Args", 10_000)?,
                properties,
                main_class: hadoop.str("MainClass")?.map(String::from),
            })
        })
        .collect()
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
        steps: Vec::new(),
    };
    for spec in specs {
        add_step(&mut cluster, spec, now);
    }
    let arn = cluster_arn(&id);
    state.clusters.push(cluster);
    Ok(json!({ "JobFlowId": id, "ClusterArn": arn }))
}

/// Instance fleets, instance groups, or the MasterInstanceType shorthand (as groups).
fn parse_capacity(instances: &Obj) -> ApiResult<(Vec<Fleet>, bool)> {
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
            });
        }
        if !fleets.iter().any(|f| f.kind == "MASTER") {
            return Err(validation("An instance fleet of type MASTER is required."));
        }
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
                });
            }
        }
    }
    if !groups.iter().any(|g| g.kind == "MASTER") {
        return Err(validation(
            "Instances must have InstanceFleets or InstanceGroups with a MASTER, or a MasterInstanceType.",
        ));
    }
    Ok((groups, true))
}

fn add_step(cluster: &mut Cluster, spec: StepSpec, now: SystemTime) -> String {
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

// ---------------------------------------------------------------------------------------
// Responses.

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as f64 / 1000.0
}

fn epoch(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| json!(seconds(t)))
}

fn cluster_arn(id: &str) -> String {
    format!("arn:aws:elasticmapreduce:us-east-1:123456789012:cluster/{id}")
}

fn cluster_status(c: &Cluster) -> Value {
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

fn describe_cluster(c: &Cluster, now: SystemTime) -> Value {
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
            "Ec2AvailabilityZone": "us-east-1a",
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
fn normalized_hours(c: &Cluster, now: SystemTime) -> u64 {
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

fn fleet_json(c: &Cluster, f: &Fleet) -> Value {
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

fn step_json(s: &Step) -> Value {
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

fn random_id(prefix: &str, len: usize) -> String {
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

// ---------------------------------------------------------------------------------------
// Cluster and step life.

async fn tick(shared: Arc<Shared>) {
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

fn lose(c: &mut Cluster, config: &EmulatorConfig, now: SystemTime) -> bool {
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
fn shut_down(
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

fn kill(step: &mut Step, signal: i32) {
    if let Some(pid) = step.pid.take() {
        // SAFETY: kill(2) on a process group this emulator started.
        unsafe { libc::kill(-pid, signal) };
    }
    if let Some(task) = step.task.take() {
        task.abort();
    }
}

/// What a step task needs, copied out of the state.
struct Job {
    cluster_id: String,
    step_id: String,
    jar: String,
    args: Vec<String>,
    log_uri: Option<String>,
    step_dir: PathBuf,
    hdfs_root: PathBuf,
}

fn start_step(
    shared: &Arc<Shared>,
    c: &mut Cluster,
    index: usize,
    now: SystemTime,
    lose_on_step: &mut Option<String>,
) {
    let cluster_dir = shared.config.work_dir.join(&c.id);
    let step = &mut c.steps[index];
    step.state = "RUNNING";
    step.started = Some(now);
    let job = Job {
        cluster_id: c.id.clone(),
        step_id: step.id.clone(),
        jar: step.spec.jar.clone(),
        args: step.spec.args.clone(),
        log_uri: c.log_uri.clone(),
        step_dir: cluster_dir.join("steps").join(&step.id),
        hdfs_root: cluster_dir.join("hdfs"),
    };
    step.task = Some(tokio::spawn(run_step(shared.clone(), job)).abort_handle());
    if lose_on_step
        .as_deref()
        .is_some_and(|prefix| step.spec.name.starts_with(prefix))
    {
        *lose_on_step = None;
        c.lose_at = Some(now + LOSS_DELAY);
    }
}

struct Failure {
    reason: String,
    message: String,
}

impl Failure {
    fn new(reason: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

async fn run_step(shared: Arc<Shared>, job: Job) {
    let outcome = execute(&shared, &job).await;
    let stderr = job.step_dir.join("stderr");
    if let Err(failure) = &outcome
        && !stderr.exists()
    {
        let _ = std::fs::create_dir_all(&job.step_dir);
        let _ = std::fs::write(&stderr, format!("{}\n", failure.message));
    }
    let log_file = upload_logs(&shared, &job).await;
    let mut state = shared.state.lock().unwrap();
    let config = &shared.config;
    let now = SystemTime::now();
    let Some(c) = state.clusters.iter_mut().find(|c| c.id == job.cluster_id) else {
        return;
    };
    let Some(step) = c.steps.iter_mut().find(|s| s.id == job.step_id) else {
        return;
    };
    step.pid = None;
    step.task = None;
    match step.state {
        "CANCEL_PENDING" => {
            step.state = "CANCELLED";
            step.ended = Some(now);
            return;
        }
        "RUNNING" => step.ended = Some(now),
        _ => return,
    }
    let Err(failure) = outcome else {
        step.state = "COMPLETED";
        return;
    };
    step.state = "FAILED";
    step.failure = Some(json!({
        "Reason": failure.reason,
        "Message": failure.message,
        "LogFile": log_file,
    }));
    match step.spec.action_on_failure.as_str() {
        "TERMINATE_CLUSTER" | "TERMINATE_JOB_FLOW" => {
            let reason = ("STEP_FAILURE", "Shut down as step failed".to_string());
            shut_down(
                c,
                config,
                now,
                "TERMINATED_WITH_ERRORS",
                reason,
                "CANCELLED",
            );
        }
        "CANCEL_AND_WAIT" => {
            for pending in c.steps.iter_mut().filter(|s| s.state == "PENDING") {
                pending.state = "CANCELLED";
                pending.ended = Some(now);
            }
        }
        _ => {}
    }
}

fn still_running(shared: &Shared, job: &Job) -> bool {
    let state = shared.state.lock().unwrap();
    state
        .clusters
        .iter()
        .find(|c| c.id == job.cluster_id)
        .and_then(|c| c.steps.iter().find(|s| s.id == job.step_id))
        .is_some_and(|s| s.state == "RUNNING")
}

async fn execute(shared: &Arc<Shared>, job: &Job) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::new("Emulator I/O error", e.to_string());
    std::fs::create_dir_all(&job.step_dir).map_err(io)?;
    std::fs::create_dir_all(&job.hdfs_root).map_err(io)?;
    if job.jar != "command-runner.jar" && !job.jar.ends_with("/command-runner.jar") {
        return Err(Failure::new(
            "Unsupported step",
            format!(
                "the EMR emulator runs only command-runner.jar steps, not `{}`",
                job.jar
            ),
        ));
    }
    if job.args.is_empty() {
        return Err(Failure::new(
            "Invalid step",
            "command-runner.jar needs a command in Args",
        ));
    }
    let (argv, apps) = map_spark_submit(&job.args)?;
    let mut local: HashMap<String, String> = HashMap::new();
    let mut outputs = Vec::new();
    for arg in &argv {
        for (start, end) in find_urls(arg) {
            let url = &arg[start..end];
            if !local.contains_key(url) {
                let is_app = apps.iter().any(|a| a == url);
                let path = resolve(shared, job, url, is_app, local.len(), &mut outputs).await?;
                local.insert(url.to_string(), path);
            }
        }
    }
    let argv: Vec<String> = argv.iter().map(|a| substitute(a, &local)).collect();
    let stdout = std::fs::File::create(job.step_dir.join("stdout")).map_err(io)?;
    let stderr = std::fs::File::create(job.step_dir.join("stderr")).map_err(io)?;
    let mut child = {
        let mut state = shared.state.lock().unwrap();
        let Some(step) = state
            .clusters
            .iter_mut()
            .find(|c| c.id == job.cluster_id)
            .and_then(|c| c.steps.iter_mut().find(|s| s.id == job.step_id))
            .filter(|s| s.state == "RUNNING")
        else {
            return Err(Failure::new(
                "Cancelled",
                "the step ended before it started",
            ));
        };
        let child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&job.step_dir)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Failure::new("The command could not start", format!("{}: {e}", argv[0]))
            })?;
        step.pid = child.id().map(|id| id as i32);
        child
    };
    let status = child.wait().await.map_err(io)?;
    if !still_running(shared, job) {
        return Err(Failure::new("Cancelled", "the step was stopped"));
    }
    if !status.success() {
        let reason = match status.code() {
            Some(code) => format!("The command exited with code {code}"),
            None => "The command was killed by a signal".to_string(),
        };
        return Err(Failure::new(
            reason,
            stderr_tail(&job.step_dir.join("stderr")),
        ));
    }
    for (dir, bucket, prefix) in outputs {
        let store = store_for(shared, &bucket).await?;
        upload_dir(&store, &dir, &prefix, &TransferOptions::default())
            .await
            .map_err(|e| {
                Failure::new(
                    format!("Uploading the output to s3://{bucket}/{prefix} failed"),
                    e.to_string(),
                )
            })?;
    }
    Ok(())
}

fn stderr_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    let tail = if tail.len() > 4000 {
        let mut cut = tail.len() - 4000;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail[cut..].to_string()
    } else {
        tail
    };
    if tail.trim().is_empty() {
        "(nothing on stderr)".into()
    } else {
        tail
    }
}

async fn upload_logs(shared: &Arc<Shared>, job: &Job) -> Option<String> {
    let (bucket, prefix) = parse_s3(job.log_uri.as_deref()?)?;
    let prefix = prefix.trim_end_matches('/');
    let folder = format!("{}/steps/{}/", job.cluster_id, job.step_id);
    let base = if prefix.is_empty() {
        folder
    } else {
        format!("{prefix}/{folder}")
    };
    let store = store_for(shared, bucket).await.ok()?;
    for name in ["stdout", "stderr"] {
        let path = job.step_dir.join(name);
        if path.is_file() {
            let _ = store.upload_file(&path, &format!("{base}{name}")).await;
        }
    }
    Some(format!("s3://{bucket}/{base}stderr"))
}

fn parse_s3(url: &str) -> Option<(&str, &str)> {
    let rest = ["s3://", "s3a://", "s3n://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

async fn store_for(shared: &Shared, bucket: &str) -> Result<S3Store, Failure> {
    if let Some(store) = shared.stores.lock().unwrap().get(bucket) {
        return Ok(store.clone());
    }
    let credentials = shared
        .config
        .s3_credentials
        .clone()
        .unwrap_or_else(|| (TEST_ACCESS_KEY.into(), TEST_SECRET_KEY.into()));
    let options = S3Options {
        endpoint_url: Some(shared.config.s3_endpoint.clone()),
        static_credentials: Some(credentials),
        ..S3Options::default()
    };
    let store = S3Store::connect(bucket, "", &options)
        .await
        .map_err(|e| Failure::new("S3 is not reachable", e.to_string()))?;
    shared
        .stores
        .lock()
        .unwrap()
        .insert(bucket.into(), store.clone());
    Ok(store)
}

/// Downloads every object under `prefix` into `dir`; returns how many.
async fn download_prefix(store: &S3Store, prefix: &str, dir: &Path) -> Result<usize, Failure> {
    let failed = |e: StoreError| {
        Failure::new(
            format!("Reading s3 prefix `{prefix}` failed"),
            e.to_string(),
        )
    };
    let objects = store.list(prefix).await.map_err(failed)?;
    let mut count = 0;
    for object in objects {
        let relative = &object.key[prefix.len()..];
        if relative.is_empty() || relative.ends_with('/') {
            continue;
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::new("Emulator I/O error", e.to_string()))?;
        }
        store
            .download_file(&object.key, &path)
            .await
            .map_err(failed)?;
        count += 1;
    }
    Ok(count)
}

/// The local path that replaces an `s3://` or `hdfs://` URL; outputs are recorded.
async fn resolve(
    shared: &Arc<Shared>,
    job: &Job,
    url: &str,
    is_app: bool,
    n: usize,
    outputs: &mut Vec<(PathBuf, String, String)>,
) -> Result<String, Failure> {
    let io = |e: std::io::Error| Failure::new("Emulator I/O error", e.to_string());
    if let Some(rest) = url.strip_prefix("hdfs://") {
        let path = if rest.starts_with('/') {
            rest
        } else {
            rest.find('/').map_or("/", |i| &rest[i..])
        };
        let local = format!("{}{path}", job.hdfs_root.display());
        if let Some(parent) = Path::new(&local).parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        return Ok(local);
    }
    let (bucket, key) = parse_s3(url)
        .ok_or_else(|| Failure::new("Invalid S3 URL", format!("`{url}` names no bucket")))?;
    let store = store_for(shared, bucket).await?;
    if is_app {
        let folder = key
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| format!("{d}/"));
        let dir = job.step_dir.join("app");
        download_prefix(&store, &folder, &dir).await?;
        let file = dir.join(&key[folder.len()..]);
        if !file.is_file() {
            return Err(Failure::new(
                "Application not found",
                format!("{url} does not exist"),
            ));
        }
        return Ok(file.display().to_string());
    }
    let slash = if url.ends_with('/') { "/" } else { "" };
    let base = key.trim_end_matches('/');
    let prefix = if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    };
    let dir = job.step_dir.join("s3").join(n.to_string());
    std::fs::create_dir_all(&dir).map_err(io)?;
    if download_prefix(&store, &prefix, &dir).await? > 0 {
        return Ok(format!("{}{slash}", dir.display()));
    }
    if !base.is_empty() {
        match store.head(base).await {
            Ok(_) => {
                let file = dir.join(base.rsplit('/').next().unwrap_or(base));
                store
                    .download_file(base, &file)
                    .await
                    .map_err(|e| Failure::new(format!("Reading {url} failed"), e.to_string()))?;
                return Ok(file.display().to_string());
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(Failure::new(format!("Reading {url} failed"), e.to_string())),
        }
    }
    outputs.push((dir.clone(), bucket.to_string(), prefix));
    Ok(format!("{}{slash}", dir.display()))
}

// ---------------------------------------------------------------------------------------
// Mapping a command line.

const SCHEMES: [&str; 4] = ["s3://", "s3a://", "s3n://", "hdfs://"];
const SPARK_FLAGS: [&str; 4] = ["--verbose", "--supervise", "--help", "--version"];

/// The byte ranges of the `s3://...` and `hdfs://...` URLs in `text`.
fn find_urls(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut urls = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary
            && let Some(scheme) = SCHEMES
                .iter()
                .find(|s| bytes[i..].starts_with(s.as_bytes()))
        {
            let end = text[i..]
                .find(|c: char| c.is_whitespace() || "\"'`;&|()<>,".contains(c))
                .map_or(text.len(), |e| i + e);
            if end > i + scheme.len() {
                urls.push((i, end));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    urls
}

fn substitute(text: &str, local: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (start, end) in find_urls(text) {
        out.push_str(&text[last..start]);
        out.push_str(
            local
                .get(&text[start..end])
                .map_or(&text[start..end], |s| s),
        );
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The index of the application among spark-submit's words (`words[0]` is spark-submit).
fn spark_app(words: &[&str]) -> Result<usize, Failure> {
    let mut i = 1;
    while i < words.len() && words[i].starts_with("--") {
        i += if SPARK_FLAGS.contains(&words[i]) || words[i].contains('=') {
            1
        } else {
            2
        };
    }
    let Some(app) = words.get(i) else {
        return Err(Failure::new(
            "Invalid spark-submit",
            "spark-submit has no application",
        ));
    };
    if !app.ends_with(".py") {
        let what = if app.ends_with(".jar") {
            "a JAR"
        } else {
            "this"
        };
        return Err(Failure::new(
            "Unsupported Spark application",
            format!(
                "spark-submit of {what} application ({app}) is not emulated; only Python (.py) \
                 applications run, as python3"
            ),
        ));
    }
    Ok(i)
}

/// Replaces `spark-submit [options] app.py` by `python3 app.py`, in an argv or in the
/// line of `bash -c` / `sh -c`. Returns the argv and the applications named.
fn map_spark_submit(args: &[String]) -> Result<(Vec<String>, Vec<String>), Failure> {
    let mut apps = Vec::new();
    let program = program_name(&args[0]);
    if program == "spark-submit" {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let app = spark_app(&words)?;
        apps.push(args[app].clone());
        let argv = std::iter::once("python3".to_string())
            .chain(args[app..].iter().cloned())
            .collect();
        return Ok((argv, apps));
    }
    let mut argv = args.to_vec();
    if matches!(program, "bash" | "sh")
        && let Some(flag) = argv
            .iter()
            .position(|a| a.starts_with('-') && !a.starts_with("--") && a.ends_with('c'))
        && flag + 1 < argv.len()
    {
        argv[flag + 1] = map_shell_line(&argv[flag + 1], &mut apps)?;
    }
    Ok((argv, apps))
}

struct Token {
    start: usize,
    end: usize,
    /// Without quotes; empty for an operator.
    text: String,
    word: bool,
}

/// Shell words and operators, enough to find spark-submit and its application.
fn shell_tokens(line: &str) -> Vec<Token> {
    const OPERATORS: &str = ";&|()<>";
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if OPERATORS.contains(c) {
            tokens.push(Token {
                start,
                end: start + c.len_utf8(),
                text: String::new(),
                word: false,
            });
            i += 1;
            continue;
        }
        let mut text = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i].1;
            match quote {
                Some(q) if c == q => quote = None,
                Some('"') if c == '\\' && i + 1 < chars.len() => {
                    i += 1;
                    text.push(chars[i].1);
                }
                Some(_) => text.push(c),
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '\\' && i + 1 < chars.len() => {
                    i += 1;
                    text.push(chars[i].1);
                }
                None if c.is_whitespace() || OPERATORS.contains(c) => break,
                None => text.push(c),
            }
            i += 1;
        }
        let end = chars.get(i).map_or(line.len(), |(p, _)| *p);
        tokens.push(Token {
            start,
            end,
            text,
            word: true,
        });
    }
    tokens
}

fn map_shell_line(line: &str, apps: &mut Vec<String>) -> Result<String, Failure> {
    let tokens = shell_tokens(line);
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].word && program_name(&tokens[i].text) == "spark-submit" {
            let words: Vec<&str> = tokens[i..]
                .iter()
                .take_while(|t| t.word)
                .map(|t| t.text.as_str())
                .collect();
            let app = spark_app(&words)?;
            apps.push(words[app].to_string());
            out.push_str(&line[last..tokens[i].start]);
            out.push_str("python3 ");
            out.push_str(&line[tokens[i + app].start..tokens[i + app].end]);
            last = tokens[i + app].end;
            i += app + 1;
        } else {
            i += 1;
        }
    }
    out.push_str(&line[last..]);
    Ok(out)
}
