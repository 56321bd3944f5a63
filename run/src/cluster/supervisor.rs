//! The supervisor of one stage on a local cluster: `respawn supervise-stage LINE` (a hidden
//! command), started by the orchestrator as the leader of the stage's process group.
//!
//! It runs `sh -c LINE` in its group and is a child subreaper (`PR_SET_CHILD_SUBREAPER`),
//! so every process the stage starts stays its descendant, even a daemon that leaves the
//! group with `setsid`, or its environment with `env -i`. It ends that whole tree
//! (SIGKILL) when:
//! - the stage's shell exits: a stage is over when its command is; whatever it left
//!   running would otherwise write into a work-table after its commit;
//! - its standard input reaches end of file: the orchestrator holds the other end of that
//!   pipe, so this happens when the orchestrator dies (even by SIGKILL, which no signal
//!   handler sees), or when it drops the pipe to end the cluster at once.
//!
//! SIGTERM and SIGINT sent to the group are for the stage: the supervisor keeps waiting
//! for it. Its exit code is the stage's (128 + N when a signal N ended it).

use std::io::Read;

/// Runs `line` under supervision; returns the exit code for the supervisor's process.
pub fn supervise(line: &str) -> i32 {
    // SAFETY: prctl and signal have no memory-safety preconditions; the handler is a
    // function that does nothing, which is async-signal-safe. Handlers (unlike ignored
    // signals) are reset to the default in the stage's shell at exec.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::signal(libc::SIGTERM, ignore as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, ignore as *const () as libc::sighandler_t);
    }
    // `/bin/sh` by its path: a search of the PATH costs a failed exec per entry before it.
    let shell = if std::path::Path::new("/bin/sh").is_file() {
        "/bin/sh"
    } else {
        "sh"
    };
    let stage = match std::process::Command::new(shell)
        .arg("-c")
        .arg(line)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => child.id() as i32,
        Err(error) => {
            eprintln!("respawn: cannot start the stage's shell: {error}");
            return 127;
        }
    };
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 64];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        end_descendants();
        // SAFETY: _exit ends the process at once, which is the point: the main thread may
        // be blocked in waitpid.
        unsafe { libc::_exit(128 + libc::SIGKILL) }
    });
    let code = wait_for(stage);
    end_descendants();
    code
}

extern "C" fn ignore(_: libc::c_int) {}

/// Reaps children (orphans adopted as subreaper among them) until `stage` ends; returns
/// its exit code.
fn wait_for(stage: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == stage {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            return 128 + libc::WTERMSIG(status);
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
        reap();
        if no_children() {
            return;
        }
        let live = descendants(me);
        reap();
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
    // ended is reaped here, as `reap` would.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

/// Live (not zombie) descendants of `root`, from `/proc/<pid>/stat`.
pub fn descendants(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parents = Vec::new();
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
        parents.push((pid, parent, state == "Z" || state == "X"));
    }
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
