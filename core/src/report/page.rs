//! The report of one run as a page model: every bar, band, marker and table row with its
//! place on the Gantt, ready for the template (`templates/report.html`).

use super::chart::{Chart, LABEL_WIDTH, PLOT_WIDTH, clock};
use super::cost::{Cost, cost};
use super::timeline::{CheckMark, Timeline, timeline};
use crate::contract::event::StampedEvent;
use crate::workflow::Workflow;
use crate::workflow::units::format_seconds;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What the report is made from: the run record's fields, its events, the workflow it ran
/// (when the store keeps it), and the tails of the attempts' logs.
pub struct ReportInput<'a> {
    pub run: RunSummary,
    pub events: &'a [StampedEvent],
    /// Events that could not be read, already in words.
    pub problems: Vec<String>,
    pub workflow: Option<&'a Workflow>,
    /// Why there is no workflow, when there is none.
    pub workflow_missing: Option<String>,
    /// The last lines of each attempt's log, by (stage, attempt).
    pub tails: &'a BTreeMap<(String, u32), String>,
}

/// The run record, as far as the report shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    pub workflow: String,
    pub run_id: String,
    pub batch: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub message: Option<String>,
    pub interruptions: usize,
    pub attempts: u32,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub y: f64,
    pub text_y: f64,
    pub label: String,
    pub name: String,
    pub critical: bool,
}

