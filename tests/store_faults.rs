//! The e-commerce workflow run end to end on the S3 test server through the fault proxy
//! (`tests/support/fault_proxy.rs`): 503 SlowDown, 500 InternalError, connections cut
//! before the answer and inside it, delays and outages, seeded; alone and with `--chaos`.
//!
//! Each run either finishes, or stops with exit 3 naming the store, and then the same
//! command finishes. Afterwards: the published outputs equal those of a run without faults
//! byte for byte, no work-table is left, and the ledger is consistent (no stage committed
//! or published twice, the events numbered without gaps, each event stored once). Each
//! test prints how many faults it injected (`-- --nocapture`) and asserts a minimum; the
//! minimums add up to 210.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;
use support::Run;
use support::fault_proxy::{Fault, FaultPlan, FaultProxy, Outage};
use support::s3_server::{BUCKET, S3Server};
use support::workspace::Workspace;

/// The batches each test runs, one after the other (a run makes about 75 requests).
const BATCHES: [&str; 4] = ["2019-10-01", "2019-10-02", "2019-10-03", "2019-10-04"];
const WORKFLOW: &str = "ecommerce-sessions";

struct Shop {
    ws: Workspace,
    proxy: FaultProxy,
}

impl Shop {
    fn new(plan: FaultPlan) -> Shop {
        let text = support::small_ecommerce(&[("    deadline: 10h\n", "")]);
        let ws = Workspace::on("shop", &text, true);
        let server = ws.s3.as_ref().expect("the shop's store is on S3");
        let proxy = FaultProxy::start(server.endpoint(), plan);
        Shop { ws, proxy }
    }

    /// The workspace's environment with the store's endpoint on the proxy, and `extra`.
    fn env(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = self.ws.env();
        for (name, value) in env.iter_mut() {
            if *name == "AWS_ENDPOINT_URL" {
                *value = self.proxy.endpoint().to_string();
            }
        }
        env.extend_from_slice(extra);
        env
    }

