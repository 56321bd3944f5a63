//! `respawn store check URL` through the binary: the S3 test server passes; the same server
//! without its per-key serializing (s3s-fs on its own, which checks a condition and then
//! writes) fails the races, and `run` then refuses the store, at any prefix of the bucket,
//! with the reason until a new check passes; a server without object tags passes with a
//! warning. A run's first use of a bucket never checked checks it. The local directory
//! store passes too.

mod support;

use std::sync::atomic::Ordering;
use support::s3_server::{BUCKET, S3Server};

fn check(server: &S3Server, extra: &[&str]) -> support::Run {
    let mut args = vec!["store", "check", "s3://respawn-test/team"];
    args.extend_from_slice(extra);
    support::respawn_env(args, &server.env(), &[])
}

fn run_quickstart(server: &S3Server, dir: &std::path::Path) -> support::Run {
    run_quickstart_at(server, dir, "team")
}

fn run_quickstart_at(server: &S3Server, dir: &std::path::Path, prefix: &str) -> support::Run {
    let file = dir.join("shop.yaml");
    std::fs::write(&file, support::small_ecommerce(&[])).unwrap();
    let mut env = server.env();
    env.push(("RESPAWN_SCRATCH", dir.join("scratch").display().to_string()));
    support::respawn_env(
        [
            "run",
            &file.display().to_string(),
            "--batch",
            "2019-10-01",
            "--store",
            &format!("s3://{BUCKET}/{prefix}"),
        ],
        &env,
        &[],
    )
}

#[test]
fn a_store_that_decides_conditional_writes_atomically_passes_every_check() {
    let server = S3Server::start_unchecked();
    let run = check(&server, &[]);
    run.success();
    for name in [
        "create-only race",
        "If-Match race",
        "create-only race (8 MiB bodies)",
        "If-Match race (8 MiB bodies)",
        "concurrent overwrites",
        "read-after-write listing",
        "multipart upload",
        "object tags",
    ] {
        assert!(
            run.stdout.contains(&format!("pass  {name}")),
            "{name}:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("the store passed"), "{}", run.stdout);
    let verdict = verdict_of(&server).expect("a verdict at the bucket's root");
    assert_eq!(verdict["passed"], true);
    assert_eq!(verdict["by"], "respawn store check");
    // Nothing else is left behind.
    let mut objects = std::collections::BTreeMap::new();
    let root = server.root().join(BUCKET).join("team");
    support::walk(&root, &root, &mut objects);
    assert!(
        objects.is_empty(),
        "{:?}",
        objects.keys().collect::<Vec<_>>()
    );
    let leftovers: Vec<_> = walk_all(&server.root().join(BUCKET))
        .into_iter()
        .filter(|p| !p.ends_with(".respawn-check/verdict.json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The verdict kept at the bucket's root, if any.
fn verdict_of(server: &S3Server) -> Option<serde_json::Value> {
    let path = server
        .root()
        .join(BUCKET)
        .join(".respawn-check/verdict.json");
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

fn walk_all(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_all(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_store_that_checks_then_writes_is_refused_at_first_use_at_every_prefix_until_checked_again() {
    let server = S3Server::start_unchecked();
    server.faults.non_atomic.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    // The cheap probe at start cannot see this (one writer at a time is refused correctly):
    // the run checks the bucket it never saw, and refuses it.
    let refused = run_quickstart(&server, dir.path());
    refused.store_error();
    assert!(
        refused.stderr.contains("failed `respawn store check`")
            && refused.stderr.contains("race")
            && refused.stderr.contains("winners"),
        "run names the reason:\n{}",
        refused.stderr
    );
    let verdict = verdict_of(&server).expect("the first use's verdict is kept");
    assert_eq!(verdict["passed"], false);
    assert_eq!(verdict["by"], "a run, on first use of the endpoint");
    let nothing_run = |prefix: &str| {
        let runs = server
            .root()
            .join(BUCKET)
            .join(prefix)
            .join("ecommerce-sessions");
        assert!(!runs.exists(), "nothing was run at {prefix}");
    };
    nothing_run("team");

    // The refusal is the bucket's, not the prefix's: another team's prefix is refused too,
    // at once, from the kept verdict.
    let other = run_quickstart_at(&server, dir.path(), "other");
    other.store_error();
    assert!(
        other.stderr.contains("failed `respawn store check`"),
        "{}",
        other.stderr
    );
    nothing_run("other");

    // The thorough check says the same, property by property.
    let run = check(&server, &["--rounds", "5"]);
    run.store_error();
    assert!(
        run.stdout.contains("FAIL  create-only race") || run.stdout.contains("FAIL  If-Match race"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("two orchestrators could both"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("pass  object tags"), "{}", run.stdout);

    // Fixed, checked again: the store is trusted again, at every prefix.
    server.faults.non_atomic.store(false, Ordering::SeqCst);
    check(&server, &["--rounds", "5"]).success();
    run_quickstart(&server, dir.path()).success();
    run_quickstart_at(&server, dir.path(), "other").success();
}

#[test]
fn a_first_run_on_a_bucket_never_checked_checks_it_once_and_goes_ahead() {
    let server = S3Server::start_unchecked();
    let dir = tempfile::tempdir().unwrap();
    let first = run_quickstart(&server, dir.path());
    first.success();
    assert!(
        first
            .stderr
            .contains(&format!("first use of s3://{BUCKET}/ at http://127.0.0.1:"))
            && first.stderr.contains("passed"),
        "{}",
        first.stderr
    );
    let verdict = verdict_of(&server).expect("the first use's verdict is kept");
    assert_eq!(verdict["passed"], true, "{verdict}");
    assert_eq!(verdict["by"], "a run, on first use of the endpoint");
    // Checked once: the next run, at another prefix of the bucket too, trusts the verdict.
    let again = run_quickstart_at(&server, dir.path(), "other");
    again.success();
    assert!(!again.stderr.contains("first use"), "{}", again.stderr);
}

#[test]
fn a_server_without_object_tags_passes_with_a_warning() {
    // s3s-fs on its own: tagging calls answer NotImplemented, x-amz-tagging is ignored.
    let server = S3Server::start_unchecked();
    server.faults.no_tagging.store(true, Ordering::SeqCst);
    let run = check(&server, &["--rounds", "3"]);
    run.success();
    assert!(run.stdout.contains("warn  object tags"), "{}", run.stdout);
    assert!(run.stdout.contains("not implemented"), "{}", run.stdout);
    assert!(
        run.stdout.contains("lifecycle safety net"),
        "{}",
        run.stdout
    );
    for name in ["create-only race", "If-Match race", "multipart upload"] {
        assert!(
            run.stdout.contains(&format!("pass  {name}")),
            "{name}:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("passed, with warnings"),
        "{}",
        run.stdout
    );
    let verdict = verdict_of(&server).unwrap();
    assert_eq!(verdict["passed"], true, "{verdict}");
    let dir = tempfile::tempdir().unwrap();
    run_quickstart(&server, dir.path()).success();
}

#[test]
fn the_local_store_passes_and_reports_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = support::respawn([
        "store",
        "check",
        &store.display().to_string(),
        "--rounds",
        "3",
        "--format",
        "json",
    ]);
    run.success();
    let verdict = run.json();
    assert_eq!(verdict["passed"], true, "{verdict}");
    let names: Vec<&str> = verdict["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "create-only race",
            "If-Match race",
            "create-only race (8 MiB bodies)",
            "If-Match race (8 MiB bodies)",
            "concurrent overwrites",
            "read-after-write listing"
        ]
    );
}
