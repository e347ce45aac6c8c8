complete -c po-react -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-react -l interval -d 'Time between passes with --follow: 90s, 2m, 1h' -r
complete -c po-react -l max-rounds -d 'Rounds per task before it goes to a person' -r
complete -c po-react -l budget-usd -d 'Budget of the whole orchestration (its tasks\' attempts and rounds together): no round starts once it is spent [env: PO_BUDGET_USD]' -r
complete -c po-react -l agent -d 'The agent the tasks ran with' -r -f -a "claude\t'Claude Code (`claude -p --output-format stream-json`; PO_CLAUDE names the program)'
codex\t'OpenAI Codex CLI (`codex exec --json`; PO_CODEX names the program)'
gemini\t'Gemini CLI (`gemini -p --output-format stream-json`; PO_GEMINI names the program)'"
complete -c po-react -l agent-cmd -d 'The --agent-cmd template the tasks ran with (as po-spawn takes it)' -r
complete -c po-react -l model -d 'Model for the agent (Claude Code\'s --model)' -r
complete -c po-react -l timeout -d 'Seconds one round\'s agent may run [env: PO_TIMEOUT] [default: 1800]' -r
complete -c po-react -l stall-timeout -d 'End an agent with no output and no status update for SECS' -r
complete -c po-react -l grace -d 'Seconds between SIGTERM and SIGKILL when ending an agent\'s process tree' -r
complete -c po-react -l remote -d 'Remote the task branches are pushed to' -r
complete -c po-react -l sandbox-network -d 'The network inside the sandbox' -r -f -a "on\t'The host\'s network (agents need their model\'s API)'
none\t'Loopback only'"
complete -c po-react -l sandbox-hide -d 'Another path the agent may not read: an empty directory or file in its place (repeatable)' -r -F
complete -c po-react -l sandbox-write -d 'Another path the agent may write (repeatable)' -r -F
complete -c po-react -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-react -l follow -d 'Pass again every --interval until every pull request is merged, closed or with a person'
complete -c po-react -l dry-run -d 'Show what would be sent to which agent, and why; run, push, post and write nothing'
complete -c po-react -l sandbox -d 'Run each agent, its setup command and everything they start under bubblewrap (bwrap): the filesystem is read-only except the task\'s worktree, what git needs to commit on its branch, its log and the agent\'s own state; secrets under ~ are hidden. A missing bwrap is an error (exit 9), never a run without the sandbox [env: PO_SANDBOX=1]'
complete -c po-react -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-react -s V -l version -d 'Print version'
