//! The few `git` commands po runs, always as argv, never asking at a
//! terminal (`GIT_TERMINAL_PROMPT=0`): po's one git runner.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, GitRefusal, Result};

/// `git ARGS…` in `dir`; its trimmed stdout, or an error quoting git's message.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    git_raw(dir, args).map(|out| out.trim().to_string())
}

/// `git ARGS…` in `dir`; its stdout as given (for `-z` output), or an error
/// quoting git's message.
pub fn git_raw(dir: &Path, args: &[&str]) -> Result<String> {
    let out = output(dir, args)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(refused(dir, args, &out))
}

/// `git ARGS…` in `dir`, whatever its status: the one place po starts git
/// for its output.
fn output(dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::system(format!("run `git {}`: {e}", args.join(" "))))
}

/// The error for a git that failed: its message on one line, and why, when
/// po acts on the reason.
fn refused(dir: &Path, args: &[&str], out: &std::process::Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .collect::<Vec<_>>()
        .join("; ");
    Error::Git {
        command: args.join(" "),
        dir: dir.to_path_buf(),
        refusal: refusal(&msg),
        message: if msg.is_empty() {
            format!("exit status {}", out.status)
        } else {
            msg
        },
    }
}

/// Why git refused, from its message: the one place po reads git's words.
fn refusal(msg: &str) -> GitRefusal {
    if msg.contains("missing but") {
        GitRefusal::MissingButRegistered
    } else if msg.contains("already exists") {
        GitRefusal::AlreadyExists
    } else if msg.contains("failed to read") && msg.contains("worktrees") {
        GitRefusal::WorktreeRace
    } else {
        GitRefusal::Other
    }
}

/// `git ARGS…` in `dir` with `input` on its stdin (for `--stdin -z`); its
/// trimmed stdout, or an error quoting git's message.
pub fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::system(format!("run `git {}`: {e}", args.join(" "))))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A git that exits early closes its end: its status says why.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::system(format!("run `git {}`: {e}", args.join(" "))))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    Err(refused(dir, args, &out))
}

/// `git worktree prune --verbose` (with `--dry-run`): the worktree records
/// it pruned (or would).
pub fn worktree_prune(repo: &Path, dry_run: bool) -> Result<Vec<String>> {
    let mut args = vec!["worktree", "prune", "--verbose"];
    if dry_run {
        args.push("--dry-run");
    }
    let out = output(repo, &args)?;
    if !out.status.success() {
        return Err(refused(repo, &args, &out));
    }
    // git tells what it prunes on stderr.
    Ok(String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("Removing ").map(str::to_string))
        .collect())
}

/// Files `git status` reports in `dir` (untracked included), with their
/// two-letter status (`??` untracked; a nested repository ends in `/`),
/// without taking git's optional index lock: nothing is written.
pub fn changed_files(dir: &Path) -> Result<Vec<(String, String)>> {
    let out = git_raw(
        dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
        ],
    )?;
    Ok(parse_status(&out))
}

/// The (status, path) entries of `git status --porcelain=v1 -z` output; a
/// rename's or copy's source, which follows it, is left out.
pub fn parse_status(z: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut fields = z.split('\0').filter(|f| !f.is_empty());
    while let Some(f) = fields.next() {
        if f.len() > 3 {
            files.push((f[..2].to_string(), f[3..].to_string()));
            if f.starts_with('R') || f.starts_with('C') {
                fields.next();
            }
        }
    }
    files
}

/// Whether `git ARGS…` succeeds (quietly).
pub fn git_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The commit `rev` names, as a full hash.
pub fn resolve_commit(repo: &Path, rev: &str) -> Result<String> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| {
        Error::usage(format!(
            "resolve base {rev:?} in {}: no such commit; pass --base with a branch, tag or commit",
            repo.display()
        ))
    })
}

