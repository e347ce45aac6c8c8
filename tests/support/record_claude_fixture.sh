#!/usr/bin/env bash
# Record what the real Claude Code CLI prints against the scripted model server,
# as a parser fixture. Use it to refresh tests/fixtures/claude/ after changing the
# pinned CLI version in .ci/run, then run `cargo test --test claude_stream`.
#
#   tests/support/record_claude_fixture.sh NAME SCRIPT_JSON PROMPT [CLAUDE_ARGS...]
#
#   tests/support/record_claude_fixture.sh bash_commit \
#     '{"conversations":[{"marker":"agent-1","turns":[{"bash":"git commit --allow-empty -qm x"},{"text":"Done."}]}]}' \
#     'You are agent-1.' --session-id 11111111-2222-4333-8444-555555555555
#
# The CLI runs in a fresh git repository with its own HOME; paths of the temp
# directory are replaced by /tmp/po-test in the fixture. The environment passes
# through, e.g. CLAUDE_CODE_MAX_RETRIES=1 to record an API error quickly.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,14p' "$0" >&2; exit 64; }
name=$1 script=$2 prompt=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../fixtures/claude/$name.jsonl"
tmp=$(mktemp -d)
trap 'kill "$mock" 2>/dev/null || true; rm -rf "$tmp"' EXIT

mkdir -p "$tmp/home/.claude" "$tmp/repo"
git -C "$tmp/repo" init -q
git -C "$tmp/repo" -c user.name=t -c user.email=t@example.invalid commit -q --allow-empty -m init
printf '%s\n' "$script" >"$tmp/script.json"
python3 "$here/mock_anthropic.py" --port-file "$tmp/port" --script "$tmp/script.json" \
  --log "$tmp/requests.jsonl" --max-seconds 300 &
mock=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "the mock server did not start" >&2; exit 9; }

code=0
(cd "$tmp/repo" && printf '%s\n' "$prompt" |
  HOME="$tmp/home" CLAUDE_CONFIG_DIR="$tmp/home/.claude" \
  ANTHROPIC_BASE_URL="http://127.0.0.1:$(cat "$tmp/port")" ANTHROPIC_API_KEY=sk-ant-test-offline \
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 IS_SANDBOX=1 \
  claude -p --output-format stream-json --verbose --dangerously-skip-permissions "$@" \
  >"$tmp/out.jsonl" 2>"$tmp/err.txt") || code=$?
sed "s#$tmp/#/tmp/po-test/#g" "$tmp/out.jsonl" >"$out"
echo "exit $code; $(wc -l <"$out") lines in $out" >&2
[ -s "$tmp/err.txt" ] && { echo "stderr:" >&2; cat "$tmp/err.txt" >&2; }
echo "requests:" >&2
cat "$tmp/requests.jsonl" >&2
