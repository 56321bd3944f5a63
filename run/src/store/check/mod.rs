//! `respawn store check`: a thorough check of a store a user is about to trust, beyond the
//! cheap probe every start makes (`s3/probe.rs`), and its verdict remembered in the store.
//!
//! The probe sees whether a server enforces conditional writes one at a time; it cannot see
//! whether it decides them atomically. A server that checks `If-None-Match` and then writes
//! (s3s-fs does, without the test server's layer) lets two racing writers both win, so two
//! orchestrators could hold one lease. This check races writers for real ([`races`]), then
//! lists, uploads in parts and tags (the S3 backend's own checks).
//!
//! Each property is judged on its own: a server that refuses a call one check needs (s3s-fs
//! has no object tagging) fails that check and the others still run. Atomic conditional
//! writes, whole objects, listings and multipart uploads are required; object tags (the
//! bucket lifecycle's safety net for work-tables a dead run left) are optional, and a store
//! without them passes with a warning.
//!
//! The verdict is kept per endpoint and bucket ([`verdict`]), and `run` (and anything that
//! starts runs) refuses a store whose last check failed a required property, naming the
//! reason, until it is checked again and passes. On first use of an S3 endpoint that is not
//! AWS S3, `run` checks the store itself ([`check_on_first_use`]) rather than trust it.

mod races;
mod verdict;

pub use verdict::{VERDICT_KEY, last_verdict, remember};

use super::{AnyStore, Result, Store, StoreError, StoreErrorKind};
use races::Bodies;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// One check and how it went.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    /// Whether respawn needs the property (a failed optional one is a warning).
    #[serde(default = "required_by_default")]
    pub required: bool,
    /// What was seen, in numbers.
    pub detail: String,
    /// What this means for respawn.
    pub meaning: String,
}

fn required_by_default() -> bool {
    true
}

/// The verdict of a whole check, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub store: String,
    pub checked_at: String,
    /// Every required property held.
    pub passed: bool,
    /// Who checked: `respawn store check`, or a run on its first use of the endpoint.
    #[serde(default)]
    pub by: String,
    pub results: Vec<CheckResult>,
}

impl Verdict {
    /// A verdict on these results: passed when every required property held.
    pub fn of(store: String, checked_at: String, by: &str, results: Vec<CheckResult>) -> Self {
        Verdict {
            store,
            checked_at,
            passed: results.iter().all(|r| r.passed || !r.required),
            by: by.into(),
            results,
        }
    }

    /// The failed required checks, one line each.
    pub fn reasons(&self) -> String {
        self.lines(true)
    }

    /// The failed optional checks, one line each.
    pub fn warnings(&self) -> String {
        self.lines(false)
    }

    fn lines(&self, required: bool) -> String {
        self.results
            .iter()
            .filter(|r| !r.passed && r.required == required)
            .map(|r| format!("{}: {}", r.name, r.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The failure this verdict means for a command about to run.
    pub fn refusal(&self) -> StoreError {
        StoreError::FailedCheck {
            store: self.store.clone(),
            checked_at: self.checked_at.clone(),
            reasons: self.reasons(),
        }
    }
}

/// How hard to check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Rounds of each race.
    pub rounds: u32,
    /// Writers in each round.
    pub contenders: u32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            rounds: 20,
            contenders: 16,
        }
    }
}

/// Who made a verdict, as recorded.
pub const BY_COMMAND: &str = "respawn store check";
/// A run's own check on first use of an endpoint.
pub const BY_FIRST_USE: &str = "a run, on first use of the endpoint";

/// A check's outcome: a server that refuses a request the check needs (not implemented,
/// not allowed, access denied) fails the check, and the others still run; an unreachable
/// or failing server ends the whole check.
pub(crate) async fn judged(
    name: &str,
    required: bool,
    refused_means: &str,
    check: impl Future<Output = Result<CheckResult>>,
) -> Result<CheckResult> {
    let mut result = match check.await {
        Ok(result) => result,
        Err(error)
            if matches!(
                error.kind(),
                StoreErrorKind::Configuration | StoreErrorKind::Access
            ) =>
        {
            CheckResult {
                name: name.into(),
                passed: false,
                required,
                detail: format!("the server refused a request: {}", error.message()),
                meaning: refused_means.into(),
            }
        }
        Err(error) => return Err(error),
    };
    result.required = required;
    Ok(result)
}

/// A scratch prefix of this check's own, so that two checks at once (two first runs on a
/// new endpoint) do not race each other's writers.
fn scratch() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(".respawn-check/run-{}-{nanos}", std::process::id())
}

const RACE_REFUSED: &str =
    "respawn needs conditional puts (If-None-Match, If-Match) to hold a lease and commit once";

/// Runs every check; the objects it writes are deleted afterwards. `backend` adds the
/// backend's own checks (multipart, tags on S3), given the scratch prefix.
pub async fn run_checks<S, F, Fut>(
    store: &S,
    options: CheckOptions,
    backend: F,
) -> Result<Vec<CheckResult>>
where
    S: Store + Clone + 'static,
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Vec<CheckResult>>>,
{
    let scratch = scratch();
    let (small, large) = (Bodies::small(options), Bodies::large(options));
    let mut results = Vec::new();
    for bodies in [small, large] {
        let name = bodies.name("create-only race");
        let race = races::create_race(store, &scratch, bodies);
        results.push(judged(&name, true, RACE_REFUSED, race).await?);
        let name = bodies.name("If-Match race");
        let race = races::update_race(store, &scratch, bodies);
        results.push(judged(&name, true, RACE_REFUSED, race).await?);
    }
    let torn = races::torn_writes(store, &scratch, options);
    let refused = "respawn overwrites run records and leases";
    results.push(judged("concurrent overwrites", true, refused, torn).await?);
    let listing = races::listing(store, &scratch);
    let refused = "respawn lists COMMITs, events and work-tables";
    results.push(judged("read-after-write listing", true, refused, listing).await?);
    results.extend(backend(scratch.clone()).await?);
    store.delete_prefix(&format!("{scratch}/")).await?;
    Ok(results)
}

