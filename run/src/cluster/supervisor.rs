//! The supervisor of a local cluster's stages: `respawn-supervise supervise-cluster` (or
//! the hidden `respawn supervise-cluster`), one process per local cluster, started by the
//! orchestrator with a pipe for requests (its standard input) and one for reports (its
//! standard output).
//!
//! For each stage it forks a copy of itself, the stage's keeper, which leads the stage's
//! own process group, is a child subreaper (`PR_SET_CHILD_SUBREAPER`), and runs
//! `sh -c LINE`. Every process the stage starts stays the keeper's descendant, even a
//! daemon that leaves the group with `setsid` or its environment with `env -i`. The keeper
//! ends that whole tree (SIGKILL) when the stage's shell exits, since a stage is over when
//! its command is and whatever it left running would otherwise write into a work-table
//! after its commit. Its exit code is the stage's (128 + N when a signal N ended it).
//! Forking a small single-threaded process, rather than starting a program per stage,
//! saves each stage a program start (about a millisecond on a virtual machine, where
//! every start of the C library asks the CPU its features through trapped instructions).
//!
//! The supervisor itself:
//! - reports each keeper's pid when it starts and the stage's exit code when it ends;
//! - on `kill`, SIGKILLs a keeper's group; as a subreaper it then adopts whatever of that
//!   stage left the group, and kills it too;
//! - on `signal`, sends a signal to every keeper's group: SIGTERM and SIGINT are for the
//!   stages (keepers wait on);
//! - when its standard input reaches end of file, kills every process under it and exits.
//!   Only the orchestrator holds the other end of that pipe, so this happens when the
//!   orchestrator dies (even by SIGKILL, which no signal handler sees) or ends the cluster.
//!
//! It uses only the standard library and libc, so `respawn-supervise` compiles this one
//! file on its own.

pub use super::wire::{Frames, Launch, Report, Request};
use std::collections::BTreeMap;
use std::io::Write;

/// The subcommand that runs a cluster's supervisor.
pub const COMMAND: &str = "supervise-cluster";

/// Runs a cluster's supervisor until its standard input ends; returns its exit code.
pub fn supervise_cluster() -> i32 {
    // SAFETY: prctl, sigprocmask and signalfd have no memory-safety preconditions; the
    // set is initialised by sigemptyset before use.
    let signals = unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        libc::sigaddset(&mut mask, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut());
        libc::signalfd(-1, &mask, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if signals < 0 {
        eprintln!(
            "respawn: cannot watch the stages: {}",
            std::io::Error::last_os_error()
        );
        return 1;
    }
    let mut keepers = Keepers {
        by_pid: BTreeMap::new(),
        signals,
        input: Frames::default(),
    };
    loop {
        let mut fds = [
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll reads and writes only the two entries of `fds`.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            keepers.reap();
        }
        if fds[0].revents != 0 && !keepers.read_requests() {
            keepers.end_all();
            return 0;
        }
    }
}

/// The supervisor's state: the keeper of each running stage (its pid, and the token
/// of its stage).
struct Keepers {
    by_pid: BTreeMap<i32, u64>,
    signals: i32,
    input: Frames,
}

impl Keepers {
    /// Reads what is there of the requests and carries out each whole one; false when the
    /// orchestrator's end of the pipe is closed.
    fn read_requests(&mut self) -> bool {
        let mut buffer = [0u8; 64 * 1024];
        // SAFETY: read writes at most `buffer.len()` bytes into `buffer`.
        let n = unsafe { libc::read(0, buffer.as_mut_ptr().cast(), buffer.len()) };
        if n == 0 {
            return false;
        }
        if n < 0 {
            return std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
        }
        self.input.push(&buffer[..n as usize]);
        while let Some(frame) = self.input.next_body() {
            match Request::decode(&frame) {
                Some(request) => self.carry_out(request),
                None => eprintln!("respawn: the stage supervisor got a malformed request"),
            }
        }
        true
    }

    fn carry_out(&mut self, request: Request) {
        match request {
            Request::Launch(launch) => self.launch(launch),
            Request::Kill { token } => {
                for (&pid, _) in self.by_pid.iter().filter(|(_, t)| **t == token) {
                    // SAFETY: killpg has no memory-safety preconditions.
                    unsafe { libc::killpg(pid, libc::SIGKILL) };
                }
            }
            Request::Signal { signal } => {
                for &pid in self.by_pid.keys() {
                    // SAFETY: as above.
                    unsafe { libc::killpg(pid, signal) };
                }
            }
        }
    }

    fn launch(&mut self, launch: Launch) {
        let me = std::process::id() as i32;
        // SAFETY: this process has one thread, so the child may go on running Rust code.
        match unsafe { libc::fork() } {
            0 => keep(&launch, self.signals, me),
            -1 => {
                eprintln!(
                    "respawn: cannot start a stage: {}",
                    std::io::Error::last_os_error()
                );
                report(&Report::Exited {
                    token: launch.token,
                    code: 127,
                });
            }
            pid => {
                self.by_pid.insert(pid, launch.token);
                report(&Report::Started {
                    token: launch.token,
                    pid,
                });
            }
        }
    }

    /// Reaps the children that ended and reports the keepers among them. A keeper that was
    /// killed left the rest of its stage to this process: that is killed too.
    fn reap(&mut self) {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        // SAFETY: read writes at most `info.len()` bytes into `info`.
        while unsafe { libc::read(self.signals, info.as_mut_ptr().cast(), info.len()) } > 0 {}
        if self.reap_children() {
            self.end_strays();
        }
    }

    /// Reaps every child that ended and reports the keepers among them (a stray's end is
    /// nobody's news, a keeper's is its stage's): true when a keeper was killed.
    fn reap_children(&mut self) -> bool {
        let mut killed = false;
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes only to `status`.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return killed;
            }
            if let Some(token) = self.by_pid.remove(&pid) {
                killed |= libc::WIFSIGNALED(status);
                report(&Report::Exited {
                    token,
                    code: code_of(status),
                });
            }
        }
    }

    /// Kills every process under this one that no running keeper holds. The keepers that
    /// end meanwhile are reported as they are reaped.
    fn end_strays(&mut self) {
        let me = std::process::id() as i32;
        for _ in 0..100 {
            let strays: Vec<i32> = children_of(me)
                .into_iter()
                .filter(|pid| !self.by_pid.contains_key(pid))
                .flat_map(|pid| std::iter::once(pid).chain(descendants(pid)))
                .collect();
            if strays.is_empty() {
                return;
            }
            for pid in strays {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            self.reap_children();
        }
    }

    fn end_all(&mut self) {
        for &pid in self.by_pid.keys() {
            // SAFETY: killpg has no memory-safety preconditions.
            unsafe { libc::killpg(pid, libc::SIGKILL) };
        }
        end_descendants();
    }
}

