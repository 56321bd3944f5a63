//! A schedule's age costs nothing: a tick of a minutely schedule five years old acts on the
//! dates it runs and records the rest as one range; an idle tick writes only its watermark;
//! `batches` shows a page; and a tick reads again only the latest settled dates, so an
//! older date whose output was deleted is rebuilt by a backfill, not by a tick.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MINUTELY: &str = "\
name: minutely
cluster: { provider: local, market: on-demand }
schedule:
  cron: \"* * * * *\"
  timezone: UTC
  start: 2021-12-01
  catchup: CATCHUP
stages:
  load:
    run: mkdir -p {{ output }} && echo {{ batch }} > {{ output }}/minute
    estimate: 1s
";

/// Five years and ten hours after the schedule's start (in the past: a date runs only once
/// its interval has closed by the wall clock).
const NOW: &str = "2026-12-01T10:00:30Z";

struct Minutely {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Minutely {
    fn new(catchup: &str) -> Minutely {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("minutely.yaml");
        std::fs::write(&file, MINUTELY.replace("CATCHUP", catchup)).unwrap();
        Minutely { dir, file }
    }

    fn respawn(&self, args: &[&str]) -> support::Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.insert(1, self.file.display().to_string());
        all.extend(["--store".into(), self.store().display().to_string()]);
        let scratch = self.dir.path().join("scratch").display().to_string();
        support::respawn_env(all, &[("RESPAWN_SCRATCH", scratch)], &[])
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Every object under `minutely/`, by key, with its bytes.
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let mut objects = BTreeMap::new();
        walk(&self.store(), &self.store(), &mut objects);
        objects
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        self.objects()
            .into_keys()
            .filter(|k| k.starts_with(prefix))
            .collect()
    }
}

fn walk(root: &Path, dir: &Path, objects: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, objects);
        } else {
            let key = path.strip_prefix(root).unwrap().display().to_string();
            objects.insert(key, std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn a_tick_of_a_minutely_schedule_five_years_old_writes_what_it_acts_on_and_one_missed_range() {
    let minutely = Minutely::new("2");
    let first = minutely.respawn(&["tick", "--now", NOW]);
    first.success();
    assert!(
        first.stdout.contains(
            "minutely 2021-12-01T0000: missed through 2026-12-01T0957, more than 100,000 date(s)"
        ),
        "{}",
        first.stdout
    );
    assert_eq!(
        minutely.keys("minutely/outputs/load/").len(),
        4,
        "two dates ran, each with its output file and _SUCCESS"
    );
    assert_eq!(minutely.keys("minutely/schedule/claims/").len(), 2);
    assert_eq!(minutely.keys("minutely/schedule/missed/").len(), 1);

    // An idle tick changes nothing but the watermark's time of update.
    let before = minutely.objects();
    let idle = minutely.respawn(&["tick", "--now", NOW]);
    idle.success();
    assert!(
        idle.stdout.contains("0 due date(s) to act on"),
        "{}",
        idle.stdout
    );
    let after = minutely.objects();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let changed: Vec<&String> = after
        .iter()
        .filter(|(key, bytes)| before[*key] != **bytes)
        .map(|(key, _)| key)
        .collect();
    assert!(
        changed.iter().all(|k| k.ends_with("schedule/settled.json")),
        "{changed:?}"
    );

    // A minute later, one date more.
    let next = minutely.respawn(&["tick", "--now", "2026-12-01T10:01:30Z"]);
    next.success();
    assert!(
        next.stdout
            .contains("minutely 2026-12-01T1000: due: claiming and running it"),
        "{}",
        next.stdout
    );
    assert_eq!(minutely.keys("minutely/schedule/claims/").len(), 3);

    // `batches` shows a page, the latest dates first in range, and says there are more.
    let page = minutely.respawn(&["batches", "--now", "2026-12-01T10:01:30Z"]);
    page.success();
    assert_eq!(
        page.stdout
            .lines()
            .filter(|l| l.contains(" missed "))
            .count(),
        97
    );
    assert!(page.stdout.contains("3 succeeded"), "{}", page.stdout);
    assert!(page.stdout.contains("there may be more"), "{}", page.stdout);
    let from = minutely.respawn(&[
        "batches",
        "--now",
        NOW,
        "--from",
        "2021-12-01",
        "--limit",
        "5",
    ]);
    from.success();
    assert!(
        from.stdout.contains("2021-12-01T0000  missed"),
        "{}",
        from.stdout
    );
    assert!(from.stdout.contains("5 date(s) due"), "{}", from.stdout);
}

#[test]
fn with_catchup_all_a_tick_takes_up_a_thousand_dates_and_the_next_tick_goes_on() {
    let minutely = Minutely::new("all");
    let dry = minutely.respawn(&["tick", "--now", NOW, "--dry-run"]);
    dry.success();
    assert_eq!(
        dry.stdout
            .lines()
            .filter(|l| l.contains(": due: claiming"))
            .count(),
        1000
    );
    assert!(
        dry.stdout
            .contains("more dates are due than one tick takes up"),
        "{}",
        dry.stdout
    );
    assert!(minutely.objects().is_empty(), "a dry run writes nothing");
}

#[test]
fn a_tick_reads_again_only_the_latest_settled_dates_and_a_backfill_rebuilds_older_ones() {
    let minutely = Minutely::new("1");
    // Ten ticks, a minute apart: ten dates run.
    for minute in 0..10 {
        let now = format!("2026-12-01T10:{minute:02}:30Z");
        minutely.respawn(&["tick", "--now", &now]).success();
    }
    let now = "2026-12-01T10:09:30Z";
    let outputs = minutely.store().join("minutely/outputs/load");
    // The newest settled date is read again by the next tick and rebuilt...
    std::fs::remove_dir_all(outputs.join("2026-12-01T1008")).unwrap();
    let tick = minutely.respawn(&["tick", "--now", now]);
    tick.success();
    assert!(
        tick.stdout.contains("minutely 2026-12-01T1008: rebuilding"),
        "{}",
        tick.stdout
    );
    // ...an older one is not (a tick never reads every date), and a backfill is.
    std::fs::remove_dir_all(outputs.join("2026-12-01T0959")).unwrap();
    let tick = minutely.respawn(&["tick", "--now", now]);
    tick.success();
    assert!(!tick.stdout.contains("rebuilding"), "{}", tick.stdout);
    assert!(!outputs.join("2026-12-01T0959").exists());
    let backfill = minutely.respawn(&[
        "backfill",
        "--from",
        "2026-12-01T0959",
        "--to",
        "2026-12-01T1008",
    ]);
    backfill.success();
    assert!(
        backfill.stdout.contains("1 of 10 date(s) to run"),
        "{}",
        backfill.stdout
    );
    assert_eq!(
        std::fs::read_to_string(outputs.join("2026-12-01T0959/minute")).unwrap(),
        "2026-12-01T0959\n"
    );
}
