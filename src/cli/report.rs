//! `respawn report RUN|WORKFLOW` (one self-contained HTML file) and `respawn cost
//! RUN|WORKFLOW` (what the run cost, against all on-demand, and what it wasted).

use super::{CliError, CostArgs, Format, ReportArgs, output, store};
use respawn_core::contract::RunRecord;
use respawn_core::report::page::money;
use respawn_core::report::render::report_html;
use respawn_core::report::{Cost, page};
use respawn_core::workflow::Workflow;
use respawn_core::workflow::units::format_seconds;
use respawn_run::read::{self as runview, LoadedRun};
use respawn_run::store::Store;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Reads the run a command names; an unknown run is invalid input naming the store.
fn load_target(
    target: &str,
    batch: Option<&str>,
    store_args: &super::StoreArgs,
    tails: bool,
) -> Result<LoadedRun, CliError> {
    let file = Path::new(target);
    let workflow: Option<Workflow> = file.is_file().then(|| output::load(file)).transpose()?;
    let file_store = workflow.as_ref().and_then(|w| w.store.clone());
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let store = store::connect(store_args, file_store.as_deref()).await?;
        let Some((layout, record)) = runview::find(&store, target, batch).await? else {
            let what = match batch {
                Some(batch) => format!(
                    "no run of batch `{}` of `{}`",
                    batch.escape_default(),
                    target.escape_default()
                ),
                None => format!("no run or workflow `{}`", target.escape_default()),
            };
            return Err(CliError::invalid_input(format!(
                "{what} in {}",
                store.describe()
            )));
        };
        Ok(runview::load(&store, &layout, record, workflow.as_ref(), tails).await?)
    })
}

pub fn report(args: &ReportArgs) -> Result<(), CliError> {
    let run = load_target(&args.target, args.batch.as_deref(), &args.store, true)?;
    let html = report_html(&page(&run.input()), &[], None);
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("respawn-report-{}.html", run.record.run_id)));
    std::fs::write(&path, html).map_err(|e| {
        CliError::internal(format!(
            "cannot write the report to {}: {e}",
            path.display()
        ))
    })?;
    output::stdout(&format!("{}\n", path.display()))?;
    Ok(())
}

pub fn cost(args: &CostArgs) -> Result<(), CliError> {
    let run = load_target(&args.target, args.batch.as_deref(), &args.store, false)?;
    let Some(cost) = run.cost() else {
        return Err(CliError::invalid_input(format!(
            "the cost of run {} cannot be told: {}",
            run.record.run_id,
            run.workflow_missing.clone().unwrap_or_default()
        ))
        .with_hint(
            "pass the workflow file instead of the run id: `respawn cost FILE --batch ID`",
        ));
    };
    match args.format {
        Format::Json => {
            output::json(&CostJson::new(&cost, &run.record))?;
        }
        Format::Text => output::stdout(&cost_text(&run, &cost))?,
    }
    Ok(())
}

/// `respawn cost --format json`'s object; `tick`, `schedule` and `backfill` put the same
/// under `cost` in the JSON line of each run they drove.
#[derive(Serialize)]
pub struct CostJson<'a> {
    pub workflow: &'a str,
    pub run_id: &'a str,
    pub batch: &'a str,
    pub status: &'static str,
    #[serde(flatten)]
    pub cost: &'a Cost,
}

impl<'a> CostJson<'a> {
    pub fn new(cost: &'a Cost, record: &'a RunRecord) -> CostJson<'a> {
        CostJson {
            workflow: &record.workflow,
            run_id: &record.run_id,
            batch: &record.batch,
            status: record.status.as_str(),
            cost,
        }
    }
}

/// The one line `respawn run` ends with (and `tick`, `schedule` and `backfill` each run
/// they drove), and `history`'s columns are made of the same.
pub fn cost_line(cost: &Cost) -> String {
    if !cost.complete {
        return format!(
            "cost {} (unfinished; the work done would cost {} on on-demand; waste {})",
            money(&cost.currency, cost.cost),
            money(&cost.currency, cost.on_demand_cost),
            money(&cost.currency, cost.waste.total)
        );
    }
    format!(
        "cost {} (on-demand {}: saving {}, {:.1}%; waste {})",
        money(&cost.currency, cost.cost),
        money(&cost.currency, cost.on_demand_cost),
        money(&cost.currency, cost.saving),
        cost.saving_percent,
        money(&cost.currency, cost.waste.total)
    )
}

