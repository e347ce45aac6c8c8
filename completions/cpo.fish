# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cpo_global_optspecs
    string join \n runtime-dir= v/verbose h/help V/version
end

function __fish_cpo_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_cpo_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_cpo_using_subcommand
    set -l cmd (__fish_cpo_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c cpo -n "__fish_cpo_needs_command" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c cpo -n "__fish_cpo_needs_command" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c cpo -n "__fish_cpo_needs_command" -s h -l help -d 'Print help'
complete -c cpo -n "__fish_cpo_needs_command" -s V -l version -d 'Print version'
complete -c cpo -n "__fish_cpo_needs_command" -f -a "init" -d 'Create a parallel directory: manifest.json skeleton, prompts/, README.md'
complete -c cpo -n "__fish_cpo_needs_command" -f -a "validate" -d 'Check manifest.json, the prompts and the git prerequisites; run nothing'
complete -c cpo -n "__fish_cpo_needs_command" -f -a "run" -d 'Validate, then run every wave\'s agents in parallel git worktrees'
complete -c cpo -n "__fish_cpo_needs_command" -f -a "integrate" -d 'Merge the completed tasks\' branches into one integration branch and validate it'
complete -c cpo -n "__fish_cpo_needs_command" -f -a "status" -d 'Show each wave\'s tasks and their states'
complete -c cpo -n "__fish_cpo_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cpo -n "__fish_cpo_using_subcommand init" -s t -l tech-spec -d 'Tech Spec id, for traceability (becomes the orchestration id)' -r
complete -c cpo -n "__fish_cpo_using_subcommand init" -s n -l name -d 'Short name of the feature' -r
complete -c cpo -n "__fish_cpo_using_subcommand init" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c cpo -n "__fish_cpo_using_subcommand init" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c cpo -n "__fish_cpo_using_subcommand init" -s h -l help -d 'Print help'
complete -c cpo -n "__fish_cpo_using_subcommand validate" -l agent-cmd -d 'The agent `cpo run` will use instead of claude: its program is checked instead of claude\'s' -r
complete -c cpo -n "__fish_cpo_using_subcommand validate" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c cpo -n "__fish_cpo_using_subcommand validate" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c cpo -n "__fish_cpo_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cpo -n "__fish_cpo_using_subcommand run" -l max-workers -d 'Maximum agents at once (po-spawn --max-workers)' -r
complete -c cpo -n "__fish_cpo_using_subcommand run" -l timeout -d 'Per-agent timeout in seconds (po-spawn --timeout)' -r
complete -c cpo -n "__fish_cpo_using_subcommand run" -l agent-cmd -d 'Run this program instead of claude, e.g. \'./agent.sh {prompt_file}\' [env: PO_AGENT_CMD]' -r
complete -c cpo -n "__fish_cpo_using_subcommand run" -l base -d 'Branch wave 1 from this commit-ish (po-spawn --base)' -r
complete -c cpo -n "__fish_cpo_using_subcommand run" -l id -d 'Orchestration id [default: the manifest\'s tech_spec_id]' -r
complete -c cpo -n "__fish_cpo_using_subcommand run" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c cpo -n "__fish_cpo_using_subcommand run" -l retry -d 'Re-run failed, timed-out and cancelled tasks of an earlier run'
complete -c cpo -n "__fish_cpo_using_subcommand run" -l dry-run -d 'Print the plan (waves, worktrees, branches, agent command) and start nothing'
complete -c cpo -n "__fish_cpo_using_subcommand run" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c cpo -n "__fish_cpo_using_subcommand run" -s h -l help -d 'Print help'
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -l into -d 'The branch to merge into (po-merge --into) [default: po/<id>/integration]' -r
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -l validate -d 'Also run this command on the merged result (po-merge --validate)' -r
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -l timeout -d 'Time limit of each validation in seconds (po-merge --timeout)' -r
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -l id -d 'Orchestration id, if `cpo run` was given one [default: the manifest\'s tech_spec_id]' -r
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -l dry-run -d 'Predict conflicts and show the plan; merge nothing'
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -l json -d 'Print po-merge\'s report as JSON'
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c cpo -n "__fish_cpo_using_subcommand integrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cpo -n "__fish_cpo_using_subcommand status" -l id -d 'Orchestration id, if `cpo run` was given one [default: the manifest\'s tech_spec_id]' -r
complete -c cpo -n "__fish_cpo_using_subcommand status" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c cpo -n "__fish_cpo_using_subcommand status" -l json -d 'Print the tasks as JSON instead'
complete -c cpo -n "__fish_cpo_using_subcommand status" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c cpo -n "__fish_cpo_using_subcommand status" -s h -l help -d 'Print help'
complete -c cpo -n "__fish_cpo_using_subcommand help; and not __fish_seen_subcommand_from init validate run integrate status help" -f -a "init" -d 'Create a parallel directory: manifest.json skeleton, prompts/, README.md'
complete -c cpo -n "__fish_cpo_using_subcommand help; and not __fish_seen_subcommand_from init validate run integrate status help" -f -a "validate" -d 'Check manifest.json, the prompts and the git prerequisites; run nothing'
complete -c cpo -n "__fish_cpo_using_subcommand help; and not __fish_seen_subcommand_from init validate run integrate status help" -f -a "run" -d 'Validate, then run every wave\'s agents in parallel git worktrees'
complete -c cpo -n "__fish_cpo_using_subcommand help; and not __fish_seen_subcommand_from init validate run integrate status help" -f -a "integrate" -d 'Merge the completed tasks\' branches into one integration branch and validate it'
complete -c cpo -n "__fish_cpo_using_subcommand help; and not __fish_seen_subcommand_from init validate run integrate status help" -f -a "status" -d 'Show each wave\'s tasks and their states'
complete -c cpo -n "__fish_cpo_using_subcommand help; and not __fish_seen_subcommand_from init validate run integrate status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
