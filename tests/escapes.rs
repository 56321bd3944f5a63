//! Stage processes never outlive their orchestrator, their cluster or their run on a local
//! cluster (issue 18, item 1): children left behind by a stage's shell, daemons started with
//! `setsid` or `nohup`, even ones that clear their environment, are all ended.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};
use support::processes_of;

/// A stage that leaves behind a background child, a `setsid` daemon, a `nohup` daemon and a
/// daemon without respawn's environment (`env -i`), recording each one's pid in `pids`.
fn leaky_workflow(dir: &Path, then: &str) -> std::path::PathBuf {
    let pids = dir.join("pids");
    let file = dir.join("leaky.yaml");
    std::fs::write(
        &file,
        format!(
            "name: leaky\n\
             cluster: {{ provider: local, market: spot, provision_time: 1s }}\n\
             stages:\n  \
               leak:\n    \
                 run: >-\n      \
                   sleep 300 & echo $! >> {pids};\n      \
                   setsid sleep 301 & echo $! >> {pids};\n      \
                   nohup sleep 302 >/dev/null 2>&1 & echo $! >> {pids};\n      \
                   env -i setsid sleep 303 & echo $! >> {pids};\n      \
                   {then}\n    \
                 estimate: 1m\n",
            pids = pids.display()
        ),
    )
    .unwrap();
    file
}

