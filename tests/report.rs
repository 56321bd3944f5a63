//! `respawn report`, `respawn cost` and `respawn ui`, looked at in a real headless browser
//! (Debian's chromium, installed by `./test`; a plain `cargo test` lists these as ignored): the Gantt as rendered has one bar per
//! attempt of the run record and one marker per interruption, the report loads nothing from
//! the network, the UI answers only GET and HEAD, escapes what it shows, survives a
//! damaged run record, and reloads the pages of a live run until it ends.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{command, respawn, small_ecommerce};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium as the machine's notes say to run it, with a fresh profile, plus `extra`.
fn chromium(extra: &[&str], url: &str) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; ./test does)"
    );
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("timeout")
        .arg("60")
        .arg(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed on {url}: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The DOM after the page loaded, as chromium serializes it.
fn dom(url: &str) -> String {
    chromium(&["--dump-dom"], url)
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// The small e-commerce workflow run with chaos into a fresh local store; returns the
/// store and the run record.
fn chaos_run(dir: &Path) -> (PathBuf, serde_json::Value) {
    let file = dir.join("ecommerce.yaml");
    std::fs::write(&file, small_ecommerce(&[])).unwrap();
    let store = dir.join("store");
    let run = respawn([
        "run".as_ref(),
        file.as_os_str(),
        "--batch".as_ref(),
        "2019-10-01".as_ref(),
        "--chaos".as_ref(),
        "mtti=100ms,seed=3,provision=200ms".as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
        "--scratch".as_ref(),
        dir.join("scratch").as_os_str(),
    ]);
    run.success();
    let last = run.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("cost ") && last.contains("on-demand") && last.contains("saving"),
        "the run ends with its cost: {last}"
    );
    let runs = store.join("ecommerce-sessions/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = std::fs::read_to_string(run_dir.join("run.json")).unwrap();
    (store, serde_json::from_str(&record).unwrap())
}

fn attempts_of(record: &serde_json::Value) -> u64 {
    record["stages"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["attempts"].as_u64().unwrap())
        .sum()
}

#[test]
#[ignore = "needs Debian's chromium: ./test installs it and runs this"]
fn the_rendered_gantt_has_one_bar_per_attempt_and_a_marker_per_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let (store, record) = chaos_run(dir.path());
    let interruptions = record["interruptions"].as_array().unwrap().len();
    assert!(interruptions > 0, "the chaos run was interrupted: {record}");
    let html = dir.path().join("report.html");
    respawn([
        "report".as_ref(),
        "ecommerce-sessions".as_ref(),
        "-o".as_ref(),
        html.as_os_str(),
        "--store".as_ref(),
        store.as_os_str(),
    ])
    .success();
    let dom = dom(&format!("file://{}", html.display()));
    assert_eq!(
        count(&dom, "data-attempt=") as u64,
        attempts_of(&record),
        "one bar per attempt of the run record"
    );
    assert_eq!(count(&dom, "data-interruption="), interruptions);
    let interrupted: u64 = record["stages"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["interrupted"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        count(&dom, "data-outcome=\"interrupted\"") as u64,
        interrupted
    );
    for stage in ["ingest", "purchases", "sessions", "report"] {
        assert!(dom.contains(&format!("data-stage=\"{stage}\"")), "{stage}");
    }
    assert!(dom.contains("Cost and waste") && dom.contains("saving"));
    // Each attempt beside its stage's estimate (none of these seconds-long attempts took
    // twice an estimate of hours).
    assert!(dom.contains("<th>took</th><th>estimate</th>"), "{dom}");
    assert!(
        dom.contains("<td>2h30m</td>") && dom.contains("<td>15m</td>"),
        "{dom}"
    );
    assert_eq!(count(&dom, "class=\"over\""), 0);
    // The final stage's last attempt is on the critical path.
    assert!(dom.contains("class=\"bar succeeded critical\""), "{dom}");

    // The same run's cost as JSON: the figures the report shows, with their sources.
    let cost = respawn([
        "cost".as_ref(),
        "ecommerce-sessions".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
    ]);
    cost.success();
    let cost = cost.json();
    for key in [
        "currency",
        "cost",
        "on_demand_cost",
        "saving",
        "saving_percent",
        "waste",
        "generations",
    ] {
        assert!(cost.get(key).is_some(), "{key} in {cost}");
    }
    assert_eq!(
        cost["generations"].as_array().unwrap().len(),
        interruptions + 1,
        "a cluster per interruption plus the first: {cost}"
    );
    assert_eq!(
        cost["waste"]["interrupted_attempts"]["count"]
            .as_u64()
            .unwrap(),
        interrupted
    );
    // history shows the same figures, as columns and in its JSON.
    let history = respawn([
        "history".as_ref(),
        "ecommerce-sessions".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
    ]);
    history.success();
    let listed = &history.json()["runs"][0]["cost"];
    for key in [
        "cost",
        "on_demand_cost",
        "saving",
        "saving_percent",
        "waste",
        "generations",
    ] {
        assert_eq!(listed[key], cost[key], "{key}");
    }
    let table = respawn([
        "history".as_ref(),
        "ecommerce-sessions".as_ref(),
        "--store".as_ref(),
        store.as_os_str(),
    ]);
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(
        header.ends_with("COST  SAVING") || header.contains("  COST "),
        "{header}"
    );
    assert!(header.ends_with("SAVING"), "{header}");
    assert!(
        cost["generations"][0]["source"]
            .as_str()
            .unwrap()
            .contains("cost.spot_per_hour")
    );
}

/// What chromium asks of the network by itself, whatever page it shows (its clock and
/// component updater, and its account service), even with background networking disabled.
/// Chromium 150 of Debian 12 also opens connections to www.google.com for a page with no
/// resource at all (seen on a fresh Debian): the page's own requests are told apart by
/// the report's text, which the test requires to hold no URL.
const CHROMIUMS_OWN_HOSTS: &[&str] = &[
    "clients2.google.com",
    "update.googleapis.com",
    "accounts.google.com",
    "www.google.com",
];

/// A proxy that answers nothing and records the host of every request made through it.
fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let seen = hosts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut head = [0u8; 512];
            let read = stream.read(&mut head).unwrap_or(0);
            let line = String::from_utf8_lossy(&head[..read]);
            // `GET http://host/path HTTP/1.1` or `CONNECT host:443 HTTP/1.1`.
            let target = line.split_whitespace().nth(1).unwrap_or("?");
            let host = target
                .trim_start_matches("http://")
                .split(['/', ':'])
                .next()
                .unwrap_or("?")
                .to_string();
            seen.lock().unwrap().push(host);
        }
    });
    (port, hosts)
}

