//! Real Spark, end to end: the PySpark jobs of `examples/spark/` through the real `respawn`
//! binary, on the EMR emulator running real `spark-submit` in local mode against the S3
//! test server (`workflows/ecommerce-emr.yaml`), and on the local provider
//! (`workflows/ecommerce-spark.yaml`). Spark names its part files at random, so outputs
//! are compared by their rows, sorted.
//!
//! Spark is found through `RESPAWN_SPARK_SUBMIT` (pyspark's `spark-submit`, in a
//! virtualenv's `bin/`) or `spark-submit` on the PATH. A plain `cargo test` lists these
//! tests as ignored, with the reason; `./test` installs pyspark and runs them, and without
//! Spark they fail, never pass silently.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::s3_server::BUCKET;
use support::{Run, repo};

const BATCH: &str = "2019-10-01";
const EVENTS: &str = "--events 20000";

/// pyspark's spark-submit (`RESPAWN_SPARK_SUBMIT`, else the PATH's): these tests are
/// `#[ignore]`d in a plain `cargo test`, and fail when run without it.
fn spark_submit() -> PathBuf {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let given = std::env::var_os("RESPAWN_SPARK_SUBMIT").map(PathBuf::from);
        given.or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("spark-submit"))
                .find(|path| path.is_file())
        })
    });
    match found {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => panic!(
            "no spark-submit at {} (RESPAWN_SPARK_SUBMIT)",
            path.display()
        ),
        None => panic!(
            "no spark-submit: set RESPAWN_SPARK_SUBMIT to pyspark's, or put it on the PATH \
             (./test installs pyspark and runs these tests)"
        ),
    }
}

