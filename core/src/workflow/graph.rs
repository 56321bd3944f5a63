//! The graph of stages: which stages consume a stage, a topological order, and the cycles
//! that prevent one. The one implementation of these: the reader, the planner, the
//! simulator and the engine's state machine all call it.
//!
//! A graph is given as `needs`: for each stage, the stages it needs (its inputs), by index.

use super::model::StageId;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};

/// For each stage, the stages that need it, in increasing order.
pub fn consumers<N: AsRef<[StageId]>>(needs: &[N]) -> Vec<Vec<StageId>> {
    let mut consumers = vec![Vec::new(); needs.len()];
    for (stage, inputs) in needs.iter().enumerate() {
        for &input in inputs.as_ref() {
            consumers[input].push(stage);
        }
    }
    consumers
}

/// A topological order (every stage after its inputs) by Kahn's algorithm, taking the
/// smallest index whenever several stages are ready, so that the reader keeps file order
/// where the graph leaves a choice. Stages on a cycle, or behind one, are left out.
pub fn topological_order<N: AsRef<[StageId]>>(needs: &[N]) -> Vec<StageId> {
    let mut indegree: Vec<usize> = needs.iter().map(|n| n.as_ref().len()).collect();
    let consumers = consumers(needs);
    let mut ready: BinaryHeap<Reverse<usize>> = (0..needs.len())
        .filter(|&i| indegree[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(needs.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &c in &consumers[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.push(Reverse(c));
            }
        }
    }
    order
}

/// One loop per strongly connected component of two or more stages, as the whole loop: a
/// list of stages that starts and ends with its smallest stage, each needing the next.
/// A stage that needs itself is not such a component: the caller reports it. Iterative
/// (Tarjan), so that a 10,000-stage chain cannot overflow the stack.
pub fn cycles<N: AsRef<[StageId]>>(needs: &[N]) -> Vec<Vec<StageId>> {
    let n = needs.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            let inputs = needs[v].as_ref();
            if *child < inputs.len() {
                let w = inputs[*child];
                *child += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        components.push(component);
                    }
                }
            }
        }
    }
    components
        .into_iter()
        .map(|component| shortest_loop(needs, &component))
        .collect()
}

/// The shortest loop through the component's smallest stage, inside the component
/// (breadth-first), from that stage back to it.
fn shortest_loop<N: AsRef<[StageId]>>(needs: &[N], component: &[StageId]) -> Vec<StageId> {
    let members: HashSet<usize> = component.iter().copied().collect();
    let start = *component.iter().min().unwrap_or(&0);
    let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    let mut closing = None;
    'search: while let Some(v) = queue.pop_front() {
        for &w in needs[v].as_ref() {
            if w == start {
                closing = Some(v);
                break 'search;
            }
            if members.contains(&w) && !previous.contains_key(&w) {
                previous.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut path = vec![start];
    let mut v = closing.unwrap_or(start);
    let mut back = Vec::new();
    while v != start {
        back.push(v);
        v = previous.get(&v).copied().unwrap_or(start);
    }
    back.reverse();
    path.extend(back);
    path.push(start);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumers_of_a_diamond() {
        // a -> b, a -> c, (b, c) -> d
        let needs = vec![vec![], vec![0], vec![0], vec![1, 2]];
        assert_eq!(
            consumers(&needs),
            vec![vec![1, 2], vec![3], vec![3], vec![]]
        );
    }

    #[test]
    fn the_order_puts_inputs_first_and_keeps_file_order_where_free() {
        // 0 needs 2; 1 and 2 need nothing; 3 needs 0 and 1.
        let needs = vec![vec![2], vec![], vec![], vec![0, 1]];
        assert_eq!(topological_order(&needs), vec![1, 2, 0, 3]);
        let chain: Vec<Vec<usize>> = (0..5).map(|s| (s + 1..5).take(1).collect()).collect();
        assert_eq!(topological_order(&chain), vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn stages_on_or_behind_a_cycle_have_no_place_in_the_order() {
        // 0 <-> 1, 2 needs 1, 3 is free.
        let needs = vec![vec![1], vec![0], vec![1], vec![]];
        assert_eq!(topological_order(&needs), vec![3]);
    }

    #[test]
    fn a_cycle_is_the_whole_loop_from_its_smallest_stage() {
        // 0 needs 2, 2 needs 1, 1 needs 0: the loop 0 -> 2 -> 1 -> 0.
        let needs = vec![vec![2], vec![0], vec![1], vec![0]];
        assert_eq!(cycles(&needs), vec![vec![0, 2, 1, 0]]);
    }

    #[test]
    fn each_tangle_gives_one_loop_and_a_dag_none() {
        // Two separate loops: 0 <-> 1 and 2 -> 3 -> 4 -> 2, with a shortcut 2 -> 4.
        let needs = vec![vec![1], vec![0], vec![3, 4], vec![4], vec![2]];
        let mut found = cycles(&needs);
        found.sort();
        assert_eq!(found, vec![vec![0, 1, 0], vec![2, 4, 2]]);
        let dag = vec![vec![], vec![0], vec![0], vec![1, 2]];
        assert!(cycles(&dag).is_empty());
    }

    #[test]
    fn a_stage_that_needs_itself_is_left_to_the_caller() {
        assert!(cycles(&[vec![0usize]]).is_empty());
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let n = 100_000;
        let mut needs: Vec<Vec<usize>> = (0..n)
            .map(|s| if s == 0 { vec![] } else { vec![s - 1] })
            .collect();
        assert_eq!(topological_order(&needs).len(), n);
        needs[0].push(n - 1);
        let found = cycles(&needs);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), n + 1);
    }
}
