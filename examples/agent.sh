#!/bin/sh
# The bundled example agent: what `po-spawn --agent-cmd` runs when `claude`
# is not available. It does what a real agent does, on a small scale:
# reads its prompt, reports progress with `po-status set`, writes the file
# its task names (or notes/<agent>.md) in its own worktree, and commits.
#
#   po-spawn --agent-cmd '/path/to/examples/agent.sh {prompt_file}'
#
# Environment (set by po-spawn): PO_STATUS_FILE, PO_AGENT_ID, PO_WORKTREE.
# Knobs: PO_AGENT_SLEEP  seconds to pause between phases (default 1), so
#                        `po-watch` has something to show;
#        PO_EXAMPLE_FAIL agent ids (space-separated) that fail on their
#                        first attempt and succeed on a retry.
#
# Task text is data here: it is only ever written into files and passed as
# a single argument, never evaluated, and a path taken from it is used only
# if it is a plain relative path.
set -eu

agent=${PO_AGENT_ID:-agent}
pause=${PO_AGENT_SLEEP:-1}

report() { # progress phase
    if [ -n "${PO_STATUS_FILE:-}" ]; then
        po-status set "$PO_STATUS_FILE" --progress "$1" --phase "$2" || true
    fi
    printf '[%s] %s (%s%%)\n' "$agent" "$2" "$1"
}

field() { # name: one field of our status file, empty if unknown
    if [ -n "${PO_STATUS_FILE:-}" ]; then
        po-status get "$PO_STATUS_FILE" "$1" 2>/dev/null || true
    fi
}

# 1. Read the prompt: the file given as $1, else stdin.
if [ $# -ge 1 ] && [ -r "$1" ]; then
    prompt=$(cat "$1")
    [ -t 0 ] || cat >/dev/null
else
    prompt=$(cat)
fi
report 10 "Reading the task"
cd "${PO_WORKTREE:-.}"

title=$(field title)
if [ -z "$title" ]; then
    title=$(printf '%s\n' "$prompt" | sed -n 's/^#* *//; /./{p;q;}')
fi
sleep "$pause"

# 2. Decide which file to write: the first path the task names, if safe.
report 30 "Analyzing codebase"
first_quoted() { sed -n 's/^[^`]*`\([^`]*\)`.*/\1/p' | sed -n 1p; }
file=$(field files | sed -n 's/^\["\([^"]*\)".*/\1/p')
[ -n "$file" ] || file=$(printf '%s\n' "$title" | first_quoted)
[ -n "$file" ] || file=$(field body | first_quoted)
[ -n "$file" ] || file=$(printf '%s\n' "$prompt" | first_quoted)
case $file in
    '' | /* | -* | *..* | *[!A-Za-z0-9._/-]*) file="notes/$agent.md" ;;
    */) file="$file$agent.md" ;;
esac
sleep "$pause"

attempt=$(field attempt)
for failing in ${PO_EXAMPLE_FAIL:-}; do
    if [ "$failing" = "$agent" ] && [ "${attempt:-1}" = 1 ]; then
        report 40 "Running tests"
        echo "$agent: the smoke test failed (PO_EXAMPLE_FAIL); a retry will pass" >&2
        exit 1
    fi
done

# 3. Write it.
report 60 "Implementing $file"
mkdir -p "$(dirname "$file")"
if [ ! -e "$file" ]; then
    case $file in
        *.sh)
            printf '#!/bin/sh\n# %s\nset -eu\n' "$title" >"$file"
            chmod +x "$file"
            ;;
        *.md) printf '# %s\n\n' "$title" >"$file" ;;
        *) printf '%s\n\n' "$title" >"$file" ;;
    esac
fi
case $file in
    *.sh) printf '# %s: %s\necho "%s done"\n' "$agent" "$title" "$agent" >>"$file" ;;
    *) printf -- '- %s: %s\n' "$agent" "$title" >>"$file" ;;
esac
sleep "$pause"

# 4. Commit it on the task's branch.
report 90 "Committing"
git add -- "$file"
if [ -z "$(git config user.email || true)" ]; then
    set -- -c user.name="po example agent" -c user.email="agent@example.invalid"
else
    set --
fi
git "$@" commit -q -m "$agent: $title" -- "$file"
report 100 "Done"
