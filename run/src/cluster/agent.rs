//! The orchestrator's side of a local cluster's stage supervisor (see
//! [`super::supervisor`]): it starts the supervisor, sends it requests, and hands each
//! stage's exit code to whoever waits for it.

use super::supervisor::{self, Launch, Report, Request};
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A running supervisor.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    input: Option<ChildStdin>,
    state: Arc<Mutex<State>>,
    next: u64,
}

/// What the supervisor has reported.
#[derive(Debug, Default)]
struct State {
    /// Who waits for each stage asked for that has not ended, for its exit code.
    waiters: BTreeMap<u64, oneshot::Sender<i32>>,
    /// Each started keeper's pid (its process group), until the stage ends.
    pids: BTreeMap<u64, i32>,
    /// The supervisor's reports ended: it exited.
    gone: bool,
}

impl Agent {
    /// Starts `program supervise-cluster` in a process group of its own (a Ctrl-C at the
    /// terminal is the orchestrator's to pass on, not the stages').
    pub fn start(program: &Path) -> io::Result<Agent> {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(program)
            .arg(supervisor::COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let input = child.stdin.take();
        let output = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no pipe"))?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::Builder::new()
            .name("stage-reports".into())
            .spawn(move || read_reports(output, &shared))?;
        Ok(Agent {
            child,
            input,
            state,
            next: 1,
        })
    }

    /// Asks for a stage to start; returns its token and where its exit code will come.
    pub fn launch(&mut self, mut launch: Launch) -> io::Result<(u64, oneshot::Receiver<i32>)> {
        let token = self.next;
        self.next += 1;
        launch.token = token;
        let (tx, rx) = oneshot::channel();
        {
            self.lock().waiters.insert(token, tx);
        }
        if let Err(error) = self.send(&Request::Launch(launch)) {
            self.lock().waiters.remove(&token);
            return Err(error);
        }
        Ok((token, rx))
    }

    /// Ends one stage's processes at once.
    pub fn kill(&mut self, token: u64) {
        let _ = self.send(&Request::Kill { token });
    }

    /// Sends `signal` to every running stage's process group.
    pub fn signal(&mut self, signal: i32) {
        let _ = self.send(&Request::Signal { signal });
    }

    /// True when no stage asked for is still running.
    pub fn all_ended(&self) -> bool {
        let state = self.lock();
        state.waiters.is_empty() || state.gone
    }

    /// Closes the supervisor's input, so that it kills every process of the cluster and
    /// exits; after at most a second it and every stage's group are SIGKILLed.
    pub async fn end(&mut self) {
        self.input.take();
        let since = Instant::now();
        while !self.lock().gone && since.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pids: Vec<i32> = self.lock().pids.values().copied().collect();
        let agent = self.child.id() as i32;
        for group in pids.into_iter().chain([agent]) {
            // SAFETY: killpg has no memory-safety preconditions; a group already gone is
            // what we want.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }

    fn send(&mut self, request: &Request) -> io::Result<()> {
        let input = self
            .input
            .as_mut()
            .ok_or_else(|| io::Error::other("the cluster's stage supervisor was ended"))?;
        input.write_all(&request.encode())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads the supervisor's reports until it exits: exit codes go to their waiters. When it
/// is gone, every stage still waited for is given up (its waiter sees the channel close).
fn read_reports(output: std::process::ChildStdout, state: &Mutex<State>) {
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    for line in io::BufReader::new(output).lines() {
        let Ok(line) = line else { break };
        match Report::decode(&line) {
            Some(Report::Started { token, pid }) => {
                lock().pids.insert(token, pid);
            }
            Some(Report::Exited { token, code }) => {
                let mut state = lock();
                state.pids.remove(&token);
                if let Some(waiter) = state.waiters.remove(&token) {
                    let _ = waiter.send(code);
                }
            }
            None => tracing::warn!(%line, "the stage supervisor reported something unknown"),
        }
    }
    let mut state = lock();
    state.gone = true;
    state.waiters.clear();
}
