//! Local clusters: a scratch directory plus the process groups of its stages.
//!
//! ```text
//! <scratch>/<workflow>/<run_id>/g<N>-<pid>/.respawn-cluster    marker: the cluster is alive while it exists
//! <scratch>/<workflow>/<run_id>/g<N>-<pid>/work/<stage>/<attempt>/   work-tables made on cluster N
//! <scratch>/<workflow>/<run_id>/g<N>-<pid>/restored/<stage>/         checkpoints restored into cluster N
//! <scratch>/<workflow>/<run_id>/logs/<stage>/<attempt>.log     stdout and stderr of each attempt
//! ```
//!
//! Each stage runs as `sh -c COMMAND` under its supervisor (`respawn supervise-stage`, see
//! [`super::supervisor`]), which leads the stage's own process group, holds every process
//! the stage starts (daemons too) and ends them all when the stage's shell exits, when the
//! orchestrator dies, or when the orchestrator closes the supervisor's standard input to
//! end the cluster. Every stage process carries `RESPAWN_RUN_ID` and `RESPAWN_ORCHESTRATOR`
//! (the orchestrator's pid) in its environment: at each cluster loss and at the end of each
//! run, whatever this orchestrator started that still runs is killed (the backstop for a
//! supervisor killed itself), and a new orchestrator of the run kills whatever still runs
//! with the run's id. A cluster's directory carries the orchestrator's pid (`<pid>`), so an
//! orchestrator that lost its lease never touches the directory of the one that took over.

use respawn_core::workflow::{Market, StageId};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const MARKER: &str = ".respawn-cluster";

/// The variable that names, in a stage's environment, the orchestrator that started it.
pub const ORCHESTRATOR: &str = "RESPAWN_ORCHESTRATOR";

/// The orchestrator's AWS secrets, which stages do not inherit: a stage's log (`env`, a
/// stack trace) would put them in the store. A stage that needs AWS gets it through a
/// profile (`AWS_PROFILE` and the shared files stay) or the machine's role.
const AWS_SECRETS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];

/// The clusters of one run, under one scratch directory.
#[derive(Clone, Debug)]
pub struct LocalClusters {
    root: PathBuf,
    run_id: String,
    /// The respawn executable that supervises stages; `None` runs `sh -c` directly with
    /// `PR_SET_PDEATHSIG` (the engine's unit tests, which have no respawn binary).
    supervisor: Option<PathBuf>,
}

/// What to run for one attempt of a stage.
#[derive(Clone, Debug)]
pub struct StageCommand {
    /// The rendered `run:` line, given to `sh -c`.
    pub line: String,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub log: PathBuf,
}

impl LocalClusters {
    /// `root` is `<scratch>/<workflow>/<run_id>`.
    pub fn new(root: PathBuf, run_id: &str) -> LocalClusters {
        LocalClusters {
            root,
            run_id: run_id.into(),
            supervisor: None,
        }
    }

    /// Stages run under `program supervise-stage LINE` (`program` is respawn itself).
    pub fn supervised_by(mut self, program: PathBuf) -> LocalClusters {
        self.supervisor = Some(program);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn log_path(&self, stage: &str, attempt: u32) -> PathBuf {
        self.root
            .join("logs")
            .join(stage)
            .join(format!("{attempt}.log"))
    }

    /// A private folder outside every cluster (publishing reads the store into it).
    pub fn staging_dir(&self, stage: &str) -> PathBuf {
        self.root.join("staging").join(stage)
    }

    /// Kills every process left by an earlier orchestrator of this run (found by the
    /// `RESPAWN_RUN_ID` in its environment) and removes the clusters it left behind.
    /// Returns how many processes were killed.
    pub fn sweep(&self) -> io::Result<usize> {
        let killed = kill_run_processes(&self.run_id, None);
        if let Ok(entries) = fs::read_dir(&self.root) {
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let cluster = name
                    .strip_prefix('g')
                    .is_some_and(|rest| rest.split('-').all(|n| n.parse::<u32>().is_ok()));
                if cluster || name == "staging" {
                    remove_dir(&entry.path())?;
                }
            }
        }
        Ok(killed)
    }

    /// Creates cluster `generation`: an empty scratch directory with its marker.
    pub fn create(&self, generation: u32, market: Market) -> io::Result<LocalCluster> {
        let dir = self
            .root
            .join(format!("g{generation}-{}", std::process::id()));
        remove_dir(&dir)?;
        fs::create_dir_all(dir.join("work"))?;
        fs::create_dir_all(dir.join("restored"))?;
        fs::write(
            dir.join(MARKER),
            format!(
                "run {} cluster {generation} ({}), orchestrator pid {}\n",
                self.run_id,
                market.as_str(),
                std::process::id()
            ),
        )?;
        Ok(LocalCluster {
            generation,
            market,
            dir,
            run_id: self.run_id.clone(),
            supervisor: self.supervisor.clone(),
            groups: BTreeMap::new(),
        })
    }

