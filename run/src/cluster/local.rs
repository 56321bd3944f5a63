//! Local clusters: a scratch directory plus the process groups of its stages.
//!
//! ```text
//! <scratch>/<workflow>/<run_id>/g<N>-<pid>/.respawn-cluster    marker: the cluster is alive while it exists
//! <scratch>/<workflow>/<run_id>/g<N>-<pid>/work/<stage>@<attempt>/   work-tables made on cluster N
//! <scratch>/<workflow>/<run_id>/g<N>-<pid>/restored/<stage>/         checkpoints restored into cluster N
//! <scratch>/<workflow>/<run_id>/logs/<stage>@<attempt>.log     stdout and stderr of each attempt
//! ```
//!
//! An attempt's folders are one level deep (stage names cannot hold `@`): each folder made
//! is an inode allocated, which costs a chain of short stages measurably on ext4.
//!
//! Each stage runs as `sh -c COMMAND` under the cluster's supervisor
//! (`respawn-supervise supervise-cluster`, see [`super::supervisor`]), one process per
//! cluster, which forks a keeper per stage: it leads the stage's own process group, holds
//! every process the stage starts (daemons too) and ends them all when the stage's shell
//! exits. The supervisor ends every stage when the orchestrator dies, or when the
//! orchestrator closes its standard input to end the cluster. Every stage process carries
//! `RESPAWN_RUN_ID` and `RESPAWN_ORCHESTRATOR` (the orchestrator's pid) in its environment: at each cluster loss and at the end of each
//! run, whatever this orchestrator started that still runs is killed (the backstop for a
//! supervisor killed itself), and a new orchestrator of the run kills whatever still runs
//! with the run's id. A cluster's directory carries the orchestrator's pid (`<pid>`), so an
//! orchestrator that lost its lease never touches the directory of the one that took over.

use super::agent::Agent;
use super::supervisor::Launch;
use respawn_core::workflow::{Market, StageId};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::sync::oneshot;

const MARKER: &str = ".respawn-cluster";

/// The variable that names, in a stage's environment, the orchestrator that started it.
pub const ORCHESTRATOR: &str = "RESPAWN_ORCHESTRATOR";
/// The variable that holds, in a stage's environment, the generation of the cluster it
/// runs on: ending one cluster ends its stages and none of another's.
pub const CLUSTER: &str = "RESPAWN_CLUSTER";

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
    /// The program that supervises a cluster's stages; `None` runs `sh -c` directly with
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

    /// Stages run under `program supervise-cluster` (`respawn-supervise`, or respawn
    /// itself).
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
            .join(format!("{stage}@{attempt}.log"))
    }

    /// A private folder outside every cluster (publishing reads the store into it).
    pub fn staging_dir(&self, stage: &str) -> PathBuf {
        self.root.join("staging").join(stage)
    }

    /// Kills every process left by an earlier orchestrator of this run (found by the
    /// `RESPAWN_RUN_ID` in its environment) and removes the clusters it left behind.
    /// Returns how many processes were killed.
    pub fn sweep(&self) -> io::Result<usize> {
        let killed = kill_run_processes(&self.run_id, None, None);
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
            agent: None,
            groups: BTreeMap::new(),
        })
    }

    /// At the end of the run: kills whatever still runs with the run's id and removes the
    /// whole scratch directory of the run (its logs are in the store by then).
    pub fn remove_all(&self) -> io::Result<()> {
        kill_run_processes(&self.run_id, Some(std::process::id()), None);
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
    /// The cluster's stage supervisor, started with its first stage.
    agent: Option<Agent>,
    /// How each running attempt is held.
    groups: BTreeMap<(StageId, u32), Held>,
}

/// How a running attempt is held.
#[derive(Clone, Copy, Debug)]
enum Held {
    /// By the cluster's supervisor, under this token.
    Token(u64),
    /// As a process group of the orchestrator's own (no supervisor).
    Group(i32),
}

