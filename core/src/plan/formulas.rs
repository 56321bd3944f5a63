//! The checkpointing formulas the planner rests on. Times are in seconds.

/// Young's first-order optimal interval between checkpoints: sqrt(2 C M).
pub fn young_interval(checkpoint_cost: f64, mtti: f64) -> f64 {
    (2.0 * checkpoint_cost * mtti).sqrt()
}

/// Daly's higher-order optimal interval (Daly 2006, eq. 37):
/// sqrt(2CM) * (1 + sqrt(C/2M)/3 + (C/2M)/9) - C for C < 2M, and M otherwise.
pub fn daly_interval(checkpoint_cost: f64, mtti: f64) -> f64 {
    if !mtti.is_finite() {
        return f64::INFINITY;
    }
    if checkpoint_cost >= 2.0 * mtti {
        return mtti;
    }
    let ratio = checkpoint_cost / (2.0 * mtti);
    (2.0 * checkpoint_cost * mtti).sqrt() * (1.0 + ratio.sqrt() / 3.0 + ratio / 9.0)
        - checkpoint_cost
}

/// Expected wall time to get `work` done and then a checkpoint of cost `checkpoint_cost`
/// written, when interruptions are exponential with mean `mtti`, each costs `downtime`
/// without interruptions, and each retry first restores the last checkpoint (`restore`):
/// E = e^(R/M) (M + D) (e^((W+C)/M) - 1). With no interruptions (M infinite) it is W + C.
pub fn expected_segment_time(
    work: f64,
    checkpoint_cost: f64,
    downtime: f64,
    restore: f64,
    mtti: f64,
) -> f64 {
    if !mtti.is_finite() {
        return work + checkpoint_cost;
    }
    (restore / mtti).exp() * (mtti + downtime) * ((work + checkpoint_cost) / mtti).exp_m1()
}

/// One stage of a chain, for the dynamic program.
#[derive(Clone, Copy, Debug)]
pub struct ChainStage {
    pub work: f64,
    pub checkpoint_cost: f64,
    pub restore_cost: f64,
    /// A checkpoint must be taken here (a final output, or `checkpoint: always`).
    pub forced: bool,
    /// A checkpoint may not be taken here (`checkpoint: never`).
    pub forbidden: bool,
}

