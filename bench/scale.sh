#!/usr/bin/env bash
# What each tool costs per task as an orchestration grows, each against a
# baseline in the same run, on a release build:
#
#   po-parse PLAN.md        a checklist of N tasks        python3 writing N files (fsync, rename)
#   po-spawn --isolation none --agent-cmd true, 8 at a time     parallel -j 8 true
#   po-watch --json         the N finished status files   python3 reading and parsing them
#   po-summarize            (summary.json and .md)        the same
#   po-serve's board        start, then one GET /o/ID     the same
#
#   bench/scale.sh                 # N = 1,000 and 10,000
#   SIZES="1000" bench/scale.sh    # one size
#   bench/scale.sh --huge          # also N = 100,000 (about 15 minutes on 2 cores)
#   PO_BIN=/tmp/po-old bench/scale.sh   # binaries built elsewhere (no build)
#
# Prints, per size and tool: wall-clock time, time per task, the baseline's,
# the ratio (po / baseline) and po's peak memory (max RSS). Needs GNU
# parallel (apt-get install parallel), python3 and curl.
set -euo pipefail

SIZES=${SIZES:-"1000 10000"}
[ "${1:-}" = --huge ] && SIZES="$SIZES 100000"
JOBS=${JOBS:-8}
here=$(cd "$(dirname "$0")/.." && pwd)

for tool in parallel python3 curl; do
    command -v "$tool" >/dev/null || { echo "scale: $tool is missing" >&2; exit 1; }
done
if [ -n "${PO_BIN:-}" ]; then
    bin=$PO_BIN
else
    (cd "$here" && cargo build --release --quiet --bin po-parse --bin po-spawn --bin po-watch \
        --bin po-summarize --bin po-serve --bin po-status)
    bin="${CARGO_TARGET_DIR:-$here/target}/release"
fi

work=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
unset PO_AGENT_CMD PO_RUNTIME_DIR PO_MAX_WORKERS AMPLIHACK_MAX_PARALLEL_AGENTS PO_SERVE_TOKEN || true

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
per() { echo "scale=3; 1000 * $1 / $2" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

# python3's baselines: write N status-like files durably, or read them all
# (the interpreter itself, not a version manager's shim).
py=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$py" "$@"; }
baseline_write() {
    python3 - "$1" "$2" <<'PY'
import json, os, sys, threading
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
def write(part):
    for i in part:
        p = os.path.join(d, f"agent-{i}.status.json")
        with open(p + ".tmp", "w") as f:
            json.dump({"agent_id": f"agent-{i}", "status": "pending", "title": f"Task {i}"}, f)
            f.flush(); os.fsync(f.fileno())
        os.rename(p + ".tmp", p)
# Eight writers, as po-parse has: concurrent fsyncs share journal commits.
writers = [threading.Thread(target=write, args=(range(1 + k, n + 1, 8),)) for k in range(8)]
for w in writers: w.start()
for w in writers: w.join()
fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)
PY
}
baseline_read() {
    python3 - "$1" <<'PY'
import json, os, sys
d = sys.argv[1]
rows = []
for name in os.listdir(d):
    if name.endswith(".status.json"):
        with open(os.path.join(d, name)) as f:
            rows.append(json.load(f))
json.dump([{"agent_id": r.get("agent_id"), "status": r.get("status")} for r in rows], open(os.devnull, "w"))
PY
}

# Time a command (stdout and stderr to files); sets $took and $rss (MB).
timed() {
    local name=$1; shift
    sync; local t0; t0=$(now)
    /usr/bin/time -f %M -o "$work/$name.rss" "$@" >"$work/$name.out" 2>"$work/$name.err" \
        || { echo "scale: $name failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
    took=$(elapsed "$t0" "$(now)")
    rss=$(( $(tail -1 "$work/$name.rss") / 1024 ))
}

row() { # tool n po_time baseline_time rss
    printf '  %-22s %8.2f s %9s ms/task   baseline %7.2f s %9s ms/task   ratio %6s   %5s MB\n' \
        "$1" "$3" "$(per "$3" "$2")" "$4" "$(per "$4" "$2")" "$(ratio "$3" "$4")" "$5"
}

for n in $SIZES; do
    echo "== $n tasks ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
    repo="$work/repo-$n"
    mkdir -p "$repo"
    git -C "$repo" init --quiet -b main
    echo "# scale" > "$repo/README.md"
    git -C "$repo" add -A && git -C "$repo" commit --quiet -m initial
    {
        echo "# Scale $n"
        echo
        echo "## Tasks"
        for i in $(seq 1 "$n"); do echo "- [ ] Task $i: update module m$i"; done
    } > "$work/plan-$n.md"
    dir="$repo/.claude/runtime/parallel/scale"

    cd "$repo"
    timed parse "$bin/po-parse" "$work/plan-$n.md" --id scale
    parse=$took parse_rss=$rss
    sync; t0=$(now); baseline_write "$work/base-$n" "$n"; parse_base=$(elapsed "$t0" "$(now)")
    row po-parse "$n" "$parse" "$parse_base" "$parse_rss"

    timed spawn "$bin/po-spawn" --id scale --isolation none --max-workers "$JOBS" --agent-cmd true
    spawn=$took spawn_rss=$rss
    done_n=$(grep -l '"status": "completed"' "$dir"/agent-*.status.json | wc -l)
    [ "$done_n" = "$n" ] || { echo "scale: only $done_n of $n tasks completed" >&2; exit 1; }
    sync; t0=$(now); seq 1 "$n" | parallel -j "$JOBS" true; spawn_base=$(elapsed "$t0" "$(now)")
    row "po-spawn" "$n" "$spawn" "$spawn_base" "$spawn_rss"

    sync; t0=$(now); baseline_read "$dir"; read_base=$(elapsed "$t0" "$(now)")
    timed watch "$bin/po-watch" scale --json
    row "po-watch --json" "$n" "$took" "$read_base" "$rss"
    timed summarize "$bin/po-summarize" scale
    row po-summarize "$n" "$took" "$read_base" "$rss"

    sync; t0=$(now)
    "$bin/po-serve" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
    serve_pid=$!
    until head -1 "$work/serve.out" | grep -q '^http://.*/$'; do
        kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
        sleep 0.005
    done
    addr=$(head -1 "$work/serve.out")
    curl -sf --max-time 60 "${addr%/}/o/scale" -o "$work/board.html" \
        || { echo "scale: GET ${addr%/}/o/scale failed (curl exit $?)" >&2; tail -5 "$work/serve.err" >&2; exit 1; }
    serve=$(elapsed "$t0" "$(now)")
    serve_rss=$(( $(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status") / 1024 ))
    kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
    row "po-serve board" "$n" "$serve" "$read_base" "$serve_rss"
    cd "$here"
    rm -rf "$repo" "$work/base-$n"
done
