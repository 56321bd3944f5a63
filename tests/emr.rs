//! The e-commerce workflow in EMR mode, end to end: the real `respawn` binary against the
//! EMR emulator (EMR's JSON wire protocol, steps run as local programs) and the S3 test
//! server, both on loopback. Every run compares its published outputs byte for byte with
//! a run of the same stages on a local cluster without faults.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::s3_server::BUCKET;
use support::{Run, repo};

const BATCH: &str = "2019-10-01";
const STORE_PREFIX: &str = "team";

/// The EMR e-commerce workflow with the test bucket, a small dataset, and a pause before
/// every stage so that tests can act while a step runs.
fn emr_yaml() -> String {
    let text = std::fs::read_to_string(repo().join("workflows/ecommerce-emr.yaml"))
        .expect("the EMR e-commerce workflow");
    text.replace("my-respawn-bucket", BUCKET)
        .replace("--events 200000", "--events 20000")
        .replace("    deadline: 10h\n", "")
        .replace("    run: spark-submit", "    run: sleep 1; spark-submit")
}

/// The same stages on a local cluster: the reference outputs.
fn local_yaml() -> String {
    let text = std::fs::read_to_string(repo().join("workflows/ecommerce-sessions.yaml"))
        .expect("the e-commerce workflow");
    text.replace(
        "{{ workflow_dir }}/../examples",
        &format!("{}/examples", repo().display()),
    )
    .replace("--events 200000", "--events 20000")
}

/// Published outputs of `workflow` in a store's directory.
fn outputs(root: &Path, workflow: &str) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    support::walk(root, root, &mut all);
    support::published(all, workflow)
}

/// The outputs of the local-cluster run without faults, computed once.
fn reference() -> &'static BTreeMap<String, Vec<u8>> {
    static REFERENCE: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.yaml");
        std::fs::write(&file, local_yaml()).unwrap();
        let store = dir.path().join("store");
        let scratch = dir.path().join("scratch").display().to_string();
        support::respawn_env(
            [
                "run",
                &file.display().to_string(),
                "--batch",
                BATCH,
                "--store",
                &store.display().to_string(),
            ],
            &[("RESPAWN_SCRATCH", scratch)],
            &[],
        )
        .success();
        let found = outputs(&store, "ecommerce-sessions");
        assert!(found.keys().any(|k| k.starts_with("report/")), "{found:?}");
        found
    })
}

use support::emulator::Lab;

/// The lab of these tests: the stage programs of `examples/stages/` under `code/`.
impl Lab {
    fn new() -> Lab {
        Lab::with_workflow(emr_yaml())
    }

    fn with_workflow(workflow: String) -> Lab {
        let keep = |path: &Path| path.extension().is_some_and(|e| e == "py");
        Lab::start(&workflow, &repo().join("examples/stages"), keep, |_| {})
    }

    fn run(&self) -> Run {
        self.respawn(&["run", &self.file, "--batch", BATCH])
    }

