//! `respawn plan FILE`

use super::{CliError, PlanArgs, PlanFormat};
use super::{learned, output};
use respawn_core::learn::History;
use respawn_core::plan::{Plan, PlanOptions};
use respawn_core::workflow::units::{format_seconds as fmt, format_size};
use respawn_core::workflow::{Severity, Workflow};
use serde::Serialize;
use std::borrow::Cow;

pub fn run(args: &PlanArgs) -> Result<(), CliError> {
    let (workflow, history) = args.what_if.load(&args.file, args.mtti.is_some())?;
    let options = PlanOptions {
        mtti: args.mtti,
        policy: args.policy.map(Into::into),
        market: None,
    };
    let plan = respawn_core::planner::chosen_plan(&workflow, &options);
    match args.format {
        PlanFormat::Text => output::stdout(&text(&workflow, &plan, &history))?,
        PlanFormat::Json => {
            let mtti_source = learned::mtti_source(&workflow, &history, args.mtti.is_some(), None);
            output::json(&to_json(&workflow, &plan, &history, &mtti_source))?
        }
        PlanFormat::Dot => output::stdout(&dot(&workflow, &plan))?,
    }
    Ok(())
}

fn names<'a>(workflow: &'a Workflow, ids: &[usize]) -> Vec<&'a str> {
    ids.iter()
        .map(|&s| workflow.stages[s].name.as_str())
        .collect()
}

fn text(workflow: &Workflow, plan: &Plan, history: &History) -> String {
    let checkpoints = plan.stages.iter().filter(|s| s.checkpoint).count();
    let mut out = format!(
        "workflow `{}`: {} stages, {} checkpointed; policy {}, {} market, mtti {}, provision {}\n",
        workflow.name,
        workflow.stages.len(),
        checkpoints,
        plan.policy.as_str(),
        plan.market.as_str(),
        fmt(plan.mtti),
        fmt(plan.provision_time),
    );
    if let Some(auto) = &plan.auto_market {
        out.push_str(&format!("market (auto): {}\n", auto.decision.reason));
    }
    if let Some(learned) = learned::summary(history) {
        out.push_str(&learned);
    }
    out.push_str(&format!(
        "critical path: {}\nmakespan estimate (no interruptions, on {} slots, final writes included): {}\n",
        names(workflow, &plan.critical_path).join(" -> "),
        workflow.cluster.slots,
        fmt(plan.makespan_estimate)
    ));
    out.push_str(&format!(
        "starts and slack: the engine's schedule on {} slots (longest remaining path first); slack is how late a stage can start without delaying the end\n",
        workflow.cluster.slots
    ));
    if plan.mtti.is_finite() {
        out.push_str(&format!(
            "expected makespan of the critical path under spot (chain optimum): {}\n",
            fmt(plan.chain_optimum)
        ));
    }
    out.push('\n');
    out.push_str(&stage_table(workflow, plan, history));
    out
}

/// One row per stage: what it needs, its estimate, its place in the schedule, its
/// work-table, its checks, and why.
fn stage_table(workflow: &Workflow, plan: &Plan, history: &History) -> String {
    let rows: Vec<Vec<Cow<str>>> = workflow
        .stages
        .iter()
        .zip(&plan.stages)
        .zip(&history.stages)
        .map(|((stage, p), figures)| {
            let learned = if figures.estimate.source.is_learned() {
                " (learned)"
            } else {
                ""
            };
            vec![
                Cow::Borrowed(stage.name.as_str()),
                if stage.needs.is_empty() {
                    Cow::Borrowed("-")
                } else {
                    Cow::Owned(names(workflow, &stage.needs).join(","))
                },
                Cow::Owned(format!("{}{learned}", fmt(stage.estimate.as_secs_f64()))),
                Cow::Owned(fmt(p.earliest_start)),
                Cow::Owned(fmt(p.latest_start)),
                Cow::Owned(fmt(p.slack)),
                Cow::Borrowed(if p.critical { "*" } else { "" }),
                if p.checkpoint {
                    Cow::Owned(format!(
                        "checkpoint ({}, {})",
                        format_size(stage.output_size),
                        fmt(p.checkpoint_cost)
                    ))
                } else {
                    Cow::Borrowed("ephemeral")
                },
                Cow::Owned(checks_text(stage)),
                Cow::Borrowed(p.reason.as_str()),
            ]
        })
        .collect();
    output::table(
        &[
            "stage",
            "needs",
            "estimate",
            "start",
            "latest",
            "slack",
            "critical",
            "work-table",
            "checks",
            "why",
        ],
        &rows,
    )
}

/// The checks run on a stage's output before it is committed: `-`, or their names, a
/// `warn` check marked so.
fn checks_text(stage: &respawn_core::workflow::Stage) -> String {
    if stage.checks.is_empty() {
        return "-".into();
    }
    let names: Vec<String> = (stage.checks.iter())
        .map(|check| match check.severity {
            Severity::Warn => format!("{} (warn)", check.name),
            Severity::Error => check.name.clone(),
        })
        .collect();
    names.join(",")
}

