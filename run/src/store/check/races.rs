//! The races and listings of `respawn store check` ([`super`]): rounds of writers racing
//! for one key with create-only and If-Match puts (exactly one winner each, holding its
//! own bytes), with 4 KiB bodies and again with 8 MiB ones (a server that checks and then
//! writes without a lock rarely lets small writes overlap, and large ones often; moto's
//! did), concurrent overwrites of one key (one writer's whole body read back, never a mix),
//! and listing right after writing and deleting.

use super::{CheckOptions, CheckResult};
use crate::store::{PutMode, Result, Store, StoreError, StoreErrorKind};

pub(super) fn result(
    name: &str,
    passed: bool,
    detail: String,
    good: &str,
    bad: &str,
) -> CheckResult {
    CheckResult {
        name: name.into(),
        passed,
        required: true,
        detail,
        meaning: if passed { good } else { bad }.into(),
    }
}

/// A body that tells its writer apart, `size` bytes long, the same byte pattern all through.
fn body_of(writer: u32, round: u32, size: usize) -> Vec<u8> {
    let stamp = format!("writer {writer:04} round {round:04};");
    let mut body = stamp.as_bytes().repeat(size.div_ceil(stamp.len()).max(1));
    body.truncate(size.max(stamp.len()));
    body
}

/// An object read back after a race, or the damage that made reading it fail (a body
/// that does not match its checksum, an object that vanished): a finding, not an error of
/// the check.
async fn read_back<S: Store>(
    store: &S,
    key: &str,
) -> Result<std::result::Result<(Vec<u8>, Option<crate::store::ETag>), String>> {
    match store.get(key).await {
        Ok((bytes, meta)) => Ok(Ok((bytes, meta.etag))),
        Err(error) if error.is_transient() || error.kind() == StoreErrorKind::Corrupt => {
            Ok(Err(error.to_string()))
        }
        Err(StoreError::NotFound { .. }) => Ok(Err("the object vanished".into())),
        Err(other) => Err(other),
    }
}

/// The failed rounds: the first three in full, then how many more.
fn summarize(bad_rounds: &[String], rounds: u32) -> String {
    let mut text = format!("{} of {rounds} rounds failed: ", bad_rounds.len());
    text.push_str(&bad_rounds[..bad_rounds.len().min(3)].join("; "));
    if bad_rounds.len() > 3 {
        text.push_str(&format!("; and {} more", bad_rounds.len() - 3));
    }
    text
}

fn damage<T>(read: &std::result::Result<T, String>) -> String {
    match read {
        Ok(_) => String::new(),
        Err(damage) => format!(", the object read back damaged ({damage})"),
    }
}