    fn spawn(&self) -> Child {
        let mut command = self.run_command(BATCH);
        command
            .args(["--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.spawn().expect("respawn starts")
    }

    fn assert_same_outputs(&self) {
        let got = outputs(&self.store_root(), "ecommerce-emr");
        let want = reference();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "the same files are published"
        );
        for (key, bytes) in want {
            assert!(
                got[key] == *bytes,
                "{key} differs from the local reference run"
            );
        }
    }

    /// Keys of work-tables left in the store.
    fn work_left(&self) -> Vec<String> {
        let mut all = BTreeMap::new();
        support::walk(&self.store_root(), &self.store_root(), &mut all);
        all.into_keys().filter(|k| k.contains("/work/")).collect()
    }

    fn cost_json(&self) -> Value {
        let run = self.respawn(&["cost", &self.file, "--format", "json"]);
        run.success();
        run.json()
    }

    /// The run's stored events of kind `kind`, in order.
    fn stored_events(&self, kind: &str) -> Vec<Value> {
        let mut all = BTreeMap::new();
        support::walk(&self.store_root(), &self.store_root(), &mut all);
        let mut events: Vec<(u64, Value)> = all
            .iter()
            .filter(|(key, _)| key.contains("/events/"))
            .map(|(key, bytes)| {
                let seq = key.rsplit('/').next().unwrap().trim_end_matches(".json");
                (seq.parse().unwrap(), serde_json::from_slice(bytes).unwrap())
            })
            .filter(|(_, event): &(u64, Value)| event["event"] == kind)
            .collect();
        events.sort_by_key(|(seq, _)| *seq);
        events.into_iter().map(|(_, event)| event).collect()
    }

    /// The run record as the ledger stored it (`run.json`; one run in the store).
    fn stored_record(&self) -> Value {
        let mut all = BTreeMap::new();
        support::walk(&self.store_root(), &self.store_root(), &mut all);
        let (_, bytes) = (all.iter())
            .find(|(key, _)| key.ends_with("/run.json"))
            .expect("a run.json");
        serde_json::from_slice(bytes).unwrap()
    }

    fn run_record(&self) -> Value {
        let run = self.respawn(&["status", &self.file, "--format", "json"]);
        run.success();
        run.json()
    }
}

/// Waits (at most 60 s) until `found` returns something.
fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn follow(mut child: Child) -> (i32, Vec<Value>, String) {
    let stdout = child.stdout.take().unwrap();
    let events: Vec<Value> = BufReader::new(stdout)
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        events,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_emr_run_publishes_what_a_local_run_does_and_leaves_no_cluster_nor_work_table() {
    let lab = Lab::new();
    lab.run().success();
    lab.assert_same_outputs();
    let clusters = lab.emr.clusters();
    assert_eq!(clusters.len(), 1, "one cluster for the run");
    assert!(clusters[0].spot, "the first cluster is spot");
    lab.assert_every_cluster_terminated();
    assert_eq!(
        lab.work_left(),
        Vec::<String>::new(),
        "work-tables are cleaned"
    );
    for stage in ["ingest", "purchases", "sessions", "report"] {
        assert_eq!(lab.steps_of(stage), 1, "{stage} ran once");
    }
    // The run record keeps the instance-hours of the spot cluster.
    let status = lab.run_record();
    assert_eq!(status["status"], "succeeded", "{status}");
}

#[test]
fn work_tables_written_by_steps_are_tagged_for_the_lifecycle_rule_and_nothing_else_is() {
    let lab = Lab::with_workflow(emr_yaml().replace("cleanup: on-success", "cleanup: never"));
    lab.run().success();
    let mut objects = BTreeMap::new();
    support::walk(&lab.store_root(), &lab.store_root(), &mut objects);
    let tagged = |key: &str| lab.s3().tags_of(BUCKET, &format!("{STORE_PREFIX}/{key}"));
    let work = vec![("respawn:kind".to_string(), "work".to_string())];
    let step_output = objects
        .keys()
        .filter(|k| k.contains("/work/") && !k.ends_with("/COMMIT"))
        .count();
    assert!(step_output > 0, "the steps wrote work tables: {objects:?}");
    for key in objects.keys() {
        if key.contains("/runs/") && key.contains("/work/") {
            assert_eq!(tagged(key), work, "{key} is work-table data");
        } else {
            assert_eq!(tagged(key), Vec::new(), "{key} is not work-table data");
        }
    }
}

#[test]
fn the_requests_carry_fleets_allocation_strategy_auto_termination_tags_and_step_names() {
    let lab = Lab::new();
    lab.run().success();
    let requests = lab.emr.requests();
    let run_job_flow = requests
        .iter()
        .find(|r| r.operation == "RunJobFlow")
        .expect("a RunJobFlow request");
    let body = &run_job_flow.body;
    let fleets = body["Instances"]["InstanceFleets"].as_array().unwrap();
    assert_eq!(fleets.len(), 2, "primary and core fleets: {body}");
    for fleet in fleets {
        let types = fleet["InstanceTypeConfigs"].as_array().unwrap();
        assert!(
            types.len() >= 2,
            "several instance types per fleet: {fleet}"
        );
        let spot = &fleet["LaunchSpecifications"]["SpotSpecification"];
        assert_eq!(spot["AllocationStrategy"], "price-capacity-optimized");
        assert_eq!(spot["TimeoutAction"], "TERMINATE_CLUSTER");
        assert_eq!(fleet["TargetOnDemandCapacity"], 0);
    }
    assert_eq!(fleets[0]["InstanceFleetType"], "MASTER");
    assert_eq!(fleets[0]["TargetSpotCapacity"], 1);
    assert_eq!(fleets[1]["TargetSpotCapacity"], 4);
    assert_eq!(body["AutoTerminationPolicy"]["IdleTimeout"], 1800);
    assert_eq!(body["Instances"]["KeepJobFlowAliveWhenNoSteps"], true);
    assert_eq!(body["ReleaseLabel"], "emr-7.5.0");
    assert_eq!(body["ServiceRole"], "respawn-emr-service");
    assert_eq!(body["JobFlowRole"], "respawn-emr-nodes");
    let tags: BTreeMap<String, String> = body["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().to_string(),
                t["Value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(tags["respawn:workflow"], "ecommerce-emr");
    assert_eq!(tags["respawn:batch"], BATCH);
    let run_id = tags["respawn:run"].clone();
    assert_eq!(
        tags["respawn:store"],
        format!("s3://{BUCKET}/{STORE_PREFIX}/")
    );
    let steps: Vec<&Value> = requests
        .iter()
        .filter(|r| r.operation == "AddJobFlowSteps")
        .flat_map(|r| r.body["Steps"].as_array().unwrap().iter())
        .collect();
    assert_eq!(steps.len(), 4, "one step per stage");
    for step in steps {
        let name = step["Name"].as_str().unwrap();
        let parts: Vec<&str> = name.split(':').collect();
        assert_eq!(parts.len(), 4, "{name}");
        assert_eq!((parts[0], parts[1]), ("respawn", run_id.as_str()), "{name}");
        assert!(parts[3].parse::<u32>().is_ok(), "{name}");
        assert_eq!(step["ActionOnFailure"], "CONTINUE");
        assert_eq!(step["HadoopJarStep"]["Jar"], "command-runner.jar");
        let args = step["HadoopJarStep"]["Args"].as_array().unwrap();
        assert_eq!(
            (&args[0], &args[1]),
            (&Value::from("bash"), &Value::from("-c"))
        );
        assert!(args[2].as_str().unwrap().contains("spark-submit"), "{step}");
    }
}

#[test]
fn two_spot_losses_bring_an_on_demand_cluster_and_checkpoints_are_not_run_again() {
    let lab = Lab::new();
    let (run, losses) = support::emulator::lose_spot_clusters_during(
        &lab.emr,
        "sessions",
        2,
        Duration::from_millis(30),
        || lab.run(),
    );
    run.success();
    assert_eq!(losses.len(), 2, "two spot clusters were lost");
    let clusters = lab.emr.clusters();
    assert_eq!(clusters.len(), 3, "three clusters in all");
    assert!(clusters.iter().filter(|c| c.spot).count() == 2);
    let third = clusters.iter().find(|c| !losses.contains(&c.id)).unwrap();
    assert!(!third.spot, "the third cluster is on-demand");
    lab.assert_every_cluster_terminated();
    // ingest and purchases were committed before the losses: they never ran again.
    assert_eq!(lab.steps_of("ingest"), 1);
    assert_eq!(lab.steps_of("purchases"), 1);
    assert_eq!(lab.steps_of("sessions"), 3);
    lab.assert_same_outputs();
    assert_eq!(lab.work_left(), Vec::<String>::new());
    let status = lab.run_record();
    assert_eq!(
        status["interruptions"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );
    // Every cluster, lost or released, is priced from the instances EMR listed for it;
    // this workflow has no `cost.instances`, so each type is at the mean instance price.
    let cost = lab.cost_json();
    let generations = cost["generations"].as_array().unwrap();
    let markets: Vec<&str> = generations
        .iter()
        .map(|g| g["instances"][1]["market"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(markets, ["spot", "spot", "on-demand"], "{cost}");
    for generation in generations {
        let core = &generation["instances"][1];
        assert_eq!(core["type"], "r5.2xlarge", "{generation}");
        assert_eq!(core["count"], 4, "{generation}");
        let source = core["source"].as_str().unwrap();
        assert!(
            source.starts_with(
                "r5.2xlarge has no price in cost.instances, so the mean instance price"
            ),
            "{source}"
        );
    }
}

#[test]
fn a_restarted_orchestrator_adopts_its_cluster_and_commits_the_step_that_finished_meanwhile() {
    let lab = Lab::new();
    let mut child = lab.spawn();
    // Kill the orchestrator while `sessions` runs on the cluster.
    wait_for("the sessions step to run", || {
        lab.emr
            .clusters()
            .iter()
            .any(|c| {
                c.steps
                    .iter()
                    .any(|(n, s)| n.contains(":sessions:") && s == "RUNNING")
            })
            .then_some(())
    });
    child.kill().unwrap();
    let _ = child.wait();
    // The step goes on without it, and completes.
    wait_for("the sessions step to complete", || {
        lab.emr
            .clusters()
            .iter()
            .any(|c| {
                c.steps
                    .iter()
                    .any(|(n, s)| n.contains(":sessions:") && s == "COMPLETED")
            })
            .then_some(())
    });
    let (code, events, stderr) = follow(lab.spawn());
    assert_eq!(code, 0, "the resumed run succeeds: {stderr}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "swept" && e["message"].as_str().unwrap().contains("adopting")),
        "the cluster was adopted: {events:?}"
    );
    assert_eq!(
        lab.emr.clusters().len(),
        1,
        "exactly one cluster for the run: {events:#?}"
    );
    assert_eq!(
        lab.steps_of("sessions"),
        1,
        "the finished step was not run again"
    );
    assert_eq!(lab.steps_of("ingest"), 1);
    lab.assert_every_cluster_terminated();
    lab.assert_same_outputs();
}

#[test]
fn throttled_emr_calls_are_retried_and_the_run_completes() {
    let lab = Lab::new();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                // Bursts of refusals, as EMR gives when an account's call rate is exceeded
                // (a refusal for every call in a row would be an outage, not throttling).
                lab.emr.throttle(3);
                std::thread::sleep(Duration::from_millis(2500));
            }
        });
        let run = lab.run();
        done.store(true, Ordering::Relaxed);
        run.success();
    });
    assert!(
        lab.emr.throttled() >= 8,
        "only {} requests were throttled",
        lab.emr.throttled()
    );
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
}

#[test]
fn respawn_clusters_finds_the_orphan_of_a_dead_orchestrator_and_terminates_it() {
    let lab = Lab::new();
    let mut child = lab.spawn();
    wait_for("a cluster with a running step", || {
        lab.emr
            .clusters()
            .iter()
            .any(|c| c.steps.iter().any(|(_, s)| s == "RUNNING"))
            .then_some(())
    });
    let listed = lab.respawn(&["clusters", "--format", "json"]);
    listed.success();
    let listed = listed.json();
    assert_eq!(listed["clusters"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed["clusters"][0]["orphan"],
        Value::Null,
        "in use: {listed}"
    );
    child.kill().unwrap();
    let _ = child.wait();
    let orphans = lab.respawn(&["clusters", "--orphans", "--terminate", "--format", "json"]);
    orphans.success();
    let orphans = orphans.json();
    let found = orphans["clusters"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{orphans}");
    assert_eq!(found[0]["terminated"], true);
    // The orchestrator was killed on this machine: its lease is left, its process gone.
    assert!(
        found[0]["orphan"].as_str().unwrap().contains("is gone"),
        "{orphans}"
    );
    wait_for("the orphan to end", || {
        lab.emr
            .clusters()
            .iter()
            .all(|c| c.state.starts_with("TERMINAT"))
            .then_some(())
    });
}

/// Prices per instance-hour of the types the emulator provisions: (spot, on-demand, EMR fee).
const PRICES: [(&str, f64, f64, f64); 2] = [
    ("m5.xlarge", 0.07, 0.192, 0.048),
    ("r5.2xlarge", 0.15, 0.504, 0.126),
];

/// The EMR workflow with [`PRICES`] as its `cost.instances`.
fn priced_yaml() -> String {
    let mut table = String::from("  instances:\n");
    for (kind, spot, on_demand, fee) in PRICES {
        table.push_str(&format!(
            "    {kind}: {{spot: {spot}, on_demand: {on_demand}, emr_fee: {fee}}}\n"
        ));
    }
    emr_yaml().replace(
        "  on_demand_per_hour: 12.00\n",
        &format!("  on_demand_per_hour: 12.00\n{table}"),
    )
}

#[test]
fn an_emr_run_costs_each_fleets_instance_type_at_its_own_price_plus_the_emr_fee() {
    let prices = PRICES;
    let lab = Lab::with_workflow(priced_yaml());
    let started = Instant::now();
    lab.run().success();
    let wall_hours = started.elapsed().as_secs_f64() / 3600.0;

    // The emulator provisions each fleet's first type: 1 m5.xlarge and 4 r5.2xlarge, spot.
    let clusters = lab.emr.clusters();
    assert_eq!(clusters.len(), 1);
    let provisioned: Vec<(&str, &str, &str)> = clusters[0]
        .instances
        .iter()
        .map(|i| {
            (
                i.fleet.as_str(),
                i.instance_type.as_str(),
                i.market.as_str(),
            )
        })
        .collect();
    let core = ("core", "r5.2xlarge", "SPOT");
    assert_eq!(
        provisioned,
        [("primary", "m5.xlarge", "SPOT"), core, core, core, core]
    );

    // The run recorded those instances and their hours when it released the cluster.
    let released = lab.stored_events("cluster-released");
    assert_eq!(released.len(), 1, "{released:?}");
    let recorded = released[0]["instances"].as_array().unwrap().clone();
    let kinds: Vec<(&str, &str, &str, &str, u64)> = recorded
        .iter()
        .map(|k| {
            (
                k["fleet"].as_str().unwrap(),
                k["fleet_type"].as_str().unwrap(),
                k["type"].as_str().unwrap(),
                k["market"].as_str().unwrap(),
                k["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("primary", "MASTER", "m5.xlarge", "spot", 1),
            ("core", "CORE", "r5.2xlarge", "spot", 4)
        ]
    );
    let hours: Vec<f64> = recorded
        .iter()
        .map(|k| k["instance_hours"].as_f64().unwrap())
        .collect();
    // Every instance lives the cluster's life: the core's hours are 4 times the primary's,
    // and no instance ran longer than the test.
    assert!(hours[0] > 0.0 && hours[0] <= wall_hours, "{hours:?}");
    assert!((hours[1] - 4.0 * hours[0]).abs() < 5e-6, "{hours:?}");

    // By hand: each kind's recorded hours times its spot price plus the EMR fee.
    let by_hand: Vec<f64> = hours
        .iter()
        .zip(prices)
        .map(|(h, (_, spot, _, fee))| h * (spot + fee))
        .collect();
    let cost = lab.cost_json();
    let generation = &cost["generations"][0];
    let priced = generation["instances"].as_array().unwrap();
    assert_eq!(priced.len(), 2, "{cost}");
    for ((item, want), (kind, spot, _, fee)) in priced.iter().zip(&by_hand).zip(prices) {
        assert_eq!(item["type"], kind);
        assert_eq!(item["market"], "spot");
        let got = item["cost"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{item} vs {want}");
        assert!((item["price_per_hour"].as_f64().unwrap() - (spot + fee)).abs() < 1e-12);
        assert_eq!(
            item["source"],
            format!("cost.instances.{kind} spot {spot} + emr_fee {fee} USD/h")
        );
    }
    let total: f64 = by_hand.iter().sum();
    assert!(
        (generation["cost"].as_f64().unwrap() - total).abs() < 1e-12,
        "{cost}"
    );
    assert!(
        (cost["cost"].as_f64().unwrap() - cost["storage_cost"].as_f64().unwrap() - total).abs()
            < 1e-12
    );
    assert_eq!(
        generation["instance_hours"].as_f64().unwrap(),
        released[0]["instance_hours"].as_f64().unwrap()
    );

    // All on-demand: the failure-free hours at what the listed instance-hours cost an hour
    // at on-demand prices plus the EMR fee (this cluster's instance-hours per type, each at
    // its on-demand price, over its hours).
    let cluster_hours = generation["hours"].as_f64().unwrap();
    let on_demand_per_hour: f64 = hours
        .iter()
        .zip(prices)
        .map(|(h, (_, _, on_demand, fee))| h * (on_demand + fee))
        .sum::<f64>()
        / cluster_hours;
    let on_demand_hours = cost["on_demand_hours"].as_f64().unwrap();
    assert!(
        (cost["on_demand_cost"].as_f64().unwrap() - on_demand_hours * on_demand_per_hour).abs()
            < 1e-9,
        "{cost}"
    );
    let source = cost["on_demand_source"].as_str().unwrap();
    assert!(
        source.starts_with("the instances EMR listed at on-demand prices")
            && source.contains("(cost.instances.r5.2xlarge on_demand 0.504 + emr_fee 0.126 USD/h)"),
        "{source}"
    );
    // Checkpoint writes are wasted at the cluster's own cost per hour, over its 2 slots.
    let writes = &cost["waste"]["checkpoint_writes"];
    assert!(writes["count"].as_u64().unwrap() > 0, "{cost}");
    let per_hour = total / cluster_hours;
    assert!(
        (writes["cost"].as_f64().unwrap() - writes["hours"].as_f64().unwrap() * per_hour / 2.0)
            .abs()
            < 1e-9,
        "{cost}"
    );
    assert!(
        writes["source"]
            .as_str()
            .unwrap()
            .starts_with("cluster 1's cost / its hours"),
        "{cost}"
    );

    // The report's cost panel shows the same breakdown.
    let page = lab.ws.path("report.html");
    lab.respawn(&["report", &lab.file, "-o", &page.display().to_string()])
        .success();
    // The page escapes `/` as HTML does for every name it shows.
    let html = std::fs::read_to_string(&page)
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(html.contains("core: 4 x r5.2xlarge (spot)"), "{html}");
    assert!(html.contains("cost.instances.r5.2xlarge spot 0.15 + emr_fee 0.126 USD/h"));
}

#[test]
fn a_cluster_lost_while_it_starts_is_priced_from_the_instances_it_had() {
    let lab = Lab::with_workflow(priced_yaml());
    let done = AtomicBool::new(false);
    let lost = std::thread::scope(|scope| {
        let loser = scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Some(first) = lab.emr.clusters().first()
                    && first.state == "STARTING"
                    && lab.emr.lose_cluster(&first.id)
                {
                    return Some(first.id.clone());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        });
        let run = lab.run();
        done.store(true, Ordering::Relaxed);
        run.success();
        loser.join().unwrap()
    });
    assert!(lost.is_some(), "the first cluster was lost while starting");
    let clusters = lab.emr.clusters();
    assert_eq!(clusters.len(), 2, "a second cluster ran the stages");
    let cost = lab.cost_json();
    let first = &cost["generations"][0];
    assert_eq!(first["provisioning_hours"], first["hours"], "{first}");
    let instances = first["instances"].as_array().unwrap();
    let kinds: Vec<(&str, u64)> = instances
        .iter()
        .map(|i| (i["type"].as_str().unwrap(), i["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("m5.xlarge", 1), ("r5.2xlarge", 4)], "{first}");
    let by_hand: f64 = instances
        .iter()
        .zip(PRICES)
        .map(|(i, (_, spot, _, fee))| i["instance_hours"].as_f64().unwrap() * (spot + fee))
        .sum();
    assert!(by_hand > 0.0, "{first}");
    assert!(
        (first["cost"].as_f64().unwrap() - by_hand).abs() < 1e-12,
        "{first}"
    );
}

/// The EMR workflow reading spot notices from `queue`, with EC2's warning shortened to
/// `lead`.
fn notice_yaml(queue: &str, lead: &str) -> String {
    emr_yaml().replacen(
        "  emr:\n",
        &format!("  notice: {lead}\n  emr:\n    notice_queue: {queue}\n"),
        1,
    )
}

/// Someone else's instance, and a message that is no EC2 event at all.
const FOREIGN: &str = r#"{"version":"0","id":"f","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012","time":"2026-12-06T12:00:00Z","region":"us-east-1","resources":[],"detail":{"instance-id":"i-0000000000000000f","instance-action":"terminate"}}"#;
const MALFORMED: &str = "hello from another team's producer";

#[test]
fn a_spot_warning_on_the_queue_brings_the_replacement_before_the_loss_and_nothing_is_lost() {
    let lab = Lab::new();
    let queue = lab.emr.create_queue("respawn-notices");
    std::fs::write(&lab.file, notice_yaml(&queue, "4s")).unwrap();
    assert!(lab.emr.send_message(&queue, FOREIGN));
    assert!(lab.emr.send_message(&queue, MALFORMED));
    let child = lab.spawn();
    // EC2 reclaims the spot cluster 4 s after it warns, while `sessions` runs.
    let warned = wait_for("a running sessions step", || {
        lab.emr
            .clusters()
            .into_iter()
            .find(|c| {
                c.spot
                    && c.steps
                        .iter()
                        .any(|(name, state)| name.contains(":sessions:") && state == "RUNNING")
            })
            .map(|c| (c.id.clone(), lab.emr.reclaim(&c.id, Duration::from_secs(4))))
    });
    let (code, events, stderr) = follow(child);
    assert_eq!(code, 0, "{stderr}");
    // EC2 recommends a rebalance, then warns: at most one notice of each kind, in order.
    let notices: Vec<&Value> = events.iter().filter(|e| e["event"] == "notice").collect();
    let kinds: Vec<&str> = notices
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds == ["interruption"] || kinds == ["rebalance", "interruption"],
        "{notices:?}\n{stderr}"
    );
    let notice = *notices.last().unwrap();
    let mut named: Vec<String> = notice["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    named.sort();
    let mut reclaimed = warned.1.clone();
    reclaimed.sort();
    assert_eq!(named, reclaimed, "the notice names the warned instances");
    let lead = notice["lead_s"].as_f64().unwrap();
    assert!(
        (2.0..=4.0).contains(&lead),
        "the lead is what is left of 4 s: {notice}"
    );
    let generation = notice["generation"].as_u64().unwrap();
    let at = notice["elapsed_s"].as_f64().unwrap();
    let after: Vec<&Value> = events
        .iter()
        .skip_while(|e| e["event"] != "notice" || e["kind"] != "interruption")
        .collect();
    let provision = after
        .iter()
        .find(|e| e["event"] == "provision")
        .expect("a replacement asked for after the notice");
    assert_eq!(provision["generation"].as_u64(), Some(generation + 1));
    let asked = provision["elapsed_s"].as_f64().unwrap();
    assert!(asked - at <= 10.0, "{notice} then {provision}");
    println!("replacement asked for {:.3} s after the notice", asked - at);
    let lost = after
        .iter()
        .position(|e| e["event"] == "cluster-lost" && e["generation"] == generation)
        .expect("the warned cluster was lost");
    assert!(
        after[..lost].iter().any(|e| e["event"] == "provision"),
        "the replacement was asked for before the loss"
    );
    assert!(
        !after[..lost]
            .iter()
            .any(|e| e["event"] == "launch" && e["generation"] == generation),
        "nothing was launched on the doomed cluster"
    );
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
    assert_eq!(lab.work_left(), Vec::<String>::new());
    assert_eq!(
        lab.emr.clusters().len(),
        2,
        "the doomed cluster and its replacement"
    );
    // Others' messages stay on the queue; the run's own warnings were taken off it.
    let left = lab.emr.queue_messages(&queue);
    assert!(left.iter().any(|m| m == FOREIGN), "{left:?}");
    assert!(left.iter().any(|m| m == MALFORMED), "{left:?}");
    for instance in &warned.1 {
        assert!(
            !left
                .iter()
                .any(|m| m.contains(instance) && m.contains("Interruption Warning")),
            "the warning for {instance} was deleted: {left:?}"
        );
    }
    assert!(stderr.contains("is left there: not JSON"), "{stderr}");
}

#[test]
fn a_notice_queue_that_cannot_be_read_leaves_the_run_as_it_was_without_notices() {
    let lab = Lab::new();
    let missing = format!("{}/123456789012/no-such-queue", lab.emr.endpoint());
    std::fs::write(&lab.file, notice_yaml(&missing, "2m")).unwrap();
    let (run, losses) = support::emulator::lose_spot_clusters_during(
        &lab.emr,
        "sessions",
        1,
        Duration::from_millis(30),
        || lab.run(),
    );
    run.success();
    assert_eq!(losses.len(), 1);
    assert!(
        run.stderr.contains("cannot read the notice queue")
            && run.stderr.contains("QueueDoesNotExist"),
        "{}",
        run.stderr
    );
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
}

#[test]
fn a_rebalance_recommendation_no_loss_follows_is_noted_and_asks_for_no_new_cluster() {
    let lab = Lab::new();
    let queue = lab.emr.create_queue("respawn-notices");
    std::fs::write(&lab.file, notice_yaml(&queue, "2m")).unwrap();
    let child = lab.spawn();
    let warned = wait_for("a running sessions step", || {
        lab.emr
            .clusters()
            .into_iter()
            .find(|c| {
                c.steps
                    .iter()
                    .any(|(name, state)| name.contains(":sessions:") && state == "RUNNING")
            })
            .map(|c| lab.emr.recommend_rebalance(&c.id))
    });
    assert!(!warned.is_empty());
    let (code, events, stderr) = follow(child);
    assert_eq!(code, 0, "{stderr}");
    let notices: Vec<&Value> = events.iter().filter(|e| e["event"] == "notice").collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["kind"], "rebalance");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "provision").count(),
        1,
        "no replacement is asked for on a rebalance recommendation"
    );
    assert_eq!(lab.emr.clusters().len(), 1);
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
    assert!(
        lab.emr.queue_messages(&queue).is_empty(),
        "the run's recommendations were deleted"
    );
}

#[test]
fn checks_run_as_steps_of_their_own_and_a_refused_output_is_neither_committed_nor_published() {
    let sessions = "    output_size: 1GB\n";
    let checks = "    output_size: 1GB\n    checks:\n      - {name: present, run: 'test -n {{ output }}'}\n      - {name: amounts, run: 'echo refusing {{ output }}; exit 3'}\n";
    assert!(emr_yaml().contains(sessions));
    let lab = Lab::with_workflow(emr_yaml().replacen(sessions, checks, 1));
    let run = lab.run();
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("its check `amounts` refused"),
        "{}",
        run.stderr
    );
    let steps: Vec<String> = (lab.emr.clusters().iter())
        .flat_map(|c| c.steps.iter().map(|(name, _)| name.clone()))
        .collect();
    let named = |suffix: &str| steps.iter().filter(|n| n.ends_with(suffix)).count();
    assert_eq!(named(":sessions.check.present:1"), 1, "{steps:?}");
    assert_eq!(named(":sessions.check.amounts:1"), 1, "{steps:?}");
    assert_eq!(
        lab.steps_of("sessions"),
        1,
        "a refused output is not retried"
    );
    assert_eq!(lab.steps_of("report"), 0, "nothing that needs it runs");
    let checks = lab.stored_events("check");
    let codes: Vec<(&str, i64)> = (checks.iter())
        .map(|e| (e["check"].as_str().unwrap(), e["code"].as_i64().unwrap()))
        .collect();
    assert_eq!(codes.len(), 2, "{checks:?}");
    assert_eq!(codes[0], ("present", 0));
    assert!(codes[1].0 == "amounts" && codes[1].1 != 0, "{codes:?}");
    let left = lab.work_left();
    assert!(
        !left
            .iter()
            .any(|k| k.contains("/work/sessions/") && k.ends_with("/COMMIT")),
        "{left:?}"
    );
    assert!(outputs(&lab.store_root(), "ecommerce-emr").is_empty());
    lab.assert_every_cluster_terminated();
}

/// The EMR workflow with a spot task fleet of `task` nodes beside on-demand primary and
/// core, and no retries: a reclaimed node must not be charged to them.
fn task_fleet_yaml(task: u32) -> String {
    emr_yaml()
        .replace("retries: 2\n", "retries: 0\n")
        .replacen(
            "    spot_allocation_strategy:",
            &format!(
                "    task:\n      instance_types: [r5.2xlarge, r5a.2xlarge]\n      capacity: {task}\n    spot_allocation_strategy:"
            ),
            1,
        )
}

/// Waits for a RUNNING `sessions` step and calls `act` with its cluster's id.
fn while_sessions_runs<T>(lab: &Lab, act: impl Fn(&str) -> T) -> T {
    wait_for("a running sessions step", || {
        lab.emr
            .clusters()
            .into_iter()
            .find(|c| {
                c.steps
                    .iter()
                    .any(|(name, state)| name.contains(":sessions:") && state == "RUNNING")
            })
            .map(|c| act(&c.id))
    })
}

#[test]
fn a_reclaimed_task_node_interrupts_the_step_and_charges_nothing_to_retries() {
    let lab = Lab::with_workflow(task_fleet_yaml(2));
    let child = lab.spawn();
    let reclaimed =
        while_sessions_runs(&lab, |id| lab.emr.reclaim_nodes(id, "TASK", 1, None, true));
    assert_eq!(reclaimed.len(), 1);
    let (code, events, stderr) = follow(child);
    assert_eq!(code, 0, "retries: 0, yet the run succeeds\n{stderr}");
    let lost: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "capacity-lost")
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["generation"], 1);
    assert_eq!(lost[0]["nodes"], 1);
    assert!(
        lost[0]["cause"].as_str().unwrap().contains(&reclaimed[0]),
        "{}",
        lost[0]
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "interrupted" && e["stage"] == "sessions"),
        "the attempt is interrupted"
    );
    assert!(!events.iter().any(|e| e["event"] == "cluster-lost"));
    assert_eq!(lab.emr.clusters().len(), 1, "the cluster worked on");
    assert_eq!(lab.steps_of("sessions"), 2, "sessions ran again on it");
    // Primary and core on-demand, the task fleet on spot, with EMR's settings for it.
    let requests = lab.emr.requests();
    let body = &requests
        .iter()
        .find(|r| r.operation == "RunJobFlow")
        .unwrap()
        .body;
    let fleets = body["Instances"]["InstanceFleets"].as_array().unwrap();
    let targets: Vec<(&str, u64, u64)> = fleets
        .iter()
        .map(|f| {
            (
                f["InstanceFleetType"].as_str().unwrap(),
                f["TargetOnDemandCapacity"].as_u64().unwrap(),
                f["TargetSpotCapacity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(targets, [("MASTER", 1, 0), ("CORE", 4, 0), ("TASK", 0, 2)]);
    let configurations = body["Configurations"].to_string();
    assert!(
        configurations.contains("yarn.node-labels.am.default-node-label-expression")
            && configurations.contains("spark.decommission.enabled"),
        "{configurations}"
    );
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
    assert_eq!(lab.work_left(), Vec::<String>::new());
}

#[test]
fn a_warning_for_task_nodes_only_asks_for_no_new_cluster_and_the_step_it_fails_runs_again() {
    let lab = Lab::with_workflow(task_fleet_yaml(2));
    let queue = lab.emr.create_queue("respawn-notices");
    std::fs::write(
        &lab.file,
        task_fleet_yaml(2).replacen(
            "  emr:\n",
            &format!("  notice: 2s\n  emr:\n    notice_queue: {queue}\n"),
            1,
        ),
    )
    .unwrap();
    let child = lab.spawn();
    let warned = while_sessions_runs(&lab, |id| {
        lab.emr
            .reclaim_nodes(id, "TASK", 2, Some(Duration::from_secs(2)), true)
    });
    assert_eq!(warned.len(), 2);
    let (code, events, stderr) = follow(child);
    assert_eq!(code, 0, "{stderr}");
    let notices: Vec<&Value> = events.iter().filter(|e| e["event"] == "notice").collect();
    assert!(!notices.is_empty(), "{stderr}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "note" && e["message"].as_str().unwrap().contains("works on")),
        "the run says the cluster works on"
    );
    assert_eq!(
        events.iter().filter(|e| e["event"] == "provision").count(),
        1,
        "no replacement cluster for task nodes"
    );
    assert_eq!(lab.emr.clusters().len(), 1);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "capacity-lost")
            .map(|e| e["nodes"].as_u64().unwrap())
            .sum::<u64>(),
        2
    );
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
    assert!(
        lab.emr.queue_messages(&queue).is_empty(),
        "its warnings were taken"
    );
}

#[test]
fn a_replacement_cluster_avoids_the_zone_whose_capacity_was_just_reclaimed() {
    let (first, second) = ("subnet-0a", "subnet-0b");
    assert_ne!(
        respawn_emr_emulator::zone_of(first),
        respawn_emr_emulator::zone_of(second)
    );
    let lab = Lab::with_workflow(emr_yaml().replace(
        "    # subnets: [subnet-0123456789abcdef0, subnet-0fedcba9876543210]\n",
        &format!("    subnets: [{first}, {second}]\n"),
    ));
    let (run, losses) = support::emulator::lose_spot_clusters_during(
        &lab.emr,
        "sessions",
        1,
        Duration::from_millis(30),
        || lab.run(),
    );
    run.success();
    assert_eq!(losses.len(), 1);
    let asked: Vec<Value> = lab
        .emr
        .requests()
        .iter()
        .filter(|r| r.operation == "RunJobFlow")
        .map(|r| r.body["Instances"]["Ec2SubnetIds"].clone())
        .collect();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0], serde_json::json!([first, second]));
    assert_eq!(
        asked[1],
        serde_json::json!([second]),
        "the replacement avoids {first}"
    );
    let notes = lab.stored_events("note");
    let zone = respawn_emr_emulator::zone_of(first);
    assert!(
        notes.iter().any(|n| {
            let message = n["message"].as_str().unwrap();
            message.contains(&format!("avoiding {first} ({zone}")) && message.contains("cluster 2")
        }),
        "{notes:?}"
    );
    // The run record keeps each cluster with its zone and subnet, for the learned model.
    let held: Vec<(String, String, bool)> = lab.stored_record()["clusters"]
        .as_array()
        .expect("clusters in run.json")
        .iter()
        .map(|c| {
            let text = |field: &str| c[field].as_str().unwrap_or_default().to_string();
            (text("zone"), text("subnet"), c["lost"].as_bool().unwrap())
        })
        .collect();
    let other = respawn_emr_emulator::zone_of(second).to_string();
    assert_eq!(
        held,
        [
            (zone.to_string(), first.to_string(), true),
            (other.clone(), second.to_string(), false)
        ]
    );
    let stats = lab.respawn(&["stats", &lab.file, "--format", "json"]);
    stats.success();
    let by_zone = stats.json()["interruptions"]["by_zone"].clone();
    assert_eq!(by_zone[0]["zone"], zone, "{by_zone}");
    assert_eq!(by_zone[0]["losses"], 1, "{by_zone}");
    assert_eq!(by_zone[1]["zone"], other.as_str(), "{by_zone}");
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
}

#[test]
fn a_notice_saves_an_ephemeral_table_out_of_hdfs_and_the_replacement_does_not_recompute_it() {
    let lab = Lab::new();
    let queue = lab.emr.create_queue("respawn-notices");
    // Nothing checkpointed but the final: `purchases` lives in HDFS until the notice, and
    // saving it (3GB at 10GB/s) fits a 4 s window.
    let yaml = notice_yaml(&queue, "4s")
        .replace("  policy: auto\n", "  policy: none\n")
        .replace(
            "  write_throughput: 200MB/s\n",
            "  write_throughput: 10GB/s\n",
        );
    std::fs::write(&lab.file, yaml).unwrap();
    let child = lab.spawn();
    while_sessions_runs(&lab, |id| lab.emr.reclaim(id, Duration::from_secs(4)));
    let (code, events, stderr) = follow(child);
    assert_eq!(code, 0, "{stderr}");
    let saved: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "committed" && e["window"] == true)
        .collect();
    assert!(
        saved.iter().any(|e| e["stage"] == "purchases"),
        "purchases saved in the window: {saved:?}\n{stderr}"
    );
    let save_steps: Vec<(String, String)> = lab
        .emr
        .clusters()
        .into_iter()
        .flat_map(|c| c.steps)
        .filter(|(name, _)| name.contains(":purchases.save:"))
        .collect();
    assert_eq!(save_steps.len(), 1, "{save_steps:?}");
    assert_eq!(save_steps[0].1, "COMPLETED");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "cluster-lost" && e["generation"] == 1),
        "the warned cluster was lost"
    );
    assert_eq!(
        lab.steps_of("ingest"),
        1,
        "nothing upstream of the saved table ran again"
    );
    assert_eq!(lab.steps_of("purchases"), 1);
    lab.assert_same_outputs();
    lab.assert_every_cluster_terminated();
    assert_eq!(lab.work_left(), Vec::<String>::new());
}
