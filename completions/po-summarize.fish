complete -c po-summarize -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-summarize -l format -d 'What to print on stdout' -r -f -a "markdown\t'The markdown report (summary.md)'
json\t'summary.json'
junit\t'JUnit XML, one testcase per agent'
html\t'One self-contained HTML report with the run\'s timeline (no script, nothing fetched)'"
complete -c po-summarize -l threshold -d 'Success threshold in percent (also AMPLIHACK_SUCCESS_THRESHOLD) [default: 80]' -r
complete -c po-summarize -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-summarize -l post-comment -d 'Post the summary comment on the master issue; a later run edits that same comment (found by a hidden marker) instead of adding another'
complete -c po-summarize -l follow-up-issues -d 'File one diagnostic issue per failed agent that has none yet; a task that fails again after a retry gets a comment on its issue instead'
complete -c po-summarize -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-summarize -s V -l version -d 'Print version'