fn pages_requests(hosts: &Mutex<Vec<String>>) -> Vec<String> {
    let mut hosts = hosts.lock().unwrap();
    let pages = hosts
        .iter()
        .filter(|h| !CHROMIUMS_OWN_HOSTS.contains(&h.as_str()))
        .cloned()
        .collect();
    hosts.clear();
    pages
}

#[test]
#[ignore = "needs Debian's chromium: ./test installs it and runs this"]
fn the_report_makes_no_network_request() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = chaos_run(dir.path());
    let html = dir.path().join("report.html");
    respawn([
        "report".as_ref(),
        "ecommerce-sessions".as_ref(),
        "-o".as_ref(),
        html.as_os_str(),
        "--store".as_ref(),
        store.as_os_str(),
    ])
    .success();
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("<script"));
    // Every request chromium makes goes to the proxy, which answers none. A page with one
    // remote image shows that the proxy sees a page's requests.
    let (port, hosts) = recording_proxy();
    let proxy = format!("--proxy-server=http://127.0.0.1:{port}");
    let control = dir.path().join("control.html");
    std::fs::write(&control, "<img src=\"http://respawn.invalid/x.png\">").unwrap();
    dom_with_proxy(&proxy, &control);
    assert_eq!(pages_requests(&hosts), ["respawn.invalid"]);
    let shown = dom_with_proxy(&proxy, &html);
    assert!(shown.contains("data-attempt="), "the report rendered");
    assert_eq!(
        pages_requests(&hosts),
        Vec::<String>::new(),
        "the report made requests"
    );
    for scheme in ["http:", "https:", "src=\"//", "url(//"] {
        assert!(
            !shown.contains(scheme),
            "the rendered report names {scheme}"
        );
    }
}

fn dom_with_proxy(proxy: &str, page: &Path) -> String {
    chromium(
        &[proxy, "--proxy-bypass-list=<-loopback>", "--dump-dom"],
        &format!("file://{}", page.display()),
    )
}

/// `respawn ui` on a free loopback port, stopped when dropped.
struct Ui {
    child: Child,
    base: String,
}

