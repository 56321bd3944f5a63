//! `respawn history`: the monitoring table of a workflow's runs, read from the ledger of a
//! local store or of a real S3 server on loopback, and the errors a bad store gives.

mod support;

use respawn_run::ledger::{Interruption, Layout, RunRecord, RunStatus, Versioned};
use respawn_run::store::{AnyStore, LocalStore, PutMode, S3Options, Store, StoreUrl};
use std::time::{Duration, SystemTime};
use support::s3_server::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};
use support::{respawn, respawn_env};

/// Two runs of `nightly`: one succeeded after an interruption, one still running.
async fn record_two_runs(store: &AnyStore) {
    let layout = Layout::new("nightly");
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let first = RunRecord::new("nightly", "2026-11-20", "run-a", "spot", start);
    let mut first = Versioned::create(store, &layout, first).await.unwrap();
    first
        .update(store, &layout, start + Duration::from_secs(3600), |r| {
            r.status = RunStatus::Succeeded;
            r.finished_at = Some("2026-11-20T03:00:00Z".into());
            r.interruptions.push(Interruption {
                at: "2026-11-20T02:00:00Z".into(),
                market: "spot".into(),
                cause: "chaos".into(),
            });
            r.stages.entry("ingest".into()).or_default().attempts = 2;
            r.stages.entry("report".into()).or_default().attempts = 1;
        })
        .await
        .unwrap();
    let second = RunRecord::new(
        "nightly",
        "2026-11-21",
        "run-b",
        "spot",
        start + Duration::from_secs(86_400),
    );
    Versioned::create(store, &layout, second).await.unwrap();
}

fn local_store(dir: &std::path::Path) -> AnyStore {
    AnyStore::Local(LocalStore::open(dir).unwrap())
}

#[test]
fn history_lists_runs_oldest_first_with_status_interruptions_and_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(record_two_runs(&local_store(dir.path())));
    let store = dir.path().to_str().unwrap();
    let run = respawn(["history", "nightly", "--store", store]);
    run.success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines[0].starts_with("BATCH")
            && lines[0].contains("INTERRUPTIONS")
            && lines[0].contains("ATTEMPTS")
    );
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        first,
        [
            "2026-11-20",
            "run-a",
            "2026-11-18T11:06:40Z",
            "2026-11-20T03:00:00Z",
            "succeeded",
            "spot",
            "1",
            "3",
            // No workflow is kept with these hand-made runs: no prices, no cost.
            "-",
            "-"
        ]
    );
    assert!(
        lines[2].starts_with("2026-11-21") && lines[2].contains("running"),
        "{}",
        lines[2]
    );

    let json = respawn(["history", "nightly", "--store", store, "--format", "json"]);
    let value = json.success().json();
    assert_eq!(value["runs"][0]["run_id"], "run-a");
    assert_eq!(value["runs"][0]["interruptions"], 1);
    assert_eq!(value["runs"][0]["attempts"], 3);
    assert_eq!(value["runs"][1]["status"], "running");
    assert_eq!(value["errors"].as_array().unwrap().len(), 0);
}

#[test]
fn history_of_a_workflow_file_uses_its_name_and_says_when_there_are_no_runs() {
    let dir = tempfile::tempdir().unwrap();
    let run = respawn([
        "history",
        "workflows/quickstart.yaml",
        "--store",
        dir.path().to_str().unwrap(),
    ]);
    run.success();
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("no runs of workflow `quickstart`"),
        "{}",
        run.stderr
    );
}

#[test]
fn history_refuses_a_name_that_is_not_a_workflow_name() {
    let run = respawn(["history", "../etc"]);
    run.invalid_input();
    assert!(
        run.stderr
            .contains("neither a workflow file nor a workflow name"),
        "{}",
        run.stderr
    );
    let run = respawn(["history", "nightly", "--store", "gs://bucket/x"]);
    run.invalid_input();
    assert!(run.stderr.contains("unknown scheme `gs`"), "{}", run.stderr);
}

