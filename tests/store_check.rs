//! `respawn store check URL` through the binary: the S3 test server passes; the same server
//! without its per-key serializing (s3s-fs on its own, which checks a condition and then
//! writes) fails the races, and `run` then refuses the store with the reason until a new
//! check passes. The local directory store passes too.

mod support;

use std::sync::atomic::Ordering;
use support::s3_server::{BUCKET, S3Server};

fn check(server: &S3Server, extra: &[&str]) -> support::Run {
    let mut args = vec!["store", "check", "s3://respawn-test/team"];
    args.extend_from_slice(extra);
    support::respawn_env(args, &server.env(), &[])
}

fn run_quickstart(server: &S3Server, dir: &std::path::Path) -> support::Run {
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
            &format!("s3://{BUCKET}/team"),
        ],
        &env,
        &[],
    )
}

#[test]
fn a_store_that_decides_conditional_writes_atomically_passes_every_check() {
    let server = S3Server::start();
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
    let verdict = server
        .root()
        .join(BUCKET)
        .join("team/.respawn-check/verdict.json");
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(verdict).unwrap()).unwrap();
    assert_eq!(verdict["passed"], true);
    // Nothing else is left behind.
    let mut objects = std::collections::BTreeMap::new();
    let root = server.root().join(BUCKET).join("team");
    support::walk(&root, &root, &mut objects);
    assert!(
        objects.is_empty(),
        "{:?}",
        objects.keys().collect::<Vec<_>>()
    );
    let leftovers: Vec<_> = walk_all(&root.join(".respawn-check"))
        .into_iter()
        .filter(|p| !p.ends_with("verdict.json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
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
fn a_store_that_checks_then_writes_fails_the_races_and_run_refuses_it_until_checked_again() {
    let server = S3Server::start();
    server.faults.non_atomic.store(true, Ordering::SeqCst);
    // The cheap probe at start cannot see this: one writer at a time is refused correctly.
    let run = check(&server, &[]);
    run.store_error();
    println!("{}", run.stdout);
    assert!(
        run.stdout.contains("FAIL  create-only race"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .contains("two orchestrators could both create the lease"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("failed `respawn store check`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("winners"), "{}", run.stderr);

    let dir = tempfile::tempdir().unwrap();
    let refused = run_quickstart(&server, dir.path());
    refused.store_error();
    assert!(
        refused.stderr.contains("failed `respawn store check`")
            && refused.stderr.contains("create-only race"),
        "run names the reason:\n{}",
        refused.stderr
    );
    assert!(
        !server
            .root()
            .join(BUCKET)
            .join("team/ecommerce-sessions")
            .exists(),
        "nothing was run"
    );

    // Fixed, checked again: the store is trusted again.
    server.faults.non_atomic.store(false, Ordering::SeqCst);
    check(&server, &["--rounds", "5"]).success();
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
