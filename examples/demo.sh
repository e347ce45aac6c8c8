#!/usr/bin/env bash
# A real orchestration on a fresh machine, start to finish:
#
#   bash examples/demo.sh
#
# 1. builds po (cargo build --release);
# 2. makes a throwaway git repository with a tiny sample project;
# 3. runs   po-parse issue.md | po-spawn --max-workers 3
#    on the bundled example issue, with the real `claude` when it is on PATH
#    and has credentials (ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or a
#    `claude` login), else with the bundled example agent (examples/agent.sh);
# 4. shows the po-watch table and the po-summarize report, and where to look.
#
# It exits with po-spawn's exit code (0: every task completed).
#
# Environment:
#   PO_DEMO_DIR    where to make the repository (default: a new temp directory)
#   PO_DEMO_AGENT  auto (default), claude or example
#   PO_BIN_DIR     use the po binaries in this directory instead of building
#   PO_AGENT_SLEEP the example agent's pause between phases (default 1 s)
set -euo pipefail

examples=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$examples")

if [ -n "${PO_BIN_DIR:-}" ]; then
    bin=$(cd "$PO_BIN_DIR" && pwd)
else
    echo "== Building po (cargo build --release): the first build takes a few minutes"
    (cd "$root" && cargo build --release --bins)
    bin=${CARGO_TARGET_DIR:-$root/target}/release
    case $bin in /*) ;; *) bin=$root/$bin ;; esac
fi
for tool in po-parse po-spawn po-watch po-summarize po-status; do
    if [ ! -x "$bin/$tool" ]; then
        echo "demo: $bin/$tool is missing; build po first (cargo build --release)" >&2
        exit 9
    fi
done
export PATH="$bin:$PATH"

work=${PO_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/po-demo.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
repo=$work/repo
if [ -e "$repo" ]; then
    echo "demo: $repo already exists; set PO_DEMO_DIR to a new directory" >&2
    exit 64
fi

echo "== Making a throwaway repository in $repo"
git init -q "$repo"
cd "$repo"
git checkout -q -b main 2>/dev/null || true
git config user.name "po demo"
git config user.email "demo@example.invalid"
cat >greet.sh <<'EOF'
#!/bin/sh
# greet NAME: print a greeting.
set -eu
echo "Hello, ${1:-world}!"
EOF
chmod +x greet.sh
printf '# greet\n\n`./greet.sh NAME` prints a greeting.\n' >README.md
cp "$examples/issue.md" issue.md
git add greet.sh README.md issue.md
git commit -q -m "greet: a tiny sample project"

# Whether `claude` has credentials: an API key or token in the environment,
# or a login (a credentials file on Linux, the keychain on macOS).
claude_usable() {
    command -v claude >/dev/null 2>&1 || return 1
    [ -n "${ANTHROPIC_API_KEY:-}" ] && return 0
    [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ] && return 0
    [ -s "${CLAUDE_CONFIG_DIR:-$HOME/.claude}/.credentials.json" ] && return 0
    command -v security >/dev/null 2>&1 &&
        security find-generic-password -s "Claude Code-credentials" >/dev/null 2>&1
}

agent=${PO_DEMO_AGENT:-auto}
if [ "$agent" = auto ]; then
    agent=example
    if claude_usable; then
        agent=claude
    fi
fi
spawn_args=(--max-workers 3)
case $agent in
    claude)
        echo "== Agent: claude ($(command -v claude))"
        ;;
    example)
        # A copy beside the repository: the template is split into words,
        # so its path must not contain spaces.
        cp "$examples/agent.sh" "$work/agent.sh"
        chmod +x "$work/agent.sh"
        spawn_args+=(--agent-cmd "$work/agent.sh {prompt_file}")
        echo "== Agent: the example agent (examples/agent.sh); install and log in to claude to use it instead"
        ;;
    *)
        echo "demo: PO_DEMO_AGENT must be auto, claude or example, not '$agent'" >&2
        exit 64
        ;;
esac

echo "== po-parse issue.md | po-spawn ${spawn_args[*]}"
code=0
po-parse issue.md | po-spawn "${spawn_args[@]}" >/dev/null || code=$?

echo
echo "== po-watch issue"
po-watch issue || true
echo
echo "== po-summarize issue"
po-summarize issue || true

echo
echo "== Branches (one per task, each with its agent's commit)"
git branch --list 'feat/*' -v | cut -c1-100 || true

# Commands as a shell takes them: quoted, with the tools' full paths (the
# PATH set above is this script's, not the reader's).
q() { printf '%q' "$1"; }
cat <<EOF

== Where to look
  repository:    $repo
  status files:  $repo/.claude/runtime/parallel/issue/
  agent logs:    $repo/.claude/runtime/logs/
  worktrees:     $repo/.claude/runtime/worktrees/issue/
  summary:       $repo/.claude/runtime/parallel/issue/summary.md

== Try (each line runs as printed)
  git -C $(q "$repo") branch --list 'feat/*'
  cd $(q "$repo") && $(q "$bin/po-watch") issue
  cd $(q "$repo") && $(q "$bin/po-watch") --follow issue
  cd $(q "$repo") && $(q "$bin/po-serve")
  (po-serve's dashboard: http://127.0.0.1:8731/; to call the tools by name:
   export PATH=$(q "$bin"):\$PATH)

po-spawn exited with $code.
EOF
exit "$code"
