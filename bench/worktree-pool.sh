#!/usr/bin/env bash
# Worktree setup from the warm pool against fresh worktrees, in the same run.
#
# In a repository of N_FILES files (default 20,000), po-spawn runs N_TASKS
# tasks (default 20) whose agent is `true`, one at a time:
#
#   fresh-1  every task gets a new worktree (a full checkout);
#   (po-clean --pool retires those worktrees into the pool; then a commit
#    changes 50 files, so the next tasks start from a new base)
#   pooled   every task takes a pooled worktree: `git worktree move`, a
#            checkout that rewrites only the 50 files that differ, `git clean`;
#   fresh-2  the pool is empty again: new worktrees, as in fresh-1;
#   reused   tasks whose first attempt failed (agent `false`, not timed) run
#            again with --retry: each finds its worktree complete and reuses
#            it (the check reads two small files; nothing is hashed);
#   none     the same tasks with --isolation none: po-spawn's own cost, which
#            the worktree runs also pay.
#
# Worktree setup time = a run's time - the `none` run's time. Prints each run,
# setup per task, and the ratio pooled / fresh (fresh = the mean of fresh-1
# and fresh-2). Builds po in release mode.
set -euo pipefail

N_FILES=${N_FILES:-20000}
N_TASKS=${N_TASKS:-20}
here=$(cd "$(dirname "$0")/.." && pwd)

(cd "$here" && cargo build --release --quiet --bin po-spawn --bin po-clean --bin po-status)
bin="${CARGO_TARGET_DIR:-$here/target}/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
unset PO_AGENT_CMD PO_RUNTIME_DIR PO_MAX_WORKERS AMPLIHACK_MAX_PARALLEL_AGENTS || true

repo="$work/repo"
mkdir -p "$repo"
git -C "$repo" init --quiet -b main
per_dir=100
dirs=$(( (N_FILES + per_dir - 1) / per_dir ))
for d in $(seq 1 "$dirs"); do
    mkdir -p "$repo/src/d$d"
    for f in $(seq 1 "$per_dir"); do
        printf 'module %s, file %s\nsome text to make it a real file\n' "$d" "$f" > "$repo/src/d$d/f$f.txt"
    done
done
git -C "$repo" add -A
git -C "$repo" commit --quiet -m "$N_FILES files"
files=$(git -C "$repo" ls-files | wc -l)

# parallel/<id>/ with N_TASKS pending status files.
make_tasks() {
    local id=$1
    local dir="$repo/.claude/runtime/parallel/$id"
    mkdir -p "$dir"
    printf '{"id":"%s","source":{"kind":"bench","value":"worktree-pool"}}\n' "$id" > "$dir/orchestration.json"
    for i in $(seq 1 "$N_TASKS"); do
        printf '{"agent_id":"agent-%s","status":"pending","orchestration_id":"%s","title":"task %s"}\n' \
            "$i" "$id" "$i" > "$dir/agent-$i.status.json"
    done
}

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }

# run ID [po-spawn options…]: the wall clock of one po-spawn, one task at a time.
run() {
    make_tasks "$1"
    rerun "$@"
}

# rerun ID [po-spawn options…]: the same, of the tasks as they are.
rerun() {
    local id=$1
    shift
    sync
    local t0 t1
    t0=$(now)
    (cd "$repo" && "$bin/po-spawn" --id "$id" --max-workers 1 --agent-cmd true "$@" >/dev/null 2>"$work/$id.err") \
        || { cat "$work/$id.err" >&2; exit 1; }
    t1=$(now)
    local done
    done=$(grep -l '"status": "completed"' "$repo/.claude/runtime/parallel/$id"/agent-*.status.json | wc -l)
    [ "$done" -eq "$N_TASKS" ] || { echo "worktree-pool: $id: only $done/$N_TASKS completed" >&2; exit 1; }
    elapsed "$t0" "$t1"
}

pooled_count() {
    ls "$repo/.claude/runtime/worktrees/.pool" 2>/dev/null | grep -c '^wt-' || true
}

echo "== $N_TASKS tasks, one at a time, in a repository of $files files"
fresh1=$(run fresh-1)

sync; t0=$(now)
(cd "$repo" && "$bin/po-clean" fresh-1 --pool >/dev/null)
t1=$(now)
retire=$(elapsed "$t0" "$t1")
in_pool=$(pooled_count)
[ "$in_pool" -eq "$N_TASKS" ] || { echo "worktree-pool: $in_pool/$N_TASKS worktrees pooled" >&2; exit 1; }

# A new base: 50 files differ from what the pooled worktrees hold.
for d in $(seq 1 5); do
    for f in $(seq 1 10); do echo "changed" >> "$repo/src/d$d/f$f.txt"; done
done
git -C "$repo" commit --quiet -am "50 files changed"

pooled=$(run pooled)
taken=$(grep -l 'from the pool' "$repo"/.claude/runtime/logs/orch-pooled-*/agent-*.log | wc -l)
left=$(pooled_count)
fresh2=$(run fresh-2)
make_tasks reused
(cd "$repo" && "$bin/po-spawn" --id reused --max-workers 1 --agent-cmd false >/dev/null 2>&1) || true
reused=$(rerun reused --retry)
reuses=$(grep -l 'reusing worktree' "$repo"/.claude/runtime/logs/orch-reused-*/agent-*.log | sort -u | wc -l)
none=$(run none --isolation none)

setup() { echo "scale=4; ($1 - $none) / $N_TASKS * 1000" | bc -l; }
fresh=$(echo "scale=4; ($fresh1 + $fresh2) / 2" | bc -l)
printf '   fresh-1:  %6.2fs  (worktree setup %6.1f ms/task)\n' "$fresh1" "$(setup "$fresh1")"
printf '   pooled:   %6.2fs  (worktree setup %6.1f ms/task; %s of %s taken from the pool, %s left)\n' \
    "$pooled" "$(setup "$pooled")" "$taken" "$N_TASKS" "$left"
printf '   fresh-2:  %6.2fs  (worktree setup %6.1f ms/task)\n' "$fresh2" "$(setup "$fresh2")"
printf '   reused:   %6.2fs  (worktree setup %6.1f ms/task; %s of %s reused)\n' \
    "$reused" "$(setup "$reused")" "$reuses" "$N_TASKS"
printf '   none:     %6.2fs  (po-spawn alone, %6.1f ms/task)\n' "$none" "$(echo "scale=4; $none / $N_TASKS * 1000" | bc -l)"
printf '   po-clean --pool of %s worktrees: %.2fs\n' "$N_TASKS" "$retire"
printf '   ratio pooled / fresh, worktree setup: %.2f\n' "$(echo "scale=4; ($pooled - $none) / ($fresh - $none)" | bc -l)"
printf '   ratio pooled / fresh, whole runs:     %.2f\n' "$(echo "scale=4; $pooled / $fresh" | bc -l)"
