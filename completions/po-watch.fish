complete -c po-watch -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-watch -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-watch -s h -l help -d 'Print help'
complete -c po-watch -s V -l version -d 'Print version'