/// `respawn plan --format json`. Fields in alphabetical order, as they were when this
/// was a `serde_json::Value` (whose maps sort their keys); serialized straight from the
/// plan, which on 10,000 stages costs a fifth of building and dropping that tree.
#[derive(Serialize)]
struct PlanJson<'a> {
    chain_optimum_s: f64,
    critical_path: Vec<&'a str>,
    makespan_estimate_s: f64,
    market: &'a str,
    /// `cluster.market: auto`: the choice and the numbers behind it; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    market_choice: Option<MarketChoiceJson<'a>>,
    /// `null` on on-demand capacity, where nothing is interrupted.
    mtti_s: Option<f64>,
    /// `workflow file`, `history: ...`, or `--mtti flag`.
    mtti_source: &'a str,
    policy: &'a str,
    provision_time_s: f64,
    stages: Vec<StageJson<'a>>,
    workflow: &'a str,
}

#[derive(Serialize)]
struct MarketChoiceJson<'a> {
    currency: &'a str,
    market: &'a str,
    on_demand: ExpectationJson,
    reason: &'a str,
    spot: ExpectationJson,
}

#[derive(Serialize)]
struct ExpectationJson {
    cost: f64,
    deadline_met_share: Option<f64>,
    makespan_s: f64,
}

impl From<&respawn_core::plan::market::Expectation> for ExpectationJson {
    fn from(e: &respawn_core::plan::market::Expectation) -> Self {
        ExpectationJson {
            cost: e.cost,
            deadline_met_share: e.deadline_share,
            makespan_s: e.makespan,
        }
    }
}

#[derive(Serialize)]
struct CheckJson<'a> {
    name: &'a str,
    severity: &'static str,
}

#[derive(Serialize)]
struct StageJson<'a> {
    checkpoint: bool,
    checkpoint_cost_s: f64,
    checks: Vec<CheckJson<'a>>,
    critical: bool,
    earliest_start_s: f64,
    estimate_s: f64,
    estimate_source: String,
    #[serde(rename = "final")]
    is_final: bool,
    latest_start_s: f64,
    name: &'a str,
    needs: Vec<&'a str>,
    output_size_bytes: u64,
    output_size_source: String,
    reason: &'a str,
    slack_s: f64,
    unprotected_work_s: f64,
}

fn to_json<'a>(
    workflow: &'a Workflow,
    plan: &'a Plan,
    history: &History,
    mtti_source: &'a str,
) -> PlanJson<'a> {
    PlanJson {
        chain_optimum_s: plan.chain_optimum,
        critical_path: names(workflow, &plan.critical_path),
        makespan_estimate_s: plan.makespan_estimate,
        market: plan.market.as_str(),
        market_choice: plan.auto_market.as_ref().map(|auto| MarketChoiceJson {
            currency: &auto.currency,
            market: auto.decision.market.as_str(),
            on_demand: (&auto.on_demand).into(),
            reason: &auto.decision.reason,
            spot: (&auto.spot).into(),
        }),
        mtti_s: plan.mtti.is_finite().then_some(plan.mtti),
        mtti_source,
        policy: plan.policy.as_str(),
        provision_time_s: plan.provision_time,
        stages: workflow
            .stages
            .iter()
            .zip(&plan.stages)
            .zip(&history.stages)
            .map(|((stage, p), figures)| StageJson {
                checkpoint: p.checkpoint,
                checkpoint_cost_s: p.checkpoint_cost,
                checks: (stage.checks.iter())
                    .map(|check| CheckJson {
                        name: &check.name,
                        severity: check.severity.as_str(),
                    })
                    .collect(),
                critical: p.critical,
                earliest_start_s: p.earliest_start,
                estimate_s: stage.estimate.as_secs_f64(),
                estimate_source: figures.estimate.source.describe(),
                is_final: stage.is_final,
                latest_start_s: p.latest_start,
                name: &stage.name,
                needs: names(workflow, &stage.needs),
                output_size_bytes: stage.output_size,
                output_size_source: figures.output_size.source.describe(),
                reason: &p.reason,
                slack_s: p.slack,
                unprotected_work_s: p.unprotected_work,
            })
            .collect(),
        workflow: &workflow.name,
    }
}

/// Graphviz: critical stages and edges in red, checkpointed work-tables filled.
fn dot(workflow: &Workflow, plan: &Plan) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded\", fontname=\"Helvetica\"];\n",
        workflow.name
    );
    for (stage, p) in workflow.stages.iter().zip(&plan.stages) {
        let mut style = vec!["rounded"];
        let mut attributes = Vec::new();
        if p.checkpoint {
            style.push("filled");
            attributes.push("fillcolor=\"#cfe8ff\"".to_string());
        }
        if p.critical {
            style.push("bold");
            attributes.push("color=\"#d62728\"".to_string());
        }
        attributes.push(format!("style=\"{}\"", style.join(",")));
        let kind = if p.checkpoint {
            "checkpoint"
        } else {
            "ephemeral"
        };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\\n{} · {}\", tooltip=\"{}\", {}];\n",
            stage.name,
            stage.name,
            fmt(stage.estimate.as_secs_f64()),
            kind,
            p.reason.replace('"', "'"),
            attributes.join(", ")
        ));
    }
    let on_path = |a: usize, b: usize| {
        plan.critical_path
            .windows(2)
            .any(|w| w[0] == a && w[1] == b)
    };
    for (id, stage) in workflow.stages.iter().enumerate() {
        for &input in &stage.needs {
            let attributes = if on_path(input, id) {
                " [color=\"#d62728\", penwidth=2]"
            } else {
                ""
            };
            out.push_str(&format!(
                "  \"{}\" -> \"{}\"{};\n",
                workflow.stages[input].name, stage.name, attributes
            ));
        }
    }
    out.push_str("}\n");
    out
}
