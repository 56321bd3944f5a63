//! Capacity traces in the public format of the "Can't Be Late" spot traces (NSDI 2024):
//! `{"metadata": {"gap_seconds": G}, "data": [n0, n1, ...]}`, where `n_k` is how many spot
//! nodes were running (or could be had) at `k * G` seconds. The simulator maps them onto
//! the cluster by fraction: a drop to zero loses the cluster, a drop from `n` to `m > 0`
//! loses that share of its nodes (at least one), and while the count is zero no spot
//! cluster can be had, so provisioning waits for capacity to come back (at most the spot
//! timeout). `cluster.interruptions: {trace: FILE}` makes one the planning model.

/// A capacity trace, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityTrace {
    /// Seconds between two counts.
    pub gap: f64,
    pub counts: Vec<u32>,
}

/// What the trace does to a cluster at a drop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drop {
    /// The count fell to zero: the whole cluster is lost.
    Whole,
    /// The count fell by this share of what it was (above zero, below one).
    Share(f64),
}

/// Reads a capacity trace; an error names the position (line and column, or the index in
/// `data`) and what is wrong there.
pub fn parse_capacity_trace(text: &str) -> Result<CapacityTrace, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("line {}, column {}: not JSON: {e}", e.line(), e.column()))?;
    let gap = value
        .pointer("/metadata/gap_seconds")
        .ok_or("`metadata.gap_seconds` is missing: the seconds between two counts")?;
    let gap = gap
        .as_f64()
        .filter(|g| g.is_finite() && *g > 0.0)
        .ok_or_else(|| {
            format!("`metadata.gap_seconds` is {gap}, not a number of seconds above 0")
        })?;
    let data = value
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or("`data` is missing or not a list of node counts")?;
    let counts = data
        .iter()
        .enumerate()
        .map(|(i, n)| {
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("`data[{i}]` is {n}, not a count of nodes (0 or more)"))
        })
        .collect::<Result<Vec<u32>, String>>()?;
    if counts.len() < 2 || counts.iter().all(|&n| n == 0) {
        return Err("`data` needs two counts or more, and capacity at some point".into());
    }
    Ok(CapacityTrace { gap, counts })
}

impl CapacityTrace {
    /// The count at index `k`, the trace repeating itself past its end.
    fn count(&self, k: u64) -> u32 {
        self.counts[(k % self.counts.len() as u64) as usize]
    }

    /// Seconds the trace covers before it repeats.
    pub fn span(&self) -> f64 {
        self.gap * self.counts.len() as f64
    }

    /// The first drop strictly after trace time `after`: its trace time and what it takes.
    pub fn next_drop(&self, after: f64) -> Option<(f64, Drop)> {
        // A time that is a drop's own, give or take rounding (a trial's offset added and
        // taken away again), is at that drop, not just before it: never the same drop twice.
        let first = (after / self.gap + 1e-9).floor().max(0.0) as u64 + 1;
        (first..first + self.counts.len() as u64).find_map(|k| {
            let (before, now) = (self.count(k - 1), self.count(k));
            (now < before).then(|| {
                let drop = if now == 0 {
                    Drop::Whole
                } else {
                    Drop::Share(f64::from(before - now) / f64::from(before))
                };
                (k as f64 * self.gap, drop)
            })
        })
    }

    /// The mean time between losses while capacity is held, a drop counting as the share
    /// of the nodes it takes (a drop to zero as one loss): the MTTI the checkpoint plan
    /// uses when the trace is the planning model. `None` when nothing is ever lost.
    pub fn mtti(&self) -> Option<f64> {
        let held = self.counts.iter().filter(|&&n| n > 0).count() as f64 * self.gap;
        let lost: f64 = self
            .counts
            .windows(2)
            .filter(|w| w[1] < w[0])
            .map(|w| f64::from(w[0] - w[1]) / f64::from(w[0]))
            .sum();
        (lost > 0.0).then(|| held / lost)
    }

    /// The first trace time at or after `at` when capacity can be had.
    pub fn available_from(&self, at: f64) -> f64 {
        let k = (at / self.gap).floor().max(0.0) as u64;
        if self.count(k) > 0 {
            return at;
        }
        (k + 1..k + 1 + self.counts.len() as u64)
            .find(|&k| self.count(k) > 0)
            .map_or(at, |k| k as f64 * self.gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_public_format_and_finds_drops_and_spells() {
        let trace = parse_capacity_trace(
            r#"{"metadata": {"gap_seconds": 60}, "data": [4, 4, 3, 3, 0, 0, 2, 4]}"#,
        )
        .unwrap();
        assert_eq!(trace.next_drop(0.0), Some((120.0, Drop::Share(0.25))));
        assert_eq!(trace.next_drop(120.0), Some((240.0, Drop::Whole)));
        // Past its end the trace repeats: 4 -> 4 at the seam, then 4 -> 3 again.
        assert_eq!(trace.next_drop(300.0), Some((600.0, Drop::Share(0.25))));
        assert_eq!(trace.available_from(250.0), 360.0);
        // A drop's time, with a trial's offset taken away and added again, rounds a
        // little below it: the next drop is still the one after it, not the same again.
        let odd = CapacityTrace {
            gap: 2.43,
            counts: vec![2, 1, 1, 0, 2],
        };
        let (at, _) = odd.next_drop(0.0).unwrap();
        let offset = 3.0 * 2.43;
        assert!(
            (at - offset) + offset < at,
            "the rounding this guards against"
        );
        assert_eq!(
            odd.next_drop((at - offset) + offset).unwrap().1,
            Drop::Whole
        );
        assert_eq!(trace.available_from(30.0), 30.0);
        assert_eq!(trace.span(), 480.0);
        // 6 counts with capacity (360 s held); drops of 1/4 and of all: 1.25 losses.
        assert_eq!(trace.mtti(), Some(360.0 / 1.25));
    }

    #[test]
    fn a_malformed_trace_names_the_position() {
        for (text, wanted) in [
            ("{\"metadata\": ", "line 1, column 13: not JSON"),
            (r#"{"data": [1, 0]}"#, "`metadata.gap_seconds` is missing"),
            (
                r#"{"metadata": {"gap_seconds": 0}, "data": [1, 0]}"#,
                "not a number of seconds above 0",
            ),
            (
                r#"{"metadata": {"gap_seconds": 5}, "data": [1, -1]}"#,
                "`data[1]` is -1",
            ),
            (
                r#"{"metadata": {"gap_seconds": 5}, "data": [1, 2.5]}"#,
                "`data[1]` is 2.5",
            ),
            (
                r#"{"metadata": {"gap_seconds": 5}, "data": [0, 0]}"#,
                "capacity at some point",
            ),
            (r#"{"metadata": {"gap_seconds": 5}}"#, "`data` is missing"),
        ] {
            let error = parse_capacity_trace(text).unwrap_err();
            assert!(error.contains(wanted), "{text}: {error}");
        }
    }
}
