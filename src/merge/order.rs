//! The order branches are merged in: wave by wave, a task after the tasks it
//! depends on, otherwise by agent number.

use std::collections::{BTreeSet, HashMap};

use crate::protocol::AgentStatus;

/// Indices of `tasks` in merge order. Dependencies on tasks that are not in
/// `tasks` are ignored; tasks caught in a dependency cycle come last, by
/// wave and number.
pub fn merge_order(tasks: &[&AgentStatus]) -> Vec<usize> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.agent_id.as_str(), i))
        .collect();
    let key = |i: usize| (tasks[i].wave, tasks[i].number(), i);
    let mut waiting: Vec<usize> = vec![0; tasks.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (i, t) in tasks.iter().enumerate() {
        let deps: BTreeSet<usize> = t
            .depends_on
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .filter(|&d| d != i)
            .collect();
        waiting[i] = deps.len();
        for d in deps {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<(u32, u64, usize)> = (0..tasks.len())
        .filter(|&i| waiting[i] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(tasks.len());
    while let Some(next) = ready.pop_first() {
        let i = next.2;
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(key(d));
            }
        }
    }
    let mut rest: Vec<usize> = (0..tasks.len()).filter(|i| !order.contains(i)).collect();
    rest.sort_by_key(|&i| key(i));
    order.extend(rest);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(n: u64, wave: u32, deps: &[u64]) -> AgentStatus {
        let mut s = AgentStatus::new(format!("agent-{n}"), "1");
        s.wave = wave;
        s.depends_on = deps.iter().map(|d| format!("agent-{d}")).collect();
        s
    }

    #[test]
    fn waves_first_then_dependencies_then_numbers() {
        let tasks = [
            task(1, 1, &[3]),
            task(2, 2, &[]),
            task(3, 1, &[]),
            task(4, 1, &[]),
            task(5, 1, &[9]),
        ];
        let refs: Vec<&AgentStatus> = tasks.iter().collect();
        let order: Vec<u64> = merge_order(&refs)
            .into_iter()
            .map(|i| tasks[i].number())
            .collect();
        assert_eq!(order, [3, 1, 4, 5, 2]);
    }

    #[test]
    fn a_cycle_still_lists_every_task() {
        let tasks = [task(1, 1, &[2]), task(2, 1, &[1]), task(3, 1, &[])];
        let refs: Vec<&AgentStatus> = tasks.iter().collect();
        let order: Vec<u64> = merge_order(&refs)
            .into_iter()
            .map(|i| tasks[i].number())
            .collect();
        assert_eq!(order, [3, 1, 2]);
    }
}
