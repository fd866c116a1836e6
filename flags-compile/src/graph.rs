//! Dependency ordering for segments (a segment may use earlier segments) and prerequisites
//! (a flag is evaluated after the flags it requires). Iterative, so a long chain cannot
//! overflow the stack; cycles are returned by name so the error can show them.

use std::collections::BTreeSet;

/// Orders `0..deps.len()` so that every node comes after the nodes it depends on
/// (`deps[i]` = what `i` depends on; out-of-range entries are ignored). Among nodes that are
/// free at the same time the smallest index goes first, so the order is deterministic.
/// Returns the order of every node not on or behind a cycle, and each cycle found, as the list
/// of nodes `a, b, ..., a` (each depending on the next).
pub fn topo_order(deps: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let n = deps.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting_on = vec![0usize; n];
    for (node, node_deps) in deps.iter().enumerate() {
        let unique: BTreeSet<usize> = node_deps.iter().copied().filter(|&d| d < n).collect();
        waiting_on[node] = unique.len();
        for dep in unique {
            dependents[dep].push(node);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(node) = ready.pop_first() {
        order.push(node);
        for &dependent in &dependents[node] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.insert(dependent);
            }
        }
    }

    // Whatever is left waits on a cycle or is on one. Walk "depends on a node still waiting"
    // until a node repeats: that closes a cycle.
    let mut stuck: Vec<bool> = waiting_on.iter().map(|&w| w > 0).collect();
    let mut cycles = Vec::new();
    for start in 0..n {
        if !stuck[start] {
            continue;
        }
        let mut path = vec![start];
        let mut position = std::collections::HashMap::from([(start, 0usize)]);
        let mut node = start;
        while let Some(next) = deps[node]
            .iter()
            .copied()
            .filter(|&d| d < n)
            .find(|&d| stuck[d])
        {
            if let Some(&at) = position.get(&next) {
                let mut cycle = path[at..].to_vec();
                cycle.push(next);
                cycles.push(cycle);
                break;
            }
            position.insert(next, path.len());
            path.push(next);
            node = next;
        }
        // Everything on this walk is now accounted for (reported, or behind a reported cycle).
        for visited in path {
            stuck[visited] = false;
        }
    }
    (order, cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_dependencies_first_and_deterministically() {
        // 0 depends on 2, 1 on nothing, 2 on 1.
        let (order, cycles) = topo_order(&[vec![2], vec![], vec![1]]);
        assert_eq!(order, vec![1, 2, 0]);
        assert!(cycles.is_empty());
    }

    #[test]
    fn names_each_cycle_once() {
        // 0 -> 1 -> 2 -> 0, 3 -> 0 (behind the cycle), 4 -> 4.
        let (order, cycles) = topo_order(&[vec![1], vec![2], vec![0], vec![0], vec![4]]);
        assert!(order.is_empty());
        assert_eq!(cycles, vec![vec![0, 1, 2, 0], vec![4, 4]]);
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let deps: Vec<Vec<usize>> = (0..200_000)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        let (order, cycles) = topo_order(&deps);
        assert_eq!(order.len(), 200_000);
        assert!(cycles.is_empty());
    }
}
