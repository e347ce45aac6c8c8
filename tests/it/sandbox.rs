//! `po-spawn --sandbox`: agents under bubblewrap change their own worktree
//! and nothing else, still commit on their branch and report their status,
//! and stay killable; without a working bwrap nothing starts.
//!
//! The repositories live outside `/tmp` (`engines::outside_tmp`):
//! a sandbox has a private `/tmp`, and an escape test must aim at paths the
//! agent could otherwise reach.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engines;
use crate::support_spawn::*;
use po::protocol::State;

const LIMIT: Duration = Duration::from_secs(120);

fn require_bwrap() {
    engines::require(
        "bwrap",
        &["--ro-bind", "/", "/", "--dev", "/dev", "true"],
        engines::BWRAP,
    );
}

fn repo() -> Repo {
    Repo::new_in(&engines::outside_tmp("sandbox"))
}

/// A home directory with secrets in it.
fn fake_home(repo: &Repo) -> PathBuf {
    let home = repo.tmp.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), "PRIVATE-KEY-MATERIAL\n").unwrap();
    std::fs::write(home.join(".ssh/authorized_keys"), "").unwrap();
    std::fs::write(
        home.join(".netrc"),
        "machine example.com password NETRC-SECRET\n",
    )
    .unwrap();
    home
}