/// Checks a store (with its backend's own checks) and remembers the verdict with its
/// endpoint and bucket.
pub async fn check_store(
    store: &AnyStore,
    options: CheckOptions,
    checked_at: String,
    by: &str,
) -> Result<Verdict> {
    let results = run_checks(store, options, |scratch| async move {
        match store {
            AnyStore::S3(s3) => s3.backend_checks(&scratch).await,
            AnyStore::Local(_) => Ok(Vec::new()),
        }
    })
    .await?;
    let verdict = Verdict::of(verdict::checked_place(store), checked_at, by, results);
    remember(store, &verdict).await?;
    Ok(verdict)
}

/// What [`check_on_first_use`] did.
pub enum FirstUse {
    /// The store was checked before (or needs no check): nothing was done.
    Known,
    /// This run checked the store, and it passed (perhaps with warnings).
    Checked(Verdict),
}

/// For a command about to start runs: refuses a store whose last check failed; checks a
/// store on an S3 endpoint that is not AWS S3 and was never checked, remembers the verdict,
/// and refuses it if it failed. AWS S3 and the local directory store decide conditional
/// writes atomically and are not checked unasked.
pub async fn check_on_first_use(store: &AnyStore, checked_at: String) -> Result<FirstUse> {
    match last_verdict(store).await? {
        Some(verdict) if !verdict.passed => return Err(verdict.refusal()),
        Some(_) => return Ok(FirstUse::Known),
        None => {}
    }
    let AnyStore::S3(s3) = store else {
        return Ok(FirstUse::Known);
    };
    if s3.is_aws() {
        return Ok(FirstUse::Known);
    }
    // A damaged object read back is a finding, not an outage to ride out for minutes (as
    // `respawn store check` gives up after 2 s unless told otherwise).
    let mut checking = s3.clone();
    checking.ride_out(std::time::Duration::from_secs(2));
    let checking = AnyStore::S3(checking);
    let verdict = check_store(&checking, CheckOptions::default(), checked_at, BY_FIRST_USE).await?;
    if !verdict.passed {
        return Err(verdict.refusal());
    }
    Ok(FirstUse::Checked(verdict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    #[tokio::test]
    async fn the_local_store_passes_and_its_verdict_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = AnyStore::Local(LocalStore::open(dir.path()).unwrap());
        let options = CheckOptions {
            rounds: 4,
            contenders: 8,
        };
        let results = run_checks(&store, options, |_| async { Ok(Vec::new()) })
            .await
            .unwrap();
        assert!(results.iter().all(|r| r.passed), "{results:?}");
        assert!(store.list(".respawn-check/").await.unwrap().is_empty());
        check_on_first_use(&store, String::new()).await.unwrap();
        let failed = Verdict::of(
            store.describe(),
            "2026-12-01T00:00:00Z".into(),
            BY_COMMAND,
            vec![races::result(
                "create-only race",
                false,
                "round 3: 2 winners".into(),
                "",
                "",
            )],
        );
        remember(&store, &failed).await.unwrap();
        let refused = check_on_first_use(&store, String::new())
            .await
            .err()
            .unwrap();
        assert!(
            refused.to_string().contains("round 3: 2 winners"),
            "{refused}"
        );
        assert_eq!(last_verdict(&store).await.unwrap(), Some(failed));
    }

    #[tokio::test]
    async fn a_refused_optional_property_is_a_warning_and_a_refused_required_one_fails() {
        let refused = || async {
            Err(StoreError::Service {
                operation: "PutObjectTagging",
                object: "s3://b/k".into(),
                detail: "PutObjectTagging is not implemented".into(),
                kind: StoreErrorKind::Configuration,
            })
        };
        let tags = judged("object tags", false, "no safety net", refused())
            .await
            .unwrap();
        assert!(!tags.passed && !tags.required, "{tags:?}");
        assert!(tags.detail.contains("not implemented"), "{tags:?}");
        let verdict = Verdict::of("s3://b/".into(), "now".into(), BY_COMMAND, vec![tags]);
        assert!(
            verdict.passed,
            "an optional property does not fail the store"
        );
        assert!(verdict.reasons().is_empty());
        assert!(verdict.warnings().contains("object tags"));

        let race = judged("create-only race", true, RACE_REFUSED, refused())
            .await
            .unwrap();
        assert!(!Verdict::of("s3://b/".into(), "now".into(), BY_COMMAND, vec![race]).passed);

        let unreachable = judged("listing", true, "", async {
            Err(StoreError::Unreachable {
                endpoint: "http://e".into(),
                detail: "connection refused".into(),
                attempts: 4,
            })
        });
        assert!(
            unreachable.await.is_err(),
            "an unreachable server ends the check"
        );
    }
}