/// The PATH with spark-submit's folder first (pyspark's script finds Spark with the
/// `python3` first on the PATH).
fn path_with(spark_submit: &Path) -> String {
    let mut paths = vec![spark_submit.parent().unwrap().to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The rows of the data files of a published output (`_SUCCESS`, hidden files and each
/// file's CSV header left out), sorted.
fn rows(folder: &Path) -> Vec<String> {
    let mut files = BTreeMap::new();
    support::walk(folder, folder, &mut files);
    let mut rows: Vec<String> = files
        .iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .flat_map(|(_, bytes)| {
            String::from_utf8(bytes.clone())
                .unwrap()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

/// The rows of `report` from the local-provider run of `ecommerce-spark.yaml`, run once.
fn laptop_rows(spark: &Path) -> &'static Vec<String> {
    static ROWS: OnceLock<Vec<String>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(repo().join("workflows/ecommerce-spark.yaml")).unwrap();
        assert!(text.contains("--events 200000"));
        let file = dir.path().join("shop.yaml");
        std::fs::write(
            &file,
            text.replace("--events 200000", EVENTS).replace(
                "{{ workflow_dir }}/../examples",
                &format!("{}/examples", repo().display()),
            ),
        )
        .unwrap();
        let store = dir.path().join("store");
        support::respawn_env(
            [
                "run",
                &file.display().to_string(),
                "--batch",
                BATCH,
                "--store",
                &store.display().to_string(),
            ],
            &[
                ("PATH", path_with(spark)),
                (
                    "RESPAWN_SCRATCH",
                    dir.path().join("scratch").display().to_string(),
                ),
            ],
            &[],
        )
        .success();
        let published = store.join("ecommerce-spark/outputs/report").join(BATCH);
        // Spark's own `_SUCCESS` and Hadoop's `.crc` files were not published.
        let names: Vec<String> = std::fs::read_dir(&published)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "_SUCCESS")
            .collect();
        assert!(
            names.len() == 1 && names[0].starts_with("part-") && names[0].ends_with(".csv"),
            "{names:?}"
        );
        let rows = rows(&published);
        assert!(
            rows.iter().any(|r| r.starts_with("0,sessions,")) && rows.len() == 15,
            "{rows:?}"
        );
        rows
    })
}

use support::emulator::Lab;

/// The lab of these tests: `examples/spark/` under `code/`, and the EMR emulator running
/// real spark-submit.
impl Lab {
    fn new(spark: &Path, workflow: String) -> Lab {
        let spark = spark.to_path_buf();
        let code = repo().join("examples/spark");
        Lab::start(
            &workflow,
            &code,
            |_| true,
            |config| config.spark_submit = Some(spark),
        )
    }

    /// `workflows/ecommerce-emr.yaml` on the test bucket and a small dataset.
    fn ecommerce(spark: &Path) -> Lab {
        let text = std::fs::read_to_string(repo().join("workflows/ecommerce-emr.yaml")).unwrap();
        assert!(text.contains("--events 200000") && text.contains("    deadline: 10h\n"));
        let text = text
            .replace("my-respawn-bucket", BUCKET)
            .replace("--events 200000", EVENTS)
            .replace("    deadline: 10h\n", "");
        Lab::new(spark, text)
    }

    fn run(&self) -> Run {
        self.respawn(&["run", &self.file, "--batch", BATCH])
    }

    fn spawn(&self) -> Child {
        let mut command = self.run_command(BATCH);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command.spawn().expect("respawn starts")
    }

    /// Every published file is data or respawn's manifest, and the rows are the laptop's.
    fn assert_laptop_rows(&self, spark: &Path) {
        let published = self
            .store_root()
            .join("ecommerce-emr/outputs/report")
            .join(BATCH);
        let mut names = BTreeMap::new();
        std::fs::read_dir(&published)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .for_each(|n| {
                names.insert(n, ());
            });
        let success: serde_json::Value =
            serde_json::from_slice(&std::fs::read(published.join("_SUCCESS")).unwrap())
                .expect("respawn's _SUCCESS manifest, not Spark's empty marker");
        let listed = success["files"].as_array().unwrap().len();
        assert_eq!(names.len(), listed + 1, "{names:?} {success}");
        assert!(
            names
                .keys()
                .all(|n| n == "_SUCCESS" || (n.starts_with("part-") && n.ends_with(".csv"))),
            "{names:?}"
        );
        assert_eq!(&rows(&published), laptop_rows(spark));
    }

    fn assert_clean(&self) {
        let mut all = BTreeMap::new();
        support::walk(&self.store_root(), &self.store_root(), &mut all);
        let left: Vec<&String> = all.keys().filter(|k| k.contains("/work/")).collect();
        assert!(left.is_empty(), "work-tables left: {left:?}");
        self.assert_every_cluster_terminated();
    }

    fn step_in_state(&self, stage: &str, state: &str) -> bool {
        support::emulator::step_in_state(&self.emr, stage, state)
    }
}

/// Waits (at most 3 minutes: Spark on two busy cores starts slowly) until `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs pyspark and Java: ./test installs them and runs this"]
fn the_spark_jobs_give_the_same_rows_on_the_emr_emulator_and_on_a_laptop() {
    let spark = spark_submit();
    let lab = Lab::ecommerce(&spark);
    lab.run().success();
    lab.assert_laptop_rows(&spark);
    lab.assert_clean();
    assert_eq!(lab.emr.clusters().len(), 1, "one cluster for the run");
    for stage in ["ingest", "purchases", "sessions", "report"] {
        assert_eq!(lab.steps_of(stage), 1, "{stage} ran once");
    }
}

#[test]
#[ignore = "needs pyspark and Java: ./test installs them and runs this"]
fn two_spot_clusters_lost_during_a_spark_step_then_on_demand_give_the_same_rows() {
    let spark = spark_submit();
    let lab = Lab::ecommerce(&spark);
    let (run, lost) = support::emulator::lose_spot_clusters_during(
        &lab.emr,
        "sessions",
        2,
        Duration::from_millis(100),
        || lab.run(),
    );
    run.success();
    assert_eq!(lost.len(), 2, "two spot clusters were lost mid-step");
    let clusters = lab.emr.clusters();
    assert_eq!(clusters.len(), 3, "three clusters in all");
    let third = clusters.iter().find(|c| !lost.contains(&c.id)).unwrap();
    assert!(!third.spot, "the third cluster is on-demand");
    assert_eq!(lab.steps_of("ingest"), 1, "a checkpoint is not run again");
    assert_eq!(lab.steps_of("sessions"), 3);
    lab.assert_laptop_rows(&spark);
    lab.assert_clean();
}

#[test]
#[ignore = "needs pyspark and Java: ./test installs them and runs this"]
fn an_orchestrator_killed_during_a_spark_step_is_adopted_and_gives_the_same_rows() {
    let spark = spark_submit();
    let lab = Lab::ecommerce(&spark);
    let mut orchestrator = lab.spawn();
    wait_for("the sessions step to run", || {
        lab.step_in_state("sessions", "RUNNING")
    });
    orchestrator.kill().unwrap();
    let _ = orchestrator.wait();
    // The Spark job goes on without its orchestrator.
    wait_for("the sessions step to complete", || {
        lab.step_in_state("sessions", "COMPLETED")
    });
    lab.run().success();
    assert_eq!(lab.emr.clusters().len(), 1, "the cluster was adopted");
    assert_eq!(
        lab.steps_of("sessions"),
        1,
        "the finished step is not run again"
    );
    assert_eq!(lab.steps_of("ingest"), 1);
    lab.assert_laptop_rows(&spark);
    lab.assert_clean();
}

#[test]
#[ignore = "needs pyspark and Java: ./test installs them and runs this"]
fn a_pyspark_job_that_fails_in_its_driver_is_retried_with_sparks_error_in_the_log_and_the_message()
{
    let spark = spark_submit();
    let text = std::fs::read_to_string(repo().join("workflows/ecommerce-emr.yaml")).unwrap();
    let head = &text[..text.find("stages:\n").unwrap()];
    let workflow = format!(
        "{}stages:\n  broken:\n    run: spark-submit s3://{BUCKET}/code/broken.py --out {{{{ output }}}}\n    final: true\n",
        head.replace("my-respawn-bucket", BUCKET)
            .replace("retries: 2", "retries: 1")
    );
    let lab = Lab::new(&spark, workflow);
    std::fs::write(
        lab.s3().root().join(BUCKET).join("code/broken.py"),
        "from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.appName('broken').getOrCreate()\n\
         spark.range(3).select('no_such_column').show()\n",
    )
    .unwrap();
    let run = lab.run();
    let mut steps = BTreeMap::new();
    // The steps' logs, as the emulator uploads them under the LogUri.
    let logs = lab.s3().root().join(BUCKET).join("emr-logs");
    support::walk(&logs, &logs, &mut steps);
    let step_stderr: Vec<String> = steps
        .iter()
        .filter(|(k, _)| k.ends_with("/stderr") || k.ends_with("/stdout"))
        .map(|(k, v)| format!("{k}:\n{}", String::from_utf8_lossy(v)))
        .collect();
    let step_stderr = step_stderr.join("\n");
    assert_eq!(run.code, 4, "the stage's own failure: {}", run.stderr);
    assert_eq!(lab.steps_of("broken"), 2, "retried once");
    assert_eq!(
        lab.emr.clusters().len(),
        1,
        "a failure is not an interruption"
    );
    assert!(
        run.stderr.contains("stage `broken`")
            && run.stderr.contains("AnalysisException")
            && run.stderr.contains("no_such_column"),
        "the failure message shows Spark's error:\n{}\nthe steps' stderr:\n{step_stderr}",
        run.stderr
    );
    let mut all = BTreeMap::new();
    support::walk(&lab.store_root(), &lab.store_root(), &mut all);
    let logs: Vec<(&String, String)> = all
        .iter()
        .filter(|(k, _)| k.contains("/logs/broken/"))
        .map(|(k, v)| (k, String::from_utf8_lossy(v).into_owned()))
        .collect();
    assert_eq!(logs.len(), 2, "a log per attempt: {:?}", all.keys());
    for (key, log) in logs {
        assert!(
            log.contains("AnalysisException") && log.contains("UNRESOLVED_COLUMN"),
            "{key}:\n{log}"
        );
    }
    wait_for("the cluster to end", || {
        lab.emr
            .clusters()
            .iter()
            .all(|c| c.state.starts_with("TERMINAT"))
    });
}
