complete -c cpo -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c cpo -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c cpo -s h -l help -d 'Print help'
complete -c cpo -s V -l version -d 'Print version'