    fn run(&self, batch: &str, args: &[&str], env: &[(&'static str, String)]) -> Run {
        let file = self.ws.file_arg();
        let mut all = vec!["run", file.as_str(), "--batch", batch];
        all.extend_from_slice(args);
        support::respawn_env(self.ws.args(&all), &self.env(env), &[])
    }

    /// Runs the same command until it finishes: every stop before must be exit 3 naming
    /// the store. Returns how many stops there were.
    fn run_until_done(&self, batch: &str, args: &[&str], env: &[(&'static str, String)]) -> u32 {
        let mut stops = 0;
        loop {
            let run = self.run(batch, args, env);
            match run.code {
                0 => return stops,
                3 => {
                    assert!(
                        run.stderr.contains(self.proxy.endpoint())
                            || run.stderr.contains(&format!("s3://{BUCKET}/")),
                        "exit 3 names the store:\n{}",
                        run.stderr
                    );
                    println!("stopped on the store (exit 3): {}", run.stderr.trim());
                    stops += 1;
                    assert!(stops <= 6, "six stops in a row:\n{}", run.stderr);
                }
                code => panic!(
                    "exit {code}: neither finished nor stopped on the store\nstdout:\n{}\nstderr:\n{}",
                    run.stdout, run.stderr
                ),
            }
        }
    }

    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.ws.objects("")
    }

    /// Every batch run until it finished; how many stops with exit 3 there were.
    fn run_batches(&self, batches: &[&str], args: &[&str]) -> u32 {
        batches
            .iter()
            .map(|batch| self.run_until_done(batch, args, &[]))
            .sum()
    }

    /// The checks after the last run of these batches: outputs, work-tables, the ledger.
    fn assert_finished_cleanly(&self, batches: &[&str]) {
        let objects = self.objects();
        let got = support::published(objects.clone(), WORKFLOW);
        let want: BTreeMap<&String, &Vec<u8>> = reference()
            .iter()
            .filter(|(key, _)| batches.iter().any(|b| key.contains(&format!("/{b}/"))))
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().copied().collect::<Vec<_>>(),
            "the same files are published"
        );
        for (key, bytes) in want {
            assert!(
                got[key] == *bytes,
                "{key} differs from the run without faults"
            );
        }
        let runs: Vec<&String> = objects
            .keys()
            .filter(|k| k.ends_with("/run.json"))
            .collect();
        assert_eq!(runs.len(), batches.len(), "one run per batch: {runs:?}");
        let work: Vec<&String> = objects.keys().filter(|k| k.contains("/work/")).collect();
        assert!(work.is_empty(), "work-tables left: {work:?}");
        let leftovers: Vec<&String> = objects
            .keys()
            .filter(|k| k.contains(".respawn-tmp") || k.starts_with(".respawn-probe/"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temporary objects left: {leftovers:?}"
        );
        for run in runs {
            let prefix = run.trim_end_matches("run.json");
            let ledger: BTreeMap<String, Vec<u8>> = objects
                .iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(key, bytes)| (key.clone(), bytes.clone()))
                .collect();
            assert_ledger_consistent(&ledger);
        }
    }
}

/// No stage committed twice in the run, each final output published once by the run that
/// succeeded, the events numbered 0..n without a gap, and no event stored twice.
fn assert_ledger_consistent(objects: &BTreeMap<String, Vec<u8>>) {
    let mut events: Vec<(u64, Value)> = Vec::new();
    for (key, bytes) in objects {
        let Some(rest) = key.split_once("/events/").map(|(_, r)| r) else {
            continue;
        };
        let seq: u64 = rest
            .trim_end_matches(".json")
            .parse()
            .unwrap_or_else(|_| panic!("an event key {key}"));
        let event: Value =
            serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{key} is not an event: {e}"));
        events.push((seq, event));
    }
    events.sort_by_key(|(seq, _)| *seq);
    for (i, (seq, _)) in events.iter().enumerate() {
        assert_eq!(*seq, i as u64, "events numbered without a gap");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (seq, event) in &events {
        assert!(
            seen.insert(event.to_string()),
            "event {seq} stored twice: {event}"
        );
    }
    let mut committed: BTreeMap<String, u32> = BTreeMap::new();
    let mut published: BTreeMap<String, u32> = BTreeMap::new();
    for (_, event) in &events {
        let stage = event["stage"].as_str().unwrap_or("").to_string();
        match event["event"].as_str() {
            Some("committed") => *committed.entry(stage).or_default() += 1,
            Some("published") => *published.entry(stage).or_default() += 1,
            _ => {}
        }
    }
    for (stage, count) in &committed {
        assert_eq!(*count, 1, "{stage} committed {count} times: {events:?}");
    }
    assert_eq!(
        published.get("report"),
        Some(&1),
        "report published once: {published:?}"
    );
    let finished: Vec<&Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(
        finished.last().map(|e| e["status"].clone()),
        Some(Value::from("succeeded")),
        "{finished:?}"
    );
}

/// The outputs of the workflow run on the S3 server without the proxy.
fn reference() -> &'static BTreeMap<String, Vec<u8>> {
    static REFERENCE: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let shop = Shop::new(FaultPlan::default());
        for batch in BATCHES {
            shop.run(batch, &[], &[]).success();
        }
        let outputs = support::published(shop.objects(), WORKFLOW);
        assert!(
            outputs.keys().any(|k| k.starts_with("report/")),
            "{outputs:?}"
        );
        outputs
    })
}

/// A plan with every kind of fault but outages, about two requests in five hit (a cut
/// inside the body only hits answers with a body).
fn mixed(seed: u64) -> FaultPlan {
    FaultPlan {
        seed,
        slow_down: 0.12,
        internal_error: 0.10,
        reset_before_head: 0.10,
        reset_in_body: 0.15,
        delay: 0.05,
        max_delay: Duration::from_millis(300),
        outages: Vec::new(),
    }
}

fn report(name: &str, shop: &Shop, stops: u32) -> u64 {
    let injected = shop.proxy.injected();
    println!(
        "{name}: {injected} store faults injected in {} requests ({}); {stops} stop(s) with exit 3",
        shop.proxy.requests(),
        shop.proxy.summary()
    );
    injected
}

#[test]
fn a_run_through_a_faulty_store_finishes_with_the_outputs_of_a_run_without_faults() {
    reference();
    let shop = Shop::new(mixed(18));
    shop.proxy.arm(true);
    let stops = shop.run_batches(&BATCHES, &[]);
    shop.proxy.arm(false);
    shop.assert_finished_cleanly(&BATCHES);
    let injected = report("faults alone", &shop, stops);
    assert!(injected >= 80, "{}", shop.proxy.summary());
    for kind in [
        Fault::SlowDown,
        Fault::InternalError,
        Fault::ResetBeforeHead,
        Fault::ResetInBody,
        Fault::Delay,
    ] {
        assert!(
            shop.proxy.count(kind) > 0,
            "{kind:?}: {}",
            shop.proxy.summary()
        );
    }
}