    /// At the end of the run: kills whatever still runs with the run's id and removes the
    /// whole scratch directory of the run (its logs are in the store by then).
    pub fn remove_all(&self) -> io::Result<()> {
        kill_run_processes(&self.run_id, Some(std::process::id()));
        remove_dir(&self.root)
    }
}

/// One local cluster.
#[derive(Debug)]
pub struct LocalCluster {
    pub generation: u32,
    pub market: Market,
    dir: PathBuf,
    run_id: String,
    supervisor: Option<PathBuf>,
    /// Process group of each running attempt, and the pipe its supervisor watches.
    groups: BTreeMap<(StageId, u32), (i32, Option<tokio::process::ChildStdin>)>,
}

impl LocalCluster {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// False once the scratch directory (or its marker) is gone: the cluster was lost.
    pub fn is_alive(&self) -> bool {
        self.dir.join(MARKER).exists()
    }

    pub fn output_dir(&self, stage: &str, attempt: u32) -> PathBuf {
        self.dir.join("work").join(stage).join(attempt.to_string())
    }

    pub fn restored_dir(&self, stage: &str) -> PathBuf {
        self.dir.join("restored").join(stage)
    }

    /// Starts one attempt in its own process group. Its output directory, when given, is
    /// created empty (a check of the attempt runs on the output as it is).
    pub fn spawn(
        &mut self,
        stage: StageId,
        attempt: u32,
        output: Option<&Path>,
        command: &StageCommand,
    ) -> io::Result<tokio::process::Child> {
        if let Some(output) = output {
            remove_dir(output)?;
            fs::create_dir_all(output)?;
        }
        if let Some(parent) = command.log.parent() {
            fs::create_dir_all(parent)?;
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&command.log)?;
        let mut process = match &self.supervisor {
            Some(program) => {
                let mut process = tokio::process::Command::new(program);
                process
                    .args(["supervise-stage", "--"])
                    .arg(&command.line)
                    .stdin(Stdio::piped());
                process
            }
            None => {
                let mut process = tokio::process::Command::new("sh");
                process.arg("-c").arg(&command.line).stdin(Stdio::null());
                // SAFETY: the closure runs in the forked child before exec and calls only
                // prctl(2), which is async-signal-safe.
                unsafe {
                    process.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                        Ok(())
                    });
                }
                process
            }
        };
        for secret in AWS_SECRETS {
            process.env_remove(secret);
        }
        process
            .current_dir(&command.cwd)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .env(ORCHESTRATOR, std::process::id().to_string())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .process_group(0)
            .kill_on_drop(false);
        let mut child = process.spawn()?;
        let pipe = child.stdin.take();
        if let Some(pid) = child.id() {
            self.groups.insert((stage, attempt), (pid as i32, pipe));
        }
        Ok(child)
    }

    /// The attempt's processes have ended.
    pub fn forget(&mut self, stage: StageId, attempt: u32) {
        self.groups.remove(&(stage, attempt));
    }

    /// Ends one attempt: its supervisor, its pipe closed, ends the stage's whole tree, and
    /// a second later its group is SIGKILLed whatever is left of it.
    pub fn kill(&mut self, stage: StageId, attempt: u32) {
        let Some((group, pipe)) = self.groups.get_mut(&(stage, attempt)) else {
            return;
        };
        pipe.take();
        let group = *group;
        if self.supervisor.is_none() {
            // SAFETY: killpg has no memory-safety preconditions.
            unsafe { libc::killpg(group, libc::SIGKILL) };
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            // SAFETY: as above; the group may be gone already, which is what we want.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        });
    }

    pub fn running(&self) -> usize {
        self.groups.len()
    }

    /// Sends `signal` to every process group of the cluster.
    pub fn signal_all(&self, signal: i32) {
        for &(group, _) in self.groups.values() {
            // SAFETY: killpg has no memory-safety preconditions; an error (the group is
            // already gone) is what we want anyway.
            unsafe {
                libc::killpg(group, signal);
            }
        }
    }

    /// True when no process of any of the cluster's groups is left.
    pub fn groups_gone(&self) -> bool {
        self.groups.values().all(|&(group, _)| {
            // SAFETY: signal 0 only checks for existence.
            let result = unsafe { libc::killpg(group, 0) };
            result != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        })
    }

    /// Ends every process of the cluster at once: each supervisor, its pipe closed, ends
    /// its stage's whole tree; after at most a second every group is SIGKILLed, and with
    /// `sweep`, whatever else still runs with the run's id (never when another
    /// orchestrator owns the run now: its stages have the same id).
    pub async fn end_all(&mut self, sweep: bool) {
        for (_, pipe) in self.groups.values_mut() {
            pipe.take();
        }
        let since = std::time::Instant::now();
        while !self.groups_gone() && since.elapsed() < std::time::Duration::from_secs(1) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.signal_all(libc::SIGKILL);
        if sweep {
            let run_id = self.run_id.clone();
            let mine = Some(std::process::id());
            let _ = tokio::task::spawn_blocking(move || kill_run_processes(&run_id, mine)).await;
        }
    }

    /// Deletes the scratch directory: every ephemeral work-table on the cluster is gone.
    pub fn wipe(&self) -> io::Result<()> {
        remove_dir(&self.dir)
    }
}