/// The branch checked out in `repo`, if any.
pub fn current_branch(repo: &Path) -> Option<String> {
    git(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"]).ok()
}

pub fn branch_exists(repo: &Path, branch: &str) -> bool {
    git_ok(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
}

/// What merging two commits gives, computed without a worktree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeTree {
    /// The merged tree (with conflict markers where there are conflicts).
    pub tree: String,
    /// Files that conflict; empty for a clean merge.
    pub conflicts: Vec<String>,
}

/// `git merge-tree --write-tree` of `ours` and `theirs` (git ≥ 2.38): the
/// merge's tree and its conflicting files, touching no worktree, index or
/// ref.
pub fn merge_tree(repo: &Path, ours: &str, theirs: &str) -> Result<MergeTree> {
    let args = [
        "merge-tree",
        "--write-tree",
        "--name-only",
        "--no-messages",
        "-z",
        ours,
        theirs,
    ];
    let out = output(repo, &args)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split('\0');
    let tree = fields.next().unwrap_or_default().trim().to_string();
    let is_oid = tree.len() >= 40 && tree.chars().all(|c| c.is_ascii_hexdigit());
    // 0: clean; 1: conflicts (the tree, then the conflicted paths). Anything
    // else, or no tree (git also exits 1 on some errors), is an error.
    match out.status.code() {
        Some(0 | 1) if is_oid => {
            let mut conflicts: Vec<String> = fields
                .take_while(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            conflicts.dedup();
            Ok(MergeTree { tree, conflicts })
        }
        _ => Err(Error::system(format!(
            "run `git merge-tree --write-tree {ours} {theirs}` in {}: {} (git 2.38 or later is \
             needed)",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Identity flags for commits po makes itself (merges), when the user has none.
pub fn identity_args(repo: &Path) -> Vec<&'static str> {
    if git_ok(repo, &["var", "GIT_COMMITTER_IDENT"]) {
        Vec::new()
    } else {
        vec!["-c", "user.name=po", "-c", "user.email=po@localhost"]
    }
}

/// The oldest git whose `merge-tree --write-tree` po can use.
pub const MERGE_TREE_MIN: (u32, u32) = (2, 38);

/// `git --version` as (major, minor), e.g. (2, 47).
pub fn version() -> Result<(u32, u32)> {
    let text = git(Path::new("/"), &["--version"])?;
    parse_version(&text).ok_or_else(|| {
        Error::system(format!(
            "read the git version: cannot understand {text:?} from `git --version`"
        ))
    })
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    Some((parts.next()??, parts.next()??))
}

/// Fail with a clear message unless git can predict merges (`merge-tree
/// --write-tree`, git ≥ 2.38).
pub fn require_merge_tree() -> Result<()> {
    let (major, minor) = version()?;
    if (major, minor) >= MERGE_TREE_MIN {
        return Ok(());
    }
    Err(Error::system(format!(
        "predict merge conflicts: git {major}.{minor} is too old; `git merge-tree --write-tree` \
         needs git {}.{} or newer; upgrade git",
        MERGE_TREE_MIN.0, MERGE_TREE_MIN.1
    )))
}

/// Every local branch and the commit it points at.
pub fn branch_tips(repo: &Path) -> Result<std::collections::HashMap<String, String>> {
    let out = git_raw(
        repo,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads/",
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (oid, name) = l.split_once(' ')?;
            Some((
                name.strip_prefix("refs/heads/")?.to_string(),
                oid.to_string(),
            ))
        })
        .collect())
}

/// Whether commit `a` is an ancestor of (or equal to) commit `b`.
pub fn is_ancestor(repo: &Path, a: &str, b: &str) -> bool {
    git_ok(repo, &["merge-base", "--is-ancestor", a, b])
}

/// One entry of `git worktree list`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Worktree {
    pub path: PathBuf,
    pub head: Option<String>,
    /// `feat/x` for `refs/heads/feat/x`; `None` when detached.
    pub branch: Option<String>,
    /// `git worktree lock`, with its reason (possibly empty).
    pub locked: Option<String>,
    /// Git's record of a worktree whose directory is gone.
    pub prunable: bool,
    pub bare: bool,
}

/// The worktrees of the repository `repo` belongs to; the main one first.
pub fn worktrees(repo: &Path) -> Result<Vec<Worktree>> {
    let out = git_raw(repo, &["worktree", "list", "--porcelain", "-z"])?;
    let mut list = Vec::new();
    let mut cur: Option<Worktree> = None;
    for field in out.split('\0') {
        if field.is_empty() {
            list.extend(cur.take());
            continue;
        }
        let (key, value) = field.split_once(' ').unwrap_or((field, ""));
        if key == "worktree" {
            list.extend(cur.take());
            cur = Some(Worktree {
                path: PathBuf::from(value),
                ..Worktree::default()
            });
            continue;
        }
        let Some(w) = cur.as_mut() else { continue };
        match key {
            "HEAD" => w.head = Some(value.to_string()),
            "branch" => {
                w.branch = Some(
                    value
                        .strip_prefix("refs/heads/")
                        .unwrap_or(value)
                        .to_string(),
                )
            }
            "locked" => w.locked = Some(value.to_string()),
            "prunable" => w.prunable = true,
            "bare" => w.bare = true,
            _ => {}
        }
    }
    list.extend(cur);
    Ok(list)
}

/// The files in a worktree git does not track, ignored ones included, as
/// `git ls-files --others` lists them (relative, `/`-separated): git does not
/// look inside a nested repository, and names it as its directory with a
/// trailing `/` (see [`is_nested_repo`]).
pub fn untracked(dir: &Path) -> Result<Vec<String>> {
    let out = git_raw(dir, &["ls-files", "-z", "--others"])?;
    Ok(out
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect())
}

/// The ignored files in a worktree (nested repositories among them named
/// with a trailing `/`).
pub fn ignored(dir: &Path) -> Result<Vec<String>> {
    let out = git_raw(
        dir,
        &[
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
        ],
    )?;
    Ok(out
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect())
}

/// Whether an entry of [`untracked`] or [`ignored`] is a nested repository.
pub fn is_nested_repo(entry: &str) -> bool {
    entry.ends_with('/')
}

/// A file of the index that `git update-index` hid from `git status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiddenEntry {
    pub path: String,
    /// `--assume-unchanged` (`git ls-files -v` shows a lower-case letter).
    pub assume_unchanged: bool,
    /// `--skip-worktree` (`S`, or `s` with both).
    pub skip_worktree: bool,
}

/// The index entries of a worktree with the assume-unchanged or
/// skip-worktree flag (`git ls-files -v`).
pub fn hidden_entries(dir: &Path) -> Result<Vec<HiddenEntry>> {
    Ok(parse_hidden(&git_raw(dir, &["ls-files", "-v", "-z"])?))
}

fn parse_hidden(out: &str) -> Vec<HiddenEntry> {
    out.split('\0')
        .filter_map(|e| {
            let (tag, path) = e.split_once(' ')?;
            let tag = tag.chars().next()?;
            let entry = HiddenEntry {
                path: path.to_string(),
                assume_unchanged: tag.is_ascii_lowercase(),
                skip_worktree: tag.eq_ignore_ascii_case(&'s'),
            };
            (entry.assume_unchanged || entry.skip_worktree).then_some(entry)
        })
        .collect()
}

/// Clear both flags of `entries` (what [`hidden_entries`] found).
pub fn unhide(dir: &Path, entries: &[HiddenEntry]) -> Result<()> {
    for (flag, pick) in [
        (
            "--no-assume-unchanged",
            (|e: &HiddenEntry| e.assume_unchanged) as fn(&HiddenEntry) -> bool,
        ),
        ("--no-skip-worktree", |e: &HiddenEntry| e.skip_worktree),
    ] {
        let mut input = Vec::new();
        for e in entries.iter().filter(|e| pick(e)) {
            input.extend_from_slice(e.path.as_bytes());
            input.push(0);
        }
        if !input.is_empty() {
            git_stdin(dir, &["update-index", flag, "-z", "--stdin"], &input)?;
        }
    }
    Ok(())
}

/// What a task changed against its base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub commits: u64,
    pub files_changed: u64,
    pub lines_added: u64,
    pub lines_removed: u64,
}

/// The private git directory (`<common>/worktrees/<name>`) of the linked
/// worktree at `worktree`, from its `.git` file; `None` when that is not a
/// regular file naming one (a main checkout's `.git` is a directory).
pub fn private_dir(worktree: &Path) -> Option<PathBuf> {
    let text = read_small(&worktree.join(".git"))?;
    let dir = Path::new(text.strip_prefix("gitdir:")?.trim());
    Some(if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        worktree.join(dir)
    })
}

