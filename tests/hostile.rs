//! Hostile inputs and outputs, each a reproduction from issue 18 turned into a test: the
//! binary never panics, never eats the machine, and answers with the documented exit code
//! and a message that names what is wrong.

mod support;

use std::path::{Path, PathBuf};

/// A one-stage workflow on a local on-demand cluster whose stage runs `line`.
fn one_stage(dir: &Path, line: &str) -> PathBuf {
    let file = dir.join("one.yaml");
    std::fs::write(
        &file,
        format!(
            "name: one\n\
             cluster: {{ provider: local, market: spot, provision_time: 1s }}\n\
             stages:\n  \
               only:\n    \
                 run: {line}\n    \
                 estimate: 1m\n"
        ),
    )
    .unwrap();
    file
}

fn run_in(dir: &Path, file: &Path, extra: &[&str]) -> support::Run {
    let mut args = vec![
        "run".to_string(),
        file.display().to_string(),
        "--batch".into(),
        "b1".into(),
        "--store".into(),
        dir.join("store").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    support::respawn_env(
        args,
        &[("RESPAWN_SCRATCH", dir.join("scratch").display().to_string())],
        &[],
    )
}

#[test]
fn item_4_a_workflow_read_from_a_pipe_is_refused_past_the_size_limit_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("endless.yaml");
    let path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: mkfifo reads a valid C string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let block = vec![b'#'; 1 << 20];
            // 64 MiB, far past the 16 MiB limit; the reader may stop early (EPIPE).
            for _ in 0..64 {
                if pipe.write_all(&block).is_err() {
                    break;
                }
            }
        })
    };
    let run = support::respawn(["plan", &fifo.display().to_string()]);
    run.invalid_input();
    assert!(run.stderr.contains("limited to"), "{}", run.stderr);
    assert!(run.stderr.contains("endless.yaml"), "{}", run.stderr);
    writer.join().unwrap();
}

#[test]
fn item_4_dev_zero_as_a_workflow_is_refused_at_the_size_limit() {
    for command in ["plan", "validate"] {
        let run = support::respawn([command, "/dev/zero"]);
        run.invalid_input();
        assert!(run.stderr.contains("/dev/zero"), "{}", run.stderr);
    }
}

#[test]
fn item_8_an_mtti_of_billions_of_years_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(dir.path(), "mkdir -p {{ output }}");
    run_in(dir.path(), &file, &["--chaos", "mtti=584000000000y"]).success();
    let file = file.display().to_string();
    support::respawn(["plan", &file, "--mtti", "584000000000y"]).success();
    support::respawn([
        "simulate",
        &file,
        "--mtti",
        "584000000000y",
        "--trials",
        "3",
    ])
    .success();
}

#[test]
fn item_4_dev_zero_as_a_trace_is_refused_at_the_size_limit() {
    let file = support::workflow("ecommerce-sessions.yaml")
        .display()
        .to_string();
    let run = support::respawn(["simulate", &file, "--trace", "/dev/zero"]);
    run.invalid_input();
    assert!(run.stderr.contains("/dev/zero"), "{}", run.stderr);
}
