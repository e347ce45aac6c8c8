#!/usr/bin/env bash
# po-spawn --launcher slurm against plain Slurm jobs, in the same run on the
# same cluster.
#
#   baseline: N jobs `sbatch --wrap true`, submitted one after another, then
#             `squeue` every 0.1 s until none of them is left in the queue;
#   po:       N tasks whose agent is `true`, `po-spawn --launcher slurm
#             --isolation none --max-workers N`: each task a job running
#             po's supervisor, which takes the task's lock, records its
#             start, runs the agent and records its end.
#
# Both let Slurm run as many jobs at once as it will, so the cluster's own
# scheduling is in both; the ratio is what po adds per job. Prints both
# wall-clock times, the time per job and the ratio (po / baseline), ROUNDS
# times alternating which goes first. Needs a cluster that answers `sinfo`
# (sudo bash .ci/slurm-up.sh starts a one-node one). Builds po in release
# mode.
set -euo pipefail

N=${N:-64}
ROUNDS=${ROUNDS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)

sinfo -h -o %a >/dev/null 2>&1 || { echo "slurm-overhead: no Slurm cluster answers sinfo (sudo bash .ci/slurm-up.sh)" >&2; exit 1; }
(cd "$here" && cargo build --release --quiet --bin po-spawn)
bin="${CARGO_TARGET_DIR:-$here/target}/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
unset PO_AGENT_CMD PO_RUNTIME_DIR PO_MAX_WORKERS AMPLIHACK_MAX_PARALLEL_AGENTS PO_LAUNCHER || true

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
per() { echo "scale=1; 1000 * $1 / $2" | bc -l; }

# Wait until Slurm has no job of `ids` (comma-separated) left pending,
# configuring, running or completing.
wait_gone() {
    while [ -n "$(squeue -h -t PD,CF,R,CG -j "$1" -o %i 2>/dev/null)" ]; do sleep 0.1; done
}

baseline() {
    local out="$work/base" ids=()
    mkdir -p "$out"
    for _ in $(seq 1 "$N"); do
        ids+=("$(sbatch --parsable --job-name po-bench-base --output "$out/%j.log" --wrap true)")
    done
    wait_gone "$(IFS=,; echo "${ids[*]}")"
}

po() {
    local repo="$work/repo-$1" dir
    dir="$repo/.claude/runtime/parallel/bench$1"
    mkdir -p "$dir"
    git -C "$repo" init --quiet -b main
    git -C "$repo" commit --quiet --allow-empty -m initial
    printf '{"id":"bench%s","source":{"kind":"bench","value":"slurm-overhead"}}\n' "$1" > "$dir/orchestration.json"
    for i in $(seq 1 "$N"); do
        printf '{"agent_id":"agent-%s","status":"pending","orchestration_id":"bench%s","title":"task %s"}\n' \
            "$i" "$1" "$i" > "$dir/agent-$i.status.json"
    done
    sync
    local t0 t1
    t0=$(now)
    (cd "$repo" && "$bin/po-spawn" --launcher slurm --id "bench$1" --isolation none \
        --max-workers "$N" --agent-cmd true >/dev/null 2>"$work/po$1.err") \
        || { cat "$work/po$1.err" >&2; exit 1; }
    t1=$(now)
    local done
    done=$(grep -l '"status": "completed"' "$dir"/agent-*.status.json | wc -l)
    [ "$done" -eq "$N" ] || { echo "slurm-overhead: only $done of $N tasks completed" >&2; exit 1; }
    elapsed "$t0" "$t1"
}

time_baseline() {
    sync
    local t0 t1
    t0=$(now)
    baseline
    t1=$(now)
    elapsed "$t0" "$t1"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== $N jobs, $ROUNDS rounds (cluster: $(sinfo -h -o '%D node(s), %c CPUs each, partition %P' | head -n1))"
printf '%-6s %12s %12s %12s %12s %7s\n' round baseline_s base_ms/job po_s po_ms/job ratio
bs=() ps=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        b=$(time_baseline); p=$(po "$r")
    else
        p=$(po "$r"); b=$(time_baseline)
    fi
    bs+=("$b") ps+=("$p")
    printf '%-6s %12.2f %12s %12.2f %12s %7s\n' "$r" "$b" "$(per "$b" "$N")" "$p" "$(per "$p" "$N")" "$(ratio "$p" "$b")"
done
b=$(printf '%s\n' "${bs[@]}" | median)
p=$(printf '%s\n' "${ps[@]}" | median)
printf '%-6s %12.2f %12s %12.2f %12s %7s\n' median "$b" "$(per "$b" "$N")" "$p" "$(per "$p" "$N")" "$(ratio "$p" "$b")"