/// The repository's git directory a worktree's private git directory
/// `private` belongs to (its `commondir`).
pub fn common_of(private: &Path) -> Option<PathBuf> {
    let common = read_small(&private.join("commondir"))?;
    Some(private.join(common.trim()))
}

fn read_small(path: &Path) -> Option<String> {
    crate::fsx::read_to_string(path, crate::fsx::SMALL_MAX).ok()
}

/// The commit a worktree's branch points at, read from its loose ref without
/// running git; `None` when it is not that simple (packed refs, detached HEAD).
pub fn loose_head(worktree: &Path) -> Option<String> {
    let gitdir = private_dir(worktree)?;
    let head = read_small(&gitdir.join("HEAD"))?;
    let refname = head.strip_prefix("ref:")?.trim();
    if !refname.starts_with("refs/heads/") || refname.contains("..") {
        return None;
    }
    let common = common_of(&gitdir)?;
    let value = read_small(&common.join(refname))?;
    let value = value.trim();
    (value.len() >= 40 && value.chars().all(|c| c.is_ascii_hexdigit())).then(|| value.to_string())
}

/// `git rev-list --count base..HEAD` and `git diff --numstat base HEAD` in `dir`.
pub fn diff_stats(dir: &Path, base: &str) -> Result<DiffStats> {
    if loose_head(dir).is_some_and(|head| head == base) {
        // The branch did not move: nothing to count, no git to run.
        return Ok(DiffStats::default());
    }
    let commits: u64 = git(dir, &["rev-list", "--count", &format!("{base}..HEAD")])?
        .parse()
        .unwrap_or(0);
    let mut stats = DiffStats {
        commits,
        ..DiffStats::default()
    };
    if commits == 0 {
        return Ok(stats);
    }
    for line in git(dir, &["diff", "--numstat", base, "HEAD"])?.lines() {
        let mut f = line.split('\t');
        let added = f.next().and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
        let removed = f.next().and_then(|r| r.parse::<u64>().ok()).unwrap_or(0);
        stats.files_changed += 1;
        stats.lines_added += added;
        stats.lines_removed += removed;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn status_entries_skip_rename_sources() {
        let z = " M src/a.rs\0R  new.rs\0old.rs\0?? notes.txt\0";
        let paths: Vec<String> = parse_status(z).into_iter().map(|(_, p)| p).collect();
        assert_eq!(paths, vec!["src/a.rs", "new.rs", "notes.txt"]);
        assert_eq!(parse_status("?? d/\0")[0], ("??".into(), "d/".into()));
    }

    #[test]
    fn gits_refusals_are_told_apart_from_what_git_says() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r");
        std::fs::create_dir(&repo).unwrap();
        run(&repo, &["init", "-q", "-b", "main"]);
        run(&repo, &["commit", "-q", "--allow-empty", "-m", "base"]);
        let wt = tmp.path().join("wt");
        let w = wt.to_string_lossy().into_owned();
        run(&repo, &["worktree", "add", "-q", "-b", "x", &w]);
        let e = git(&repo, &["branch", "x"]).unwrap_err();
        assert_eq!(e.git_refusal(), Some(GitRefusal::AlreadyExists), "{e}");
        std::fs::remove_dir_all(&wt).unwrap();
        let e = git(&repo, &["worktree", "add", "-q", &w, "main"]).unwrap_err();
        assert_eq!(
            e.git_refusal(),
            Some(GitRefusal::MissingButRegistered),
            "{e}"
        );
        assert!(e.to_string().starts_with("run `git worktree add"), "{e}");
        let e = git(&repo, &["rev-parse", "--verify", "nope"]).unwrap_err();
        assert_eq!(e.git_refusal(), Some(GitRefusal::Other), "{e}");
        assert_eq!(Error::system("x").git_refusal(), None);
    }

    #[test]
    fn a_worktrees_loose_head_matches_git_and_stats_count_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r");
        std::fs::create_dir(&repo).unwrap();
        run(&repo, &["init", "-q", "-b", "main"]);
        run(&repo, &["commit", "-q", "--allow-empty", "-m", "base"]);
        let base = run(&repo, &["rev-parse", "HEAD"]);
        let wt = tmp.path().join("wt");
        run(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "feat/x",
                wt.to_str().unwrap(),
                &base,
            ],
        );
        assert_eq!(loose_head(&wt), Some(base.clone()));
        assert_eq!(diff_stats(&wt, &base).unwrap(), DiffStats::default());
        std::fs::write(wt.join("a.txt"), "one\ntwo\n").unwrap();
        run(&wt, &["add", "a.txt"]);
        run(&wt, &["commit", "-q", "-m", "a"]);
        assert_eq!(loose_head(&wt), Some(run(&wt, &["rev-parse", "HEAD"])));
        assert_eq!(
            diff_stats(&wt, &base).unwrap(),
            DiffStats {
                commits: 1,
                files_changed: 1,
                lines_added: 2,
                lines_removed: 0
            }
        );
        // The main checkout is not a linked worktree: no shortcut.
        assert_eq!(loose_head(&repo), None);
    }

    #[test]
    fn versions_parse_from_git_and_distributions() {
        assert_eq!(parse_version("git version 2.47.3"), Some((2, 47)));
        assert_eq!(
            parse_version("git version 2.39.5 (Apple Git-154)"),
            Some((2, 39))
        );
        assert_eq!(parse_version("git version 2.38.0.windows.1"), Some((2, 38)));
        assert_eq!(parse_version("nonsense"), None);
        assert!(version().unwrap() >= (2, 0));
    }

    #[test]
    fn merge_tree_names_conflicting_paths_and_worktrees_are_listed() {
        require_merge_tree().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r");
        std::fs::create_dir(&repo).unwrap();
        run(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("f"), "base\n").unwrap();
        run(&repo, &["add", "f"]);
        run(&repo, &["commit", "-q", "-m", "base"]);
        for (branch, file, text) in [("a", "f", "a\n"), ("b", "f", "b\n"), ("c", "g", "c\n")] {
            run(&repo, &["checkout", "-q", "-b", branch, "main"]);
            std::fs::write(repo.join(file), text).unwrap();
            run(&repo, &["add", file]);
            run(&repo, &["commit", "-q", "-m", branch]);
        }
        run(&repo, &["checkout", "-q", "main"]);
        assert_eq!(merge_tree(&repo, "a", "b").unwrap().conflicts, ["f"]);
        assert!(merge_tree(&repo, "a", "c").unwrap().conflicts.is_empty());
        assert!(merge_tree(&repo, "a", "no-such-branch").is_err());
        let tips = branch_tips(&repo).unwrap();
        assert_eq!(tips["a"], run(&repo, &["rev-parse", "a"]));
        assert!(is_ancestor(&repo, "main", "a") && !is_ancestor(&repo, "a", "b"));

        let wt = tmp.path().join("wt");
        run(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                wt.to_str().unwrap(),
                "c",
            ],
        );
        run(
            &repo,
            &["worktree", "lock", "--reason", "kept", wt.to_str().unwrap()],
        );
        let list = worktrees(&repo).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].branch.as_deref(), Some("main"));
        assert_eq!(list[1].path, wt);
        assert_eq!(list[1].branch, None);
        assert_eq!(list[1].locked.as_deref(), Some("kept"));
        assert_eq!(list[1].head.as_deref(), Some(tips["c"].as_str()));
    }
}