impl Ui {
    fn start(store: &Path) -> Ui {
        let mut child = command()
            .args(["ui", "--port", "0", "--store"])
            .arg(store)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://127.0.0.1:"), "{line}");
        Ui {
            child,
            base: line.trim().trim_end_matches('/').to_string(),
        }
    }

    fn address(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// One raw HTTP/1.1 request; the status code and the whole response.
    fn request(&self, method: &str, path: &str) -> (u16, String) {
        self.request_as(method, path, &self.address())
    }

    /// [`Ui::request`] with the given `Host` header.
    fn request_as(&self, method: &str, path: &str, host: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.address()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, response)
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn store_files(store: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = Default::default();
    support::walk(store, store, &mut files);
    files
}

#[test]
#[ignore = "needs Debian's chromium: ./test installs it and runs this"]
fn the_ui_shows_workflows_batches_and_reports_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, record) = chaos_run(dir.path());
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let ui = Ui::start(&store);
    let index = dom(&format!("{}/", ui.base));
    assert!(
        index.contains("data-workflow=\"ecommerce-sessions\""),
        "{index}"
    );
    let workflow = dom(&format!("{}/w/ecommerce-sessions", ui.base));
    assert!(
        workflow.contains("data-batch=\"2019-10-01\" data-status=\"succeeded\""),
        "{workflow}"
    );
    let report = dom(&format!("{}/w/ecommerce-sessions/r/{run_id}", ui.base));
    assert_eq!(count(&report, "data-attempt=") as u64, attempts_of(&record));

    let before = store_files(&store);
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in [
            "/",
            "/w/ecommerce-sessions",
            &format!("/w/ecommerce-sessions/r/{run_id}"),
        ] {
            let (code, response) = ui.request(method, path);
            assert_eq!(code, 405, "{method} {path}: {response}");
            assert!(
                response.to_lowercase().contains("allow: get, head"),
                "{response}"
            );
        }
    }
    let (code, response) = ui.request("HEAD", "/w/ecommerce-sessions");
    assert_eq!(code, 200);
    assert!(
        response.ends_with("\r\n\r\n"),
        "a HEAD answer has no body: {response}"
    );
    assert_eq!(store_files(&store), before, "the store is as it was");
}