/// Removes `dir` and everything in it. A directory a stage made read-only (or
/// unreadable) is made writable by its owner first: scratch directories are respawn's.
fn remove_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(dir);
            match fs::remove_dir_all(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Gives the owner full access to every directory under `dir` (never following links).
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode() | 0o700;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

/// Processes (other than this one) whose environment has `RESPAWN_RUN_ID=<run_id>`.
pub fn run_processes(run_id: &str) -> Vec<i32> {
    processes_with(run_id, None)
}

/// Processes (other than this one) of run `run_id`, only those started by orchestrator
/// `orchestrator` when given.
fn processes_with(run_id: &str, orchestrator: Option<u32>) -> Vec<i32> {
    let needle = format!("RESPAWN_RUN_ID={run_id}");
    let started_by = orchestrator.map(|pid| format!("{ORCHESTRATOR}={pid}"));
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .map(|env| {
                    let has = |wanted: &str| env.split(|b| *b == 0).any(|v| v == wanted.as_bytes());
                    has(&needle) && started_by.as_deref().is_none_or(has)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// SIGKILLs the process groups of every process of the run (of those `orchestrator`
/// started, when given); returns how many processes were found.
fn kill_run_processes(run_id: &str, orchestrator: Option<u32>) -> usize {
    let pids = processes_with(run_id, orchestrator);
    for &pid in &pids {
        // SAFETY: getpgid and kill have no memory-safety preconditions.
        unsafe {
            let group = libc::getpgid(pid);
            if group > 1 && group != libc::getpgrp() {
                libc::killpg(group, libc::SIGKILL);
            }
            libc::kill(pid, libc::SIGKILL);
        }
    }
    pids.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stage_runs_in_its_own_process_group_and_dies_with_its_cluster() {
        let scratch = tempfile::tempdir().unwrap();
        let clusters = LocalClusters::new(scratch.path().join("wf/run-1"), "run-test-group");
        let mut cluster = clusters.create(1, Market::Spot).unwrap();
        assert!(cluster.is_alive());
        let output = cluster.output_dir("s", 1);
        let command = StageCommand {
            line: "sleep 30 & sleep 30".into(),
            env: vec![("RESPAWN_RUN_ID".into(), "run-test-group".into())],
            cwd: scratch.path().to_path_buf(),
            log: clusters.log_path("s", 1),
        };
        let mut child = cluster.spawn(0, 1, Some(&output), &command).unwrap();
        assert!(output.is_dir());
        // Wait until both sleeps exist.
        for _ in 0..100 {
            if run_processes("run-test-group").len() >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(run_processes("run-test-group").len() >= 2);
        cluster.signal_all(libc::SIGKILL);
        cluster.wipe().unwrap();
        let status = child.wait().await.unwrap();
        assert!(!status.success());
        assert!(!cluster.is_alive());
        for _ in 0..100 {
            if run_processes("run-test-group").is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(run_processes("run-test-group"), Vec::<i32>::new());
    }

    #[tokio::test]
    async fn a_sweep_kills_what_an_earlier_orchestrator_left_running() {
        let scratch = tempfile::tempdir().unwrap();
        let clusters = LocalClusters::new(scratch.path().join("wf/run-2"), "run-test-sweep");
        let mut cluster = clusters.create(3, Market::Spot).unwrap();
        let output = cluster.output_dir("s", 1);
        let command = StageCommand {
            line: "sleep 30".into(),
            env: vec![("RESPAWN_RUN_ID".into(), "run-test-sweep".into())],
            cwd: scratch.path().to_path_buf(),
            log: clusters.log_path("s", 1),
        };
        let mut child = cluster.spawn(0, 1, Some(&output), &command).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(clusters.sweep().unwrap() >= 1);
        assert!(!child.wait().await.unwrap().success());
        assert!(!cluster.dir().exists());
        assert!(clusters.root().join("logs").exists(), "logs are kept");
    }
}
