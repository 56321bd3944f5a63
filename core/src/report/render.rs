//! The pages as HTML, through minijinja templates compiled into the binary. Every value a
//! template shows is escaped (`.html` templates escape by default), so stage, workflow and
//! batch names cannot inject markup. Nothing on a page loads anything: styles are inline,
//! the Gantt is inline SVG, and there is no script.

use super::page::Page;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;
use std::sync::OnceLock;

const CSS: &str = include_str!("templates/style.css");

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("report.html", include_str!("templates/report.html")),
            ("index.html", include_str!("templates/index.html")),
            ("workflow.html", include_str!("templates/workflow.html")),
        ] {
            // The templates are part of the binary; the unit tests render each one.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
        }
        env
    })
}

fn render(name: &str, context: minijinja::Value) -> String {
    environment()
        .get_template(name)
        .and_then(|template| template.render(context))
        .unwrap_or_else(|e| {
            format!(
                "<!DOCTYPE html><meta charset=\"utf-8\"><p>respawn could not render {name}: {}</p>",
                escape(&e.to_string())
            )
        })
}

/// Escapes text for HTML (for the one page not made by a template).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A link of the navigation bar (the UI's pages only).
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub href: String,
    pub label: String,
}

/// The report page; `refresh` reloads it every so many seconds while the run is live.
pub fn report_html(page: &Page, nav: &[Link], refresh: Option<u32>) -> String {
    render(
        "report.html",
        context! { page => Value::from(Serde(page)), nav => Value::from(Serde(nav)), refresh => refresh, css => CSS },
    )
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkflowRow {
    pub name: String,
    pub href: String,
    pub runs: usize,
    pub latest_batch: String,
    pub latest_status: String,
}

pub fn index_html(store: &str, workflows: &[WorkflowRow], problems: &[String]) -> String {
    render(
        "index.html",
        context! { store => store, workflows => Value::from(Serde(workflows)), problems => Value::from(Serde(problems)), css => CSS },
    )
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub batch: String,
    pub run_id: String,
    pub href: String,
    pub started_at: String,
    pub finished_at: String,
    pub status: String,
    pub interruptions: usize,
    pub attempts: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub batch: String,
    pub status: String,
    pub href: String,
    pub title: String,
}

/// Batches to a row of the grid (a month of daily dates).
const GRID_WIDTH: usize = 31;

/// A workflow's batches as a grid (the latest run of each batch, oldest first) and its
/// runs as a table; `problems` name the run records that could not be read.
pub fn workflow_html(workflow: &str, runs: &[RunRow], problems: &[String], refresh: u32) -> String {
    let mut latest: Vec<&RunRow> = Vec::new();
    for run in runs {
        match latest.iter().position(|r| r.batch == run.batch) {
            Some(i) => latest[i] = run,
            None => latest.push(run),
        }
    }
    let cells: Vec<Cell> = latest
        .iter()
        .map(|r| Cell {
            batch: r.batch.clone(),
            status: r.status.clone(),
            href: r.href.clone(),
            title: format!("{}: {} (run {})", r.batch, r.status, r.run_id),
        })
        .collect();
    let grid: Vec<&[Cell]> = cells.chunks(GRID_WIDTH).collect();
    let live = runs.iter().any(|r| r.status == "running");
    render(
        "workflow.html",
        context! {
            workflow => workflow, runs => Value::from(Serde(runs)), grid => Value::from(Serde(&grid)),
            problems => Value::from(Serde(problems)),
            live => live, refresh => refresh, css => CSS,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::page::{ReportInput, RunSummary, page};
    use crate::report::timeline::tests::{at, exit, launch};
    use crate::workflow::Market;
    use std::collections::BTreeMap;

    const HOSTILE: &str = "<img src=x onerror=alert(1)>\"'&";

    #[test]
    fn pages_of_a_live_run_reload_and_finished_ones_do_not() {
        let tails = BTreeMap::new();
        let report = |status: &str| {
            let input = ReportInput {
                run: RunSummary {
                    status: status.into(),
                    ..RunSummary::default()
                },
                events: &[],
                problems: Vec::new(),
                workflow: None,
                workflow_missing: None,
                tails: &tails,
            };
            report_html(&page(&input), &[], Some(5))
        };
        let refresh = "http-equiv=\"refresh\" content=\"5\"";
        assert!(report("running").contains(refresh));
        assert!(!report("succeeded").contains(refresh));
        let row = |status: &str| RunRow {
            batch: "b".into(),
            run_id: "r".into(),
            href: "/w/x/r/r".into(),
            started_at: String::new(),
            finished_at: String::new(),
            status: status.into(),
            interruptions: 0,
            attempts: 0,
        };
        assert!(workflow_html("x", &[row("running")], &[], 5).contains(refresh));
        assert!(!workflow_html("x", &[row("failed")], &[], 5).contains(refresh));
    }

    #[test]
    fn every_name_on_every_page_is_escaped() {
        let events = vec![
            at(0.0, launch(HOSTILE, 1, 1, Market::Spot)),
            at(1.0, exit(HOSTILE, 1, 0)),
        ];
        let tails = BTreeMap::from([((HOSTILE.to_string(), 1), HOSTILE.to_string())]);
        let input = ReportInput {
            run: RunSummary {
                workflow: HOSTILE.into(),
                batch: HOSTILE.into(),
                run_id: HOSTILE.into(),
                status: "succeeded".into(),
                message: Some(HOSTILE.into()),
                ..RunSummary::default()
            },
            events: &events,
            problems: vec![HOSTILE.into()],
            workflow: None,
            workflow_missing: Some(HOSTILE.into()),
            tails: &tails,
        };
        let report = report_html(&page(&input), &[], None);
        let row = RunRow {
            batch: HOSTILE.into(),
            run_id: HOSTILE.into(),
            href: HOSTILE.into(),
            started_at: HOSTILE.into(),
            finished_at: HOSTILE.into(),
            status: HOSTILE.into(),
            interruptions: 0,
            attempts: 1,
        };
        let workflow = workflow_html(HOSTILE, &[row], &[HOSTILE.into()], 5);
        let listing = WorkflowRow {
            name: HOSTILE.into(),
            href: HOSTILE.into(),
            runs: 1,
            latest_batch: HOSTILE.into(),
            latest_status: HOSTILE.into(),
        };
        let index = index_html(HOSTILE, &[listing], &[HOSTILE.into()]);
        for html in [report, workflow, index] {
            assert!(!html.contains("<img"), "{html}");
            assert!(
                html.contains("&lt;img src=x onerror=alert(1)&gt;"),
                "{html}"
            );
            assert!(!html.contains("could not render"), "{html}");
        }
    }
}