/// A started attempt, to wait for.
#[derive(Debug)]
pub enum StageProcess {
    Supervised(oneshot::Receiver<i32>),
    Direct(tokio::process::Child),
}

impl StageProcess {
    /// The attempt's exit code (128 + N when a signal N ended it).
    pub async fn wait(self) -> io::Result<i32> {
        match self {
            StageProcess::Supervised(exit) => exit
                .await
                .map_err(|_| io::Error::other("the cluster's stage supervisor ended")),
            StageProcess::Direct(mut child) => {
                use std::os::unix::process::ExitStatusExt;
                let status = child.wait().await?;
                Ok(status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(1))
            }
        }
    }
}

/// What starts one attempt: its command, and its environment as the orchestrator's with
/// the stage's variables and the orchestrator's pid set and the AWS secrets removed.
fn launch_of(command: &StageCommand, generation: u32) -> Launch {
    let mut set: Vec<(OsString, OsString)> = (command.env.iter())
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    set.push((ORCHESTRATOR.into(), std::process::id().to_string().into()));
    set.push((CLUSTER.into(), generation.to_string().into()));
    Launch {
        token: 0,
        cwd: command.cwd.clone().into(),
        log: command.log.clone().into(),
        line: command.line.clone().into(),
        set,
        remove: AWS_SECRETS.iter().map(OsString::from).collect(),
    }
}

