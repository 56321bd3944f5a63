//! The history flags of `plan`, `simulate` and `stats`, and the one way they read what
//! earlier runs measured ([`respawn_run::read::history`]).

use super::{CliError, StoreArgs, output, store};
use respawn_core::learn::History;
use respawn_core::workflow::Workflow;
use respawn_run::store::StoreUrl;
use std::time::Duration;

/// Where the history is, or that none is wanted.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryFlags {
    /// Plan from the workflow file alone, not from what earlier runs measured.
    #[arg(long)]
    pub no_history: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// How long reading the history rides out a failing S3 store before `plan` or `simulate`
/// goes on from the file alone (a plan is no reason to wait minutes).
const PLAN_OUTAGE: Duration = Duration::from_secs(10);

/// The history of `workflow` for a plan: none with `--no-history` or where the store does
/// not exist yet; a store that cannot be read, or a record that does not, is named in a
/// warning and the plan goes on without it.
pub fn for_plan(flags: &HistoryFlags, workflow: &Workflow) -> History {
    if flags.no_history {
        return History::none(workflow);
    }
    let mut args = flags.store.clone();
    args.store_outage = Some(args.store_outage.unwrap_or(PLAN_OUTAGE).min(PLAN_OUTAGE));
    if let Ok(StoreUrl::Local(path)) = store::url(&args, workflow.store.as_deref())
        && !path.exists()
    {
        return History::none(workflow);
    }
    match read(&args, workflow) {
        Ok(history) => history,
        Err(error) => {
            output::stderr(&format!(
                "warning: the run history was not read, so this plan uses the workflow file's figures: {}\n",
                error.render().trim_end()
            ));
            History::none(workflow)
        }
    }
}

/// The history of `workflow` in the store `args` name; runs that did not read are named
/// in warnings and left out.
pub fn read(args: &StoreArgs, workflow: &Workflow) -> Result<History, CliError> {
    let runtime = store::start_runtime()?;
    let learned = runtime.block_on(async {
        let store = store::connect(args, workflow.store.as_deref()).await?;
        Ok::<_, CliError>(respawn_run::read::history(&store, workflow).await?)
    })?;
    for skipped in &learned.skipped {
        output::stderr(&format!("warning: left out of the history: {skipped}\n"));
    }
    Ok(learned.history)
}

/// Where the plan's MTTI came from: the `--mtti` flag, a replayed trace, the workflow's
/// planning trace, the history, or the file.
pub fn mtti_source(
    workflow: &Workflow,
    history: &History,
    flag: bool,
    trace: Option<&std::path::Path>,
) -> String {
    match (flag, trace, &workflow.cluster.interruptions) {
        (true, _, _) => "--mtti flag".into(),
        (false, Some(path), _) => format!("trace {}", path.display()),
        (false, None, Some(model)) => format!(
            "planning trace {} (cluster.interruptions): mean time between losses",
            model.path
        ),
        (false, None, None) => history.interruptions.describe(),
    }
}

/// One line for the text views naming what was learned, if anything was.
pub fn summary(history: &History) -> Option<String> {
    let names = |pick: fn(&respawn_core::learn::StageFigures) -> bool| {
        let picked: Vec<&str> = history
            .stages
            .iter()
            .filter(|s| pick(s))
            .map(|s| s.stage.as_str())
            .collect();
        picked
    };
    let estimates = names(|s| s.estimate.source.is_learned());
    let sizes = names(|s| s.output_size.source.is_learned());
    let mtti = history.interruptions.source.is_learned();
    if estimates.is_empty() && sizes.is_empty() && !mtti {
        return None;
    }
    let mut parts = Vec::new();
    if !estimates.is_empty() {
        parts.push(format!("the estimates of {}", estimates.join(", ")));
    }
    if !sizes.is_empty() {
        parts.push(format!("the output sizes of {}", sizes.join(", ")));
    }
    if mtti {
        parts.push(format!("the mtti ({})", history.interruptions.describe()));
    }
    Some(format!(
        "learned from {} earlier run{} (--no-history plans from the file): {}\n",
        history.runs,
        if history.runs == 1 { "" } else { "s" },
        parts.join("; ")
    ))
}
