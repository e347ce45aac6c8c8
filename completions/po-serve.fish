complete -c po-serve -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-serve -l listen -d 'Address and port to listen on (port 0: any free port)' -r
complete -c po-serve -l token -d 'Require this token on every request (needed for a non-loopback --listen); prefer PO_SERVE_TOKEN, which other users cannot see in `ps`' -r
complete -c po-serve -l stall-after -d 'An in_progress task with no log output and no status update for this long is stalled' -r
complete -c po-serve -l poll-interval -d 'Polling interval in milliseconds (with --poll, or when inotify is unavailable)' -r
complete -c po-serve -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-serve -l poll -d 'Poll instead of using inotify'
complete -c po-serve -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-serve -s V -l version -d 'Print version'
