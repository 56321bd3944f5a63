//! One conformance suite for every store backend: the local directory, a real S3 protocol
//! server on loopback (s3s-fs, started inside the test), and an external S3 endpoint named
//! by `RESPAWN_TEST_S3_ENDPOINT` and `RESPAWN_TEST_S3_BUCKET` (MinIO, AWS S3; see the
//! README). Each behaviour below runs unchanged against each of them. The external ones
//! are `#[ignore]`d, so a plain `cargo test` lists them as ignored rather than passed;
//! `./test` runs them against an S3 server it starts as a separate process (or the endpoint
//! named), and `cargo test --test store_conformance external_endpoint -- --ignored` does by hand.

mod support;

use respawn_run::ledger::{
    self, CommitManifest, CommitOutcome, CommitState, EventLog, Holder, Layout, Lease, LeaseError,
    LeaseRecord, RunRecord, Versioned,
};
use respawn_run::store::{
    AnyStore, Crc64Nvme, FileEntry, LocalStore, PutMode, S3Options, S3Store, Store, StoreError,
    StoreUrl, TransferOptions, WORK_TAG, download_dir, upload_dir,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use support::s3_server::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

/// A store for one test, with whatever keeps it alive.
struct Fixture {
    store: AnyStore,
    _dir: Option<tempfile::TempDir>,
}

fn unique(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{name}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Uploads a directory and returns its manifest entries, inline.
async fn upload(
    store: &AnyStore,
    dir: &std::path::Path,
    prefix: &str,
    options: &TransferOptions,
) -> Vec<FileEntry> {
    let mut files = Vec::new();
    upload_dir(store, dir, prefix, options, &mut files)
        .await
        .unwrap();
    files
}

fn small_parts() -> TransferOptions {
    TransferOptions {
        multipart_threshold: 6 << 20,
        part_size: 5 << 20,
        ..TransferOptions::default()
    }
}

async fn local() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("store")).unwrap();
    Fixture {
        store: AnyStore::Local(store),
        _dir: Some(dir),
    }
}

fn shared_server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(S3Server::start)
}

fn options_for(server: &S3Server) -> S3Options {
    S3Options {
        endpoint_url: Some(server.endpoint().into()),
        static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
        transfer: small_parts(),
        ..S3Options::default()
    }
}

async fn open_s3(server: &S3Server, prefix: &str) -> AnyStore {
    let url = StoreUrl::parse(&format!("s3://{BUCKET}/{prefix}")).unwrap();
    AnyStore::open(&url, &options_for(server)).await.unwrap()
}

async fn s3(name: &str) -> Fixture {
    Fixture {
        store: open_s3(shared_server(), &unique(name)).await,
        _dir: None,
    }
}

/// The external endpoint. Credentials and region come from the standard AWS environment,
/// exactly as for a user. These tests are ignored unless asked for (`-- --ignored`); asked
/// for without an endpoint they fail, so that they never pass without having run.
async fn external(name: &str) -> Fixture {
    let endpoint = std::env::var("RESPAWN_TEST_S3_ENDPOINT")
        .expect("RESPAWN_TEST_S3_ENDPOINT names the external S3 endpoint these tests run against");
    let bucket = std::env::var("RESPAWN_TEST_S3_BUCKET").expect(
        "RESPAWN_TEST_S3_BUCKET names an existing bucket when RESPAWN_TEST_S3_ENDPOINT is set",
    );
    let url = StoreUrl::parse(&format!(
        "s3://{bucket}/respawn-conformance/{}",
        unique(name)
    ))
    .unwrap();
    // Keys for the endpoint alone (`./test` gives its own server's), else the usual chain.
    let static_credentials = std::env::var("RESPAWN_TEST_S3_ACCESS_KEY_ID")
        .ok()
        .zip(std::env::var("RESPAWN_TEST_S3_SECRET_ACCESS_KEY").ok());
    let options = S3Options {
        endpoint_url: Some(endpoint),
        transfer: small_parts(),
        static_credentials,
        ..S3Options::default()
    };
    Fixture {
        store: AnyStore::open(&url, &options)
            .await
            .expect("the external S3 endpoint opens"),
        _dir: None,
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod local_directory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::local().await;
                    super::$name(&fixture.store).await;
                }
            )*
        }
        mod s3_server_on_loopback {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::s3(stringify!($name)).await;
                    super::$name(&fixture.store).await;
                }
            )*
        }
        /// Shown as ignored in a plain `cargo test`: they need an external endpoint
        /// (`RESPAWN_TEST_S3_ENDPOINT`, `RESPAWN_TEST_S3_BUCKET`) and run with `-- --ignored`.
        mod external_endpoint {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs an external S3 endpoint (RESPAWN_TEST_S3_ENDPOINT, RESPAWN_TEST_S3_BUCKET): ./test starts one"]
                async fn $name() {
                    let fixture = super::external(stringify!($name)).await;
                    super::$name(&fixture.store).await;
                }
            )*
        }
    };
}

