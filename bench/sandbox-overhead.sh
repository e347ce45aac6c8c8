#!/usr/bin/env bash
# What the sandbox costs per agent: po-spawn with and without --sandbox on
# the same tasks, in the same run.
#
# N tasks (default 40) whose agent is `true`, JOBS (default 4) at a time,
# each run ROUNDS times (default 3) alternating plain and sandboxed, in fresh
# repositories of the same shape:
#  1. each task in its own git worktree (the sandbox also prepares the
#     branch's private ref directory and takes the tip back);
#  2. --isolation none (bwrap and the status relay only).
#
# Prints per-task times of each round, the medians, the ratio (sandboxed /
# plain) and the extra milliseconds per agent. Needs bwrap (apt-get install
# bubblewrap). Builds po in release mode.
set -euo pipefail

N=${N:-40}
JOBS=${JOBS:-4}
ROUNDS=${ROUNDS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)

command -v bwrap >/dev/null || { echo "sandbox-overhead: bwrap is missing (apt-get install bubblewrap)" >&2; exit 1; }
(cd "$here" && cargo build --release --quiet --bin po-spawn --bin po-status)
bin="${CARGO_TARGET_DIR:-$here/target}/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
unset PO_AGENT_CMD PO_RUNTIME_DIR PO_MAX_WORKERS AMPLIHACK_MAX_PARALLEL_AGENTS PO_SANDBOX || true

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

make_tasks() {
    local repo=$1 id=$2 n=$3
    local dir="$repo/.claude/runtime/parallel/$id"
    mkdir -p "$dir"
    printf '{"id":"%s","source":{"kind":"bench","value":"sandbox-overhead"}}\n' "$id" > "$dir/orchestration.json"
    for i in $(seq 1 "$n"); do
        printf '{"agent_id":"agent-%s","status":"pending","orchestration_id":"%s","title":"task %s"}\n' \
            "$i" "$id" "$i" > "$dir/agent-$i.status.json"
    done
}

now() { date +%s.%N; }
per() { echo "scale=2; 1000 * ($2 - $1) / $3" | bc -l; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One po-spawn run in a fresh repository; prints ms per task.
run() { # NAME ISOLATION [--sandbox]
    local name=$1 isolation=$2
    shift 2
    local repo="$work/$name"
    make_repo "$repo"
    make_tasks "$repo" b "$N"
    sync
    local t0 t1
    t0=$(now)
    (cd "$repo" && "$bin/po-spawn" --id b --max-workers "$JOBS" --isolation "$isolation" --agent-cmd true "$@" \
        >/dev/null 2>"$repo.err") || { cat "$repo.err" >&2; exit 1; }
    t1=$(now)
    local done
    done=$(grep -l '"status": "completed"' "$repo"/.claude/runtime/parallel/b/agent-*.status.json | wc -l)
    [ "$done" -eq "$N" ] || { echo "sandbox-overhead: $name: $done of $N completed" >&2; cat "$repo.err" >&2; exit 1; }
    rm -rf "$repo"
    per "$t0" "$t1" "$N"
}

for isolation in worktree none; do
    echo "== $N tasks, agent true, $JOBS at a time, --isolation $isolation, $ROUNDS rounds"
    : > "$work/plain" ; : > "$work/boxed"
    for r in $(seq 1 "$ROUNDS"); do
        p=$(run "plain-$isolation-$r" "$isolation")
        b=$(run "boxed-$isolation-$r" "$isolation" --sandbox)
        echo "$p" >> "$work/plain"; echo "$b" >> "$work/boxed"
        printf 'round %s: plain %s ms/task, sandboxed %s ms/task\n' "$r" "$p" "$b"
    done
    mp=$(median < "$work/plain"); mb=$(median < "$work/boxed")
    printf 'median: plain %s ms/task, sandboxed %s ms/task, ratio %s, +%s ms per agent\n' \
        "$mp" "$mb" "$(echo "scale=2; $mb / $mp" | bc -l)" "$(echo "scale=2; $mb - $mp" | bc -l)"
done

echo "== bwrap alone, one start after another: $N × bwrap (the sandbox's namespaces, / read-only) /bin/true against $N × /bin/true"
t0=$(now); for _ in $(seq 1 "$N"); do true; done; t1=$(now)
for _ in $(seq 1 "$N"); do /bin/true; done; t2=$(now)
for _ in $(seq 1 "$N"); do bwrap --die-with-parent --new-session --unshare-all --share-net --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true; done; t3=$(now)
printf '/bin/true: %s ms, under bwrap: %s ms\n' "$(per "$t1" "$t2" "$N")" "$(per "$t2" "$t3" "$N")"