fn report(report: &Report) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(report.encode().as_bytes())
        .and_then(|()| out.flush());
}

/// The keeper of one stage, in the forked child: never returns.
fn keep(launch: &Launch, signals: i32, supervisor: i32) -> ! {
    let code = std::panic::catch_unwind(|| {
        // SAFETY: these calls have no memory-safety preconditions; the handler is a
        // function that does nothing, which is async-signal-safe. Handlers (unlike ignored
        // signals) are reset to the default in the stage's shell at exec.
        unsafe {
            libc::close(signals);
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != supervisor {
                // The supervisor died before the line above could take effect.
                libc::_exit(128 + libc::SIGKILL);
            }
            libc::signal(libc::SIGTERM, ignore as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, ignore as *const () as libc::sighandler_t);
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut mask);
            libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
            // The orchestrator's pipes stay with the supervisor.
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::close(null);
        }
        run_stage(launch)
    })
    .unwrap_or(127);
    // SAFETY: _exit ends this process at once, without the supervisor's exit handlers.
    unsafe { libc::_exit(code) }
}

/// Runs the stage's shell, waits for it, ends whatever it left; returns its exit code.
fn run_stage(launch: &Launch) -> i32 {
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)
    {
        Ok(log) => log,
        Err(error) => {
            let log = std::path::Path::new(&launch.log).display();
            eprintln!("respawn: cannot open the stage's log {log}: {error}");
            return 127;
        }
    };
    // This keeper's own messages go to the log too.
    // SAFETY: dup2 has no memory-safety preconditions.
    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&log), 2) };
    // `/bin/sh` by its path: a search of the PATH costs a failed exec per entry before it.
    let shell = if std::path::Path::new("/bin/sh").is_file() {
        "/bin/sh"
    } else {
        "sh"
    };
    let mut command = std::process::Command::new(shell);
    command.arg("-c").arg(&launch.line).current_dir(&launch.cwd);
    for key in &launch.remove {
        command.env_remove(key);
    }
    command.envs(launch.set.iter().map(|(k, v)| (k, v)));
    let spawned = log.try_clone().and_then(|out| {
        command
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
    });
    let code = match spawned {
        Ok(child) => wait_for(child.id() as i32),
        Err(error) => {
            eprintln!("respawn: cannot start the stage's shell: {error}");
            127
        }
    };
    end_descendants();
    code
}

extern "C" fn ignore(_: libc::c_int) {}

fn code_of(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// Reaps children (orphans adopted as subreaper among them) until `stage` ends; returns
/// its exit code.
fn wait_for(stage: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == stage {
            return code_of(status);
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 1;
        }
    }
}

/// SIGKILLs every live descendant of this process, again until none is left (a process
/// may fork while the others are killed), and reaps them. A stage that left nothing
/// behind, the usual case, costs one `waitpid` and no scan of `/proc`.
fn end_descendants() {
    let me = std::process::id() as i32;
    for _ in 0..500 {
        reap_any();
        if no_children() {
            return;
        }
        let live = descendants(me);
        reap_any();
        if live.is_empty() {
            return;
        }
        for pid in live {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// True when this process has no child at all, running or not yet reaped. As a subreaper
/// it inherits every orphan of the stage's tree, so no child means no descendant.
fn no_children() -> bool {
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`; WNOHANG never blocks, and a child that
    // ended is reaped here, as `reap_any` would.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

fn reap_any() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

/// Every process, its parent, and whether it is a zombie, from `/proc/<pid>/stat`.
fn process_table() -> Vec<(i32, i32, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut table = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap_or("");
        let Some(parent) = fields.next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        table.push((pid, parent, state == "Z" || state == "X"));
    }
    table
}

/// The live children of `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    process_table()
        .into_iter()
        .filter(|&(_, of, dead)| of == parent && !dead)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Live (not zombie) descendants of `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    let parents = process_table();
    let mut found = vec![root];
    let mut live = Vec::new();
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        next += 1;
        for &(pid, of, dead) in &parents {
            if of == parent && !found.contains(&pid) {
                found.push(pid);
                if !dead {
                    live.push(pid);
                }
            }
        }
    }
    live
}