#[test]
fn a_corrupted_run_record_is_named_and_the_other_runs_still_listed() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = local_store(dir.path());
    runtime.block_on(async {
        record_two_runs(&store).await;
        store
            .put(
                "nightly/runs/run-b/run.json",
                b"{\"format\": 1, \"batch\": ".to_vec(),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
    });
    let run = respawn([
        "history",
        "nightly",
        "--store",
        dir.path().to_str().unwrap(),
    ]);
    run.store_error();
    assert!(run.stdout.contains("run-a"), "{}", run.stdout);
    let object = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("nightly/runs/run-b/run.json");
    assert!(
        run.stderr
            .contains(&format!("error: {} is not valid", object.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn history_reads_an_s3_store_with_credentials_from_the_environment() {
    let server = S3Server::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let options = S3Options {
            endpoint_url: Some(server.endpoint().into()),
            static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
            ..S3Options::default()
        };
        let url = StoreUrl::parse(&format!("s3://{BUCKET}/team")).unwrap();
        record_two_runs(&AnyStore::open(&url, &options).await.unwrap()).await;
    });
    let run = respawn_env(
        [
            "history",
            "nightly",
            "--store",
            &format!("s3://{BUCKET}/team"),
        ],
        &server.env(),
        &[],
    );
    run.success();
    assert!(
        run.stdout.contains("run-a") && run.stdout.contains("run-b"),
        "{}",
        run.stdout
    );
    // The endpoint can come from the flag instead of the environment.
    let mut env = server.env();
    env.retain(|(name, _)| *name != "AWS_ENDPOINT_URL");
    let run = respawn_env(
        [
            "history",
            "nightly",
            "--store",
            &format!("s3://{BUCKET}/team"),
            "--endpoint-url",
            server.endpoint(),
        ],
        &env,
        &[],
    );
    run.success();
    assert!(!run.stderr.contains(SECRET_KEY) && !run.stdout.contains(SECRET_KEY));
}

#[test]
fn missing_credentials_say_where_they_were_looked_for() {
    let server = S3Server::start();
    let home = tempfile::tempdir().unwrap();
    let env = vec![
        ("AWS_ENDPOINT_URL", server.endpoint().to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("HOME", home.path().display().to_string()),
        (
            "AWS_CONFIG_FILE",
            home.path().join("none").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("none").display().to_string(),
        ),
    ];
    let run = respawn_env(
        ["history", "nightly", "--store", &format!("s3://{BUCKET}/x")],
        &env,
        &[],
    );
    run.store_error();
    assert!(
        run.stderr.contains("no AWS credentials found"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("AWS_ACCESS_KEY_ID") && run.stderr.contains("~/.aws/credentials"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_endpoint_that_is_not_a_url_and_a_store_path_that_is_a_file_are_bad_input() {
    let server = S3Server::start();
    let mut env = server.env();
    env.retain(|(name, _)| *name != "AWS_ENDPOINT_URL");
    let address = server.endpoint().trim_start_matches("http://").to_string();
    for endpoint in [address.as_str(), "ftp://127.0.0.1:9", "http://"] {
        let run = respawn_env(
            [
                "history",
                "nightly",
                "--store",
                &format!("s3://{BUCKET}/x"),
                "--endpoint-url",
                endpoint,
            ],
            &env,
            &[],
        );
        run.invalid_input();
        assert!(
            run.stderr.contains("not an S3 endpoint") && !run.stderr.contains("attempts"),
            "{endpoint}: refused at once: {}",
            run.stderr
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let file = file.display().to_string();
    for args in [
        vec!["store", "check", &file],
        vec!["history", "nightly", "--store", &file],
    ] {
        let run = respawn(&args);
        run.store_error();
        assert!(
            run.stderr.contains("not a directory, so not a local store"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_missing_bucket_and_an_unreachable_endpoint_are_store_errors() {
    let server = S3Server::start();
    let run = respawn_env(
        ["history", "nightly", "--store", "s3://no-such-bucket/x"],
        &server.env(),
        &[],
    );
    run.store_error();
    assert!(
        run.stderr
            .contains("bucket `no-such-bucket` does not exist"),
        "{}",
        run.stderr
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = server.env();
    env.retain(|(name, _)| *name != "AWS_ENDPOINT_URL");
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = respawn_env(
        [
            "history",
            "nightly",
            "--store",
            &format!("s3://{BUCKET}/x"),
            "--endpoint-url",
            &endpoint,
        ],
        &env,
        &[],
    );
    run.store_error();
    assert!(
        run.stderr.contains(&format!("cannot reach {endpoint}")),
        "{}",
        run.stderr
    );
}