#[derive(Debug, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub stage: String,
    pub attempt: u32,
    pub outcome: &'static str,
    pub critical: bool,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Band {
    pub x: f64,
    pub width: f64,
    pub provisioning_width: f64,
    pub market: &'static str,
    pub label: String,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct AttemptRow {
    pub stage: String,
    pub attempt: u32,
    pub generation: usize,
    pub market: &'static str,
    pub start: String,
    pub duration: String,
    /// The stage's `estimate` in the workflow the run kept (`-` without it).
    pub estimate: String,
    /// It took more than twice its estimate.
    pub over: bool,
    pub outcome: &'static str,
    /// Its checks: `-`, or `name passed`, `name failed`, `name warned`.
    pub checks: String,
    pub critical: bool,
    pub log: String,
}

#[derive(Debug, Serialize)]
pub struct MoneyRow {
    pub what: String,
    pub amount: String,
    pub cost: String,
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub run: RunSummary,
    pub live: bool,
    pub origin: Option<String>,
    pub duration: String,
    pub width: f64,
    pub plot_x: f64,
    pub plot_width: f64,
    pub height: f64,
    pub rows: Vec<Row>,
    pub bars: Vec<Bar>,
    pub bands: Vec<Band>,
    pub interruptions: Vec<Marker>,
    /// Spot notices, on the axis and across the rows.
    pub notices: Vec<Marker>,
    /// Nodes of a cluster lost while it worked on.
    pub capacity: Vec<Marker>,
    pub checkpoints: Vec<Marker>,
    pub ticks: Vec<Tick>,
    pub attempts: Vec<AttemptRow>,
    pub cost: Option<Cost>,
    pub cost_summary: Vec<MoneyRow>,
    pub generations: Vec<MoneyRow>,
    pub waste: Vec<MoneyRow>,
    /// What spot notices bought (empty without a notice).
    pub notice_rows: Vec<MoneyRow>,
    pub no_cost: Option<String>,
    pub problems: Vec<String>,
}

pub fn money(currency: &str, amount: f64) -> String {
    if amount.abs() < 10.0 {
        format!("{amount:.4} {currency}")
    } else {
        format!("{amount:.2} {currency}")
    }
}

pub fn page(input: &ReportInput) -> Page {
    let live = input.run.status == "running";
    let timeline: Timeline = timeline(input.events, live);
    let chart = Chart::new(input, &timeline);
    let cost = input.workflow.map(|wf| cost(wf, &timeline));
    let (cost_summary, generations, waste) = cost.as_ref().map(money_rows).unwrap_or_default();
    let notice_rows = cost.as_ref().map(window_rows).unwrap_or_default();
    let mut problems = input.problems.clone();
    problems.extend(timeline.problems.iter().cloned());
    Page {
        live,
        origin: timeline.origin.clone(),
        duration: format_seconds(timeline.end),
        width: LABEL_WIDTH + PLOT_WIDTH + 10.0,
        plot_x: LABEL_WIDTH,
        plot_width: PLOT_WIDTH,
        height: chart.height(),
        rows: chart.rows(),
        bars: chart.bars(input.tails),
        bands: chart.bands(),
        interruptions: chart.interruptions(),
        notices: chart.notices(),
        capacity: chart.capacity(),
        checkpoints: chart.checkpoints(),
        ticks: chart.ticks(),
        attempts: attempt_rows(input, &timeline, &chart.critical),
        no_cost: cost
            .is_none()
            .then(|| input.workflow_missing.clone().unwrap_or_default()),
        cost,
        cost_summary,
        generations,
        waste,
        notice_rows,
        problems,
        run: input.run.clone(),
    }
}

/// The table of attempts under the chart, one row each, with its estimate beside it.
fn attempt_rows(
    input: &ReportInput,
    timeline: &Timeline,
    critical: &BTreeSet<usize>,
) -> Vec<AttemptRow> {
    (timeline.attempts.iter().enumerate())
        .map(|(index, a)| {
            let estimate = (input.workflow)
                .and_then(|wf| wf.stages.iter().find(|s| s.name == a.stage))
                .map(|s| s.estimate.as_secs_f64());
            AttemptRow {
                stage: a.stage.clone(),
                attempt: a.attempt,
                generation: a.generation + 1,
                market: a.market.as_str(),
                start: clock(a.start),
                duration: format_seconds(a.seconds()),
                estimate: estimate.map_or("-".into(), format_seconds),
                over: estimate.is_some_and(|e| e > 0.0 && a.seconds() > 2.0 * e),
                outcome: if a.recompute && a.outcome.as_str() == "succeeded" {
                    "succeeded (recomputed)"
                } else {
                    a.outcome.as_str()
                },
                checks: checks_text(&a.checks),
                critical: critical.contains(&index),
                log: a.log.clone(),
            }
        })
        .collect()
}

type MoneyTables = (Vec<MoneyRow>, Vec<MoneyRow>, Vec<MoneyRow>);

fn checks_text(checks: &[CheckMark]) -> String {
    let said = |c: &CheckMark| match (c.code, c.severity.as_str()) {
        (0, _) => format!("{} passed", c.name),
        (_, "warn") => format!("{} warned", c.name),
        _ => format!("{} failed", c.name),
    };
    let text: Vec<String> = checks.iter().map(said).collect();
    if text.is_empty() {
        "-".into()
    } else {
        text.join(", ")
    }
}

fn money_rows(cost: &Cost) -> MoneyTables {
    (summary_rows(cost), cluster_rows(cost), waste_rows(cost))
}

/// This run, the same work on on-demand, and the saving.
fn summary_rows(cost: &Cost) -> Vec<MoneyRow> {
    let m = |amount: f64| money(&cost.currency, amount);
    vec![
        MoneyRow {
            what: "this run".into(),
            amount: String::new(),
            cost: m(cost.cost),
            source: format!(
                "clusters {} + checkpoint storage {}",
                m(cost.cluster_cost),
                m(cost.storage_cost)
            ),
        },
        MoneyRow {
            what: "the same work on on-demand".into(),
            amount: format!(
                "{} of cluster",
                format_seconds(cost.on_demand_hours * 3600.0)
            ),
            cost: m(cost.on_demand_cost),
            source: cost.on_demand_source.clone(),
        },
        MoneyRow {
            what: "saving".into(),
            amount: if cost.complete {
                format!("{:.1}%", cost.saving_percent)
            } else {
                "unfinished run".into()
            },
            cost: m(cost.saving),
            source: "on-demand minus this run".into(),
        },
    ]
}

/// Each cluster, then (EMR) one row per fleet, instance type and market.
fn cluster_rows(cost: &Cost) -> Vec<MoneyRow> {
    let m = |amount: f64| money(&cost.currency, amount);
    cost.generations
        .iter()
        .flat_map(|g| {
            let cluster = MoneyRow {
                what: format!("cluster {} ({})", g.generation, g.market.as_str()),
                amount: format!(
                    "{} ({} provisioning){}",
                    format_seconds(g.hours * 3600.0),
                    format_seconds(g.provisioning_hours * 3600.0),
                    g.instance_hours
                        .map(|h| format!(", {h} instance-hours"))
                        .unwrap_or_default()
                ),
                cost: m(g.cost),
                source: g.source.clone(),
            };
            let instances = g.instances.iter().map(|i| MoneyRow {
                what: format!(
                    "\u{21b3} {}: {} x {} ({})",
                    i.fleet,
                    i.count,
                    i.instance_type,
                    i.market.as_str()
                ),
                amount: format!(
                    "{} instance-hours at {}/h",
                    i.instance_hours,
                    m(i.price_per_hour)
                ),
                cost: m(i.cost),
                source: i.source.clone(),
            });
            std::iter::once(cluster).chain(instances)
        })
        .collect()
}

/// What was wasted, by cause, and in all.
fn waste_rows(cost: &Cost) -> Vec<MoneyRow> {
    let m = |amount: f64| money(&cost.currency, amount);
    let w = &cost.waste;
    let item = |what: &str, unit: &str, i: &super::cost::WasteItem| MoneyRow {
        what: format!("{what} ({})", i.count),
        amount: if unit == "hours" {
            format_seconds(i.hours * 3600.0)
        } else {
            format!("{:.4} {unit}", i.hours)
        },
        cost: m(i.cost),
        source: i.source.clone(),
    };
    let mut waste = vec![
        item(
            "attempts lost to interruptions",
            "hours",
            &w.interrupted_attempts,
        ),
        item(
            "producers re-run for lost work-tables",
            "hours",
            &w.recomputed_producers,
        ),
        item(
            "provisioning of replacement clusters",
            "hours",
            &w.provisioning,
        ),
        item("checkpoint writes", "hours", &w.checkpoint_writes),
        item("checkpoint restores", "hours", &w.restores),
        item("checkpoint storage", "GB-hours", &w.checkpoint_storage),
    ];
    waste.push(MoneyRow {
        what: "total waste".into(),
        amount: String::new(),
        cost: m(w.total),
        source: String::new(),
    });
    waste
}

/// The spot notices' table: empty when none came.
fn window_rows(cost: &Cost) -> Vec<MoneyRow> {
    let n = &cost.notices;
    if !n.any() {
        return Vec::new();
    }
    let row = |what: String, item: &super::cost::WasteItem, cost: String| MoneyRow {
        what,
        amount: format_seconds(item.hours * 3600.0),
        cost,
        source: item.source.clone(),
    };
    vec![
        MoneyRow {
            what: "notices".into(),
            amount: format!(
                "{} interruption ({} lapsed), {} rebalance",
                n.interruption_notices, n.lapsed, n.rebalance_notices
            ),
            cost: String::new(),
            source: String::new(),
        },
        row(
            format!("work-tables saved in the window ({})", n.saved.count),
            &n.saved,
            money(&cost.currency, n.saved.cost),
        ),
        row(
            format!("provisioning overlapped ({})", n.provisioning_overlap.count),
            &n.provisioning_overlap,
            "-".into(),
        ),
    ]
}
