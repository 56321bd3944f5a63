//! What must run again after a cluster loss.

use crate::workflow::StageId;

/// After a cluster loss, the stages to run: every unfinished stage, plus, transitively,
/// the producers of work-tables that were lost with the cluster (finished but not
/// committed) and that a stage in the set still needs, back to the nearest checkpoints.
/// Committed stages never run again. `needs` must be in topological order.
pub fn recompute_set(needs: &[Vec<StageId>], finished: &[bool], committed: &[bool]) -> Vec<bool> {
    let mut rerun = vec![false; needs.len()];
    recompute_into(needs, finished, committed, &mut rerun);
    rerun
}

/// [`recompute_set`] written into `rerun`, for the simulator, which asks after every loss.
pub fn recompute_into(
    needs: &[Vec<StageId>],
    finished: &[bool],
    committed: &[bool],
    rerun: &mut [bool],
) {
    rerun.fill(false);
    // Consumers come after producers, so walking backwards settles each stage's consumers first.
    for stage in (0..needs.len()).rev() {
        if committed[stage] {
            continue;
        }
        if !finished[stage] {
            rerun[stage] = true;
        }
        if rerun[stage] {
            for &input in &needs[stage] {
                if !committed[input] {
                    rerun[input] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_ephemeral_inputs_are_recomputed_back_to_the_nearest_checkpoint() {
        // a -> b -> c -> d, a committed, b and c finished on the lost cluster, d unfinished.
        let needs = vec![vec![], vec![0], vec![1], vec![2]];
        let rerun = recompute_set(
            &needs,
            &[true, true, true, false],
            &[true, false, false, false],
        );
        assert_eq!(rerun, vec![false, true, true, true]);
    }

    #[test]
    fn ephemeral_outputs_no_one_still_needs_are_not_recomputed() {
        // a -> b (committed) -> c; a was ephemeral but b is safe, so a is not needed.
        let needs = vec![vec![], vec![0], vec![1]];
        let rerun = recompute_set(&needs, &[true, true, false], &[false, true, false]);
        assert_eq!(rerun, vec![false, false, true]);
    }

    #[test]
    fn committed_stages_never_run_again() {
        let needs = vec![vec![], vec![0]];
        let rerun = recompute_set(&needs, &[true, true], &[true, true]);
        assert_eq!(rerun, vec![false, false]);
    }
}