/// Runs `sh -c` as a process group of the orchestrator's own, dying with it
/// (`PR_SET_PDEATHSIG`): the engine's unit tests, which have no supervisor program.
fn spawn_direct(launch: &Launch) -> io::Result<tokio::process::Child> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)?;
    let mut process = tokio::process::Command::new("sh");
    process.arg("-c").arg(&launch.line).stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2),
    // which is async-signal-safe.
    unsafe {
        process.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    for key in &launch.remove {
        process.env_remove(key);
    }
    process
        .current_dir(&launch.cwd)
        .envs(launch.set.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
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
        self.dir.join("work").join(format!("{stage}@{attempt}"))
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
    ) -> io::Result<StageProcess> {
        if let Some(output) = output {
            remove_dir(output)?;
            fs::create_dir_all(output)?;
        }
        if let Some(parent) = command.log.parent() {
            fs::create_dir_all(parent)?;
        }
        let launch = launch_of(command, self.generation);
        let Some(program) = &self.supervisor else {
            let child = spawn_direct(&launch)?;
            if let Some(pid) = child.id() {
                self.groups
                    .insert((stage, attempt), Held::Group(pid as i32));
            }
            return Ok(StageProcess::Direct(child));
        };
        if self.agent.is_none() {
            self.agent = Some(Agent::start(program)?);
        }
        let agent = self.agent.as_mut().expect("started above");
        let (token, exit) = agent.launch(launch)?;
        self.groups.insert((stage, attempt), Held::Token(token));
        Ok(StageProcess::Supervised(exit))
    }

    /// The attempt's processes have ended.
    pub fn forget(&mut self, stage: StageId, attempt: u32) {
        self.groups.remove(&(stage, attempt));
    }

    /// Ends one attempt's whole tree at once.
    pub fn kill(&mut self, stage: StageId, attempt: u32) {
        match self.groups.get(&(stage, attempt)) {
            Some(&Held::Token(token)) => {
                if let Some(agent) = &mut self.agent {
                    agent.kill(token);
                }
            }
            // SAFETY: killpg has no memory-safety preconditions.
            Some(&Held::Group(group)) => unsafe {
                libc::killpg(group, libc::SIGKILL);
            },
            None => {}
        }
    }

    pub fn running(&self) -> usize {
        self.groups.len()
    }

    /// Sends `signal` to every process group of the cluster.
    pub fn signal_all(&mut self, signal: i32) {
        if let Some(agent) = &mut self.agent {
            agent.signal(signal);
        }
        self.signal_groups(signal);
    }

    /// Signals the groups of the stages started without a supervisor.
    fn signal_groups(&self, signal: i32) {
        for held in self.groups.values() {
            if let &Held::Group(group) = held {
                // SAFETY: killpg has no memory-safety preconditions; an error (the group
                // is already gone) is what we want anyway.
                unsafe { libc::killpg(group, signal) };
            }
        }
    }

    /// True when no process of any of the cluster's stages is left.
    pub fn groups_gone(&self) -> bool {
        self.agent.as_ref().is_none_or(Agent::all_ended)
            && self.groups.values().all(|held| match held {
                Held::Token(_) => true,
                &Held::Group(group) => {
                    // SAFETY: signal 0 only checks for existence.
                    let result = unsafe { libc::killpg(group, 0) };
                    result != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
                }
            })
    }

    /// Ends every process of the cluster at once: the supervisor, its input closed, kills
    /// every stage's whole tree; after at most a second it and every group are SIGKILLed,
    /// and with `sweep`, whatever else still runs with the run's id (never when another
    /// orchestrator owns the run now: its stages have the same id).
    pub async fn end_all(&mut self, sweep: bool) {
        if let Some(agent) = &mut self.agent {
            agent.end().await;
        }
        self.signal_groups(libc::SIGKILL);
        if sweep {
            let (run_id, generation) = (self.run_id.clone(), self.generation);
            let mine = Some(std::process::id());
            let sweep = move || kill_run_processes(&run_id, mine, Some(generation));
            let _ = tokio::task::spawn_blocking(sweep).await;
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
    processes_with(run_id, None, None)
}

/// Processes (other than this one) of run `run_id`, only those started by orchestrator
/// `orchestrator` when given.
fn processes_with(run_id: &str, orchestrator: Option<u32>, cluster: Option<u32>) -> Vec<i32> {
    let needle = format!("RESPAWN_RUN_ID={run_id}");
    let started_by = orchestrator.map(|pid| format!("{ORCHESTRATOR}={pid}"));
    let on = cluster.map(|generation| format!("{CLUSTER}={generation}"));
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
                    has(&needle)
                        && started_by.as_deref().is_none_or(has)
                        && on.as_deref().is_none_or(has)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// SIGKILLs the process groups of every process of the run (of those `orchestrator`
/// started, when given); returns how many processes were found.
fn kill_run_processes(run_id: &str, orchestrator: Option<u32>, cluster: Option<u32>) -> usize {
    let pids = processes_with(run_id, orchestrator, cluster);
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
        let child = cluster.spawn(0, 1, Some(&output), &command).unwrap();
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
        assert_ne!(child.wait().await.unwrap(), 0);
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
    async fn ending_a_cluster_leaves_the_stages_of_the_runs_other_cluster_running() {
        // A replacement asked for on a notice is released unused while the current
        // cluster runs stages of the same run (the same run id, the same orchestrator).
        let scratch = tempfile::tempdir().unwrap();
        let clusters = LocalClusters::new(scratch.path().join("wf/run-3"), "run-test-two");
        let mut current = clusters.create(1, Market::Spot).unwrap();
        let mut replacement = clusters.create(2, Market::Spot).unwrap();
        let command = StageCommand {
            line: "sleep 30".into(),
            env: vec![("RESPAWN_RUN_ID".into(), "run-test-two".into())],
            cwd: scratch.path().to_path_buf(),
            log: clusters.log_path("s", 1),
        };
        let child = current.spawn(0, 1, None, &command).unwrap();
        for _ in 0..100 {
            if !run_processes("run-test-two").is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        replacement.end_all(true).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !run_processes("run-test-two").is_empty(),
            "the current cluster's stage was killed with the replacement"
        );
        current.end_all(true).await;
        assert_ne!(child.wait().await.unwrap(), 0);
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
        let child = cluster.spawn(0, 1, Some(&output), &command).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(clusters.sweep().unwrap() >= 1);
        assert_ne!(child.wait().await.unwrap(), 0);
        assert!(!cluster.dir().exists());
        assert!(clusters.root().join("logs").exists(), "logs are kept");
    }
}
