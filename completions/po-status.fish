# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_po_status_global_optspecs
    string join \n runtime-dir= v/verbose h/help V/version
end

function __fish_po_status_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_po_status_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_po_status_using_subcommand
    set -l cmd (__fish_po_status_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c po-status -n "__fish_po_status_needs_command" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-status -n "__fish_po_status_needs_command" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-status -n "__fish_po_status_needs_command" -s h -l help -d 'Print help'
complete -c po-status -n "__fish_po_status_needs_command" -s V -l version -d 'Print version'
complete -c po-status -n "__fish_po_status_needs_command" -f -a "set" -d 'Report progress of a running task (what an agent calls)'
complete -c po-status -n "__fish_po_status_needs_command" -f -a "get" -d 'Print a status file as JSON, or one field of it (dotted: metrics.cost_usd)'
complete -c po-status -n "__fish_po_status_needs_command" -f -a "ls" -d 'Print the paths of matching status files, one a line'
complete -c po-status -n "__fish_po_status_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c po-status -n "__fish_po_status_using_subcommand set" -l progress -d 'Percent done, 0–100' -r
complete -c po-status -n "__fish_po_status_using_subcommand set" -l phase -d 'What the agent is doing now ("Running tests")' -r
complete -c po-status -n "__fish_po_status_using_subcommand set" -l message -d 'A free-form note' -r
complete -c po-status -n "__fish_po_status_using_subcommand set" -l cost-usd -d 'Its cost so far in US dollars (what po-spawn\'s --budget-usd counts)' -r
complete -c po-status -n "__fish_po_status_using_subcommand set" -l input-tokens -d 'Input tokens so far' -r
complete -c po-status -n "__fish_po_status_using_subcommand set" -l output-tokens -d 'Output tokens so far' -r
complete -c po-status -n "__fish_po_status_using_subcommand set" -l model -d 'The model it runs (priced from its tokens when it reports no cost)' -r
complete -c po-status -n "__fish_po_status_using_subcommand set" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-status -n "__fish_po_status_using_subcommand set" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-status -n "__fish_po_status_using_subcommand set" -s h -l help -d 'Print help'
complete -c po-status -n "__fish_po_status_using_subcommand get" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-status -n "__fish_po_status_using_subcommand get" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-status -n "__fish_po_status_using_subcommand get" -s h -l help -d 'Print help'
complete -c po-status -n "__fish_po_status_using_subcommand ls" -l state -d 'Only tasks in this state (repeatable)' -r
complete -c po-status -n "__fish_po_status_using_subcommand ls" -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-status -n "__fish_po_status_using_subcommand ls" -l unfinished -d 'Only the tasks `po-spawn --retry` would run: pending, failed, timed_out and cancelled (a task cancelled because its dependency failed included), so `po-status ls ID --unfinished | po-spawn` finishes the orchestration'
complete -c po-status -n "__fish_po_status_using_subcommand ls" -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-status -n "__fish_po_status_using_subcommand ls" -s h -l help -d 'Print help'
complete -c po-status -n "__fish_po_status_using_subcommand help; and not __fish_seen_subcommand_from set get ls help" -f -a "set" -d 'Report progress of a running task (what an agent calls)'
complete -c po-status -n "__fish_po_status_using_subcommand help; and not __fish_seen_subcommand_from set get ls help" -f -a "get" -d 'Print a status file as JSON, or one field of it (dotted: metrics.cost_usd)'
complete -c po-status -n "__fish_po_status_using_subcommand help; and not __fish_seen_subcommand_from set get ls help" -f -a "ls" -d 'Print the paths of matching status files, one a line'
complete -c po-status -n "__fish_po_status_using_subcommand help; and not __fish_seen_subcommand_from set get ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
