complete -c po-merge -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-merge -l into -d 'The branch to merge into [default: po/<id>/integration]' -r
complete -c po-merge -l base -d 'Where a new integration branch starts [default: the tasks\' base commit]' -r
complete -c po-merge -l validate -d 'Run this command (through sh -c) on the merged result; exit 4 if it fails' -r
complete -c po-merge -l timeout -d 'Time limit of each validation, in seconds' -r
complete -c po-merge -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-merge -l dry-run -d 'Predict conflicts and show what would be merged; merge and write nothing'
complete -c po-merge -l json -d 'Print the report as JSON'
complete -c po-merge -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-merge -s V -l version -d 'Print version'
