//! The stage supervisor of a local cluster (`respawn-supervise supervise-cluster`), spoken
//! to over its own wire as the orchestrator does: every stage it starts is reported ended
//! exactly once, whatever else ends or is killed at the same moment.

use respawn_run::cluster::wire::{Launch, Report, Request};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn launch(token: u64, dir: &std::path::Path, line: &str) -> Request {
    Request::Launch(Launch {
        token,
        cwd: dir.as_os_str().to_owned(),
        log: dir.join(format!("{token}.log")).into_os_string(),
        line: line.into(),
        set: Vec::new(),
        remove: Vec::new(),
    })
}

/// Five rounds: twenty stages that end by themselves at about the same moment, and five
/// that leave a daemon outside their process group and are killed at that moment. The
/// supervisor kills a killed stage's daemons (strays it adopted) and reaps them while the
/// other stages end: none of their exits may be taken for a stray's.
#[test]
fn every_stage_is_reported_ended_once_while_killed_stages_strays_are_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut supervisor = Command::new(env!("CARGO_BIN_EXE_respawn-supervise"))
        .arg("supervise-cluster")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the supervisor starts");
    let mut input = supervisor.stdin.take().unwrap();
    let output = supervisor.stdout.take().unwrap();
    let (tx, reports) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if let Some(Report::Exited { token, code }) = Report::decode(&line) {
                let _ = tx.send((token, code));
            }
        }
    });
    let mut ended: BTreeMap<u64, Vec<i32>> = BTreeMap::new();
    let mut token = 0;
    for round in 0..5 {
        let mut frames = Vec::new();
        let mut killed = Vec::new();
        let first = token + 1;
        for stage in 0..25 {
            token += 1;
            let line = if stage < 5 {
                killed.push(token);
                "setsid sleep 30 & setsid sleep 30 & sleep 30"
            } else {
                "sleep 0.3"
            };
            frames.extend(launch(token, dir.path(), line).encode());
        }
        input.write_all(&frames).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let kills: Vec<u8> = (killed.iter())
            .flat_map(|&token| Request::Kill { token }.encode())
            .collect();
        input.write_all(&kills).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while (first..=token).any(|t| !ended.contains_key(&t)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((t, code)) = reports.recv_timeout(left) else {
                let missing: Vec<u64> =
                    (first..=token).filter(|t| !ended.contains_key(t)).collect();
                panic!("round {round}: no exit reported for stages {missing:?}");
            };
            ended.entry(t).or_default().push(code);
        }
        for &t in &killed {
            assert_eq!(ended[&t], vec![137], "killed stage {t}");
        }
        for t in (first..=token).filter(|t| !killed.contains(t)) {
            assert_eq!(ended[&t], vec![0], "stage {t} ended by itself");
        }
    }
    drop(input);
    let status = supervisor.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
