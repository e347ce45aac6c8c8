complete -c po-spawn -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-spawn -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-spawn -s h -l help -d 'Print help'
complete -c po-spawn -s V -l version -d 'Print version'