conformance!(
    put_get_and_head_agree,
    missing_objects_are_not_found_and_named,
    create_only_put_refuses_an_existing_key,
    put_if_match_detects_a_concurrent_change,
    list_returns_every_page_in_key_order,
    list_dirs_names_the_children_of_a_prefix,
    a_listing_read_page_by_page_resumes_after_any_key_in_key_order,
    a_long_file_list_is_committed_verified_and_published_in_parts,
    delete_prefix_never_touches_a_sibling_with_a_longer_name,
    invalid_keys_and_prefixes_are_refused,
    large_files_stream_through_multipart_and_back,
    work_tables_round_trip_with_checksums,
    a_damaged_download_is_detected_and_named,
    one_winner_among_twenty_lease_contenders_a_hundred_times,
    one_winner_among_twenty_claimants_of_a_date_fifty_times,
    one_winner_among_twenty_commit_contenders_a_hundred_times,
    the_run_record_is_updated_with_if_match_without_losing_changes,
    events_are_numbered_appended_and_read_in_order,
    a_hole_a_failed_writer_left_in_the_events_is_filled_with_a_note_on_reopening,
    commit_protocol_detects_missing_stale_and_broken_commits,
    publishing_replaces_an_output_and_writes_success_last,
    the_lease_is_held_renewed_taken_over_after_expiry_and_released,
    leases_of_two_batches_are_independent_and_listed,
    corrupt_ledger_objects_are_reported_by_name,
);

