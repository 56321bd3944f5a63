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
             retries: 0\n\
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

/// Runs a stage that writes `files` then `line` into its output; expects exit 4 naming
/// `named`, then checks that the same command succeeds once the stage is fixed.
fn refused_then_fixed(line: &str, named: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(
        dir.path(),
        &format!(
            "mkdir -p {{{{ output }}}}/data && echo ok > {{{{ output }}}}/data/part-0 && {line}"
        ),
    );
    let run = run_in(dir.path(), &file, &[]);
    assert_eq!(run.code, 4, "exit 4 for {line}\n{}", run.stderr);
    assert!(
        run.stderr.contains(named),
        "{named} is named:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("work-table"), "{}", run.stderr);
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let mut objects = std::collections::BTreeMap::new();
    let store = dir.path().join("store");
    support::walk(&store, &store, &mut objects);
    assert!(
        !objects.values().any(|bytes| bytes == &passwd),
        "nothing outside the work-table was copied into the store"
    );
    one_stage(
        dir.path(),
        "mkdir -p {{ output }}/data && echo ok > {{ output }}/data/part-0",
    );
    run_in(dir.path(), &file, &[]).success();
}

#[test]
fn item_3_a_symlink_to_a_directory_in_a_work_table_is_refused_with_exit_4_naming_it() {
    refused_then_fixed("ln -s data {{ output }}/alias", "alias");
}

#[test]
fn item_3_a_symlink_to_a_file_outside_a_work_table_is_refused_and_never_followed() {
    refused_then_fixed("ln -s /etc/passwd {{ output }}/users", "users");
}

#[test]
fn item_3_a_fifo_in_a_work_table_is_refused_with_exit_4_naming_it() {
    refused_then_fixed("mkfifo {{ output }}/data/pipe", "data/pipe");
}

#[test]
fn item_12_a_dangling_symlink_is_refused_with_exit_4_naming_it_and_a_fixed_stage_resumes() {
    refused_then_fixed("ln -s nowhere {{ output }}/data/gone", "data/gone");
}

#[test]
fn item_12_a_file_name_with_a_newline_is_refused_with_exit_4_and_a_fixed_stage_resumes() {
    refused_then_fixed(
        "touch \"{{ output }}/bad$(printf '\\nname')\"",
        "bad\\nname",
    );
}

#[test]
fn item_14_an_output_file_named_like_a_temporary_file_is_refused_not_dropped() {
    refused_then_fixed("echo x > {{ output }}/.respawn-tmp-1", ".respawn-tmp-1");
}

/// `respawn ARGS` as an unprivileged user (nobody) when the tests run as root, since
/// root ignores directory permissions; the environment as [`run_in`] sets it. respawn
/// and its stage supervisor run from copies in `dir`: the build may be under a home folder
/// only its owner can enter (a clone in `/root` on a fresh machine).
fn run_unprivileged(dir: &Path, file: &Path) -> support::Run {
    use std::os::unix::process::CommandExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let built = Path::new(env!("CARGO_BIN_EXE_respawn"));
    for name in ["respawn", "respawn-supervise"] {
        std::fs::copy(built.with_file_name(name), bin.join(name)).unwrap();
    }
    let mut command = support::command_of(&bin.join("respawn"));
    command
        .args(["run", &file.display().to_string(), "--batch", "b1"])
        .args(["--store", &dir.join("store").display().to_string()])
        .env("RESPAWN_SCRATCH", dir.join("scratch"))
        .env("NO_COLOR", "1")
        .current_dir(dir);
    // SAFETY: setgid and setuid are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::geteuid() == 0 && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    support::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn item_5_a_read_only_directory_in_a_failed_stage_output_does_not_block_the_resume() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = one_stage(
        dir.path(),
        "mkdir -p {{ output }}/ro && touch {{ output }}/ro/f && chmod 555 {{ output }}/ro && exit 3",
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let failed = run_unprivileged(dir.path(), &file);
    assert_eq!(failed.code, 4, "{}", failed.stderr);
    one_stage(
        dir.path(),
        "mkdir -p {{ output }}/ro && echo ok > {{ output }}/ro/f",
    );
    let resumed = run_unprivileged(dir.path(), &file);
    assert_eq!(resumed.code, 0, "the resume succeeds:\n{}", resumed.stderr);
}

#[test]
fn item_9_credentials_are_never_logged_even_at_trace_level_nor_given_to_stages() {
    let server = support::s3_server::S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(
        dir.path(),
        "env; mkdir -p {{ output }}; env > {{ output }}/env",
    );
    let token = "SessionTokenThatMustNeverBeSeen1234567890";
    let mut env: Vec<(&str, String)> = server.env();
    env.push(("AWS_SESSION_TOKEN", token.into()));
    env.push(("RESPAWN_LOG", "trace".into()));
    env.push((
        "RESPAWN_SCRATCH",
        dir.path().join("scratch").display().to_string(),
    ));
    let secret = env
        .iter()
        .find(|(name, _)| *name == "AWS_SECRET_ACCESS_KEY")
        .map(|(_, value)| value.clone())
        .unwrap();
    let store = format!("s3://{}/team", support::s3_server::BUCKET);
    let run = support::respawn_env(
        [
            "run",
            &file.display().to_string(),
            "--batch",
            "b1",
            "--store",
            &store,
        ],
        &env,
        &[],
    );
    run.success();
    assert!(run.stderr.len() > 10_000, "trace logs were printed");
    for hidden in [token, secret.as_str()] {
        let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains(hidden)).collect();
        assert!(
            lines.is_empty(),
            "a credential is in the logs:\n{}",
            lines.join("\n")
        );
        assert!(
            !run.stdout.contains(hidden),
            "a credential is in the output"
        );
    }
    let root = server.root().join(support::s3_server::BUCKET);
    let mut objects = std::collections::BTreeMap::new();
    support::walk(&root, &root, &mut objects);
    assert!(objects.keys().any(|k| k.contains("/logs/")), "{objects:?}");
    for (key, bytes) in objects {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(token), "{key} holds the session token");
        assert!(!text.contains(&secret), "{key} holds the secret key");
    }
}