/// The agent of the escape test: waits for the other task's worktree, tries
/// each escape and writes what happened to `escapes.txt` in its worktree,
/// then does its own work: a commit on its branch and a status report.
const ESCAPER: &str = r##"
R="$PO_WORKTREE/escapes.txt"
: > "$R"
try() {
  name=$1; shift
  if "$@" >/dev/null 2>>"$PO_WORKTREE/errors.txt"; then echo "ESCAPED $name" >> "$R"; else echo "refused $name" >> "$R"; fi
}
other=""
i=0
while [ -z "$other" ] && [ $i -lt 200 ]; do
  for d in "$(dirname "$PO_WORKTREE")"/*; do
    if [ "$d" != "$PO_WORKTREE" ] && [ -e "$d/.git" ]; then other=$d; fi
  done
  i=$((i+1)); sleep 0.05
done
[ -n "$other" ] || echo "no other worktree" >> "$R"
try checkout sh -c 'echo pwned > "$ESC_REPO/pwned.txt"'
try checkout-edit sh -c 'echo pwned >> "$ESC_REPO/README.md"'
try other-worktree sh -c 'echo pwned > "$1/pwned-by-$PO_AGENT_ID.txt"' sh "$other"
try ssh-write sh -c 'echo ssh-ed25519 AAAA attacker >> "$HOME/.ssh/authorized_keys"'
try ssh-read grep -q PRIVATE-KEY "$HOME/.ssh/id_ed25519"
try netrc-read grep -q NETRC-SECRET "$HOME/.netrc"
try hidden-read grep -q HIDDEN-SECRET "$ESC_SECRET"
try git-config git config --file "$ESC_REPO/.git/config" core.fsmonitor "touch $ESC_REPO/fsmonitor-ran"
try git-config-append sh -c 'echo "[core] fsmonitor = evil" >> "$ESC_REPO/.git/config"'
try git-hooks sh -c 'printf "#!/bin/sh\ntouch pwned\n" > "$ESC_REPO/.git/hooks/post-checkout"'
try main-ref git update-ref refs/heads/main HEAD
# Another task's branch sits in the same ref directory as this one's: the
# agent may move it in its private copy, and the real one must not move.
git update-ref "refs/heads/$ESC_OTHER_BRANCH" HEAD 2>>"$PO_WORKTREE/errors.txt"
try home-write sh -c 'echo x > "$HOME/planted"'
echo "$PO_AGENT_ID" > work.txt
git add work.txt && git commit -q -m "$PO_AGENT_ID: work" && echo "committed" >> "$R"
po-status set --progress 70 --message "reported from inside" && echo "reported" >> "$R"
"##;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs bwrap: apt-get install bubblewrap"]
fn each_escape_is_refused_while_the_agent_commits_and_reports() {
    require_bwrap();
    let repo = repo();
    let home = fake_home(&repo);
    let secret = repo.scratch().join("secret.txt");
    std::fs::write(&secret, "HIDDEN-SECRET\n").unwrap();
    let paths = orchestrate(&repo, "esc", &[task("One"), task("Two")], &[]);
    let agent = repo.script("escaper.sh", ESCAPER);
    let config_before = std::fs::read(repo.path.join(".git/config")).unwrap();
    let hooks_before: Vec<_> = std::fs::read_dir(repo.path.join(".git/hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let main_before = git(&repo.path, &["rev-parse", "main"]);

    // Each agent aims at the other's branch.
    let out = output_within(
        repo.spawn()
            .args(["--sandbox", "-j", "2", "--agent-cmd"])
            .arg(&agent)
            .args([
                "--setup",
                "echo setup > setup.txt; if echo x > \"$ESC_REPO/setup-pwned.txt\"; then echo ESCAPED > setup-escape.txt; else echo refused > setup-escape.txt; fi",
            ])
            .arg("--sandbox-hide")
            .arg(&secret)
            .env("HOME", &home)
            .env("ESC_REPO", &repo.path)
            .env("ESC_SECRET", &secret)
            .env("ESC_OTHER_BRANCH", "feat/esc-agent-2")
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    for (n, p) in paths.iter().enumerate() {
        let s = status(p);
        assert_eq!(s.status, State::Completed, "{s:?}");
        let wt = s.worktree.clone().unwrap();
        let got = lines(&wt.join("escapes.txt"));
        let errors = std::fs::read_to_string(wt.join("errors.txt")).unwrap_or_default();
        for name in [
            "checkout",
            "checkout-edit",
            "other-worktree",
            "ssh-write",
            "ssh-read",
            "netrc-read",
            "hidden-read",
            "git-config",
            "git-config-append",
            "git-hooks",
            "main-ref",
            "home-write",
        ] {
            assert!(
                got.contains(&format!("refused {name}")),
                "agent-{}: {name} was not refused: {got:?}\n{errors}",
                n + 1
            );
        }
        assert!(!got.iter().any(|l| l.starts_with("ESCAPED")), "{got:?}");
        // The setup command ran in the same sandbox.
        assert_eq!(lines(&wt.join("setup.txt")), ["setup"]);
        assert_eq!(lines(&wt.join("setup-escape.txt")), ["refused"]);
        assert!(!got.contains(&"no other worktree".to_string()), "{got:?}");
        // Its own work: a commit on its branch, a report in its status.
        assert!(got.contains(&"committed".to_string()), "{got:?}\n{errors}");
        assert!(got.contains(&"reported".to_string()), "{got:?}\n{errors}");
        assert_eq!(s.message.as_deref(), Some("reported from inside"), "{s:?}");
        let branch = s.branch.clone().unwrap();
        assert_eq!(
            git(&repo.path, &["log", "-1", "--format=%s", &branch]),
            format!("agent-{}: work", n + 1)
        );
        assert_eq!(s.metrics.commits, Some(1), "{s:?}");
    }
    // Nothing outside changed.
    assert!(!repo.path.join("pwned.txt").exists());
    assert!(!repo.path.join("setup-pwned.txt").exists());
    assert_eq!(
        std::fs::read_to_string(repo.path.join("README.md")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read(repo.path.join(".git/config")).unwrap(),
        config_before
    );
    let hooks_after: Vec<_> = std::fs::read_dir(repo.path.join(".git/hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(hooks_after, hooks_before);
    assert_eq!(git(&repo.path, &["rev-parse", "main"]), main_before);
    assert_eq!(
        std::fs::read_to_string(home.join(".ssh/authorized_keys")).unwrap(),
        ""
    );
    assert!(!home.join("planted").exists());
    for p in &paths {
        let wt = status(p).worktree.unwrap();
        let planted: Vec<_> = std::fs::read_dir(&wt)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("pwned-by-"))
            .collect();
        assert!(planted.is_empty(), "{planted:?} in {}", wt.display());
    }
    // agent-1 moved agent-2's branch in its private copy only: agent-2's
    // branch holds agent-2's own commit.
    assert_eq!(
        git(
            &repo.path,
            &["log", "-1", "--format=%s", "feat/esc-agent-2"]
        ),
        "agent-2: work"
    );
}

/// An agent that tries to reach a port on the host's loopback.
const DIALER: &str = r#"
if python3 -c 'import os, socket; socket.create_connection(("127.0.0.1", int(os.environ["ESC_PORT"])), timeout=3)' 2>/dev/null; then
  echo connected > "$PO_WORKTREE/net.txt"
else
  echo refused > "$PO_WORKTREE/net.txt"
fi
"#;

#[test]
#[ignore = "needs bwrap: apt-get install bubblewrap"]
fn network_none_cuts_the_agent_off_and_the_default_does_not() {
    require_bwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let repo = repo();
    let paths = orchestrate(&repo, "net", &[task("Dial"), task("Dial again")], &[]);
    let agent = repo.script("dialer.sh", DIALER);
    for (path, network) in [(&paths[0], "none"), (&paths[1], "on")] {
        let out = output_within(
            repo.spawn()
                .args(["--sandbox", "--sandbox-network", network, "--agent-cmd"])
                .arg(&agent)
                .env("ESC_PORT", &port)
                .arg(path),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let wt = status(path).worktree.unwrap();
        let got = std::fs::read_to_string(wt.join("net.txt")).unwrap();
        let want = if network == "none" {
            "refused"
        } else {
            "connected"
        };
        assert_eq!(got.trim(), want, "--sandbox-network {network}");
    }
}

#[test]
#[ignore = "needs bwrap: apt-get install bubblewrap"]
fn an_agent_that_relinks_its_worktree_fails_and_the_link_is_put_back() {
    require_bwrap();
    let repo = repo();
    let paths = orchestrate(&repo, "link", &[task("Relink")], &[]);
    let evil = repo.scratch().join("evil-gitdir");
    let agent = repo.script(
        "relink.sh",
        &format!(
            "echo work > work.txt && git add work.txt && git commit -q -m work\n\
             printf 'gitdir: {}\\n' > .git\n",
            evil.display()
        ),
    );
    let out = output_within(
        repo.spawn()
            .args(["--sandbox", "--agent-cmd"])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Failed, "{s:?}");
    let err = s.error.clone().unwrap();
    assert!(err.contains("changed") && err.contains(".git"), "{err}");
    let wt = s.worktree.unwrap();
    let link = std::fs::read_to_string(wt.join(".git")).unwrap();
    assert!(!link.contains("evil-gitdir"), "{link}");
    // The branch did not take the attempt's commit.
    assert_eq!(
        git(&repo.path, &["rev-parse", s.branch.as_deref().unwrap()]),
        git(&repo.path, &["rev-parse", "main"])
    );
}

#[test]
#[ignore = "needs bwrap: apt-get install bubblewrap"]
fn a_timeout_still_ends_a_sandboxed_tree_after_sigterm() {
    require_bwrap();
    let repo = repo();
    let paths = orchestrate(&repo, "slow", &[task("Hang")], &[]);
    let agent = repo.script(
        "hang.sh",
        "trap 'echo term > \"$PO_WORKTREE/term.txt\"; exit 0' TERM\n\
         sh -c 'trap \"\" TERM; while :; do sleep 1; done' &\n\
         while :; do sleep 1; done\n",
    );
    let out = output_within(
        repo.spawn()
            .args(["--sandbox", "--timeout", "2", "--grace", "2", "--agent-cmd"])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.status, State::TimedOut, "{s:?}");
    // The agent got SIGTERM (and its grace) inside the sandbox…
    let wt = s.worktree.unwrap();
    assert_eq!(
        std::fs::read_to_string(wt.join("term.txt"))
            .unwrap_or_default()
            .trim(),
        "term"
    );
    // …and nothing of the tree is left, the child that ignored it included.
    let marker = format!("PO_STATUS_FILE={}", paths[0].display());
    assert_eq!(processes_with_env(&marker), Vec::<i32>::new());
}

/// A `PATH` holding git (and the shell) but no bwrap, plus `extra` tools.
fn path_without_bwrap(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["git", "sh"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap();
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    for (name, body) in extra {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn a_missing_bwrap_is_exit_9_before_any_worktree() {
    let repo = repo();
    let paths = orchestrate(&repo, "nobw", &[task("One")], &[]);
    let agent = repo.script("agent.sh", "echo never > ran.txt\n");
    let bin = path_without_bwrap(repo.tmp.path(), &[]);
    let out = output_within(
        repo.spawn()
            .args(["--sandbox", "--agent-cmd"])
            .arg(&agent)
            .env("PATH", &bin)
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(
        stderr.contains("bwrap is not on PATH") && stderr.contains("apt-get install bubblewrap"),
        "{stderr}"
    );
    assert_eq!(repo.worktrees().len(), 1, "{:?}", repo.worktrees());
    assert_eq!(status(&paths[0]).status, State::Pending);

    // PO_SANDBOX=1 asks the same.
    let out = output_within(
        repo.spawn()
            .args(["--agent-cmd"])
            .arg(&agent)
            .env("PATH", &bin)
            .env("PO_SANDBOX", "1")
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    assert_eq!(repo.worktrees().len(), 1);
}

#[test]
fn a_bwrap_that_cannot_make_namespaces_is_exit_9_with_its_words() {
    let repo = repo();
    let paths = orchestrate(&repo, "nons", &[task("One")], &[]);
    let agent = repo.script("agent.sh", "echo never > ran.txt\n");
    let bin = path_without_bwrap(
        repo.tmp.path(),
        &[(
            "bwrap",
            "echo 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
        )],
    );
    let out = output_within(
        repo.spawn()
            .args(["--sandbox", "--agent-cmd"])
            .arg(&agent)
            .env("PATH", &bin)
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(
        stderr.contains("No permissions to create new namespace")
            && stderr.contains("user namespaces"),
        "{stderr}"
    );
    assert_eq!(repo.worktrees().len(), 1);
}

#[test]
fn dry_run_shows_the_policy_and_the_bwrap_argv() {
    let repo = repo();
    let home = fake_home(&repo);
    let paths = orchestrate(&repo, "dry", &[task("One")], &[]);
    let hide = repo.scratch().join("keys");
    std::fs::create_dir_all(&hide).unwrap();
    let out = output_within(
        repo.spawn()
            .args([
                "--dry-run",
                "--sandbox-network",
                "none",
                "--agent-cmd",
                "true",
            ])
            .arg("--sandbox-hide")
            .arg(&hide)
            .env("PO_SANDBOX", "1")
            .env("HOME", &home)
            .args(&paths),
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let wt = repo.runtime().join("worktrees/dry/agent-1");
    for want in [
        "    sandbox:\n".to_string(),
        format!("writable:  {} (the task's worktree)", wt.display()),
        format!(
            "writable:  {} ←",
            repo.path.join(".git/refs/heads/feat").display()
        ),
        format!("hidden:    {}", home.join(".ssh").display()),
        format!("hidden:    {}", home.join(".netrc").display()),
        format!("hidden:    {}", hide.display()),
        "network:   none".to_string(),
        "sandboxed: bwrap --die-with-parent --new-session --unshare-all --ro-bind / /".to_string(),
        format!("--tmpfs {}", hide.display()),
        format!("--chdir {} -- true", wt.display()),
    ] {
        assert!(stdout.contains(&want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("--share-net"), "{stdout}");
    // The repository's config and hooks are bound back read-only, never writable.
    for kept in ["config", "hooks"] {
        let p = repo.path.join(".git").join(kept);
        assert!(
            stdout.contains(&format!("--ro-bind {} {}", p.display(), p.display())),
            "{stdout}"
        );
        assert!(
            !stdout.contains(&format!("--bind {}", p.display())),
            "{stdout}"
        );
    }
    assert_eq!(repo.worktrees().len(), 1);
}

#[test]
fn sandbox_options_without_the_sandbox_are_a_usage_error() {
    let repo = repo();
    let paths = orchestrate(&repo, "opt", &[task("One")], &[]);
    let out = output_within(
        repo.spawn()
            .args(["--sandbox-network", "none", "--agent-cmd", "true"])
            .args(&paths),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("add --sandbox"), "{stderr}");
}

#[test]
#[ignore = "needs bwrap: apt-get install bubblewrap"]
fn a_worktree_from_the_pool_is_sandboxed_and_its_agent_commits() {
    require_bwrap();
    let repo = repo();
    let first = orchestrate(&repo, "first", &[task("First")], &[]);
    let out = output_within(
        repo.spawn().args(["--agent-cmd", "true"]).args(&first),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_po-clean"))
        .current_dir(&repo.path)
        .envs(git_env())
        .args(["first", "--pool"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let second = orchestrate(&repo, "second", &[task("Second")], &[]);
    let agent = repo.script(
        "commit.sh",
        "echo pooled > pooled.txt && git add pooled.txt && git commit -q -m pooled\n\
         po-status set --message from-the-pool\n",
    );
    let out = output_within(
        repo.spawn()
            .args(["--sandbox", "--agent-cmd"])
            .arg(&agent)
            .args(&second),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = status(&second[0]);
    assert_eq!(s.status, State::Completed, "{s:?}");
    let log = std::fs::read_to_string(s.log_file.clone().unwrap()).unwrap();
    assert!(log.contains("from the pool"), "{log}");
    assert!(log.contains("po-spawn: sandbox: "), "{log}");
    assert_eq!(s.message.as_deref(), Some("from-the-pool"));
    assert_eq!(
        git(
            &repo.path,
            &["log", "-1", "--format=%s", s.branch.as_deref().unwrap()]
        ),
        "pooled"
    );
}

#[test]
#[ignore = "needs bwrap: apt-get install bubblewrap"]
fn with_isolation_none_the_repository_is_writable_but_its_git_config_is_not() {
    require_bwrap();
    let repo = repo();
    let paths = orchestrate(&repo, "none", &[task("In place")], &[]);
    let config_before = std::fs::read(repo.path.join(".git/config")).unwrap();
    let agent = repo.script(
        "inplace.sh",
        "echo here > notes.txt\n\
         if echo '[core] fsmonitor = evil' >> .git/config; then exit 7; fi\n\
         po-status set --message in-place\n",
    );
    let out = output_within(
        repo.spawn()
            .args(["--sandbox", "--isolation", "none", "--agent-cmd"])
            .arg(&agent)
            .args(&paths),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = status(&paths[0]);
    assert_eq!(s.status, State::Completed, "{s:?}");
    assert_eq!(s.message.as_deref(), Some("in-place"));
    assert_eq!(lines(&repo.path.join("notes.txt")), ["here"]);
    assert_eq!(
        std::fs::read(repo.path.join(".git/config")).unwrap(),
        config_before
    );
}

/// A po-react round's agent under `po-react --sandbox`: it commits its fix
/// on the task's branch and reports its spend (relayed to the supervisor),
/// po pushes; its writes to the repository's git config and to the user's
/// checkout are refused.
#[test]
#[ignore = "needs bwrap: apt-get install bubblewrap"]
fn a_po_react_round_runs_in_the_sandbox_commits_and_cannot_write_outside() {
    require_bwrap();
    use crate::support_react::{World, text};
    let w = World::new_in(&engines::outside_tmp("sandbox-react"));
    let head = w.origin_tip();
    let config = w.repo.join(".git/config");
    let config_before = std::fs::read_to_string(&config).unwrap();
    let seen = w.tmp.path().join("round.txt");
    std::fs::write(&seen, "").unwrap();
    let agent = format!(
        r#"#!/bin/sh
common=$(git rev-parse --path-format=absolute --git-common-dir)
if echo '[escaped]' >> "$common/config" 2>/dev/null; then echo "escaped: git config" >> {seen}; fi
if echo x > "$common/../escaped.txt" 2>/dev/null; then echo "escaped: checkout" >> {seen}; fi
echo "round in $PWD" >> {seen}
po-status set --cost-usd 0.25 --phase "Fixing lib.txt"
printf 'fixed\n' > lib.txt
git commit -qam "Fix the bug"
"#,
        seen = seen.display()
    );
    std::fs::write(&w.agent, agent).unwrap();

    let out = w.react(&["--sandbox", "--sandbox-write", &seen.display().to_string()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let rounds = w.rounds();
    assert_eq!(rounds.len(), 1, "{stdout}{stderr}");
    let log = std::fs::read_to_string(rounds[0].log_file.as_ref().unwrap()).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}{log}");
    assert!(
        stdout.contains("round 1 (ci_failed): pushed "),
        "{stdout}{stderr}{log}"
    );
    let said = std::fs::read_to_string(&seen).unwrap();
    assert!(
        said.contains("round in "),
        "the round's agent ran: {said:?}"
    );
    assert!(!said.contains("escaped"), "{said}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), config_before);
    assert!(!w.repo.join("escaped.txt").exists());
    assert_ne!(w.origin_tip(), head, "po pushed the round's commit");
    assert_eq!(rounds[0].cost_usd, Some(0.25), "the relayed report counts");
    assert!(log.contains("sandbox: "), "{log}");
}

/// Without a working bwrap, `po-react --sandbox` starts no round (each
/// would fail and hand its pull request to a person): exit 9 at once.
#[test]
fn po_react_without_bwrap_is_exit_9_before_any_round() {
    use crate::support_react::{World, text};
    let w = World::new();
    let bin = path_without_bwrap(w.tmp.path(), &[]);
    let calls = w.gh.calls().len();
    let out = w.po_env("po-react", &["500", "--sandbox"], &[("PATH", &bin)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("bwrap is not on PATH"), "{stderr}");
    assert!(w.rounds().is_empty());
    assert_eq!(w.gh.calls().len(), calls, "GitHub was not asked");
    assert!(w.status().extra.get("escalation").is_none());
}
