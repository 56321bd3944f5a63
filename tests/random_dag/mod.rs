//! Random workflows for the simulator's and the planner's property tests: a DAG of
//! `stages` stages where each stage needs up to three earlier ones (some far back), with
//! estimates from 2 to 90 minutes and outputs from 1 to 60 GB, on `slots` slots.

use respawn_core::workflow::{self, Workflow};

/// A small deterministic generator (xorshift), so that a seed names a workflow.
pub struct Draw(u64);

impl Draw {
    pub fn new(seed: u64) -> Draw {
        Draw(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The YAML text of a random workflow.
pub fn random_dag_text(seed: u64, stages: usize, slots: u32) -> String {
    let mut draw = Draw::new(seed);
    let mut text = format!(
        "name: random-{seed}\ncluster: {{ slots: {slots}, mtti: 2h, provision_time: 10m }}\ncheckpoint: {{ write_throughput: 200MB/s }}\nstages:\n"
    );
    for s in 0..stages {
        text.push_str(&format!("  s{s}:\n"));
        if s > 0 {
            let count = 1 + draw.below(3);
            let mut needs: Vec<u64> = (0..count)
                .map(|_| {
                    // Mostly recent stages, sometimes one far back.
                    let back = if draw.below(4) == 0 {
                        draw.below(s as u64)
                    } else {
                        draw.below(6.min(s as u64))
                    };
                    s as u64 - 1 - back
                })
                .collect();
            needs.sort();
            needs.dedup();
            let list: Vec<String> = needs.iter().map(|n| format!("s{n}")).collect();
            text.push_str(&format!("    needs: [{}]\n", list.join(", ")));
        }
        text.push_str(&format!(
            "    run: \"true\"\n    estimate: {}m\n    output_size: {}GB\n",
            2 + draw.below(89),
            1 + draw.below(60)
        ));
    }
    text
}

pub fn random_dag(seed: u64, stages: usize, slots: u32) -> Workflow {
    let text = random_dag_text(seed, stages, slots);
    workflow::parse("random.yaml", &text).unwrap_or_else(|d| panic!("{d}\n{text}"))
}