#[test]
fn item_7_an_interrupt_during_start_up_does_not_kill_the_orchestrator() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(dir.path(), "sleep 1; mkdir -p {{ output }}");
    let lease = dir.path().join("store/one/leases/b1");
    let child = support::command()
        .args(["run", &file.display().to_string(), "--batch", "b1"])
        .args(["--store", &dir.path().join("store").display().to_string()])
        .env("RESPAWN_SCRATCH", dir.path().join("scratch"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The moment the lease names it, `respawn interrupt` can find the orchestrator.
    let since = std::time::Instant::now();
    while !lease.exists() {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(20),
            "a lease"
        );
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn item_13_a_damaged_run_record_stops_run_and_status_with_exit_3_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(dir.path(), "exit 1");
    assert_eq!(run_in(dir.path(), &file, &[]).code, 4);
    let runs = dir.path().join("store/one/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = run_dir.join("run.json");
    std::fs::write(&record, b"{\"damaged\": ").unwrap();
    one_stage(dir.path(), "mkdir -p {{ output }}");
    let again = run_in(dir.path(), &file, &[]);
    again.store_error();
    assert!(again.stderr.contains("run.json"), "{}", again.stderr);
    assert_eq!(
        std::fs::read_dir(&runs).unwrap().count(),
        1,
        "no new run of the batch was started"
    );
    let status = support::respawn([
        "status",
        &file.display().to_string(),
        "--store",
        &dir.path().join("store").display().to_string(),
    ]);
    status.store_error();
    assert!(status.stderr.contains("run.json"), "{}", status.stderr);
}

#[test]
fn item_10_ctrl_c_keeps_the_interrupted_attempts_log_and_status_does_not_say_running() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(
        dir.path(),
        "echo said-before-ctrl-c; sleep 30; mkdir -p {{ output }}",
    );
    let store = dir.path().join("store").display().to_string();
    let mut child = support::command()
        .args(["run", &file.display().to_string(), "--batch", "b1"])
        .args(["--store", &store, "--format", "json"])
        .env("RESPAWN_SCRATCH", dir.path().join("scratch"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("\"launch\"") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _rest: Vec<_> = lines.collect();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let status = support::respawn([
        "status",
        &file.display().to_string(),
        "--store",
        &store,
        "--format",
        "json",
    ]);
    status.success();
    let json = status.json();
    let stage = &json["stages"][0];
    assert_ne!(stage["state"], "running", "{json}");
    let log = stage["log"]
        .as_str()
        .unwrap_or_else(|| panic!("a log in {json}"));
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("{log}: {e}\n{json}"));
    assert!(text.contains("said-before-ctrl-c"), "{text}");
}

/// A failed run of a one-stage workflow called `name`, with a work-table file added by
/// hand; returns the run's directory in the local store.
fn failed_run_with_work(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(one_stage(dir, "exit 1")).unwrap();
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, text.replace("name: one", &format!("name: {name}"))).unwrap();
    assert_eq!(run_in(dir, &file, &[]).code, 4);
    let runs = dir.join("store").join(name).join("runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let work = run_dir.join("work/only/1");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("part-0"), b"checkpoint").unwrap();
    run_dir
}

fn gc_all(dir: &Path) -> support::Run {
    support::respawn([
        "gc",
        "--older-than",
        "0s",
        "--store",
        &dir.join("store").display().to_string(),
    ])
}

#[test]
fn item_13_gc_stops_with_exit_3_on_a_damaged_run_record_and_keeps_that_workflows_work() {
    let dir = tempfile::tempdir().unwrap();
    let damaged = failed_run_with_work(dir.path(), "one");
    let healthy = failed_run_with_work(dir.path(), "two");
    std::fs::write(damaged.join("run.json"), b"{\"damaged\": ").unwrap();
    let gc = gc_all(dir.path());
    gc.store_error();
    assert!(gc.stderr.contains("one/runs/"), "{}", gc.stderr);
    assert!(gc.stderr.contains("run.json"), "{}", gc.stderr);
    assert!(damaged.join("work/only/1/part-0").exists(), "{}", gc.stdout);
    assert!(
        !healthy.join("work/only/1/part-0").exists(),
        "gc goes on with the other workflows\n{}",
        gc.stdout
    );
}

#[test]
fn item_14_one_unreadable_lease_does_not_stop_gc_for_the_other_workflows() {
    let dir = tempfile::tempdir().unwrap();
    let locked = failed_run_with_work(dir.path(), "one");
    let other = failed_run_with_work(dir.path(), "two");
    let lease = dir.path().join("store/one/leases/b1");
    std::fs::create_dir_all(lease.parent().unwrap()).unwrap();
    std::fs::write(&lease, b"\x00not a lease").unwrap();
    let gc = gc_all(dir.path());
    gc.store_error();
    assert!(gc.stderr.contains("leases/b1"), "{}", gc.stderr);
    assert!(locked.join("work/only/1/part-0").exists(), "{}", gc.stdout);
    assert!(
        !other.join("work/only/1/part-0").exists(),
        "gc goes on with the other workflows\n{}",
        gc.stdout
    );
}

#[test]
fn item_14_status_and_history_on_a_mistyped_local_store_name_it_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(dir.path(), "exit 0").display().to_string();
    let typo = dir.path().join("stroe");
    let typo_arg = typo.display().to_string();
    for args in [
        vec!["status", &file, "--store", &typo_arg],
        vec!["history", "one", "--store", &typo_arg],
    ] {
        let read = support::respawn(&args);
        read.store_error();
        assert!(read.stderr.contains(&typo_arg), "{args:?}: {}", read.stderr);
        assert!(!typo.exists(), "{args:?} created {typo_arg}");
    }
}

#[test]
fn item_14_an_unusable_scratch_directory_is_named_with_exit_3_not_blamed_on_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(dir.path(), "mkdir -p {{ output }}");
    std::fs::write(dir.path().join("a-file"), b"").unwrap();
    let scratch = dir.path().join("a-file/scratch");
    let run = run_in(
        dir.path(),
        &file,
        &["--scratch", &scratch.display().to_string()],
    );
    run.store_error();
    assert!(
        run.stderr.contains(&scratch.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("fix the stage"), "{}", run.stderr);
}

#[test]
fn item_14_deleting_one_file_of_a_published_output_has_it_published_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_stage(
        dir.path(),
        "mkdir -p {{ output }} && echo a > {{ output }}/a && echo bb > {{ output }}/b",
    );
    run_in(dir.path(), &file, &[]).success();
    let output = dir.path().join("store/one/outputs/only/b1");
    std::fs::remove_file(output.join("a")).unwrap();
    let again = run_in(dir.path(), &file, &[]);
    again.success();
    assert!(!again.stdout.contains("nothing to do"), "{}", again.stdout);
    assert!(
        again
            .stdout
            .contains("/a, listed in its _SUCCESS, is missing"),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read(output.join("a")).unwrap(), b"a\n");
    std::fs::write(output.join("b"), b"b").unwrap();
    let resized = run_in(dir.path(), &file, &[]);
    resized.success();
    assert!(
        resized.stdout.contains("/b has 1 bytes"),
        "{}",
        resized.stdout
    );
    assert_eq!(std::fs::read(output.join("b")).unwrap(), b"bb\n");
}