#[test]
#[ignore = "needs Debian's chromium: ./test installs it and runs this"]
fn the_ui_escapes_names_and_survives_a_damaged_run_record() {
    let dir = tempfile::tempdir().unwrap();
    let (store, record) = chaos_run(dir.path());
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let runs = store.join("ecommerce-sessions/runs");
    // A second run whose record is damaged, and a third whose events name a stage with
    // markup in it (events are data from the store: anything may be there).
    let damaged = runs.join("20261201T000000Z-dddddd");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(damaged.join("run.json"), "{ not json").unwrap();
    let hostile = runs.join("20261202T000000Z-eeeeee");
    copy_dir(&runs.join(&run_id), &hostile);
    let mut copied: serde_json::Value = record.clone();
    copied["run_id"] = "20261202T000000Z-eeeeee".into();
    copied["batch"] = "2019-10-02".into();
    std::fs::write(hostile.join("run.json"), copied.to_string()).unwrap();
    let first_launch = std::fs::read_dir(hostile.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains("\"launch\""))
        .unwrap();
    let text = std::fs::read_to_string(&first_launch)
        .unwrap()
        .replace("\"ingest\"", "\"<b id=injected>x</b>\"");
    std::fs::write(&first_launch, text).unwrap();
    // Other names events carry: log paths, and a stage in every event about it.
    for event in std::fs::read_dir(hostile.join("events")).unwrap() {
        let path = event.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("logs/", "logs/<i id=log>")
            .replace("\"purchases\"", "\"<i id=stage>p</i>\"");
        std::fs::write(&path, text).unwrap();
    }

    let ui = Ui::start(&store);
    let workflow = dom(&format!("{}/w/ecommerce-sessions", ui.base));
    assert!(
        workflow.contains("20261201T000000Z-dddddd/run.json"),
        "the page names the damaged object: {workflow}"
    );
    assert!(
        workflow.contains(&format!("data-run=\"{run_id}\"")),
        "{workflow}"
    );
    assert!(workflow.contains("data-run=\"20261202T000000Z-eeeeee\""));
    let shown = dom(&format!(
        "{}/w/ecommerce-sessions/r/20261202T000000Z-eeeeee",
        ui.base
    ));
    assert!(shown.contains("&lt;b id=injected&gt;"), "{shown}");
    assert!(
        !shown.contains("<b id=\"injected\">"),
        "markup from the store ran: {shown}"
    );
    for (name, shown_as) in [
        ("log", "logs/&lt;i id=log&gt;"),
        ("stage", "&lt;i id=stage&gt;p&lt;/i&gt;"),
    ] {
        assert!(
            !shown.contains(&format!("<i id=\"{name}\">")),
            "markup from the store ran: {shown}"
        );
        assert!(shown.contains(shown_as), "{name} shown as text: {shown}");
    }
    let (code, page) = ui.request("GET", "/w/ecommerce-sessions/r/20261201T000000Z-dddddd");
    assert_eq!(code, 500);
    assert!(page.contains("20261201T000000Z-dddddd/run.json"), "{page}");
    let index = dom(&format!("{}/", ui.base));
    assert!(index.contains("data-workflow=\"ecommerce-sessions\""));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A stored run of `stages` stages in a chain, one attempt each, written as the engine
/// writes a local store (its record, its events, the workflow kept with it).
pub fn thousand_stage_store(root: &Path, stages: usize) {
    let run = root.join("wide/runs/run-1000");
    std::fs::create_dir_all(run.join("events")).unwrap();
    let mut workflow = String::from(
        "name: wide\ncluster: {provider: local, market: spot, slots: 4}\n\
         cost: {spot_per_hour: 1.0, on_demand_per_hour: 3.0}\nstages:\n",
    );
    let mut record_stages = serde_json::Map::new();
    let mut events = vec![
        serde_json::json!({"event": "provision", "generation": 1, "market": "spot", "reason": "start", "wait_s": 0.0, "at": "2026-12-01T00:00:00Z", "elapsed_s": 0.0}),
        serde_json::json!({"event": "cluster-ready", "generation": 1, "market": "spot", "provider": "local", "cluster": "/tmp/g1", "at": "2026-12-01T00:00:00Z", "elapsed_s": 0.0}),
    ];
    for i in 0..stages {
        let name = format!("a-stage-with-a-rather-long-name-number-{i:04}");
        workflow.push_str(&format!("  {name}: {{run: 'true', estimate: 1m}}\n"));
        record_stages.insert(
            name.clone(),
            serde_json::json!({"attempts": 1, "state": "done"}),
        );
        let start = i as f64 * 2.0;
        let stamp = |t: f64| {
            format!(
                "2026-12-01T{:02}:{:02}:{:02}Z",
                (t as u64) / 3600,
                (t as u64) / 60 % 60,
                (t as u64) % 60
            )
        };
        events.push(serde_json::json!({"event": "launch", "stage": name, "attempt": i + 1, "market": "spot", "generation": 1, "log": format!("logs/{name}/1.log"), "at": stamp(start), "elapsed_s": start}));
        events.push(serde_json::json!({"event": "exit", "stage": name, "attempt": i + 1, "code": 0, "at": stamp(start + 1.5), "elapsed_s": start + 1.5}));
    }
    std::fs::write(run.join("workflow.yaml"), workflow).unwrap();
    for (seq, event) in events.iter().enumerate() {
        std::fs::write(
            run.join(format!("events/{seq:010}.json")),
            event.to_string(),
        )
        .unwrap();
    }
    let record = serde_json::json!({
        "format": 1, "workflow": "wide", "batch": "b", "run_id": "run-1000", "status": "succeeded",
        "started_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T01:00:00Z",
        "stages": record_stages,
    });
    std::fs::write(run.join("run.json"), record.to_string()).unwrap();
}

#[test]
#[ignore = "needs Debian's chromium: ./test installs it and runs this"]
fn a_report_of_a_thousand_stages_has_a_bar_per_attempt_and_every_row_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    thousand_stage_store(&store, 1000);
    let html = dir.path().join("wide.html");
    respawn([
        "report".as_ref(),
        "run-1000".as_ref(),
        "-o".as_ref(),
        html.as_os_str(),
        "--store".as_ref(),
        store.as_os_str(),
    ])
    .success();
    let dom = dom(&format!("file://{}", html.display()));
    assert_eq!(count(&dom, "data-attempt="), 1000);
    // Each row label on its own line, at least a font's height from the next.
    let mut ys: Vec<f64> = dom
        .split("class=\"row-label")
        .skip(1)
        .map(|rest| {
            let y = rest.split("y=\"").nth(1).unwrap();
            y[..y.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(ys.len(), 1000);
    ys.sort_by(f64::total_cmp);
    assert!(ys.windows(2).all(|w| w[1] - w[0] >= 14.0), "labels overlap");
    // Long names are cut on their row (the whole name on hover), so they stay in the
    // label column.
    assert!(dom.contains("a-stage-with-a-rather-long-na…"));
    // The rows scroll inside the Gantt's box (its style) rather than the page growing.
    assert!(dom.contains("class=\"gantt\""));
    assert!(dom.contains(".gantt { max-height: 75vh; overflow: auto;"));
}

#[test]
fn the_ui_listens_beyond_loopback_only_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().display().to_string();
    let refused = respawn(["ui", "--bind", "0.0.0.0", "--port", "0", "--store", &store]);
    refused.invalid_input();
    assert!(
        refused.stderr.contains("not a loopback address"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--allow-remote"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_ui_answers_only_loopback_host_names_against_dns_rebinding() {
    let dir = tempfile::tempdir().unwrap();
    let ui = Ui::start(dir.path());
    let port = ui.address().rsplit(':').next().unwrap().to_string();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("[::1]:{port}"),
        format!("127.1.2.3:{port}"),
    ] {
        let (code, response) = ui.request_as("GET", "/", &host);
        assert_eq!(code, 200, "Host: {host}\n{response}");
    }
    // A page of another site whose name was rebound to 127.0.0.1 sends its own name.
    for host in [
        format!("attacker.example:{port}"),
        "localhost.attacker.example".to_string(),
        "127.0.0.1.nip.io".to_string(),
        String::new(),
    ] {
        let (code, response) = ui.request_as("GET", "/", &host);
        assert_eq!(code, 403, "Host: {host}\n{response}");
        assert!(response.contains("--allow-remote"), "{response}");
    }
}

/// Polls `found` every 100 ms for up to a minute.
fn wait_until<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "waited for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Debian's chromium: ./test installs it and runs this"]
fn the_ui_reloads_the_pages_of_a_live_run_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("go");
    let file = dir.path().join("live.yaml");
    std::fs::write(
        &file,
        format!(
            "name: live\ncluster: {{ provider: local, market: on-demand }}\nstages:\n  \
             waits:\n    run: while [ ! -e {} ]; do sleep 0.1; done; mkdir -p {{{{ output }}}}\n    \
             estimate: 1m\n",
            gate.display()
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let mut run = command()
        .args([
            "run".as_ref(),
            file.as_os_str(),
            "--batch".as_ref(),
            "b1".as_ref(),
        ])
        .args(["--store".as_ref(), store.as_os_str()])
        .args(["--scratch".as_ref(), dir.path().join("scratch").as_os_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runs = store.join("live/runs");
    let run_id = wait_until("the run's record", || {
        let entry = std::fs::read_dir(&runs).ok()?.next()?.ok()?;
        entry
            .path()
            .join("run.json")
            .exists()
            .then(|| entry.file_name().to_string_lossy().into_owned())
    });
    let ui = Ui::start(&store);
    let path = format!("/w/live/r/{run_id}");
    // While the stage runs, its bar shows as running and both pages reload themselves.
    wait_until("the running attempt", || {
        let (code, page) = ui.request("GET", &path);
        (code == 200 && page.contains("data-outcome=\"running\"")).then_some(())
    });
    let refresh = "http-equiv=\"refresh\" content=\"5\"";
    let live = dom(&format!("{}{path}", ui.base));
    assert!(live.contains(refresh), "{live}");
    assert!(live.contains("data-stage=\"waits\""), "{live}");
    let workflow = dom(&format!("{}/w/live", ui.base));
    assert!(workflow.contains(refresh), "{workflow}");
    assert!(workflow.contains("data-status=\"running\""), "{workflow}");

    // Once it has ended, the same address shows the attempt succeeded and stops reloading.
    std::fs::write(&gate, "").unwrap();
    assert!(run.wait().unwrap().success());
    let ended = dom(&format!("{}{path}", ui.base));
    assert!(!ended.contains(refresh), "{ended}");
    assert!(ended.contains("data-outcome=\"succeeded\""), "{ended}");
    assert!(!ended.contains("data-outcome=\"running\""), "{ended}");
    let workflow = dom(&format!("{}/w/live", ui.base));
    assert!(!workflow.contains(refresh), "{workflow}");
}
