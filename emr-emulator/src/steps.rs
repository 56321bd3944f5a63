//! The step runner: a started step becomes a task that maps its command line (`spark.rs`),
//! brings its `s3://` inputs down and points `hdfs://` at the cluster's folder
//! (`storage.rs`), runs the command as a local process in its own process group, uploads
//! its outputs and logs, and records COMPLETED or FAILED with EMR's FailureDetails (and
//! what the step's ActionOnFailure asks of the cluster).

use crate::cluster::{Cluster, LOSS_DELAY, shut_down};
use crate::emulator::Shared;
use crate::spark::{find_urls, map_spark_submit, substitute};
use crate::storage::{resolve, store_for, upload_logs, upload_output};
use crate::tools::step_path;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// What a step task needs, copied out of the state.
pub(crate) struct Job {
    pub(crate) cluster_id: String,
    pub(crate) step_id: String,
    pub(crate) jar: String,
    pub(crate) args: Vec<String>,
    pub(crate) log_uri: Option<String>,
    pub(crate) step_dir: PathBuf,
    pub(crate) hdfs_root: PathBuf,
}

pub(crate) fn start_step(
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

pub(crate) struct Failure {
    pub(crate) reason: String,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(reason: impl Into<String>, message: impl Into<String>) -> Failure {
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
    let spark_submit = shared.config.spark_submit.as_deref();
    let (argv, apps) = map_spark_submit(&job.args, spark_submit)?;
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
        let mut command = tokio::process::Command::new(&argv[0]);
        let spark_bin = spark_submit.and_then(Path::parent);
        command.env("PATH", step_path(&shared.config.work_dir, spark_bin));
        if let Some(spark_submit) = spark_submit {
            spark_environment(&mut command, spark_submit, &job.step_dir);
        }
        let child = command
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
        return Err(Failure::new(reason, failure_message(&job.step_dir)));
    }
    for (dir, bucket, prefix) in outputs {
        let store = store_for(shared, &bucket).await?;
        upload_output(&store, &dir, &prefix).await.map_err(|e| {
            Failure::new(
                format!("Uploading the output to s3://{bucket}/{prefix} failed"),
                e.to_string(),
            )
        })?;
    }
    Ok(())
}

/// The environment of a real spark-submit: pyspark's own `spark-submit` script finds its
/// Spark home with the `python3` first on the PATH, so the folder it is in (a virtualenv's
/// `bin/`) comes before the system's ([`step_path`]); the driver's Python is that folder's
/// too. Spark binds to loopback and keeps its scratch files in the step's folder.
fn spark_environment(command: &mut tokio::process::Command, spark_submit: &Path, step_dir: &Path) {
    if let Some(bin) = spark_submit.parent() {
        let python = bin.join("python3");
        if python.exists() {
            command.env("PYSPARK_PYTHON", &python);
            command.env("PYSPARK_DRIVER_PYTHON", &python);
        }
    }
    command.env("SPARK_LOCAL_IP", "127.0.0.1");
    command.env("SPARK_LOCAL_DIRS", step_dir.join("spark-local"));
}

/// A failed step's FailureDetails message: the last lines of its stderr without Spark's
/// own log lines (`26/12/01 15:21:19 INFO ShutdownHookManager: ...`, which follow the
/// driver's error and would push it out), or, when that leaves nothing, the last lines of
/// its stdout: spark-submit passes a PySpark driver's output, its traceback included, to
/// its own stdout. EMR, too, reports the error it finds in the logs rather than their
/// last lines.
fn failure_message(step_dir: &Path) -> String {
    let stderr = tail(&step_dir.join("stderr"));
    if !stderr.is_empty() {
        return stderr;
    }
    let stdout = tail(&step_dir.join("stdout"));
    if stdout.is_empty() {
        "(nothing on stderr)".into()
    } else {
        stdout
    }
}

/// The last 20 lines of a log (at most 2,000 bytes), without Spark's log lines.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !is_spark_log_line(l) && !l.trim().is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.len() > 2000 {
        let mut cut = tail.len() - 2000;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail[cut..].to_string()
    } else {
        tail
    }
}

/// `yy/MM/dd HH:mm:ss LEVEL ...`, the layout of Spark's log4j lines on stderr.
fn is_spark_log_line(line: &str) -> bool {
    let bytes = line.as_bytes();
    let stamp = "00/00/00 00:00:00 ";
    bytes.len() > stamp.len()
        && stamp.bytes().zip(bytes).all(|(s, b)| {
            if s == b'0' {
                b.is_ascii_digit()
            } else {
                s == *b
            }
        })
        && ["INFO ", "WARN ", "DEBUG ", "TRACE "]
            .iter()
            .any(|level| line[stamp.len()..].starts_with(level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_spark_steps_message_is_the_drivers_error_not_sparks_log_lines() {
        let dir = tempfile_dir();
        let stderr = dir.join("stderr");
        let stdout = dir.join("stdout");
        // A PySpark driver's traceback is on stdout, Spark's log on stderr.
        std::fs::write(
            &stderr,
            "26/12/01 15:21:18 INFO SparkContext: Running Spark version 3.5.2\n\
             26/12/01 15:21:19 INFO ShutdownHookManager: Deleting directory /tmp/spark-1\n",
        )
        .unwrap();
        std::fs::write(
            &stdout,
            "Traceback (most recent call last):\n\
             pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN]\n",
        )
        .unwrap();
        assert_eq!(
            failure_message(&dir),
            "Traceback (most recent call last):\n\
             pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN]"
        );
        // A JVM error on stderr (kept: only INFO to TRACE lines are Spark's chatter).
        std::fs::write(
            &stderr,
            "26/12/01 15:21:19 ERROR SparkContext: Error initializing SparkContext.\n\
             26/12/01 15:21:19 INFO ShutdownHookManager: Deleting directory /tmp/spark-1\n",
        )
        .unwrap();
        assert_eq!(
            failure_message(&dir),
            "26/12/01 15:21:19 ERROR SparkContext: Error initializing SparkContext."
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("emr-emulator-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