fn start(dir: &Path, file: &Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = support::command()
        .args(["run", &file.display().to_string(), "--batch", "b1"])
        .args(["--store", &dir.join("store").display().to_string()])
        .args(["--format", "json"])
        .env("RESPAWN_SCRATCH", dir.join("scratch"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Waits until the stage has recorded its four leftovers; returns their pids.
fn leftovers(dir: &Path) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids: Vec<i32> = std::fs::read_to_string(dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.len() == 4 {
            return pids;
        }
        assert!(Instant::now() < deadline, "the stage started its leftovers");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie is dead: only its parent has not read its status yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

fn assert_all_gone_within(pids: &[i32], run_id: &str, limit: Duration) {
    let since = Instant::now();
    while since.elapsed() < limit {
        if pids.iter().all(|&p| !alive(p)) && processes_of(run_id).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    for &pid in &left {
        // SAFETY: kill(2) has no memory-safety preconditions; the test cleans up.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    panic!(
        "still running after {limit:?}: {left:?} of {pids:?}, run processes {:?}",
        processes_of(run_id)
    );
}

fn run_id_of(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "run-started" {
            return event["run_id"].as_str().unwrap().to_string();
        }
    }
    panic!("no run-started event");
}

#[test]
fn stage_children_and_daemons_die_within_two_seconds_of_the_orchestrator_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let file = leaky_workflow(dir.path(), "sleep 304; mkdir -p {{ output }}");
    let (mut child, mut lines) = start(dir.path(), &file);
    let run_id = run_id_of(&mut lines);
    let pids = leftovers(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_all_gone_within(&pids, &run_id, Duration::from_secs(2));
}

#[test]
fn a_succeeded_run_leaves_no_child_or_daemon_of_its_stages_running() {
    let dir = tempfile::tempdir().unwrap();
    let file = leaky_workflow(dir.path(), "echo done > {{ output }}/done");
    let (child, mut lines) = start(dir.path(), &file);
    let run_id = run_id_of(&mut lines);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{rest:?}");
    let pids = leftovers(dir.path());
    assert_all_gone_within(&pids, &run_id, Duration::from_secs(1));
}

#[test]
fn a_cluster_loss_ends_the_children_and_daemons_of_its_stages() {
    let dir = tempfile::tempdir().unwrap();
    // The first attempt leaks and waits; after the loss the second one finishes.
    let file = leaky_workflow(
        dir.path(),
        "if [ $RESPAWN_ATTEMPT = 1 ]; then sleep 304; fi; mkdir -p {{ output }}",
    );
    let (mut child, mut lines) = start(dir.path(), &file);
    let run_id = run_id_of(&mut lines);
    let pids = leftovers(dir.path());
    let interrupt = support::respawn([
        "interrupt",
        "leaky",
        "--store",
        &dir.path().join("store").display().to_string(),
    ]);
    interrupt.success();
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "cluster-lost" {
            break;
        }
    }
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(2) && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    for &pid in &left {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert_eq!(left, Vec::<i32>::new(), "the loss ended every leftover");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert_all_gone_within(&[], &run_id, Duration::from_secs(1));
}

/// Starts `respawn run` of the leaky workflow's batch; returns the child and its events.
fn start_json(dir: &Path, file: &Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    start(dir, file)
}

fn wait_for(lines: &mut Lines<BufReader<ChildStdout>>, kind: &str) {
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == kind {
            return;
        }
    }
    panic!("no {kind} event");
}

#[test]
fn item_6_an_orchestrator_that_lost_its_lease_leaves_the_new_owners_cluster_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.yaml");
    std::fs::write(
        &file,
        "name: slow\n\
         cluster: { provider: local, market: spot, provision_time: 1s }\n\
         stages:\n  \
           wait:\n    \
             run: sleep 4; mkdir -p {{ output }}\n    \
             estimate: 1m\n",
    )
    .unwrap();
    let (mut old, mut old_events) = start_json(dir.path(), &file);
    wait_for(&mut old_events, "launch");
    // The old orchestrator is paused; its lease is made to look like a dead process's, so
    // a new orchestrator takes the run over at once (as after the lease's expiry).
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(old.id() as i32, libc::SIGSTOP) };
    let lease = dir.path().join("store/slow/leases/b1");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&lease).unwrap()).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    record["holder"]["pid"] = gone.id().into();
    std::fs::write(&lease, serde_json::to_vec(&record).unwrap()).unwrap();
    let (new, mut new_events) = start_json(dir.path(), &file);
    wait_for(&mut new_events, "launch");
    // The old one wakes up, finds its cluster gone and its lease lost.
    // SAFETY: as above.
    unsafe { libc::kill(old.id() as i32, libc::SIGCONT) };
    let _: Vec<_> = old_events.collect();
    let old_status = old.wait().unwrap();
    let rest: Vec<String> = new_events.map(|l| l.unwrap()).collect();
    let output = new.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "the new owner finished\n{rest:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !rest.iter().any(|l| l.contains("\"cluster-lost\"")),
        "the new owner saw no spurious interruption: {rest:?}"
    );
    assert_eq!(
        old_status.code(),
        Some(5),
        "the old one ended by itself, reporting the lost lease"
    );
}

#[test]
fn a_stages_children_and_daemons_are_ended_when_its_shell_exits_before_the_next_stage_starts() {
    let dir = tempfile::tempdir().unwrap();
    let leaky = leaky_workflow(dir.path(), "mkdir -p {{ output }}");
    let alive = dir.path().join("alive");
    let mut text = std::fs::read_to_string(&leaky).unwrap();
    text.push_str(&format!(
        "  after:\n    \
           needs: [leak]\n    \
           run: >-\n      \
             for p in $(cat {pids}); do kill -0 $p 2>/dev/null && echo $p >> {alive}; done;\n      \
             mkdir -p {{{{ output }}}}\n    \
           estimate: 1m\n",
        pids = dir.path().join("pids").display(),
        alive = alive.display(),
    ));
    std::fs::write(&leaky, text).unwrap();
    let (child, mut lines) = start(dir.path(), &leaky);
    let run_id = run_id_of(&mut lines);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{rest:?}");
    assert_eq!(leftovers(dir.path()).len(), 4);
    assert_eq!(
        std::fs::read_to_string(&alive).unwrap_or_default(),
        "",
        "none of the first stage's leftovers lived on into the second stage"
    );
    assert_all_gone_within(&[], &run_id, Duration::from_secs(1));
}