async fn put_get_and_head_agree(store: &AnyStore) {
    let etag = store
        .put("a/b.txt", b"hello".to_vec(), PutMode::Overwrite)
        .await
        .unwrap();
    let (bytes, meta) = store.get("a/b.txt").await.unwrap();
    assert_eq!(bytes, b"hello");
    assert_eq!(meta.size, 5);
    assert_eq!(meta.etag.as_ref(), Some(&etag));
    let head = store.head("a/b.txt").await.unwrap();
    assert_eq!((head.size, head.etag), (5, Some(etag.clone())));
    let replaced = store
        .put("a/b.txt", b"bye".to_vec(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_ne!(replaced, etag);
    assert_eq!(store.get("a/b.txt").await.unwrap().0, b"bye");
}

async fn missing_objects_are_not_found_and_named(store: &AnyStore) {
    for result in [
        store.get("nope/x.json").await.map(|_| ()),
        store.head("nope/x.json").await.map(|_| ()),
    ] {
        match result {
            Err(StoreError::NotFound { object }) => {
                assert!(object.ends_with("nope/x.json"), "{object}")
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    assert!(store.list("nope/").await.unwrap().is_empty());
    // Deleting what is not there is not an error.
    store.delete_many(&["nope/x.json".into()]).await.unwrap();
}

async fn create_only_put_refuses_an_existing_key(store: &AnyStore) {
    store
        .put("c/COMMIT", b"first".to_vec(), PutMode::Create)
        .await
        .unwrap();
    match store
        .put("c/COMMIT", b"second".to_vec(), PutMode::Create)
        .await
    {
        Err(StoreError::AlreadyExists { object }) => assert!(object.ends_with("c/COMMIT")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.get("c/COMMIT").await.unwrap().0, b"first");
}

async fn put_if_match_detects_a_concurrent_change(store: &AnyStore) {
    let first = store
        .put("r/run.json", b"v1".to_vec(), PutMode::Overwrite)
        .await
        .unwrap();
    let second = store
        .put("r/run.json", b"v2".to_vec(), PutMode::Update(first.clone()))
        .await
        .unwrap();
    assert_ne!(first, second);
    match store
        .put("r/run.json", b"v3".to_vec(), PutMode::Update(first))
        .await
    {
        Err(StoreError::PreconditionFailed { object }) => assert!(object.ends_with("r/run.json")),
        other => panic!("expected PreconditionFailed, got {other:?}"),
    }
    assert_eq!(store.get("r/run.json").await.unwrap().0, b"v2");
    let missing = store
        .put("r/missing.json", b"x".to_vec(), PutMode::Update(second))
        .await;
    assert!(
        matches!(missing, Err(StoreError::PreconditionFailed { .. })),
        "{missing:?}"
    );
    assert!(matches!(
        store.get("r/missing.json").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn put_many(store: &AnyStore, keys: &[String]) {
    let mut tasks = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    for key in keys {
        let (store, key, limit) = (store.clone(), key.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            store
                .put(&key, key.as_bytes().to_vec(), PutMode::Overwrite)
                .await
                .unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

async fn list_returns_every_page_in_key_order(store: &AnyStore) {
    let mut keys: Vec<String> = (0..1205).map(|i| format!("runs/1/work/s/{i:05}")).collect();
    keys.push("runs/10/x".into());
    put_many(store, &keys).await;
    let listed: Vec<String> = store
        .list("runs/1/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed.len(), 1205, "more than one page of 1,000");
    assert_eq!(listed, keys[..1205].to_vec());
    assert!(
        store
            .list("runs/1/")
            .await
            .unwrap()
            .iter()
            .all(|o| o.size == o.key.len() as u64)
    );
}

async fn a_listing_read_page_by_page_resumes_after_any_key_in_key_order(store: &AnyStore) {
    // `a-b` sorts before `a/x` ('-' < '/'), and `a0` after every key under `a/`.
    let mut keys: Vec<String> = ["a-b", "a/x", "a/y/z", "a0", "b"]
        .iter()
        .map(|k| format!("p/{k}"))
        .collect();
    keys.extend((0..2_500).map(|i| format!("p/c/{:02}/{i:05}", i % 7)));
    put_many(store, &keys).await;
    keys.sort();
    let mut listing = respawn_run::store::Listing::new(store, "p/");
    let mut listed = Vec::new();
    while let Some(object) = listing.next().await.unwrap() {
        listed.push(object.key);
    }
    assert_eq!(listed, keys, "page by page, in key order, every key once");
    for (n, after) in keys.iter().enumerate().step_by(401) {
        let page = store.list_after("p/", Some(after)).await.unwrap();
        assert_eq!(
            page.first().map(|o| &o.key),
            keys.get(n + 1),
            "the page after {after}"
        );
    }
    assert!(
        store
            .list_after("p/", keys.last().map(String::as_str))
            .await
            .unwrap()
            .is_empty(),
        "nothing after the last key"
    );
}

async fn a_long_file_list_is_committed_verified_and_published_in_parts(store: &AnyStore) {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..7 {
        let sub = dir.path().join(format!("d={}", i % 2));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}.txt")), format!("{i}\n")).unwrap();
    }
    let layout = Layout::new("wf");
    let work = layout.attempt("run-1", "big", 1);
    let parts = ledger::commit_parts(&layout, "run-1", "big", 1);
    let mut writer = ledger::PartWriter::with_part_files(store, parts.clone(), 3);
    upload_dir(store, dir.path(), &work, &small_parts(), &mut writer)
        .await
        .unwrap();
    let list = writer.finish().await.unwrap();
    assert_eq!(
        (list.files.len(), list.parts.len()),
        (0, 3),
        "3 + 3 + 1 files"
    );
    assert_eq!((list.count(), list.bytes()), (7, 14));
    let mut ours = manifest("run-1", "big", 1, "f1", Vec::new());
    ours.parts = list.parts.clone();
    ledger::commit(store, &layout, &ours).await.unwrap();
    let read = ledger::read_commit(store, &layout, "run-1", "big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.parts, list.parts, "the COMMIT names its parts");
    ledger::verify_commit(store, &layout, &read).await.unwrap();

    let committed = ledger::Committed {
        prefix: &work,
        files: &list,
        commit_id: "run-1/big/1",
    };
    let now = SystemTime::now();
    ledger::publish_output(
        store,
        &layout,
        "big",
        "b1",
        "run-1",
        committed,
        &small_parts(),
        now,
    )
    .await
    .unwrap();
    let success = ledger::read_output(store, &layout, "big", "b1")
        .await
        .unwrap()
        .unwrap();
    let output = layout.output("big", "b1");
    assert!(
        success
            .parts
            .iter()
            .all(|p| p.key.starts_with(&format!("{output}_SUCCESS.parts/")))
    );
    let mut chunks = success.file_list().chunks();
    let mut published = Vec::new();
    while let Some(chunk) = chunks.next(store).await.unwrap() {
        published.extend(chunk.into_iter().map(|f| f.path));
    }
    let expected: Vec<String> = (0..7)
        .map(|i| format!("d={}/f{i}.txt", i % 2))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(published, expected);

    // The commit's work-table can go: the output's parts are its own.
    store.delete_prefix(&layout.work("run-1")).await.unwrap();
    assert!(
        ledger::read_output(store, &layout, "big", "b1")
            .await
            .unwrap()
            .is_some()
    );
    // A file gone from the output is named; so is a damaged part.
    let gone = format!("{output}d=1/f5.txt");
    store
        .delete_many(std::slice::from_ref(&gone))
        .await
        .unwrap();
    let problem = ledger::output_problem(store, &layout, "big", "b1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        problem.contains("d=1/f5.txt") && problem.contains("missing"),
        "{problem}"
    );
    let part = &success.parts[1].key;
    store
        .put(part, b"[]".to_vec(), PutMode::Overwrite)
        .await
        .unwrap();
    match ledger::output_problem(store, &layout, "big", "b1").await {
        Err(StoreError::Corrupt { object, detail }) => {
            assert!(
                object.ends_with("_SUCCESS.parts/part-00001.json"),
                "{object}"
            );
            assert!(detail.contains("CRC-64/NVME"), "{detail}");
        }
        other => panic!("a damaged part is named: {other:?}"),
    }
}

async fn list_dirs_names_the_children_of_a_prefix(store: &AnyStore) {
    put_many(
        store,
        &[
            "wf/runs/b/run.json".into(),
            "wf/runs/a/run.json".into(),
            "wf/runs/a/events/0.json".into(),
            "wf/lease".into(),
        ],
    )
    .await;
    assert_eq!(store.list_dirs("wf/runs/").await.unwrap(), vec!["a", "b"]);
    assert_eq!(store.list_dirs("wf/").await.unwrap(), vec!["runs"]);
    assert!(store.list_dirs("other/").await.unwrap().is_empty());
}

async fn delete_prefix_never_touches_a_sibling_with_a_longer_name(store: &AnyStore) {
    let mut keys: Vec<String> = (0..2500).map(|i| format!("wf/runs/1/work/s/{i}")).collect();
    keys.extend([
        "wf/runs/10/work/s/0".into(),
        "wf/runs/1/run.json".into(),
        "wf/runs/1x".into(),
    ]);
    put_many(store, &keys).await;
    let deleted = store.delete_prefix("wf/runs/1/work/").await.unwrap();
    assert_eq!(deleted, 2500);
    let left: Vec<String> = store
        .list("wf/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        left,
        vec!["wf/runs/1/run.json", "wf/runs/10/work/s/0", "wf/runs/1x"]
    );
    assert!(matches!(
        store.delete_prefix("wf/runs/1").await,
        Err(StoreError::InvalidKey { .. })
    ));
}

async fn invalid_keys_and_prefixes_are_refused(store: &AnyStore) {
    for key in [
        "",
        "../x",
        "a//b",
        "a/./b",
        "/abs",
        "a\\b",
        "a/.respawn-tmp-1",
    ] {
        let result = store.put(key, b"x".to_vec(), PutMode::Overwrite).await;
        assert!(
            matches!(result, Err(StoreError::InvalidKey { .. })),
            "{key:?}: {result:?}"
        );
    }
    assert!(matches!(
        store.list("a").await,
        Err(StoreError::InvalidKey { .. })
    ));
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

async fn large_files_stream_through_multipart_and_back(store: &AnyStore) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("big.bin");
    let data = pattern(17 << 20, 3);
    std::fs::write(&source, &data).unwrap();
    let meta = store.upload_file(&source, "big/part-0").await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(
        store.head("big/part-0").await.unwrap().size,
        data.len() as u64
    );
    let back = dir.path().join("out/back.bin");
    assert_eq!(
        store.download_file("big/part-0", &back).await.unwrap().size,
        data.len() as u64
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "downloaded bytes differ"
    );
}

fn write_table(dir: &std::path::Path) {
    for (name, len, seed) in [
        ("part-0.csv", 1000, 1),
        ("part-1.csv", 0, 2),
        ("nested/deeper/part-2.csv", 70_000, 3),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, pattern(len, seed)).unwrap();
    }
}

async fn work_tables_round_trip_with_checksums(store: &AnyStore) {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table");
    write_table(&table);
    let files = upload(store, &table, "wf/runs/r/work/s/1/", &small_parts()).await;
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["nested/deeper/part-2.csv", "part-0.csv", "part-1.csv"]
    );
    assert_eq!(files[0].size, 70_000);
    let restored = dir.path().join("restored");
    let total = download_dir(
        store,
        "wf/runs/r/work/s/1/",
        &files,
        &restored,
        &small_parts(),
    )
    .await
    .unwrap();
    assert_eq!(total, 71_000);
    for file in &files {
        assert_eq!(
            std::fs::read(table.join(&file.path)).unwrap(),
            std::fs::read(restored.join(&file.path)).unwrap()
        );
    }
}

async fn a_damaged_download_is_detected_and_named(store: &AnyStore) {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table");
    write_table(&table);
    let mut files = upload(store, &table, "wf/t/", &small_parts()).await;
    files[1].crc64nvme = Crc64Nvme(0);
    match download_dir(
        store,
        "wf/t/",
        &files,
        &dir.path().join("r"),
        &small_parts(),
    )
    .await
    {
        Err(StoreError::Corrupt { object, detail }) => {
            assert!(object.ends_with("wf/t/part-0.csv"), "{object}");
            assert!(detail.contains("CRC-64/NVME"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    files.push(FileEntry {
        path: "gone.csv".into(),
        size: 1,
        crc64nvme: Crc64Nvme(0),
    });
    files[1] = upload(store, &table, "wf/t/", &small_parts()).await[1].clone();
    match download_dir(
        store,
        "wf/t/",
        &files,
        &dir.path().join("r2"),
        &small_parts(),
    )
    .await
    {
        Err(StoreError::NotFound { object }) => {
            assert!(object.ends_with("wf/t/gone.csv"), "{object}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn holder(n: usize) -> Holder {
    Holder {
        id: format!("contender-{n}"),
        host: "test-host".into(),
        pid: 1000 + n as u32,
        run_id: Some(format!("run-{n}")),
    }
}

async fn one_winner_among_twenty_lease_contenders_a_hundred_times(store: &AnyStore) {
    let now = SystemTime::now();
    let ttl = Duration::from_secs(600);
    for round in 0..100 {
        let layout = Layout::new(&format!("lease-race-{round}"));
        if round % 2 == 1 {
            // Half the rounds race to take over an expired lease rather than to create one.
            let expired = Lease::acquire(store, &layout, "b1", holder(99), ttl, now - 2 * ttl)
                .await
                .unwrap();
            assert_eq!(expired.record.holder.id, "contender-99");
        }
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..20 {
            let (store, layout) = (store.clone(), layout.clone());
            tasks.spawn(
                async move { Lease::acquire(&store, &layout, "b1", holder(n), ttl, now).await },
            );
        }
        let mut winners = Vec::new();
        let mut named = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok(lease) => winners.push(lease.record.holder.id.clone()),
                Err(LeaseError::Held { holder, .. }) => named.push(holder.id),
                Err(other) => panic!("round {round}: unexpected {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert!(
            named.iter().all(|h| *h == winners[0]),
            "round {round}: losers must name the winner"
        );
        let (bytes, _) = store.get(&layout.lease("b1")).await.unwrap();
        let record: LeaseRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record.holder.id, winners[0]);
    }
}

async fn one_winner_among_twenty_claimants_of_a_date_fifty_times(store: &AnyStore) {
    use respawn_run::ledger::{Claim, ClaimOutcome, Decision, claim, take_over};
    let now = SystemTime::now();
    for round in 0..50 {
        let layout = Layout::new(&format!("claim-race-{round}"));
        let date = |n: usize| {
            Claim::new(
                &layout,
                "2026-11-30",
                "2026-11-30T00:00:00Z",
                Decision::Run,
                holder(n),
                now,
                None,
            )
        };
        // Half the rounds race to take over a stale claim rather than to create one.
        let stale = if round % 2 == 1 {
            match claim(store, &layout, date(99)).await.unwrap() {
                ClaimOutcome::Won(stale) => Some(stale),
                other => panic!("round {round}: {other:?}"),
            }
        } else {
            None
        };
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..20 {
            let (store, layout, stale, mine) =
                (store.clone(), layout.clone(), stale.clone(), date(n));
            tasks.spawn(async move {
                match &stale {
                    Some(stale) => take_over(&store, &layout, stale, mine).await,
                    None => claim(&store, &layout, mine).await,
                }
            });
        }
        let mut winners = Vec::new();
        let mut seen = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap().unwrap() {
                ClaimOutcome::Won(won) => winners.push(won.value.holder.id),
                ClaimOutcome::Held(held) => seen.push(held.value.holder.id),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert!(
            seen.iter().all(|h| *h == winners[0]),
            "round {round}: losers see the winner's claim: {seen:?}"
        );
        let claims = respawn_run::ledger::read_claims(store, &layout)
            .await
            .unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].value.holder.id, winners[0]);
    }
}

fn manifest(
    run: &str,
    stage: &str,
    attempt: u32,
    fingerprint: &str,
    files: Vec<FileEntry>,
) -> CommitManifest {
    CommitManifest {
        format: 1,
        workflow: "wf".into(),
        run_id: run.into(),
        stage: stage.into(),
        attempt,
        fingerprint: fingerprint.into(),
        inputs: BTreeMap::new(),
        files,
        parts: Vec::new(),
        committed_at: ledger::timestamp(SystemTime::now()),
    }
}

async fn one_winner_among_twenty_commit_contenders_a_hundred_times(store: &AnyStore) {
    let layout = Layout::new("wf");
    for round in 0..100 {
        let run = format!("run-{round}");
        let mut tasks = tokio::task::JoinSet::new();
        for attempt in 1..=20 {
            let (store, layout, manifest) = (
                store.clone(),
                layout.clone(),
                manifest(&run, "sessions", attempt, "f1", vec![]),
            );
            tasks.spawn(async move {
                (
                    attempt,
                    ledger::commit(&store, &layout, &manifest).await.unwrap(),
                )
            });
        }
        let mut committed = Vec::new();
        let mut lost_to = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                (attempt, CommitOutcome::Committed) => committed.push(attempt),
                (_, CommitOutcome::Lost(winner)) => lost_to.push(winner.attempt),
            }
        }
        assert_eq!(committed.len(), 1, "round {round}: {committed:?}");
        assert!(lost_to.iter().all(|a| *a == committed[0]), "round {round}");
        let read = ledger::read_commit(store, &layout, &run, "sessions")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.attempt, committed[0]);
    }
}

async fn the_run_record_is_updated_with_if_match_without_losing_changes(store: &AnyStore) {
    let layout = Layout::new("wf");
    let now = SystemTime::now();
    let record = RunRecord::new("wf", "2026-11-21", "run-1", "spot", now);
    let mut first = Versioned::create(store, &layout, record.clone())
        .await
        .unwrap();
    assert!(matches!(
        Versioned::create(store, &layout, record).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let mut second = ledger::read_run(store, &layout, "run-1").await.unwrap();
    first
        .update(store, &layout, now, |r| {
            r.stages.entry("ingest".into()).or_default().attempts += 1
        })
        .await
        .unwrap();
    // `second` holds the old ETag: its write must not erase the first change.
    second
        .update(store, &layout, now, |r| {
            r.stages.entry("report".into()).or_default().attempts += 1
        })
        .await
        .unwrap();
    let stored = ledger::read_run(store, &layout, "run-1")
        .await
        .unwrap()
        .value;
    assert_eq!(stored.stages["ingest"].attempts, 1);
    assert_eq!(stored.stages["report"].attempts, 1);
    let runs = ledger::runs(store, &layout).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].as_ref().unwrap().batch, "2026-11-21");
}

async fn events_are_numbered_appended_and_read_in_order(store: &AnyStore) {
    let layout = Layout::new("wf");
    let mut log = EventLog::open(store, &layout, "run-1", SystemTime::now())
        .await
        .unwrap();
    for i in 0..12 {
        assert_eq!(
            log.append(store, &layout, &serde_json::json!({"n": i}))
                .await
                .unwrap(),
            i
        );
    }
    // A new process continues the numbering.
    let mut reopened = EventLog::open(store, &layout, "run-1", SystemTime::now())
        .await
        .unwrap();
    assert_eq!(
        reopened
            .append(store, &layout, &serde_json::json!({"n": 12}))
            .await
            .unwrap(),
        12
    );
    // A stale log that did not see the others skips past them instead of overwriting.
    let mut stale = EventLog::open(store, &layout, "run-1", SystemTime::now())
        .await
        .unwrap();
    log.append(store, &layout, &serde_json::json!({"n": 13}))
        .await
        .unwrap();
    assert_eq!(
        stale
            .append(store, &layout, &serde_json::json!({"n": 14}))
            .await
            .unwrap(),
        14
    );
    let events = ledger::read_events(store, &layout, "run-1").await.unwrap();
    let numbers: Vec<i64> = events.iter().map(|e| e["n"].as_i64().unwrap()).collect();
    assert_eq!(numbers, (0..15).collect::<Vec<_>>());
}

/// Events written several at a time by a process that stopped on a store error can leave a
/// hole (event 2 failed, event 3 landed); the next process to open the log fills it with a
/// note saying so, so that the log stays numbered 0..n and later events come after it.
async fn a_hole_a_failed_writer_left_in_the_events_is_filled_with_a_note_on_reopening(
    store: &AnyStore,
) {
    let layout = Layout::new("wf");
    for seq in [0, 1, 3] {
        let body =
            serde_json::to_vec(&serde_json::json!({"event": "note", "message": seq})).unwrap();
        store
            .put(&layout.event("run-1", seq), body, PutMode::Create)
            .await
            .unwrap();
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut log = EventLog::open(store, &layout, "run-1", now).await.unwrap();
    let next = serde_json::json!({"event": "note", "message": "after"});
    assert_eq!(log.append(store, &layout, &next).await.unwrap(), 4);
    let events = ledger::read_events(store, &layout, "run-1").await.unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events[2]["event"], "note");
    let message = events[2]["message"].as_str().unwrap();
    assert!(
        message.contains("event 2 of this run was not recorded"),
        "{message}"
    );
    let filler: respawn_core::contract::event::StampedEvent =
        serde_json::from_value(events[2].clone()).unwrap();
    assert_eq!(filler.at, "2027-01-15T08:00:00Z");
    assert_eq!(events[4]["message"], "after");
    // Opening again adds nothing.
    EventLog::open(store, &layout, "run-1", now).await.unwrap();
    assert_eq!(
        ledger::read_events(store, &layout, "run-1")
            .await
            .unwrap()
            .len(),
        5
    );
}

async fn commit_protocol_detects_missing_stale_and_broken_commits(store: &AnyStore) {
    let layout = Layout::new("wf");
    let dir = tempfile::tempdir().unwrap();
    write_table(dir.path());
    let inputs = BTreeMap::from([("ingest".to_string(), "run-1/ingest/1".to_string())]);
    let state = ledger::check_commit(store, &layout, "run-1", "sessions", "f1", &inputs)
        .await
        .unwrap();
    assert!(matches!(state, CommitState::Missing), "{state:?}");

    let files = upload(
        store,
        dir.path(),
        &layout.attempt("run-1", "sessions", 2),
        &small_parts(),
    )
    .await;
    let mut ours = manifest("run-1", "sessions", 2, "f1", files);
    ours.inputs = inputs.clone();
    assert!(matches!(
        ledger::commit(store, &layout, &ours).await.unwrap(),
        CommitOutcome::Committed
    ));
    // The same commit again (its answer was lost) is still ours.
    assert!(matches!(
        ledger::commit(store, &layout, &ours).await.unwrap(),
        CommitOutcome::Committed
    ));
    let mut late = ours.clone();
    late.attempt = 3;
    match ledger::commit(store, &layout, &late).await.unwrap() {
        CommitOutcome::Lost(winner) => assert_eq!(winner, ours),
        other => panic!("expected Lost, got {other:?}"),
    }
    let check = |fingerprint: &'static str, inputs: BTreeMap<String, String>| {
        let layout = layout.clone();
        async move {
            ledger::check_commit(store, &layout, "run-1", "sessions", fingerprint, &inputs)
                .await
                .unwrap()
        }
    };
    assert!(matches!(check("f1", inputs.clone()).await, CommitState::Fresh(m) if m == ours));
    match check("f2", inputs.clone()).await {
        CommitState::Stale { reason, .. } => {
            assert!(reason.contains("definition changed"), "{reason}")
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    let rebuilt = BTreeMap::from([("ingest".to_string(), "run-1/ingest/4".to_string())]);
    match check("f1", rebuilt).await {
        CommitState::Stale { reason, .. } => assert!(reason.contains("ingest"), "{reason}"),
        other => panic!("expected Stale, got {other:?}"),
    }
    let lost_file = format!("{}part-0.csv", layout.attempt("run-1", "sessions", 2));
    store
        .delete_many(std::slice::from_ref(&lost_file))
        .await
        .unwrap();
    match check("f1", inputs.clone()).await {
        CommitState::Broken { reason } => {
            assert!(reason.contains(&store.locate(&lost_file)), "{reason}");
            assert!(
                reason.contains("listed in") && reason.contains("missing"),
                "{reason}"
            );
        }
        other => panic!("expected Broken, got {other:?}"),
    }
}

async fn publishing_replaces_an_output_and_writes_success_last(store: &AnyStore) {
    let layout = Layout::new("wf");
    let now = SystemTime::now();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("v1");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::write(first.join("a.csv"), "a1\n").unwrap();
    std::fs::write(first.join("b.csv"), "b1\n").unwrap();
    assert!(
        ledger::read_output(store, &layout, "report", "2026-11-21")
            .await
            .unwrap()
            .is_none()
    );
    let options = small_parts();
    let work = layout.attempt("run-1", "report", 1);
    let files = upload(store, &first, &work, &options).await;
    let files = ledger::FileList {
        files,
        parts: Vec::new(),
    };
    let committed = ledger::Committed {
        prefix: &work,
        files: &files,
        commit_id: "run-1/report/1",
    };
    ledger::publish_output(
        store,
        &layout,
        "report",
        "2026-11-21",
        "run-1",
        committed,
        &options,
        now,
    )
    .await
    .unwrap();
    let second = dir.path().join("v2");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join("a.csv"), "a2\n").unwrap();
    std::fs::write(second.join("c.csv"), "c2\n").unwrap();
    let work = layout.attempt("run-2", "report", 1);
    let files = upload(store, &second, &work, &options).await;
    let files = ledger::FileList {
        files,
        parts: Vec::new(),
    };
    let committed = ledger::Committed {
        prefix: &work,
        files: &files,
        commit_id: "run-2/report/1",
    };
    ledger::publish_output(
        store,
        &layout,
        "report",
        "2026-11-21",
        "run-2",
        committed,
        &options,
        now,
    )
    .await
    .unwrap();
    let prefix = layout.output("report", "2026-11-21");
    let keys: Vec<String> = store
        .list(&prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        vec![
            format!("{prefix}_SUCCESS"),
            format!("{prefix}a.csv"),
            format!("{prefix}c.csv")
        ]
    );
    assert_eq!(
        store.get(&format!("{prefix}a.csv")).await.unwrap().0,
        b"a2\n"
    );
    let success = ledger::read_output(store, &layout, "report", "2026-11-21")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(success.run_id, "run-2");
    assert_eq!(
        success
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        vec!["a.csv", "c.csv"]
    );
    // Without `_SUCCESS` the folder is not trusted.
    store
        .delete_many(&[layout.success("report", "2026-11-21")])
        .await
        .unwrap();
    assert!(
        ledger::read_output(store, &layout, "report", "2026-11-21")
            .await
            .unwrap()
            .is_none()
    );
}

async fn leases_of_two_batches_are_independent_and_listed(store: &AnyStore) {
    let layout = Layout::new("wf2");
    let ttl = Duration::from_secs(300);
    let now = SystemTime::now();
    let first = Lease::acquire(store, &layout, "2026-11-01", holder(1), ttl, now)
        .await
        .unwrap();
    let second = Lease::acquire(store, &layout, "2026-11-02", holder(2), ttl, now)
        .await
        .expect("another batch of the same workflow is not held");
    match Lease::acquire(store, &layout, "2026-11-01", holder(3), ttl, now).await {
        Err(LeaseError::Held { batch, holder, .. }) => {
            assert_eq!(
                (batch.as_str(), holder.id.as_str()),
                ("2026-11-01", "contender-1")
            )
        }
        other => panic!("expected the batch to be held, got {other:?}"),
    }
    let mut listed: Vec<(String, String)> = ledger::read_leases(store, &layout)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.batch, l.holder.id))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("2026-11-01".to_string(), "contender-1".to_string()),
            ("2026-11-02".to_string(), "contender-2".to_string())
        ]
    );
    first.release(store, now).await.unwrap();
    second.release(store, now).await.unwrap();
}

async fn the_lease_is_held_renewed_taken_over_after_expiry_and_released(store: &AnyStore) {
    let layout = Layout::new("wf");
    let ttl = Duration::from_secs(300);
    let now = SystemTime::now();
    let mut first = Lease::acquire(store, &layout, "b1", holder(1), ttl, now)
        .await
        .unwrap();
    match Lease::acquire(store, &layout, "b1", holder(2), ttl, now + ttl / 2).await {
        Err(error @ LeaseError::Held { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("pid 1001 on test-host (run run-1)"),
                "{message}"
            );
            assert!(
                message.contains(&store.locate(&layout.lease("b1"))),
                "{message}"
            );
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // Renewed before the expiry: still held at the old expiry.
    first.renew(store, now + ttl / 2).await.unwrap();
    assert!(matches!(
        Lease::acquire(
            store,
            &layout,
            "b1",
            holder(2),
            ttl,
            now + ttl + Duration::from_secs(1)
        )
        .await,
        Err(LeaseError::Held { .. })
    ));
    // Expired: taken over; the old holder learns it at its next renewal.
    let second = Lease::acquire(store, &layout, "b1", holder(2), ttl, now + 2 * ttl)
        .await
        .unwrap();
    match first.renew(store, now + 2 * ttl).await {
        Err(error @ LeaseError::Lost { .. }) => {
            assert!(error.to_string().contains("pid 1002"), "{error}")
        }
        other => panic!("expected Lost, got {other:?}"),
    }
    // Released: the next one need not wait.
    second.release(store, now + 2 * ttl).await.unwrap();
    Lease::acquire(store, &layout, "b1", holder(3), ttl, now + 2 * ttl)
        .await
        .unwrap();
}

async fn corrupt_ledger_objects_are_reported_by_name(store: &AnyStore) {
    let layout = Layout::new("wf");
    store
        .put(
            &layout.run_record("run-9"),
            b"{\"format\": 1, \"workf".to_vec(),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    match ledger::read_run(store, &layout, "run-9").await {
        Err(error @ StoreError::Corrupt { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&store.locate("wf/runs/run-9/run.json")),
                "{message}"
            );
            assert!(message.contains("EOF"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    store
        .put(
            &layout.commit("run-9", "s"),
            b"not json".to_vec(),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    match ledger::check_commit(store, &layout, "run-9", "s", "f", &BTreeMap::new())
        .await
        .unwrap()
    {
        CommitState::Broken { reason } => assert!(
            reason.contains(&store.locate("wf/runs/run-9/work/s/COMMIT")),
            "{reason}"
        ),
        other => panic!("expected Broken, got {other:?}"),
    }
    store
        .put(&layout.lease("b1"), b"[]".to_vec(), PutMode::Overwrite)
        .await
        .unwrap();
    match Lease::acquire(
        store,
        &layout,
        "b1",
        holder(1),
        Duration::from_secs(60),
        SystemTime::now(),
    )
    .await
    {
        Err(LeaseError::Store(StoreError::Corrupt { object, .. })) => {
            assert!(object.ends_with("wf/leases/b1"), "{object}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

// Behaviours of the S3 backend alone: what the server says, and faults.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_deletion_retries_throttled_keys_and_requests() {
    let server = S3Server::start();
    let store = open_s3(&server, "throttled").await;
    let keys: Vec<String> = (0..2300).map(|i| format!("wf/runs/r/work/s/{i}")).collect();
    put_many(&store, &keys).await;
    // Two DeleteObjects answers say "SlowDown" for every key, then three whole requests fail with 503.
    server
        .faults
        .throttle_delete_keys
        .store(2, Ordering::SeqCst);
    let calls_before = server.faults.delete_objects_calls.load(Ordering::SeqCst);
    assert_eq!(store.delete_prefix("wf/runs/r/work/").await.unwrap(), 2300);
    assert!(store.list("wf/").await.unwrap().is_empty());
    let calls = server.faults.delete_objects_calls.load(Ordering::SeqCst) - calls_before;
    assert_eq!(
        calls, 5,
        "3 batches of at most 1,000 keys, 2 of them sent again"
    );
    put_many(&store, &keys[..10]).await;
    server.faults.throttle_requests.store(3, Ordering::SeqCst);
    assert_eq!(store.delete_prefix("wf/").await.unwrap(), 10);
    assert_eq!(
        server.faults.delete_object_calls.load(Ordering::SeqCst),
        0,
        "never one key per request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_work_table_objects_carry_the_lifecycle_tag_and_nothing_else_does() {
    let server = S3Server::start();
    let store = open_s3(&server, "tagged").await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, pattern(7 << 20, 5)).unwrap();
    let small = dir.path().join("small.csv");
    std::fs::write(&small, b"a,b\n").unwrap();
    // Written by respawn: a multipart upload, a single PUT and a manifest.
    store
        .upload_file(&big, "wf/runs/r/work/s/1/part-0")
        .await
        .unwrap();
    store
        .upload_file(&small, "wf/runs/r/work/s/1/part-1")
        .await
        .unwrap();
    store
        .put("wf/runs/r/work/s/COMMIT", b"{}".to_vec(), PutMode::Create)
        .await
        .unwrap();
    // Not work-table data.
    store
        .upload_file(&small, "wf/outputs/s/b/part-1")
        .await
        .unwrap();
    store
        .upload_file(&small, "wf/runs/r/logs/s/1.log")
        .await
        .unwrap();
    store
        .put("wf/runs/r/run.json", b"{}".to_vec(), PutMode::Create)
        .await
        .unwrap();
    store
        .put("wf/runs/r/workers", b"{}".to_vec(), PutMode::Create)
        .await
        .unwrap();
    // Written by someone else (an EMR step), then tagged by respawn.
    let foreign = open_s3(&server, "").await;
    foreign
        .upload_file(&small, "tagged/wf/runs/r/work/t/1/part-0")
        .await
        .unwrap();
    assert!(
        server
            .tags_of(BUCKET, "tagged/wf/runs/r/work/t/1/part-0")
            .is_empty()
    );
    store.tag_work("wf/runs/r/work/t/1/part-0").await.unwrap();

    let work = vec![(WORK_TAG.0.to_string(), WORK_TAG.1.to_string())];
    for key in [
        "wf/runs/r/work/s/1/part-0",
        "wf/runs/r/work/s/1/part-1",
        "wf/runs/r/work/s/COMMIT",
        "wf/runs/r/work/t/1/part-0",
    ] {
        assert_eq!(
            server.tags_of(BUCKET, &format!("tagged/{key}")),
            work,
            "{key}"
        );
    }
    for key in [
        "wf/outputs/s/b/part-1",
        "wf/runs/r/logs/s/1.log",
        "wf/runs/r/run.json",
        "wf/runs/r/workers",
    ] {
        assert!(
            server.tags_of(BUCKET, &format!("tagged/{key}")).is_empty(),
            "{key} is not work"
        );
    }
    // A missing object cannot be tagged, and says which.
    let missing = store.tag_work("wf/runs/r/work/t/1/nope").await.unwrap_err();
    assert!(
        missing.to_string().contains("wf/runs/r/work/t/1/nope"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_server_that_ignores_conditional_writes_is_refused() {
    let server = S3Server::start();
    server
        .faults
        .ignore_conditions
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let url = StoreUrl::parse(&format!("s3://{BUCKET}/probe")).unwrap();
    match AnyStore::open(&url, &options_for(&server)).await {
        Err(error @ StoreError::ConditionalWritesNotEnforced { .. }) => {
            let message = error.to_string();
            assert!(message.contains(server.endpoint()), "{message}");
            assert!(message.contains("If-None-Match"), "{message}");
        }
        Err(other) => panic!("expected ConditionalWritesNotEnforced, got {other}"),
        Ok(_) => panic!("a server that ignores If-None-Match must be refused"),
    }
    server
        .faults
        .ignore_conditions
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let store = AnyStore::open(&url, &options_for(&server)).await.unwrap();
    assert!(
        store.list("").await.unwrap().is_empty(),
        "the probe object is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_missing_bucket_is_named_with_the_endpoint() {
    let server = shared_server();
    let url = StoreUrl::parse("s3://no-such-bucket/x").unwrap();
    match AnyStore::open(&url, &options_for(server)).await {
        Err(error @ StoreError::NoSuchBucket { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("`no-such-bucket`") && message.contains(server.endpoint()),
                "{message}"
            );
        }
        Err(other) => panic!("expected NoSuchBucket, got {other}"),
        Ok(_) => panic!("opened a missing bucket"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_wrong_secret_is_access_denied() {
    let server = shared_server();
    let mut options = options_for(server);
    options.static_credentials = Some((ACCESS_KEY.into(), "wrong-secret".into()));
    let url = StoreUrl::parse(&format!("s3://{BUCKET}/x")).unwrap();
    match AnyStore::open(&url, &options).await {
        Err(StoreError::AccessDenied { .. }) => {}
        Err(other) => panic!("expected AccessDenied, got {other}"),
        Ok(_) => panic!("a wrong secret was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_an_unreachable_endpoint_fails_after_bounded_retries() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let options = S3Options {
        endpoint_url: Some(endpoint.clone()),
        static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
        ..S3Options::default()
    };
    let started = std::time::Instant::now();
    let url = StoreUrl::parse(&format!("s3://{BUCKET}/x")).unwrap();
    match AnyStore::open(&url, &options).await {
        Err(error @ StoreError::Unreachable { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&endpoint) && message.contains("4 attempts"),
                "{message}"
            );
        }
        Err(other) => panic!("expected Unreachable, got {other}"),
        Ok(_) => panic!("opened an endpoint where nothing listens"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "retries are bounded"
    );
}

#[test]
fn s3_store_urls_keep_keys_under_their_prefix() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = shared_server();
        let store = S3Store::connect(BUCKET, "team/one/", &options_for(server))
            .await
            .unwrap();
        store
            .put("k", b"1".to_vec(), PutMode::Overwrite)
            .await
            .unwrap();
        assert_eq!(store.locate("k"), format!("s3://{BUCKET}/team/one/k"));
        assert!(server.root().join(BUCKET).join("team/one/k").is_file());
        assert_eq!(store.list("").await.unwrap()[0].key, "k");
    });
}
