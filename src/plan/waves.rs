//! Waves from dependencies: a task runs in the wave after the last of the
//! tasks it depends on (wave = 1 + the highest wave of its dependencies).
//! A cycle has no order and is reported with the tasks in it.

/// The wave of each task (from 1), or the tasks of one cycle in order.
pub fn assign(deps: &[Vec<usize>]) -> Result<Vec<u32>, Vec<usize>> {
    let n = deps.len();
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (task, on) in deps.iter().enumerate() {
        for &d in on {
            dependents[d].push(task);
        }
    }
    let mut wave = vec![1u32; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut done = 0;
    while let Some(t) = ready.pop() {
        done += 1;
        for &next in &dependents[t] {
            wave[next] = wave[next].max(wave[t] + 1);
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(next);
            }
        }
    }
    if done == n {
        return Ok(wave);
    }
    // Walk unfinished dependencies until a task repeats: that loop is a cycle.
    let start = (0..n)
        .find(|&i| waiting[i] > 0)
        .expect("some task is unfinished");
    let mut path = vec![start];
    let mut at = start;
    loop {
        at = *deps[at]
            .iter()
            .find(|&&d| waiting[d] > 0)
            .expect("an unfinished task waits for an unfinished task");
        if let Some(pos) = path.iter().position(|&p| p == at) {
            return Err(path[pos..].to_vec());
        }
        path.push(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_dependencies() {
        assert_eq!(
            assign(&[vec![], vec![0], vec![0, 1], vec![]]),
            Ok(vec![1, 2, 3, 1])
        );
    }

    #[test]
    fn cycles_are_named() {
        let err = assign(&[vec![], vec![2], vec![3], vec![1]]).unwrap_err();
        let mut sorted = err.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 2, 3]);
    }
}
