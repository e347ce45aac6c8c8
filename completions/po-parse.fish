complete -c po-parse -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-parse -l id -d 'Name of the orchestration [default: the issue number, the manifest\'s tech_spec_id, or the file\'s stem; `stdin` for `-`]' -r
complete -c po-parse -l section -d 'Read only the section(s) whose heading is NAME (case-insensitive; if no heading is exactly NAME, those that contain it); repeat for more' -r
complete -c po-parse -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-parse -l dry-run -d 'Print what would be run (tasks, independence findings, waves) and write nothing'
complete -c po-parse -l json -d 'Print the plan as JSON instead of the report or the status paths'
complete -c po-parse -l create-sub-issues -d 'File one GitHub sub-issue per task (issue sources only); a re-run reuses them'
complete -c po-parse -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-parse -s V -l version -d 'Print version'
