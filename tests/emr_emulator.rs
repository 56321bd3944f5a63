//! The EMR emulator (the `respawn-emr-emulator` crate in `emr-emulator/`) driven by a real
//! aws-sdk-emr client, with steps running against the real S3 test server.

mod support;

use aws_sdk_emr::Client;
use aws_sdk_emr::config::retry::RetryConfig;
use aws_sdk_emr::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_emr::error::ProvideErrorMetadata;
use aws_sdk_emr::operation::run_job_flow::builders::RunJobFlowFluentBuilder;
use aws_sdk_emr::types::{
    ActionOnFailure, AutoTerminationPolicy, ClusterState, ClusterStateChangeReasonCode,
    HadoopJarStepConfig, InstanceFleetConfig, InstanceFleetProvisioningSpecifications,
    InstanceFleetState, InstanceFleetType, InstanceTypeConfig, JobFlowInstancesConfig,
    SpotProvisioningAllocationStrategy, SpotProvisioningSpecification,
    SpotProvisioningTimeoutAction, StepConfig, StepState, Tag,
};
use respawn_emr_emulator::{EmrEmulator, EmulatorConfig};
use respawn_run::store::{PutMode, S3Options, S3Store, Store};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::s3_server::{self, S3Server};

struct Env {
    emr: EmrEmulator,
    client: Client,
    store: S3Store,
    work: tempfile::TempDir,
    _s3: S3Server,
}

async fn env() -> Env {
    env_with(|_| {}).await
}

async fn env_with(adjust: impl FnOnce(&mut EmulatorConfig)) -> Env {
    let s3 = S3Server::start();
    let work = tempfile::tempdir().unwrap();
    let mut config = EmulatorConfig::new(s3.endpoint(), work.path());
    config.start_delay = Duration::from_millis(100);
    config.shutdown_delay = Duration::from_millis(100);
    adjust(&mut config);
    let emr = EmrEmulator::start(config).unwrap();
    let retry = RetryConfig::standard().with_initial_backoff(Duration::from_millis(10));
    let client = client(&emr, retry);
    let options = S3Options {
        endpoint_url: Some(s3.endpoint().into()),
        static_credentials: Some((s3_server::ACCESS_KEY.into(), s3_server::SECRET_KEY.into())),
        ..S3Options::default()
    };
    let store = S3Store::connect(s3_server::BUCKET, "", &options)
        .await
        .unwrap();
    Env {
        emr,
        client,
        store,
        work,
        _s3: s3,
    }
}

fn client(emr: &EmrEmulator, retry: RetryConfig) -> Client {
    let config = aws_sdk_emr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEMULATOR",
            "secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(emr.endpoint())
        .retry_config(retry)
        .build();
    Client::from_conf(config)
}

/// A spot cluster with instance fleets, kept alive when idle.
fn run_fleets(client: &Client, name: &str) -> RunJobFlowFluentBuilder {
    let spot = InstanceFleetProvisioningSpecifications::builder()
        .spot_specification(
            SpotProvisioningSpecification::builder()
                .timeout_duration_minutes(10)
                .timeout_action(SpotProvisioningTimeoutAction::SwitchToOnDemand)
                .allocation_strategy(SpotProvisioningAllocationStrategy::PriceCapacityOptimized)
                .build(),
        )
        .build();
    let fleet = |kind: InstanceFleetType, capacity: i32, types: &[&str]| {
        InstanceFleetConfig::builder()
            .instance_fleet_type(kind)
            .target_spot_capacity(capacity)
            .set_instance_type_configs(Some(
                types
                    .iter()
                    .map(|t| InstanceTypeConfig::builder().instance_type(*t).build())
                    .collect(),
            ))
            .launch_specifications(spot.clone())
            .build()
    };
    client
        .run_job_flow()
        .name(name)
        .release_label("emr-7.2.0")
        .instances(
            JobFlowInstancesConfig::builder()
                .instance_fleets(fleet(InstanceFleetType::Master, 1, &["m5.xlarge"]))
                .instance_fleets(fleet(
                    InstanceFleetType::Core,
                    2,
                    &["m5.xlarge", "r5.xlarge"],
                ))
                .keep_job_flow_alive_when_no_steps(true)
                .ec2_subnet_ids("subnet-1")
                .build(),
        )
        .job_flow_role("EMR_EC2_DefaultRole")
        .service_role("EMR_DefaultRole")
        .tags(Tag::builder().key("respawn:workflow").value("demo").build())
}

