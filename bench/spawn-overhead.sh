#!/usr/bin/env bash
# po-spawn's scheduling overhead against a shell baseline, in the same run.
#
#  1. N_WT tasks (default 200) whose agent is `true`, each in its own git
#     worktree, 8 at a time: `po-spawn --max-workers 8` against
#     `git worktree add` + `true` driven by GNU `parallel -j 8`.
#  2. N_NONE tasks (default 1000) without worktrees: `po-spawn --isolation none`
#     against `parallel -j 8 true`.
#
# Prints wall-clock times, per-task times and ratios (po / baseline), and for
# part 2 each tool's per-job overhead above `xargs -P` starting the same jobs.
# Needs GNU parallel (apt-get install parallel). Builds po in release mode.
set -euo pipefail

N_WT=${N_WT:-200}
N_NONE=${N_NONE:-1000}
JOBS=${JOBS:-8}
here=$(cd "$(dirname "$0")/.." && pwd)

command -v parallel >/dev/null || { echo "spawn-overhead: GNU parallel is missing (apt-get install parallel)" >&2; exit 1; }
(cd "$here" && cargo build --release --quiet --bin po-spawn --bin po-status)
bin="${CARGO_TARGET_DIR:-$here/target}/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
unset PO_AGENT_CMD PO_RUNTIME_DIR PO_MAX_WORKERS AMPLIHACK_MAX_PARALLEL_AGENTS || true

# A small repository: 50 files in a few directories.
make_repo() {
    local dir=$1
    mkdir -p "$dir"
    git -C "$dir" init --quiet -b main
    for d in src docs tests; do
        mkdir -p "$dir/$d"
        for i in $(seq 1 17); do printf 'line %s\n' $(seq 1 40) > "$dir/$d/file$i.txt"; done
    done
    git -C "$dir" add -A
    git -C "$dir" commit --quiet -m initial
}

# parallel/<id>/ with n pending status files.
make_tasks() {
    local repo=$1 id=$2 n=$3
    local dir="$repo/.claude/runtime/parallel/$id"
    mkdir -p "$dir"
    printf '{"id":"%s","source":{"kind":"bench","value":"spawn-overhead"}}\n' "$id" > "$dir/orchestration.json"
    for i in $(seq 1 "$n"); do
        printf '{"agent_id":"agent-%s","status":"pending","orchestration_id":"%s","title":"task %s"}\n' \
            "$i" "$id" "$i" > "$dir/agent-$i.status.json"
    done
}

# Each timed section starts with the page cache written back (sync), so the
# writeback left by one section (repositories, worktrees, deletions) is not
# charged to the next.
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
per() { echo "scale=2; 1000 * $1 / $2" | bc -l; }

echo "== $N_WT tasks with worktrees, $JOBS at a time"
make_repo "$work/po-wt"
make_tasks "$work/po-wt" wt "$N_WT"
sync; t0=$(now)
(cd "$work/po-wt" && "$bin/po-spawn" --id wt --max-workers "$JOBS" --agent-cmd true >/dev/null 2>"$work/po-wt.err") \
    || { cat "$work/po-wt.err" >&2; exit 1; }
t1=$(now)
po_wt=$(elapsed "$t0" "$t1")
done_wt=$(grep -l '"status": "completed"' "$work"/po-wt/.claude/runtime/parallel/wt/agent-*.status.json | wc -l)

make_repo "$work/sh-wt"
sync; t0=$(now)
# Concurrent `git worktree add`s race in git itself ("failed to read
# .git/worktrees/…/commondir"); the baseline avoids it the simple way, by
# registering under flock(1), then checks out concurrently (po retries the
# registration instead).
(cd "$work/sh-wt" && seq 1 "$N_WT" | parallel -j "$JOBS" \
    'flock .git/add.lock git worktree add --quiet --no-checkout -b feat/bench-{} ../sh-wt-trees/agent-{} HEAD && cd ../sh-wt-trees/agent-{} && git reset --quiet --hard && true')
t1=$(now)
sh_wt=$(elapsed "$t0" "$t1")

echo "   po-spawn:                 ${po_wt}s  ($(per "$po_wt" "$N_WT") ms/task, $done_wt/$N_WT completed)"
echo "   git worktree + parallel:  ${sh_wt}s  ($(per "$sh_wt" "$N_WT") ms/task)"
echo "   ratio po / baseline:      $(ratio "$po_wt" "$sh_wt")"

echo "== $N_NONE tasks without worktrees, $JOBS at a time"
make_repo "$work/po-none"
make_tasks "$work/po-none" none "$N_NONE"
sync; t0=$(now)
(cd "$work/po-none" && "$bin/po-spawn" --id none --isolation none --max-workers "$JOBS" --agent-cmd true >/dev/null 2>"$work/po-none.err") \
    || { cat "$work/po-none.err" >&2; exit 1; }
t1=$(now)
po_none=$(elapsed "$t0" "$t1")
done_none=$(grep -l '"status": "completed"' "$work"/po-none/.claude/runtime/parallel/none/agent-*.status.json | wc -l)

sync; t0=$(now)
seq 1 "$N_NONE" | parallel -j "$JOBS" true
t1=$(now)
par_none=$(elapsed "$t0" "$t1")

# The floor: the same jobs started by the leanest launcher there is, so that
# what each tool adds per job (its overhead) can be told from the job itself.
sync; t0=$(now)
seq 1 "$N_NONE" | xargs -P "$JOBS" -n 1 true
t1=$(now)
floor_none=$(elapsed "$t0" "$t1")
over() { echo "scale=2; 1000 * ($1 - $floor_none) / $N_NONE" | bc -l; }

echo "   po-spawn --isolation none: ${po_none}s  ($(per "$po_none" "$N_NONE") ms/task, $done_none/$N_NONE completed)"
echo "   parallel -j $JOBS true:       ${par_none}s  ($(per "$par_none" "$N_NONE") ms/task)"
echo "   xargs -P $JOBS true (floor):  ${floor_none}s  ($(per "$floor_none" "$N_NONE") ms/task)"
echo "   ratio po / parallel:       $(ratio "$po_none" "$par_none")"
echo "   per-job overhead above the floor: po $(over "$po_none") ms, parallel $(over "$par_none") ms, ratio $(ratio "$(over "$po_none")" "$(over "$par_none")")"
