//! Where each object of one workflow lives in the store (the ledger's keys).

/// Where each object of one workflow lives. Every prefix ends in `/`.
#[derive(Clone, Debug)]
pub struct Layout {
    workflow: String,
}

impl Layout {
    /// `workflow` is a checked workflow name (`[a-z0-9-]`).
    pub fn new(workflow: &str) -> Layout {
        Layout {
            workflow: workflow.into(),
        }
    }

    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// The lease of one batch: one orchestrator at a time runs it.
    pub fn lease(&self, batch: &str) -> String {
        format!("{}/leases/{batch}", self.workflow)
    }

    /// Run slot `slot` of a scheduled workflow (`schedule.max_active` of them).
    pub fn slot(&self, slot: u32) -> String {
        format!("{}/schedule/slots/{slot}", self.workflow)
    }

    pub fn leases(&self) -> String {
        format!("{}/leases/", self.workflow)
    }

    /// Claims of scheduled dates, one object per batch.
    pub fn claims(&self) -> String {
        format!("{}/schedule/claims/", self.workflow)
    }

    pub fn claim(&self, batch: &str) -> String {
        format!("{}{batch}.json", self.claims())
    }

    /// The scheduler's watermark: every due date before it is settled or listed open.
    pub fn settled(&self) -> String {
        format!("{}/schedule/settled.json", self.workflow)
    }

    /// Ranges of dates catch-up left out, one object per range.
    pub fn missed_ranges(&self) -> String {
        format!("{}/schedule/missed/", self.workflow)
    }

    /// The range of missed dates that starts at `from` (a compact UTC time, sortable).
    pub fn missed_range(&self, from: &str) -> String {
        format!("{}{from}.json", self.missed_ranges())
    }

    /// Which run of `batch` is the latest, so that no command lists every run to know.
    pub fn latest(&self, batch: &str) -> String {
        format!("{}/latest/{batch}.json", self.workflow)
    }

    /// Written once every run of the workflow has its [`Layout::latest`] object: a batch
    /// without one has no run.
    pub fn latest_index(&self) -> String {
        format!("{}/latest-index.json", self.workflow)
    }

    /// What the latest runs measured, kept for plans to learn from in one read.
    pub fn learned(&self) -> String {
        format!("{}/learned.json", self.workflow)
    }

    /// The record of backfill `id`.
    pub fn backfill(&self, id: &str) -> String {
        format!("{}/schedule/backfills/{id}.json", self.workflow)
    }

    pub fn runs(&self) -> String {
        format!("{}/runs/", self.workflow)
    }

    pub fn run(&self, run_id: &str) -> String {
        format!("{}/runs/{run_id}/", self.workflow)
    }

    pub fn run_record(&self, run_id: &str) -> String {
        format!("{}run.json", self.run(run_id))
    }

    /// The workflow file as the run last ran it: reports read its stages and prices.
    pub fn run_workflow(&self, run_id: &str) -> String {
        format!("{}workflow.yaml", self.run(run_id))
    }

    pub fn events(&self, run_id: &str) -> String {
        format!("{}events/", self.run(run_id))
    }

    pub fn event(&self, run_id: &str, seq: u64) -> String {
        format!("{}{seq:010}.json", self.events(run_id))
    }

    /// Everything cleanup may delete for a run, and nothing else.
    pub fn work(&self, run_id: &str) -> String {
        format!("{}work/", self.run(run_id))
    }

    pub fn attempt(&self, run_id: &str, stage: &str, attempt: u32) -> String {
        format!("{}{stage}/{attempt}/", self.work(run_id))
    }

    pub fn commit(&self, run_id: &str, stage: &str) -> String {
        format!("{}{stage}/COMMIT", self.work(run_id))
    }

    /// The record of one alert of a run to one destination: created before it is sent,
    /// so that it is sent once however many orchestrators drive the run.
    pub fn alert(&self, run_id: &str, key: &str) -> String {
        format!("{}alerts/{key}.json", self.run(run_id))
    }

    pub fn log(&self, run_id: &str, stage: &str, attempt: u32) -> String {
        format!("{}logs/{stage}/{attempt}.log", self.run(run_id))
    }

    pub fn output(&self, stage: &str, batch: &str) -> String {
        format!("{}/outputs/{stage}/{batch}/", self.workflow)
    }

    pub fn success(&self, stage: &str, batch: &str) -> String {
        format!("{}_SUCCESS", self.output(stage, batch))
    }
}

/// The current time as RFC 3339, seconds precision, UTC.
pub fn timestamp(now: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string()
}
