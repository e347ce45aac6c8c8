complete -c po-watch -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-watch -l stall-after -d 'An in_progress task with no log output and no status update for this long is stalled' -r
complete -c po-watch -l threshold -d 'Success threshold in percent for --until-done (also AMPLIHACK_SUCCESS_THRESHOLD) [default: 80]' -r
complete -c po-watch -l poll-interval -d 'Polling interval in milliseconds (with --poll, or when inotify is unavailable)' -r
complete -c po-watch -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-watch -l follow -d 'Live view, redrawn in place on a terminal (a new snapshot per change otherwise)'
complete -c po-watch -l events -d 'One line per change: `[12:05] agent-1: Implementing feature (45%)`'
complete -c po-watch -l until-done -d 'With --follow or --events: exit once every task is terminal, with the summary\'s exit code'
complete -c po-watch -l json -d 'JSON: the snapshot as one document, or events as JSON lines'
complete -c po-watch -l poll -d 'Poll instead of using inotify'
complete -c po-watch -l utc -d 'Event times in UTC instead of local time'
complete -c po-watch -l no-conflicts -d 'Do not check completed branches for merge conflicts (git merge-tree)'
complete -c po-watch -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-watch -s V -l version -d 'Print version'
