//! Runs the real `respawn` binary, the way a user would.

#![allow(dead_code)]

pub mod emulator;
pub mod fault_proxy;
pub mod http_receiver;
pub mod s3_server;
pub mod workspace;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn workflow(name: &str) -> PathBuf {
    repo().join("workflows").join(name)
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn store_error(&self) -> &Self {
        assert_eq!(
            self.code, 3,
            "expected exit 3\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn invalid_input(&self) -> &Self {
        assert_eq!(
            self.code, 2,
            "expected exit 2\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }

    /// The events of `run --format json`: one JSON object per line of stdout.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

pub fn respawn<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    respawn_env(args, &[], &[])
}

/// The respawn binary, run from the repository, without the caller's AWS settings or
/// store (each test gives its own).
pub fn command() -> Command {
    command_of(Path::new(env!("CARGO_BIN_EXE_respawn")))
}

/// As [`command`], with `program` as respawn (a copy of the built one, say).
pub fn command_of(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(repo());
    for (name, _) in std::env::vars() {
        // `./test`'s keys for its external S3 endpoint are the tests' own, never respawn's.
        if name.starts_with("AWS_") || name.starts_with("RESPAWN_TEST_") || name == "RESPAWN_STORE"
        {
            command.env_remove(name);
        }
    }
    command
}

/// Runs respawn with extra environment variables set and others removed. AWS variables of
/// the surrounding shell are always removed, so that tests see only what they set.
pub fn respawn_env<I, S>(args: I, set: &[(&str, String)], remove: &[&str]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = command();
    command.args(args).env("NO_COLOR", "1");
    for name in remove {
        command.env_remove(name);
    }
    for (name, value) in set {
        command.env(name, value);
    }
    let output: Output = command.output().expect("the respawn binary runs");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "respawn panicked:\n{}",
        run.stderr
    );
    run
}

/// Every file under `dir`, by its path relative to `root` (hidden files left out).
pub fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let key = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(key, std::fs::read(&path).unwrap());
        }
    }
}

/// The published outputs of `workflow` among a store's objects, `_SUCCESS` manifests
/// reduced to the files they list (they also hold times and run ids).
pub fn published(
    objects: std::collections::BTreeMap<String, Vec<u8>>,
    workflow: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for (key, bytes) in objects {
        let Some(rest) = key.strip_prefix(&format!("{workflow}/outputs/")) else {
            continue;
        };
        if rest.ends_with("/_SUCCESS") {
            let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let listed: Vec<String> = manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!("{} {} {}", f["path"], f["size"], f["crc64nvme"]))
                .collect();
            out.insert(rest.to_string(), listed.join("\n").into_bytes());
        } else {
            out.insert(rest.to_string(), bytes);
        }
    }
    out
}

/// The e-commerce workflow on a small dataset (20,000 events), its stage programs named by
/// absolute path, provisioning in 1 s, and `purchases` ephemeral (so a loss after it forces
/// its recomputation); then each `(from, to)` of `extra` replaced (it must be there).
pub fn small_ecommerce(extra: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(repo().join("workflows/ecommerce-sessions.yaml"))
        .expect("the e-commerce workflow");
    text = text
        .replace(
            "{{ workflow_dir }}/../examples",
            &format!("{}/examples", repo().display()),
        )
        .replace("--events 200000", "--events 20000")
        .replace("provision_time: 10m", "provision_time: 1s")
        .replace("  purchases:\n", "  purchases:\n    checkpoint: never\n");
    for (from, to) in extra {
        assert!(text.contains(from), "the workflow has `{from}`");
        text = text.replace(from, to);
    }
    text
}

/// Processes still running for a run (found by the `RESPAWN_RUN_ID` in their environment).
pub fn processes_of(run_id: &str) -> Vec<i32> {
    let needle = format!("RESPAWN_RUN_ID={run_id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// The line `respawn run` ends with, written out by hand from `respawn cost --format
/// json`'s object of the same run (amounts under 10 with four decimals, else two).
pub fn cost_line(cost: &serde_json::Value) -> String {
    let currency = cost["currency"].as_str().expect("a currency");
    let money = |key: &serde_json::Value| {
        let amount = key.as_f64().expect("an amount");
        if amount.abs() < 10.0 {
            format!("{amount:.4} {currency}")
        } else {
            format!("{amount:.2} {currency}")
        }
    };
    if cost["complete"] == false {
        return format!(
            "cost {} (unfinished; the work done would cost {} on on-demand; waste {})",
            money(&cost["cost"]),
            money(&cost["on_demand_cost"]),
            money(&cost["waste"]["total"])
        );
    }
    format!(
        "cost {} (on-demand {}: saving {}, {:.1}%; waste {})",
        money(&cost["cost"]),
        money(&cost["on_demand_cost"]),
        money(&cost["saving"]),
        cost["saving_percent"].as_f64().expect("a percentage"),
        money(&cost["waste"]["total"])
    )
}

/// `respawn cost TARGET [--batch BATCH] --format json` on the store `store`.
/// Asserts that in `stdout` the line saying each date of `workflow` succeeded is followed
/// by that run's cost line, as `respawn cost` tells it.
pub fn assert_cost_after_each_date(
    stdout: &str,
    workflow: &str,
    dates: &[&str],
    (file, store, env): (&str, &str, &[(&str, String)]),
) {
    let lines: Vec<&str> = stdout.lines().collect();
    for date in dates {
        let cost = cost_of(file, Some(date), store, env);
        let ended = format!("{workflow} {date}: succeeded");
        let at = lines
            .iter()
            .position(|l| *l == ended)
            .unwrap_or_else(|| panic!("{ended}: {stdout}"));
        assert_eq!(
            lines.get(at + 1).copied(),
            Some(format!("{workflow} {date}: {}", cost_line(&cost)).as_str()),
            "{stdout}"
        );
    }
}

pub fn cost_of(
    target: &str,
    batch: Option<&str>,
    store: &str,
    env: &[(&str, String)],
) -> serde_json::Value {
    let mut args = vec!["cost", target, "--store", store, "--format", "json"];
    if let Some(batch) = batch {
        args.extend(["--batch", batch]);
    }
    let run = respawn_env(args, env, &[]);
    run.success();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}