fn shell_step(name: &str, line: &str) -> StepConfig {
    StepConfig::builder()
        .name(name)
        .action_on_failure(ActionOnFailure::Continue)
        .hadoop_jar_step(
            HadoopJarStepConfig::builder()
                .jar("command-runner.jar")
                .args("bash")
                .args("-c")
                .args(line)
                .build(),
        )
        .build()
}

async fn start(env: &Env, name: &str) -> String {
    let out = run_fleets(&env.client, name).send().await.unwrap();
    out.job_flow_id().unwrap().to_string()
}

async fn cluster_state(client: &Client, id: &str) -> aws_sdk_emr::types::Cluster {
    let out = client
        .describe_cluster()
        .cluster_id(id)
        .send()
        .await
        .unwrap();
    out.cluster().unwrap().clone()
}

async fn wait_cluster(
    client: &Client,
    id: &str,
    state: ClusterState,
) -> aws_sdk_emr::types::Cluster {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cluster = cluster_state(client, id).await;
        let now = cluster.status().unwrap().state().unwrap().clone();
        if now == state {
            return cluster;
        }
        assert!(
            Instant::now() < deadline,
            "{id} stayed {now:?}, expected {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn add_steps(client: &Client, id: &str, steps: Vec<StepConfig>) -> Vec<String> {
    let out = client
        .add_job_flow_steps()
        .job_flow_id(id)
        .set_steps(Some(steps))
        .send()
        .await
        .unwrap();
    out.step_ids().to_vec()
}

/// Waits until the step is in a final state and returns it.
async fn wait_step(client: &Client, cluster: &str, step: &str) -> aws_sdk_emr::types::Step {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = client
            .describe_step()
            .cluster_id(cluster)
            .step_id(step)
            .send()
            .await
            .unwrap();
        let step = out.step().unwrap().clone();
        let state = step.status().unwrap().state().unwrap().clone();
        if !matches!(
            state,
            StepState::Pending | StepState::Running | StepState::CancelPending
        ) {
            return step;
        }
        assert!(Instant::now() < deadline, "step {step:?} did not finish");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn step_state(step: &aws_sdk_emr::types::Step) -> StepState {
    step.status().unwrap().state().unwrap().clone()
}

/// A plain HTTP/1.1 request to the emulator's control endpoints.
fn control(emr: &EmrEmulator, method: &str, path: &str) -> (u16, serde_json::Value) {
    let address = emr.endpoint().strip_prefix("http://").unwrap();
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_cluster_starts_then_waits_with_its_spot_fleets_provisioned() {
    let env = env().await;
    let out = run_fleets(&env.client, "starts").send().await.unwrap();
    let id = out.job_flow_id().unwrap();
    assert_eq!(id.len(), 15, "{id}");
    assert!(id.starts_with("j-"));
    assert!(
        id[2..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    assert!(
        out.cluster_arn()
            .unwrap()
            .ends_with(&format!(":cluster/{id}"))
    );

    let cluster = cluster_state(&env.client, id).await;
    assert_eq!(
        cluster.status().unwrap().state(),
        Some(&ClusterState::Starting)
    );
    let fleets = env
        .client
        .list_instance_fleets()
        .cluster_id(id)
        .send()
        .await
        .unwrap();
    let master = &fleets.instance_fleets()[0];
    assert_eq!(
        master.status().unwrap().state(),
        Some(&InstanceFleetState::Provisioning)
    );
    assert_eq!(master.provisioned_spot_capacity(), Some(0));

    let cluster = wait_cluster(&env.client, id, ClusterState::Waiting).await;
    let timeline = cluster.status().unwrap().timeline().unwrap();
    assert!(timeline.ready_date_time().unwrap() >= timeline.creation_date_time().unwrap());
    assert_eq!(cluster.name(), Some("starts"));
    assert_eq!(cluster.release_label(), Some("emr-7.2.0"));
    assert_eq!(cluster.auto_terminate(), Some(false));
    assert_eq!(cluster.tags()[0].key(), Some("respawn:workflow"));
    // 3 m5.xlarge-sized instances (factor 8) for their first hour.
    assert_eq!(cluster.normalized_instance_hours(), Some(24));

    let fleets = env
        .client
        .list_instance_fleets()
        .cluster_id(id)
        .send()
        .await
        .unwrap();
    let fleets = fleets.instance_fleets();
    assert_eq!(fleets.len(), 2);
    let core = fleets
        .iter()
        .find(|f| f.instance_fleet_type() == Some(&InstanceFleetType::Core))
        .unwrap();
    assert_eq!(
        core.status().unwrap().state(),
        Some(&InstanceFleetState::Running)
    );
    assert_eq!(core.target_spot_capacity(), Some(2));
    assert_eq!(core.provisioned_spot_capacity(), Some(2));
    assert_eq!(core.provisioned_on_demand_capacity(), Some(0));
    let types = core.instance_type_specifications();
    assert_eq!(types.len(), 2);
    assert_eq!(types[1].instance_type(), Some("r5.xlarge"));
    assert_eq!(types[1].weighted_capacity(), Some(1));

    let views = env.emr.clusters();
    assert_eq!(views.len(), 1);
    assert!(views[0].spot);
    assert_eq!(views[0].state, "WAITING");
    assert_eq!(views[0].tags["respawn:workflow"], "demo");
    let requests = env.emr.requests();
    assert_eq!(requests[0].operation, "RunJobFlow");
    assert_eq!(
        requests[0].body["Instances"]["InstanceFleets"][0]["LaunchSpecifications"]["SpotSpecification"]
            ["AllocationStrategy"],
        "price-capacity-optimized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spark_submit_step_runs_its_s3_app_on_s3_input_and_uploads_output_and_logs() {
    let env = env().await;
    let put = |key: &str, body: &str| {
        let (store, key, body) = (env.store.clone(), key.to_string(), body.to_string());
        async move {
            store
                .put(&key, body.into_bytes(), PutMode::Overwrite)
                .await
                .unwrap()
        }
    };
    put(
        "apps/job.py",
        "import os, sys\n\
         import helper\n\
         args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n\
         words = 0\n\
         for name in sorted(os.listdir(args['--in'])):\n\
         \x20   words += len(open(os.path.join(args['--in'], name)).read().split())\n\
         open(os.path.join(args['--out'], 'part-00000.txt'), 'w').write(helper.render(words))\n\
         print('counted', words)\n",
    )
    .await;
    put(
        "apps/helper.py",
        "def render(n):\n    return f'words={n}\\n'\n",
    )
    .await;
    put("input/a.txt", "one two three\n").await;
    put("input/b.txt", "four five\n").await;

    let id = run_fleets(&env.client, "spark")
        .log_uri("s3://respawn-test/logs/")
        .send()
        .await
        .unwrap()
        .job_flow_id()
        .unwrap()
        .to_string();
    let line = "spark-submit --deploy-mode cluster --conf spark.executor.memory=2g --verbose \
                s3://respawn-test/apps/job.py --in s3://respawn-test/input/ \
                --out s3://respawn-test/output/run-1";
    let step_ids = add_steps(&env.client, &id, vec![shell_step("stage-count", line)]).await;
    assert_eq!(
        cluster_state(&env.client, &id)
            .await
            .status()
            .unwrap()
            .state(),
        Some(&ClusterState::Starting)
    );
    let step = wait_step(&env.client, &id, &step_ids[0]).await;
    assert_eq!(step_state(&step), StepState::Completed, "{step:?}");
    let timeline = step.status().unwrap().timeline().unwrap();
    assert!(timeline.start_date_time().is_some() && timeline.end_date_time().is_some());
    assert_eq!(step.config().unwrap().args()[2], line);

    let (output, _) = env.store.get("output/run-1/part-00000.txt").await.unwrap();
    assert_eq!(String::from_utf8(output).unwrap(), "words=5\n");
    let outputs = env.store.list("output/").await.unwrap();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let stdout_key = format!("logs/{id}/steps/{}/stdout", step_ids[0]);
    let (stdout, _) = env.store.get(&stdout_key).await.unwrap();
    assert_eq!(String::from_utf8(stdout).unwrap(), "counted 5\n");
    wait_cluster(&env.client, &id, ClusterState::Waiting).await;

    // A direct argv works too, and ListSteps shows the newest step first.
    let argv = StepConfig::builder()
        .name("stage-argv")
        .hadoop_jar_step(
            HadoopJarStepConfig::builder()
                .jar("command-runner.jar")
                .set_args(Some(
                    [
                        "spark-submit",
                        "s3://respawn-test/apps/job.py",
                        "--in",
                        "s3://respawn-test/input",
                        "--out",
                        "s3://respawn-test/output/run-2/",
                    ]
                    .map(String::from)
                    .to_vec(),
                ))
                .build(),
        )
        .build();
    let second = add_steps(&env.client, &id, vec![argv]).await;
    let step = wait_step(&env.client, &id, &second[0]).await;
    assert_eq!(step_state(&step), StepState::Completed, "{step:?}");
    assert!(env.store.head("output/run-2/part-00000.txt").await.is_ok());
    let listed = env
        .client
        .list_steps()
        .cluster_id(&id)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = listed.steps().iter().map(|s| s.name().unwrap()).collect();
    assert_eq!(names, ["stage-argv", "stage-count"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_fails_with_details_while_the_cluster_keeps_waiting() {
    let env = env().await;
    let id = run_fleets(&env.client, "fails")
        .log_uri("s3://respawn-test/logs")
        .send()
        .await
        .unwrap()
        .job_flow_id()
        .unwrap()
        .to_string();
    let jar = StepConfig::builder()
        .name("custom-jar")
        .action_on_failure(ActionOnFailure::Continue)
        .hadoop_jar_step(
            HadoopJarStepConfig::builder()
                .jar("s3://respawn-test/my.jar")
                .build(),
        )
        .build();
    let steps = vec![
        shell_step("boom", "echo starting; echo 'it went boom' >&2; exit 3"),
        jar,
        shell_step(
            "spark-jar",
            "spark-submit --class Main s3://respawn-test/app.jar",
        ),
    ];
    let ids = add_steps(&env.client, &id, steps).await;

    let step = wait_step(&env.client, &id, &ids[0]).await;
    assert_eq!(step_state(&step), StepState::Failed);
    let details = step.status().unwrap().failure_details().unwrap();
    assert_eq!(details.reason(), Some("The command exited with code 3"));
    assert_eq!(details.message(), Some("it went boom"));
    let log = format!("s3://respawn-test/logs/{id}/steps/{}/stderr", ids[0]);
    assert_eq!(details.log_file(), Some(log.as_str()));
    let stderr_key = format!("logs/{id}/steps/{}/stderr", ids[0]);
    assert!(env.store.head(&stderr_key).await.is_ok());

    let step = wait_step(&env.client, &id, &ids[1]).await;
    assert_eq!(step_state(&step), StepState::Failed);
    let message = step
        .status()
        .unwrap()
        .failure_details()
        .unwrap()
        .message()
        .unwrap();
    assert!(message.contains("only command-runner.jar"), "{message}");
    let step = wait_step(&env.client, &id, &ids[2]).await;
    let message = step
        .status()
        .unwrap()
        .failure_details()
        .unwrap()
        .message()
        .unwrap();
    assert!(message.contains("JAR application"), "{message}");

    wait_cluster(&env.client, &id, ClusterState::Waiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_data_outlives_steps_but_not_its_cluster() {
    let env = env().await;
    let id = start(&env, "hdfs").await;
    let ids = add_steps(
        &env.client,
        &id,
        vec![
            shell_step(
                "write",
                "mkdir -p hdfs:///work/t && echo hi > hdfs:///work/t/part-0",
            ),
            shell_step(
                "read",
                "test \"$(cat hdfs://namenode:8020/work/t/part-0)\" = hi",
            ),
        ],
    )
    .await;
    for step in &ids {
        let step = wait_step(&env.client, &id, step).await;
        assert_eq!(step_state(&step), StepState::Completed, "{step:?}");
    }
    assert!(
        env.work
            .path()
            .join(&id)
            .join("hdfs/work/t/part-0")
            .is_file()
    );
    env.client
        .terminate_job_flows()
        .job_flow_ids(&id)
        .send()
        .await
        .unwrap();
    wait_cluster(&env.client, &id, ClusterState::Terminated).await;
    assert!(!env.work.path().join(&id).exists());

    let other = start(&env, "hdfs-2").await;
    let ids = add_steps(
        &env.client,
        &other,
        vec![shell_step("read", "cat hdfs:///work/t/part-0")],
    )
    .await;
    let step = wait_step(&env.client, &other, &ids[0]).await;
    assert_eq!(step_state(&step), StepState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_cluster_ends_with_instance_failure_and_kills_its_steps() {
    let env = env().await;
    let id = start(&env, "lost").await;
    let pid_file = env.work.path().join("pid");
    env.emr.lose_when_step_starts("stage-long");
    let ids = add_steps(
        &env.client,
        &id,
        vec![
            shell_step(
                "stage-long-1",
                &format!("echo $$ > {}; sleep 30", pid_file.display()),
            ),
            shell_step("stage-after", "true"),
        ],
    )
    .await;
    let cluster = wait_cluster(&env.client, &id, ClusterState::TerminatedWithErrors).await;
    let reason = cluster.status().unwrap().state_change_reason().unwrap();
    assert_eq!(
        reason.code(),
        Some(&ClusterStateChangeReasonCode::InstanceFailure)
    );
    assert!(reason.message().unwrap().contains("Spot"), "{reason:?}");
    assert!(
        cluster
            .status()
            .unwrap()
            .timeline()
            .unwrap()
            .end_date_time()
            .is_some()
    );
    let long = wait_step(&env.client, &id, &ids[0]).await;
    assert_eq!(step_state(&long), StepState::Interrupted);
    let after = wait_step(&env.client, &id, &ids[1]).await;
    assert_eq!(step_state(&after), StepState::Cancelled);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "the step still runs: {stat}"
    );
    let fleets = env
        .client
        .list_instance_fleets()
        .cluster_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        fleets.instance_fleets()[0].status().unwrap().state(),
        Some(&InstanceFleetState::Terminated)
    );

    let refused = env
        .client
        .add_job_flow_steps()
        .job_flow_id(&id)
        .steps(shell_step("late", "true"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("ValidationException"));
    assert_eq!(
        refused.message(),
        Some("A job flow that is shutting down, terminated, or finished may not be modified.")
    );
    assert!(
        !env.emr.lose_cluster(&id),
        "an ended cluster cannot be lost again"
    );

    // The same over the control endpoints.
    let other = start(&env, "lost-2").await;
    let (status, body) = control(&env.emr, "POST", &format!("/_emulator/lose/{other}"));
    assert_eq!((status, &body["lost"]), (200, &serde_json::json!(true)));
    let (_, clusters) = control(&env.emr, "GET", "/_emulator/clusters");
    assert_eq!(clusters[1]["id"], other.as_str());
    assert_eq!(clusters[1]["state"], "TERMINATING");
    assert_eq!(
        control(&env.emr, "POST", "/_emulator/lose/j-NOSUCHCLUSTER").0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_by_the_sdk_and_seen_without_retries() {
    let env = env().await;
    let id = start(&env, "throttled").await;
    env.emr.throttle(2);
    let cluster = cluster_state(&env.client, &id).await;
    assert_eq!(cluster.id(), Some(id.as_str()));
    let described = env
        .emr
        .requests()
        .iter()
        .filter(|r| r.operation == "DescribeCluster")
        .count();
    assert_eq!(described, 3);

    let no_retries = client(&env.emr, RetryConfig::disabled());
    env.emr.throttle(1);
    let error = no_retries
        .describe_cluster()
        .cluster_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ThrottlingException"));
    assert_eq!(error.message(), Some("Rate exceeded"));
    assert!(
        no_retries
            .describe_cluster()
            .cluster_id(&id)
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_refused_naming_the_member() {
    let env = env().await;
    let bad_strategy = InstanceFleetConfig::builder()
        .instance_fleet_type(InstanceFleetType::Master)
        .target_spot_capacity(1)
        .instance_type_configs(
            InstanceTypeConfig::builder()
                .instance_type("m5.xlarge")
                .build(),
        )
        .launch_specifications(
            InstanceFleetProvisioningSpecifications::builder()
                .spot_specification(
                    SpotProvisioningSpecification::builder()
                        .timeout_duration_minutes(10)
                        .timeout_action(SpotProvisioningTimeoutAction::TerminateCluster)
                        .allocation_strategy(SpotProvisioningAllocationStrategy::from("cheapest"))
                        .build(),
                )
                .build(),
        )
        .build();
    let error = run_fleets(&env.client, "bad")
        .instances(
            JobFlowInstancesConfig::builder()
                .instance_fleets(bad_strategy)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ValidationException"));
    let message = error.message().unwrap();
    assert!(
        message.contains("Value 'cheapest' at 'instances.instanceFleets.1.member.launchSpecifications.spotSpecification.allocationStrategy'"),
        "{message}"
    );
    assert!(message.contains("price-capacity-optimized"), "{message}");

    let error = run_fleets(&env.client, "no-role")
        .set_service_role(None)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ValidationException"));
    assert!(
        error
            .message()
            .unwrap()
            .contains("Value null at 'serviceRole'"),
        "{error:?}"
    );

    let error = run_fleets(&env.client, "too-eager")
        .auto_termination_policy(AutoTerminationPolicy::builder().idle_timeout(30).build())
        .send()
        .await
        .unwrap_err();
    assert!(
        error
            .message()
            .unwrap()
            .contains("'autoTerminationPolicy.idleTimeout'")
            && error
                .message()
                .unwrap()
                .contains("greater than or equal to 60"),
        "{error:?}"
    );

    let id = start(&env, "steps").await;
    let mut step = shell_step("x", "true");
    step.action_on_failure = Some(ActionOnFailure::from("EXPLODE"));
    let error = env
        .client
        .add_job_flow_steps()
        .job_flow_id(&id)
        .steps(step)
        .send()
        .await
        .unwrap_err();
    assert!(
        error
            .message()
            .unwrap()
            .contains("'steps.1.member.actionOnFailure'"),
        "{error:?}"
    );
    assert_eq!(
        env.emr.clusters().len(),
        1,
        "no invalid request made a cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_end_on_their_own_when_idle_too_long_or_out_of_steps() {
    let env = env_with(|c| c.idle_timeout_scale = 0.005).await;
    let idle = run_fleets(&env.client, "idle")
        .auto_termination_policy(AutoTerminationPolicy::builder().idle_timeout(60).build())
        .send()
        .await
        .unwrap()
        .job_flow_id()
        .unwrap()
        .to_string();
    let policy = env
        .client
        .get_auto_termination_policy()
        .cluster_id(&idle)
        .send()
        .await
        .unwrap();
    assert_eq!(
        policy.auto_termination_policy().unwrap().idle_timeout(),
        Some(60)
    );
    let cluster = wait_cluster(&env.client, &idle, ClusterState::Terminated).await;
    let reason = cluster.status().unwrap().state_change_reason().unwrap();
    assert_eq!(
        reason.code(),
        Some(&ClusterStateChangeReasonCode::AllStepsCompleted)
    );

    let transient = run_fleets(&env.client, "transient")
        .instances(
            JobFlowInstancesConfig::builder()
                .instance_fleets(
                    InstanceFleetConfig::builder()
                        .instance_fleet_type(InstanceFleetType::Master)
                        .target_on_demand_capacity(1)
                        .instance_type_configs(
                            InstanceTypeConfig::builder()
                                .instance_type("m5.large")
                                .build(),
                        )
                        .build(),
                )
                .keep_job_flow_alive_when_no_steps(false)
                .build(),
        )
        .steps(shell_step("only", "sleep 0.2"))
        .send()
        .await
        .unwrap()
        .job_flow_id()
        .unwrap()
        .to_string();
    wait_cluster(&env.client, &transient, ClusterState::Running).await;
    let cluster = wait_cluster(&env.client, &transient, ClusterState::Terminated).await;
    assert_eq!(cluster.auto_terminate(), Some(true));
    let reason = cluster.status().unwrap().state_change_reason().unwrap();
    assert_eq!(
        reason.code(),
        Some(&ClusterStateChangeReasonCode::AllStepsCompleted)
    );
    assert!(!env.emr.clusters()[1].spot);
    assert_eq!(
        env.emr.clusters()[1].steps,
        [("only".to_string(), "COMPLETED".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_job_flows_cancels_steps_and_ends_by_user_request() {
    let env = env().await;
    let id = start(&env, "terminated").await;
    let ids = add_steps(&env.client, &id, vec![shell_step("long", "sleep 30")]).await;
    wait_cluster(&env.client, &id, ClusterState::Running).await;
    env.client
        .terminate_job_flows()
        .job_flow_ids(&id)
        .send()
        .await
        .unwrap();
    let cluster = cluster_state(&env.client, &id).await;
    assert_eq!(
        cluster.status().unwrap().state(),
        Some(&ClusterState::Terminating)
    );
    let cluster = wait_cluster(&env.client, &id, ClusterState::Terminated).await;
    let reason = cluster.status().unwrap().state_change_reason().unwrap();
    assert_eq!(
        reason.code(),
        Some(&ClusterStateChangeReasonCode::UserRequest)
    );
    assert_eq!(reason.message(), Some("Terminated by user request"));
    let step = wait_step(&env.client, &id, &ids[0]).await;
    assert_eq!(step_state(&step), StepState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_clusters_filters_by_state_and_creation_time_and_pages_by_50() {
    let env = env().await;
    let mut ids = Vec::new();
    for i in 0..53 {
        ids.push(start(&env, &format!("c{i}")).await);
    }
    env.client
        .terminate_job_flows()
        .job_flow_ids(&ids[0])
        .job_flow_ids(&ids[1])
        .send()
        .await
        .unwrap();
    wait_cluster(&env.client, &ids[1], ClusterState::Terminated).await;
    wait_cluster(&env.client, &ids[0], ClusterState::Terminated).await;

    let live = [ClusterState::Starting, ClusterState::Waiting];
    let first = env
        .client
        .list_clusters()
        .set_cluster_states(Some(live.to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(first.clusters().len(), 50);
    assert_eq!(
        first.clusters()[0].id(),
        Some(ids[52].as_str()),
        "newest first"
    );
    let marker = first.marker().unwrap();
    let second = env
        .client
        .list_clusters()
        .set_cluster_states(Some(live.to_vec()))
        .marker(marker)
        .send()
        .await
        .unwrap();
    assert_eq!(second.clusters().len(), 1);
    assert_eq!(second.clusters()[0].id(), Some(ids[2].as_str()));
    assert!(second.marker().is_none());

    let ended = env
        .client
        .list_clusters()
        .cluster_states(ClusterState::Terminated)
        .send()
        .await
        .unwrap();
    let ended: Vec<_> = ended.clusters().iter().map(|c| c.id().unwrap()).collect();
    assert_eq!(ended, [ids[1].as_str(), ids[0].as_str()]);

    let future = aws_sdk_emr::primitives::DateTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 60,
    );
    let none = env
        .client
        .list_clusters()
        .created_after(future)
        .send()
        .await
        .unwrap();
    assert!(none.clusters().is_empty());
    let all = env
        .client
        .list_clusters()
        .created_before(future)
        .send()
        .await
        .unwrap();
    assert_eq!(all.clusters().len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_instances_tells_each_fleets_instances_of_its_first_type_over_the_clusters_life() {
    use aws_sdk_emr::types::{InstanceState, MarketType};
    let env = env().await;
    let id = start(&env, "instances").await;
    let list = |states: &[InstanceState], fleet: Option<InstanceFleetType>| {
        env.client
            .list_instances()
            .cluster_id(&id)
            .set_instance_states((!states.is_empty()).then(|| states.to_vec()))
            .set_instance_fleet_type(fleet)
            .send()
    };
    let starting = list(&[], None).await.unwrap();
    assert!(
        starting
            .instances()
            .iter()
            .all(|i| i.status().unwrap().state() == Some(&InstanceState::Provisioning))
    );

    wait_cluster(&env.client, &id, ClusterState::Waiting).await;
    let fleets = env
        .client
        .list_instance_fleets()
        .cluster_id(&id)
        .send()
        .await
        .unwrap();
    let fleet_of = |kind: InstanceFleetType| {
        fleets
            .instance_fleets()
            .iter()
            .find(|f| f.instance_fleet_type() == Some(&kind))
            .and_then(|f| f.id())
            .unwrap()
            .to_string()
    };
    let running = list(&[InstanceState::Running], None).await.unwrap();
    let instances = running.instances();
    // MASTER: 1 m5.xlarge; CORE: 2 of its first type, m5.xlarge (not r5.xlarge); all spot.
    assert_eq!(instances.len(), 3, "{instances:?}");
    for instance in instances {
        assert_eq!(instance.instance_type(), Some("m5.xlarge"));
        assert_eq!(instance.market(), Some(&MarketType::Spot));
        assert!(instance.id().unwrap().starts_with("ci-"));
        let ec2 = instance.ec2_instance_id().unwrap();
        assert!(ec2.starts_with("i-") && ec2.len() == 19, "{ec2}");
        let timeline = instance.status().unwrap().timeline().unwrap();
        assert!(timeline.ready_date_time().is_some());
        assert!(timeline.end_date_time().is_none());
    }
    let master = fleet_of(InstanceFleetType::Master);
    let core = fleet_of(InstanceFleetType::Core);
    let in_fleet = |fleet: &str| {
        instances
            .iter()
            .filter(|i| i.instance_fleet_id() == Some(fleet))
            .count()
    };
    assert_eq!((in_fleet(&master), in_fleet(&core)), (1, 2));
    let core_only = list(&[], Some(InstanceFleetType::Core)).await.unwrap();
    assert_eq!(core_only.instances().len(), 2);
    let none_ended = list(&[InstanceState::Terminated], None).await.unwrap();
    assert!(none_ended.instances().is_empty());

    assert!(env.emr.lose_cluster(&id));
    let cluster = wait_cluster(&env.client, &id, ClusterState::TerminatedWithErrors).await;
    let ended = cluster
        .status()
        .unwrap()
        .timeline()
        .unwrap()
        .end_date_time();
    let gone = list(&[InstanceState::Terminated], None).await.unwrap();
    assert_eq!(gone.instances().len(), 3);
    for instance in gone.instances() {
        let status = instance.status().unwrap();
        assert_eq!(status.timeline().unwrap().end_date_time(), ended);
        assert_eq!(
            status
                .state_change_reason()
                .unwrap()
                .code()
                .map(|c| c.as_str()),
            Some("INSTANCE_FAILURE")
        );
    }
    let views = env.emr.clusters();
    let kinds: Vec<(&str, &str, &str)> = views[0]
        .instances
        .iter()
        .map(|i| {
            (
                i.fleet_type.as_str(),
                i.instance_type.as_str(),
                i.market.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("MASTER", "m5.xlarge", "SPOT"),
            ("CORE", "m5.xlarge", "SPOT"),
            ("CORE", "m5.xlarge", "SPOT")
        ]
    );

    let refused = env
        .client
        .list_instances()
        .cluster_id("j-NOSUCHCLUSTER")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("InvalidRequestException"));
}
