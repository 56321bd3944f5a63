//! `respawn clusters [--orphans] [--terminate]`: the EMR clusters respawn started, found by
//! their tags, and which of them nobody needs any more.

use super::{CliError, ClustersArgs, ErrorKind, Format, output, store};
use respawn_core::contract::{Layout, RunStatus};
use respawn_run::clock::WallClock;
use respawn_run::cluster::emr::{self, Listed, TAG_BATCH, TAG_RUN, TAG_STORE, TAG_WORKFLOW};
use respawn_run::read;
use respawn_run::store::{AnyStore, StoreUrl};
use serde::Serialize;

/// One cluster in `clusters --format json`: what EMR says of it, the run its tags name,
/// and why nobody needs it (when nobody does).
#[derive(Serialize)]
struct ClusterJson<'a> {
    id: &'a str,
    name: &'a str,
    state: &'a str,
    created: Option<&'a str>,
    workflow: Option<&'a String>,
    run_id: Option<&'a String>,
    batch: Option<&'a String>,
    store: Option<&'a String>,
    orphan: Option<&'a String>,
    terminated: bool,
}

#[derive(Serialize)]
struct ClustersJson<'a> {
    clusters: Vec<ClusterJson<'a>>,
}

pub fn run(args: &ClustersArgs) -> Result<(), CliError> {
    let runtime = store::start_runtime()?;
    runtime.block_on(async move {
        let client = emr::client(args.region.as_deref(), args.emr_endpoint_url.as_deref()).await;
        let found = emr::find_live(&client, None).await?;
        let mut rows = Vec::new();
        for (_, listed) in found {
            let orphan = orphan_reason(&listed, args).await;
            if args.orphans && orphan.is_none() {
                continue;
            }
            rows.push((listed, orphan));
        }
        let mut terminated = Vec::new();
        let mut failed = Vec::new();
        if args.terminate {
            for (listed, _) in &rows {
                match emr::terminate(&client, &listed.id).await {
                    Ok(()) => terminated.push(listed.id.clone()),
                    Err(error) => failed.push(format!("{}: {error}", listed.id)),
                }
            }
        }
        match args.format {
            Format::Json => output::json(&ClustersJson {
                clusters: rows
                    .iter()
                    .map(|(l, orphan)| ClusterJson {
                        id: &l.id,
                        name: &l.name,
                        state: &l.state,
                        created: l.created.as_deref(),
                        workflow: l.tags.get(TAG_WORKFLOW),
                        run_id: l.tags.get(TAG_RUN),
                        batch: l.tags.get(TAG_BATCH),
                        store: l.tags.get(TAG_STORE),
                        orphan: orphan.as_ref(),
                        terminated: terminated.contains(&l.id),
                    })
                    .collect(),
            })?,
            Format::Text => output::stdout(&text(&rows, &terminated, args.orphans))?,
        }
        match failed.as_slice() {
            [] => Ok(()),
            [one] => Err(CliError::new(
                ErrorKind::Cluster,
                format!("cannot terminate {one}"),
            )),
            all => Err(CliError::new(
                ErrorKind::Cluster,
                format!(
                    "cannot terminate {} clusters:\n  {}",
                    all.len(),
                    all.join("\n  ")
                ),
            )),
        }
    })
}

/// Why nobody needs the cluster any more, or `None` when its run may still use it (or
/// its store cannot tell: a cluster is never called an orphan on a guess).
async fn orphan_reason(listed: &Listed, args: &ClustersArgs) -> Option<String> {
    let (Some(workflow), Some(run_id), Some(url)) = (
        listed.tags.get(TAG_WORKFLOW),
        listed.tags.get(TAG_RUN),
        listed.tags.get(TAG_STORE),
    ) else {
        return Some("not tagged with its workflow, run and store".into());
    };
    let store_url = StoreUrl::parse(url).ok()?;
    let store = match AnyStore::open_existing(&store_url, &store::options(&args.store)).await {
        Ok(store) => store,
        Err(error) => {
            tracing::warn!("cannot tell whether {} is orphaned: {error}", listed.id);
            return None;
        }
    };
    let layout = Layout::new(workflow);
    let record = match read::record(&store, &layout, run_id).await {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!("cannot read run {run_id}: {error}");
            return None;
        }
    };
    // The read side's one answer to "is someone at work on this run", as `status` gives it.
    match read::liveness(&store, &layout, &record, &WallClock).await {
        Ok(live) if record.status != RunStatus::Running && live.why_nobody(run_id).is_some() => {
            Some(format!("its run {run_id} is {}", record.status.as_str()))
        }
        Ok(live) => live.why_nobody(run_id),
        Err(error) => {
            tracing::warn!("cannot read the lease of {workflow}: {error}");
            None
        }
    }
}

/// The clusters as a table, each with why nobody needs it (or that it is in use).
fn text(rows: &[(Listed, Option<String>)], terminated: &[String], orphans: bool) -> String {
    if rows.is_empty() {
        let what = if orphans { "orphaned " } else { "" };
        return format!("no {what}clusters started by respawn are up\n");
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(l, orphan)| {
            let tag = |k: &str| l.tags.get(k).cloned().unwrap_or_else(|| "-".into());
            vec![
                l.id.clone(),
                l.state.clone(),
                tag(TAG_WORKFLOW),
                tag(TAG_RUN),
                tag(TAG_BATCH),
                l.created.clone().unwrap_or_else(|| "-".into()),
                match (orphan, terminated.contains(&l.id)) {
                    (Some(reason), true) => format!("{reason}; terminating"),
                    (Some(reason), false) => reason.clone(),
                    (None, _) => "in use".into(),
                },
            ]
        })
        .collect();
    output::table(
        &[
            "CLUSTER", "STATE", "WORKFLOW", "RUN", "BATCH", "CREATED", "STATUS",
        ],
        &table,
    )
}