/// The optimal checkpoints on a chain: T(0) = 0,
/// T(j) = min over i < j of T(i) + E(w(i+1..j), C_j, D, R_i). The chain ends with its last
/// stage; that last segment pays a checkpoint only when the last stage is forced.
/// Returns the expected makespan and, for each stage, whether it is checkpointed.
pub fn chain_optimum(chain: &[ChainStage], downtime: f64, mtti: f64) -> (f64, Vec<bool>) {
    let n = chain.len();
    if n == 0 {
        return (0.0, Vec::new());
    }
    let mut prefix = vec![0.0; n + 1];
    for (k, stage) in chain.iter().enumerate() {
        prefix[k + 1] = prefix[k] + stage.work;
    }
    let mut best = vec![f64::INFINITY; n + 1];
    let mut from = vec![0usize; n + 1];
    best[0] = 0.0;
    for j in 1..=n {
        let end = &chain[j - 1];
        let last = j == n;
        if !last && end.forbidden {
            continue;
        }
        let cost = if last && !end.forced {
            0.0
        } else {
            end.checkpoint_cost
        };
        let mut i = j;
        while i > 0 {
            i -= 1;
            let restore = if i == 0 {
                0.0
            } else {
                chain[i - 1].restore_cost
            };
            let segment =
                expected_segment_time(prefix[j] - prefix[i], cost, downtime, restore, mtti);
            // T(i) >= prefix[i] and the bound only grows as i moves back, so stop early.
            if prefix[i] + segment >= best[j] && best[j].is_finite() {
                break;
            }
            if best[i].is_finite() && best[i] + segment < best[j] {
                best[j] = best[i] + segment;
                from[j] = i;
            }
            if i > 0 && chain[i - 1].forced {
                break; // a forced checkpoint cannot be skipped over
            }
        }
    }
    let mut checkpointed = vec![false; n];
    let mut j = n;
    while j > 0 {
        if j < n || chain[n - 1].forced {
            checkpointed[j - 1] = true;
        }
        j = from[j];
    }
    (best[n], checkpointed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: f64 = 60.0;
    const HOUR: f64 = 3600.0;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn daly_matches_published_intervals_for_a_five_minute_checkpoint() {
        assert_close(
            daly_interval(5.0 * MINUTE, 24.0 * HOUR) / MINUTE,
            116.7,
            0.05,
        );
        assert_close(daly_interval(5.0 * MINUTE, 6.0 * HOUR) / MINUTE, 56.7, 0.05);
        assert_close(
            daly_interval(5.0 * MINUTE, 15.0 * MINUTE) / MINUTE,
            9.1,
            0.05,
        );
    }

    #[test]
    fn daly_is_mtti_when_checkpoints_cost_more_than_two_mttis() {
        assert_eq!(daly_interval(3.0 * HOUR, HOUR), HOUR);
    }

    #[test]
    fn young_is_the_square_root_of_two_c_m() {
        assert_close(
            young_interval(5.0 * MINUTE, 24.0 * HOUR),
            (2.0f64 * 300.0 * 86_400.0).sqrt(),
            1e-9,
        );
        assert_close(
            young_interval(5.0 * MINUTE, 24.0 * HOUR) / MINUTE,
            120.0,
            1e-9,
        );
    }

    #[test]
    fn segment_time_tends_to_work_plus_checkpoint_without_interruptions() {
        assert_eq!(
            expected_segment_time(HOUR, MINUTE, HOUR, HOUR, f64::INFINITY),
            HOUR + MINUTE
        );
        assert_close(
            expected_segment_time(HOUR, MINUTE, HOUR, HOUR, 1e12),
            HOUR + MINUTE,
            1e-3,
        );
    }

    #[test]
    fn segment_time_matches_the_closed_form() {
        let (w, c, d, r, m) = (
            2.0 * HOUR,
            5.0 * MINUTE,
            10.0 * MINUTE,
            5.0 * MINUTE,
            3.0 * HOUR,
        );
        let expected = (r / m).exp() * (m + d) * (((w + c) / m).exp() - 1.0);
        assert_close(expected_segment_time(w, c, d, r, m), expected, 1e-6);
    }

    fn uniform_chain(n: usize, work: f64, cost: f64) -> Vec<ChainStage> {
        (0..n)
            .map(|k| ChainStage {
                work,
                checkpoint_cost: cost,
                restore_cost: cost,
                forced: k + 1 == n,
                forbidden: false,
            })
            .collect()
    }

    #[test]
    fn chain_optimum_agrees_with_brute_force() {
        let chain: Vec<ChainStage> = [30.0, 90.0, 10.0, 45.0, 120.0, 5.0, 60.0]
            .iter()
            .enumerate()
            .map(|(k, w)| ChainStage {
                work: w * MINUTE,
                checkpoint_cost: (k as f64 + 1.0) * MINUTE,
                restore_cost: 2.0 * MINUTE,
                forced: k == 6,
                forbidden: k == 2,
            })
            .collect();
        let (downtime, mtti) = (10.0 * MINUTE, 2.0 * HOUR);
        let (best, placement) = chain_optimum(&chain, downtime, mtti);
        let mut brute = f64::INFINITY;
        for mask in 0u32..(1 << 6) {
            if mask & (1 << 2) != 0 {
                continue;
            }
            let (mut total, mut start, mut restore) = (0.0, 0, 0.0);
            for j in 0..7 {
                if j == 6 || mask & (1 << j) != 0 {
                    let work: f64 = chain[start..=j].iter().map(|s| s.work).sum();
                    total += expected_segment_time(
                        work,
                        chain[j].checkpoint_cost,
                        downtime,
                        restore,
                        mtti,
                    );
                    restore = chain[j].restore_cost;
                    start = j + 1;
                }
            }
            brute = brute.min(total);
        }
        assert_close(best, brute, 1e-6);
        assert!(placement[6]);
        assert!(!placement[2]);
    }

    #[test]
    fn chain_optimum_takes_no_checkpoints_when_interruptions_are_rare() {
        let (_, placement) =
            chain_optimum(&uniform_chain(10, HOUR, 5.0 * MINUTE), 10.0 * MINUTE, 1e9);
        assert_eq!(placement.iter().filter(|c| **c).count(), 1);
    }

    #[test]
    fn chain_optimum_checkpoints_often_when_interruptions_are_frequent() {
        let (_, placement) = chain_optimum(&uniform_chain(10, HOUR, MINUTE), 10.0 * MINUTE, HOUR);
        assert_eq!(placement.iter().filter(|c| **c).count(), 10);
    }
}