fn cost_text(run: &LoadedRun, cost: &Cost) -> String {
    let r = &run.record;
    let mut text = format!(
        "workflow `{}`  run {}  batch {}  status {}\n\n",
        r.workflow,
        r.run_id,
        r.batch,
        r.status.as_str()
    );
    let mut rows = totals_rows(cost);
    rows.extend(cluster_rows(cost));
    rows.extend(waste_rows(cost));
    rows.extend(notice_rows(cost));
    text.push_str(&output::table(
        &["", "HOW MUCH", "COST", "PRICE FROM"],
        &rows,
    ));
    text
}

/// The run's cost against all on-demand, and the saving.
fn totals_rows(cost: &Cost) -> Vec<Vec<String>> {
    let m = |amount: f64| money(&cost.currency, amount);
    let on_demand = if cost.complete {
        "all on-demand"
    } else {
        "the work done on on-demand"
    };
    let saving = if cost.complete {
        vec![
            "saving".into(),
            format!("{:.1}%", cost.saving_percent),
            m(cost.saving),
            String::new(),
        ]
    } else {
        vec![
            "saving".into(),
            "-".into(),
            "-".into(),
            "an unfinished run is not compared with a whole run".into(),
        ]
    };
    vec![
        vec![
            "this run".to_string(),
            String::new(),
            m(cost.cost),
            format!(
                "clusters {} + checkpoint storage {}",
                m(cost.cluster_cost),
                m(cost.storage_cost)
            ),
        ],
        vec![
            on_demand.into(),
            format_seconds(cost.on_demand_hours * 3600.0),
            m(cost.on_demand_cost),
            cost.on_demand_source.clone(),
        ],
        saving,
    ]
}

/// Each cluster, and under it each fleet's instances.
fn cluster_rows(cost: &Cost) -> Vec<Vec<String>> {
    let m = |amount: f64| money(&cost.currency, amount);
    let mut rows = Vec::new();
    for g in &cost.generations {
        rows.push(vec![
            format!("cluster {} {}", g.generation, g.market.as_str()),
            format_seconds(g.hours * 3600.0),
            m(g.cost),
            g.source.clone(),
        ]);
        for i in &g.instances {
            rows.push(vec![
                format!(
                    "  {}: {} x {} {}",
                    i.fleet,
                    i.count,
                    i.instance_type,
                    i.market.as_str()
                ),
                format!("{} instance-h", i.instance_hours),
                m(i.cost),
                i.source.clone(),
            ]);
        }
    }
    rows
}

/// Each kind of waste, and their total.
fn waste_rows(cost: &Cost) -> Vec<Vec<String>> {
    let m = |amount: f64| money(&cost.currency, amount);
    let w = &cost.waste;
    let mut rows: Vec<Vec<String>> = [
        ("waste: interrupted attempts", "h", &w.interrupted_attempts),
        ("waste: recomputed producers", "h", &w.recomputed_producers),
        ("waste: replacement provisioning", "h", &w.provisioning),
        ("waste: checkpoint writes", "h", &w.checkpoint_writes),
        ("waste: checkpoint restores", "h", &w.restores),
        ("waste: checkpoint storage", "GB-h", &w.checkpoint_storage),
    ]
    .into_iter()
    .map(|(what, unit, item)| {
        vec![
            format!("{what} ({})", item.count),
            if unit == "h" {
                format_seconds(item.hours * 3600.0)
            } else {
                format!("{:.4} {unit}", item.hours)
            },
            m(item.cost),
            item.source.clone(),
        ]
    })
    .collect();
    rows.push(vec![
        "waste: total".into(),
        String::new(),
        m(w.total),
        String::new(),
    ]);
    rows
}

/// The spot notices and what they saved, when there were any.
fn notice_rows(cost: &Cost) -> Vec<Vec<String>> {
    let n = &cost.notices;
    if !n.any() {
        return Vec::new();
    }
    let mut rows = vec![vec![
        "notices".into(),
        format!(
            "{} interruption ({} lapsed), {} rebalance",
            n.interruption_notices, n.lapsed, n.rebalance_notices
        ),
        String::new(),
        String::new(),
    ]];
    for (what, item, amount) in [
        (
            "notices: work-tables saved",
            &n.saved,
            money(&cost.currency, n.saved.cost),
        ),
        (
            "notices: provisioning overlapped",
            &n.provisioning_overlap,
            "-".into(),
        ),
    ] {
        rows.push(vec![
            format!("{what} ({})", item.count),
            format_seconds(item.hours * 3600.0),
            amount,
            item.source.clone(),
        ]);
    }
    rows
}
