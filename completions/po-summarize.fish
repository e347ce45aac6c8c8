complete -c po-summarize -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-summarize -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-summarize -s h -l help -d 'Print help'
complete -c po-summarize -s V -l version -d 'Print version'
