complete -c po-clean -l runtime-dir -d 'Runtime root (default: <git top-level>/.claude/runtime)' -r -F
complete -c po-clean -l older-than -d 'Only tasks that finished at least this long ago (e.g. 7d, 12h, 30m)' -r
complete -c po-clean -l base -d 'With --branches: the branch "merged" means merged into [default: origin\'s default branch, else the main checkout\'s branch]' -r
complete -c po-clean -s v -l verbose -d 'More detail on stderr (-v debug, -vv trace); PO_LOG=filter for fine control'
complete -c po-clean -l all -d 'Every orchestration under the runtime root (and, without --pool, the worktrees in the warm pool)'
complete -c po-clean -l pool -d 'Retire clean worktrees into the warm pool instead of deleting them'
complete -c po-clean -l branches -d 'Also delete task branches merged into the base or through a merged PR'
complete -c po-clean -l include-ignored -d 'Also delete ignored files po did not put there (build output, results, .env edits…) with their worktree; a nested repository is kept all the same'
complete -c po-clean -l dry-run -d 'Show what would go; change nothing'
complete -c po-clean -l json -d 'Print the report as JSON'
complete -c po-clean -s h -l help -d 'Print help (see more with \'--help\')'
complete -c po-clean -s V -l version -d 'Print version'