#[test]
fn a_run_through_a_faulty_store_with_chaos_loses_nothing_and_duplicates_nothing() {
    reference();
    let shop = Shop::new(mixed(7));
    shop.proxy.arm(true);
    let stops = shop.run_batches(&BATCHES, &["--chaos", "mtti=3s,seed=7,provision=0s"]);
    shop.proxy.arm(false);
    shop.assert_finished_cleanly(&BATCHES);
    let injected = report("faults and chaos", &shop, stops);
    assert!(injected >= 80, "{}", shop.proxy.summary());
}

#[test]
fn a_store_outage_shorter_than_the_setting_is_ridden_out() {
    reference();
    let mut plan = mixed(3);
    plan.outages = vec![Outage {
        at_request: 60,
        length: Duration::from_secs(20),
    }];
    let shop = Shop::new(plan);
    shop.proxy.arm(true);
    let started = std::time::Instant::now();
    let run = shop.run(BATCHES[0], &[], &[("RESPAWN_STORE_OUTAGE", "40s".into())]);
    run.success();
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "the outage happened during the run"
    );
    shop.proxy.arm(false);
    assert!(
        shop.proxy.count(Fault::Outage) > 0,
        "{}",
        shop.proxy.summary()
    );
    shop.assert_finished_cleanly(&BATCHES[..1]);
    let injected = report("a 20 s outage", &shop, 0);
    assert!(injected >= 40, "{}", shop.proxy.summary());
}

#[test]
fn a_store_outage_longer_than_the_setting_stops_the_run_with_exit_3_and_the_same_command_finishes()
{
    reference();
    let plan = FaultPlan {
        seed: 5,
        outages: vec![Outage {
            at_request: 40,
            length: Duration::from_secs(8),
        }],
        ..FaultPlan::default()
    };
    let shop = Shop::new(plan);
    shop.proxy.arm(true);
    let started = std::time::Instant::now();
    let run = shop.run(BATCHES[0], &[], &[("RESPAWN_STORE_OUTAGE", "2s".into())]);
    run.store_error();
    assert!(
        run.stderr.contains(shop.proxy.endpoint()),
        "the message names the store's endpoint:\n{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "gave up within the setting, not after the outage"
    );
    // The outage is over by the time the same command runs again.
    std::thread::sleep(Duration::from_secs(8).saturating_sub(started.elapsed()));
    let stops = shop.run_until_done(BATCHES[0], &[], &[("RESPAWN_STORE_OUTAGE", "2s".into())]);
    shop.proxy.arm(false);
    shop.assert_finished_cleanly(&BATCHES[..1]);
    let injected = report("an 8 s outage, 2 s allowed", &shop, stops + 1);
    assert!(injected >= 10, "{}", shop.proxy.summary());
}

/// One unsigned request straight to the proxy (the server refuses it; the proxy still
/// decides on it); returns how many faults that request got.
fn poke(proxy: &FaultProxy) -> u64 {
    use std::io::{Read, Write};
    let before = proxy.injected();
    let address = proxy.endpoint().trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    let _ = socket.write_all(
        b"GET /respawn-test/x HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    let mut sink = Vec::new();
    let _ = socket.read_to_end(&mut sink);
    proxy.injected() - before
}

#[test]
fn the_proxy_is_quiet_until_armed_and_repeats_its_faults_for_a_seed() {
    let server = S3Server::start();
    let decisions = |seed: u64| {
        let proxy = FaultProxy::start(server.endpoint(), mixed(seed));
        let quiet: u64 = (0..20).map(|_| poke(&proxy)).sum();
        assert_eq!(quiet, 0, "no fault before the proxy is armed");
        proxy.arm(true);
        (0..150).map(|_| poke(&proxy)).collect::<Vec<u64>>()
    };
    let first = decisions(11);
    assert!(first.iter().sum::<u64>() > 10, "{first:?}");
    assert_eq!(first, decisions(11), "the same seed, the same faults");
    assert_ne!(first, decisions(12));
}
