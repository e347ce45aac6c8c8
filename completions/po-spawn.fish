complete -c po-spawn -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-spawn -l id -d 'Run every task of orchestration ID' -r
complete -c po-spawn -s j -l max-workers -l agents -d 'Agents at once [env: PO_MAX_WORKERS, AMPLIHACK_MAX_PARALLEL_AGENTS] [default: 5]' -r
complete -c po-spawn -l batch-size -d 'Run tasks in batches of N, each batch finishing before the next starts' -r
complete -c po-spawn -l timeout -d 'Seconds an agent may run [env: PO_TIMEOUT, AMPLIHACK_AGENT_TIMEOUT] [default: 1800]' -r
complete -c po-spawn -l stall-timeout -d 'End an agent with no output and no status update for SECS' -r
complete -c po-spawn -l grace -d 'Seconds between SIGTERM and SIGKILL when ending an agent\'s process tree' -r
complete -c po-spawn -l agent -d 'The agent to run' -r -f -a "claude\t'Claude Code (`claude -p --output-format stream-json`; PO_CLAUDE names the program)'
codex\t'OpenAI Codex CLI (`codex exec --json`; PO_CODEX names the program)'
gemini\t'Gemini CLI (`gemini -p --output-format stream-json`; PO_GEMINI names the program)'"
complete -c po-spawn -l agent-cmd -d 'Run any program instead: \'prog --flag {prompt_file}\'. Split into words (quotes and backslashes as in sh, no expansion), {prompt_file} {worktree} {agent_id} {branch} {id} filled in; never run by a shell. The prompt is also on its stdin. A relative program path (./myagent.sh) is from the directory po-spawn runs in' -r
complete -c po-spawn -l model -d 'Model for the agent (its --model)' -r
complete -c po-spawn -l prices -d 'Prices of models whose agents report only tokens (Codex, Gemini), a JSON file: {"MODEL": {"input": USD, "output": USD, "cache_read": USD}} per million tokens, before the built-in ones [env: PO_PRICES]' -r -F
complete -c po-spawn -l max-budget-usd -d 'Spending cap per agent for Claude Code (--max-budget-usd)' -r
complete -c po-spawn -l budget-usd -d 'Budget for the whole orchestration: launch nothing more once spent plus running reaches it [env: PO_BUDGET_USD]' -r
complete -c po-spawn -l max-turns -d 'Model turns each Claude Code agent may take (its --max-turns)' -r
complete -c po-spawn -l max-total-retries -d 'Retries of retryable failures (--retries) in the whole run, all tasks together' -r
complete -c po-spawn -l setup -d 'Command run by `sh -c` in each new worktree before its agent' -r
complete -c po-spawn -l isolation -d 'Where agents run' -r -f -a "worktree\t'One git worktree and branch per task'
none\t'Run agents in the repository itself (read-only work, benchmarks)'"
complete -c po-spawn -l base -d 'Commit the first wave branches from [default: HEAD]' -r
complete -c po-spawn -l retries -d 'Retry retryable failures (rate limits) up to N times, with backoff' -r
complete -c po-spawn -l retry-backoff -d 'First backoff before such a retry, doubled each time' -r
complete -c po-spawn -l remote -d 'Remote to push branches to' -r
complete -c po-spawn -l success-threshold -d 'Percent of tasks that must succeed for exit 1 rather than 2 (also AMPLIHACK_SUCCESS_THRESHOLD) [default: 80]' -r
complete -c po-spawn -l validation-timeout -d 'Seconds a wave\'s validation command may run before its whole process tree is ended and the wave fails' -r
complete -c po-spawn -l log-dir -d 'Directory for the session log and agent logs [default: <runtime>/logs/<session>]' -r -F
complete -c po-spawn -l launcher -d 'Where each task\'s supervisor runs' -r -f -a "local\t'A pool of supervisors on this machine'
slurm\t'One Slurm job per task (sbatch), on the cluster\'s nodes'"
complete -c po-spawn -l partition -d 'Slurm partition for the jobs (sbatch --partition)' -r
complete -c po-spawn -l account -d 'Slurm account the jobs are charged to (sbatch --account)' -r
complete -c po-spawn -l cpus-per-task -d 'CPUs for each job (sbatch --cpus-per-task)' -r
complete -c po-spawn -l mem -d 'Memory for each job, e.g. 4G (sbatch --mem)' -r
complete -c po-spawn -l slurm-arg -d 'Another sbatch option for every job, as one word: --slurm-arg=--qos=high (repeatable; given after po\'s own options, so it wins)' -r
complete -c po-spawn -l sandbox-network -d 'The network inside the sandbox' -r -f -a "on\t'The host\'s network (agents need their model\'s API)'
none\t'Loopback only'"
complete -c po-spawn -l sandbox-hide -d 'Another path the agent may not read: an empty directory or file in its place (repeatable)' -r -F
complete -c po-spawn -l sandbox-write -d 'Another path the agent may write (repeatable)' -r -F
complete -c po-spawn -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-spawn -l budget-hard -d 'Also end running agents once the budget is reached (worktrees kept)'
complete -c po-spawn -l retry -d 'Run failed, timed-out and cancelled tasks again (same worktree and branch)'
complete -c po-spawn -l dry-run -d 'Print the plan (waves, order, worktrees, branches, commands); start nothing'
complete -c po-spawn -l create-pr -d 'Push each completed branch and open a pull request [default: on for GitHub issues]'
complete -c po-spawn -l no-pr -d 'Do not open pull requests'
complete -c po-spawn -s q -l quiet -d 'Only warnings and errors on stderr (progress still goes to the session log)'
complete -c po-spawn -l sandbox -d 'Run each agent, its setup command and everything they start under bubblewrap (bwrap): the filesystem is read-only except the task\'s worktree, what git needs to commit on its branch, its log and the agent\'s own state; secrets under ~ are hidden. A missing bwrap is an error (exit 9), never a run without the sandbox [env: PO_SANDBOX=1]'
complete -c po-spawn -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-spawn -s V -l version -d 'Print version'