/// One round: `contenders` writers put their own body to `key` at once with `mode`; the
/// writers whose put succeeded. A lost condition (`AlreadyExists`, `PreconditionFailed`) is
/// a loss; any other error ends the check.
async fn race<S: Store + Clone + 'static>(
    store: &S,
    key: &str,
    round: u32,
    contenders: u32,
    mode: PutMode,
    size: usize,
) -> Result<Vec<u32>> {
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..contenders {
        let (store, key, mode) = (store.clone(), key.to_string(), mode.clone());
        writers.spawn(async move {
            let body = body_of(writer, round, size);
            (writer, store.put(&key, body, mode).await)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = writers.join_next().await {
        let (writer, outcome) = joined.map_err(|e| StoreError::Io {
            object: store.locate(key),
            source: std::io::Error::other(e),
        })?;
        match outcome {
            Ok(_) => winners.push(writer),
            Err(StoreError::AlreadyExists { .. } | StoreError::PreconditionFailed { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(winners)
}

/// A race's bodies: small ones, and large ones (a server that checks the condition and
/// then writes lets several large writers win, where small ones rarely overlap).
#[derive(Clone, Copy)]
pub(super) struct Bodies {
    size: usize,
    rounds: u32,
    contenders: u32,
}

impl Bodies {
    pub(super) fn small(options: CheckOptions) -> Bodies {
        Bodies {
            size: 4096,
            rounds: options.rounds,
            contenders: options.contenders,
        }
    }

    /// 8 MiB bodies, in a fifth of the rounds and at most 6 writers.
    pub(super) fn large(options: CheckOptions) -> Bodies {
        Bodies {
            size: 8 << 20,
            rounds: options.rounds.div_ceil(5).max(1),
            contenders: options.contenders.min(6),
        }
    }

    /// The check's name with the bodies' size.
    pub(super) fn name(&self, name: &str) -> String {
        if self.size >= 1 << 20 {
            format!("{name} ({} MiB bodies)", self.size >> 20)
        } else {
            name.to_string()
        }
    }
}

/// Rounds of create-only puts racing for one new key each: exactly one must win, and the
/// object must be the winner's.
pub(super) async fn create_race<S: Store + Clone + 'static>(
    store: &S,
    scratch: &str,
    bodies: Bodies,
) -> Result<CheckResult> {
    let Bodies {
        size,
        rounds,
        contenders,
    } = bodies;
    let mut bad_rounds = Vec::new();
    for round in 0..rounds {
        let key = format!("{scratch}/create-{size}-{round}");
        let winners = race(store, &key, round, contenders, PutMode::Create, size).await?;
        let stored = read_back(store, &key).await?;
        let whole = winners.len() == 1
            && stored.as_ref().ok().map(|(b, _)| b) == Some(&body_of(winners[0], round, size));
        if !whole {
            bad_rounds.push(format!(
                "round {}: {} winners{}",
                round + 1,
                winners.len(),
                damage(&stored)
            ));
        }
    }
    Ok(result(
        &bodies.name("create-only race"),
        bad_rounds.is_empty(),
        if bad_rounds.is_empty() {
            format!(
                "{rounds} rounds of {contenders} writers: one winner each, holding its own bytes"
            )
        } else {
            summarize(&bad_rounds, rounds)
        },
        "a COMMIT, an event, a claimed date and a new lease are created once",
        "two orchestrators could both create the lease, or both commit one stage",
    ))
}

/// Rounds of If-Match puts racing from the same version: exactly one must win.
pub(super) async fn update_race<S: Store + Clone + 'static>(
    store: &S,
    scratch: &str,
    bodies: Bodies,
) -> Result<CheckResult> {
    let Bodies {
        size,
        rounds,
        contenders,
    } = bodies;
    let key = format!("{scratch}/update-{size}");
    let mut etag = store
        .put(&key, body_of(0, 0, size), PutMode::Overwrite)
        .await?;
    let mut bad_rounds = Vec::new();
    for round in 1..=rounds {
        let mode = PutMode::Update(etag.clone());
        let winners = race(store, &key, round, contenders, mode, size).await?;
        let stored = read_back(store, &key).await?;
        let whole = winners.len() == 1
            && stored.as_ref().ok().map(|(b, _)| b) == Some(&body_of(winners[0], round, size));
        if !whole {
            bad_rounds.push(format!(
                "round {round}: {} winners{}",
                winners.len(),
                damage(&stored)
            ));
        }
        etag = match stored.ok().and_then(|(_, tag)| tag) {
            Some(tag) => tag,
            // A damaged object: start the next round from a version written alone.
            None => {
                store
                    .put(&key, body_of(0, round, size), PutMode::Overwrite)
                    .await?
            }
        };
    }
    Ok(result(
        &bodies.name("If-Match race"),
        bad_rounds.is_empty(),
        if bad_rounds.is_empty() {
            format!("{rounds} rounds of {contenders} writers from one version: one winner each")
        } else {
            summarize(&bad_rounds, rounds)
        },
        "a lease renewal or takeover and a run-record update are decided once",
        "two orchestrators could both renew or take over one lease",
    ))
}

/// Writers overwriting one key at once with large bodies: what is read back must be one
/// writer's whole body.
pub(super) async fn torn_writes<S: Store + Clone + 'static>(
    store: &S,
    scratch: &str,
    options: CheckOptions,
) -> Result<CheckResult> {
    const SIZE: usize = 1 << 20;
    let key = format!("{scratch}/torn");
    let mut torn = 0;
    let rounds = options.rounds.div_ceil(4).max(1);
    for round in 0..rounds {
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..options.contenders.min(8) {
            let (store, key) = (store.clone(), key.clone());
            writers.spawn(async move {
                let body = body_of(writer, round, SIZE);
                store.put(&key, body, PutMode::Overwrite).await
            });
        }
        while let Some(joined) = writers.join_next().await {
            joined.map_err(|e| StoreError::Io {
                object: store.locate(&key),
                source: std::io::Error::other(e),
            })??;
        }
        let stored = read_back(store, &key).await?;
        let whole = stored.as_ref().is_ok_and(|(stored, _)| {
            (0..options.contenders.min(8)).any(|w| *stored == body_of(w, round, SIZE))
        });
        if !whole {
            torn += 1;
        }
    }
    Ok(result(
        "concurrent overwrites",
        torn == 0,
        format!(
            "{rounds} rounds of concurrent 1 MiB puts of one key: {torn} torn objects read back"
        ),
        "a reader sees a whole run record, manifest or lease, never a mix of two",
        "a reader could see a mix of two writes: a damaged run record, manifest or lease",
    ))
}

/// Objects listed right after they are written, and gone from the listing right after
/// they are deleted.
pub(super) async fn listing<S: Store>(store: &S, scratch: &str) -> Result<CheckResult> {
    let prefix = format!("{scratch}/list/");
    let keys: Vec<String> = (0..25).map(|i| format!("{prefix}{i:03}")).collect();
    for key in &keys {
        store
            .put(key, key.as_bytes().to_vec(), PutMode::Create)
            .await?;
    }
    let listed: Vec<String> = store
        .list(&prefix)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    store.delete_many(&keys).await?;
    let after = store.list(&prefix).await?.len();
    let passed = listed == keys && after == 0;
    Ok(result(
        "read-after-write listing",
        passed,
        format!(
            "{} of {} new objects listed at once, {after} still listed after their delete",
            listed.len(),
            keys.len()
        ),
        "a resumed run finds every COMMIT and event, and cleanup finds every work-table file",
        "a resumed run could miss a COMMIT or an event, and cleanup could leave files behind",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_tell_writers_and_rounds_apart() {
        assert_ne!(body_of(1, 2, 4096), body_of(2, 1, 4096));
        assert_eq!(body_of(3, 4, 1 << 20).len(), 1 << 20);
    }
}
