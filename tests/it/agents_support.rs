//! What the agent CLIs' end-to-end tests share: the scripted model servers
//! on loopback (`tests/support/mock_anthropic.py`, Anthropic's Messages API
//! for Claude Code; `tests/support/mock_models.py`, the OpenAI Responses API
//! and the Gemini API for Codex and Gemini CLI), a repository with an
//! orchestration of one-file tasks, and `po-spawn` run against them.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use po::protocol::{AgentStatus, Orchestration, Runtime, Source, State, Wave, layout, store};
use serde_json::{Value, json};

/// A hang guard only: a run takes a few seconds (Gemini CLI's own retry of
/// a failed request waits some more).
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// Variables that would send a CLI somewhere else than the mock.
pub const FOREIGN_ENV: &[&str] = &[
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_MODEL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CODEX_HOME",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "PO_PRICES",
    "PO_AGENT",
    "PO_AGENT_CMD",
    "PO_CODEX",
    "PO_GEMINI",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
];

/// The scripted model server, killed when dropped.
pub struct Mock {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Mock {
    /// The OpenAI and Gemini APIs' server (Codex, Gemini CLI).
    pub fn start(dir: &Path, script: &Value) -> Mock {
        Mock::serve("mock_models.py", dir, script)
    }

    /// Anthropic's Messages API server (Claude Code).
    pub fn anthropic(dir: &Path, script: &Value) -> Mock {
        Mock::serve("mock_anthropic.py", dir, script)
    }

    fn serve(server: &str, dir: &Path, script: &Value) -> Mock {
        let script_path = dir.join("script.json");
        fs::write(&script_path, serde_json::to_vec_pretty(script).unwrap()).unwrap();
        let port_file = dir.join("port");
        let log = dir.join("requests.jsonl");
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support")
            .join(server);
        let mut child = Command::new("python3")
            .arg(&path)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--script")
            .arg(&script_path)
            .arg("--log")
            .arg(&log)
            .args(["--max-seconds", "600"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start python3 {server}: {e}"));
        let start = Instant::now();
        let port = loop {
            if let Some(port) = fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break port;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("mock server exited early: {status}");
            }
            assert!(
                start.elapsed() < HANG_GUARD,
                "mock server never wrote its port"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Mock { child, port, log }
    }

    /// The environment that points Claude Code at this (Anthropic) server,
    /// with its own config under `home`.
    pub fn claude_env(&self, home: &Path) -> Vec<(String, String)> {
        fs::create_dir_all(home.join(".claude")).unwrap();
        let h = home.display().to_string();
        [
            ("HOME", h.clone()),
            ("CLAUDE_CONFIG_DIR", format!("{h}/.claude")),
            (
                "ANTHROPIC_BASE_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("ANTHROPIC_API_KEY", "sk-ant-test-offline".into()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
            ("DISABLE_AUTOUPDATER", "1".into()),
            ("IS_SANDBOX", "1".into()),
            ("CLAUDE_CODE_MAX_RETRIES", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub fn requests(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Why the mock answered each model request of `marker`'s conversation.
    pub fn whys(&self, marker: &str) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| r["why"].as_str())
            .filter(|w| w.starts_with(&format!("conversation {marker} ")))
            .map(String::from)
            .collect()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn init_repo(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    fs::write(dir.join("README.md"), "test repository\n").unwrap();
    git(dir, &["add", "README.md"]);
    git(
        dir,
        &[
            "-c",
            "user.name=po-test",
            "-c",
            "user.email=po-test@example.invalid",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
}

/// A shell command that writes `file` and commits it as `subject`.
pub fn commit_command(file: &str, content: &str, subject: &str) -> String {
    format!(
        "printf '%s\\n' '{content}' > {file} && git add {file} && \
         git -c user.name=po-agent -c user.email=po-agent@example.invalid commit -q -m '{subject}'"
    )
}

/// Wait for a child with a hang guard, collecting its output.
pub fn wait_output(mut child: Child, what: &str) -> Output {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).unwrap();
        v
    });
    let start = Instant::now();
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {HANG_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// One task: (agent id, marker in its text, file it adds, the file's content).
pub type Task = (&'static str, &'static str, &'static str, &'static str);

pub const ORCH_ID: &str = "e2e";

/// A repository with one orchestration of one-file tasks, made through the
/// library the way po-parse makes them, in a directory outside `/tmp`
/// (Codex refuses to put its helper binaries under a home in `/tmp`).
pub struct Orch {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub runtime_dir: PathBuf,
    pub dir: PathBuf,
    pub base: String,
}

impl Orch {
    pub fn new(tasks: &[Task]) -> Orch {
        let tmp = tempfile::Builder::new()
            .prefix("po-e2e-")
            .tempdir_in(crate::engines::outside_tmp("e2e"))
            .unwrap();
        let repo = tmp.path().join("repo");
        init_repo(&repo);
        let base = git(&repo, &["rev-parse", "HEAD"]);
        let runtime_dir = tmp.path().join("runtime");
        let runtime = Runtime::at(&runtime_dir, Some(repo.clone()));
        let dir = runtime.orchestration_dir(ORCH_ID);
        fs::create_dir_all(&dir).unwrap();
        let orchestration = Orchestration {
            schema_version: po::protocol::SCHEMA_VERSION,
            id: ORCH_ID.into(),
            source: Source {
                kind: "markdown".into(),
                value: "tasks.md".into(),
            },
            master_issue: None,
            title: Some("Add files".into()),
            url: None,
            body: None,
            created_at: Some(po::timefmt::now()),
            waves: vec![Wave {
                number: 1,
                agents: tasks.iter().map(|t| t.0.to_string()).collect(),
                validation: None,
                result: None,
            }],
            report: Value::Null,
            options: Default::default(),
            extra: Default::default(),
        };
        store::write_json(&dir.join(layout::ORCHESTRATION_FILE), &orchestration).unwrap();
        for (n, (agent, marker, file, content)) in tasks.iter().enumerate() {
            let mut s = AgentStatus::new(*agent, ORCH_ID);
            s.title = format!("Add {file}");
            s.body =
                format!("Create {file} containing `{content}` and commit it. Task key: {marker}.");
            s.branch = Some(po::protocol::sanitize::branch_name(
                ORCH_ID,
                None,
                n as u64 + 1,
            ));
            store::write_status(&layout::status_path(&dir, agent), &s).unwrap();
        }
        Orch {
            tmp,
            repo,
            runtime_dir,
            dir,
            base,
        }
    }

    /// The agents' home (outside `/tmp`, as [`Orch::new`] says).
    pub fn home(&self) -> PathBuf {
        let home = self.tmp.path().join("home");
        fs::create_dir_all(&home).unwrap();
        home
    }

    /// The script: each task's agent commits its file through the shell,
    /// then says so.
    pub fn conversations(tasks: &[Task]) -> Vec<Value> {
        tasks
            .iter()
            .map(|(agent, marker, file, content)| {
                json!({"marker": marker, "turns": [
                    {"bash": commit_command(file, content, &format!("{agent}: add {file}")),
                     "description": format!("Commit {file}")},
                    {"text": format!("Committed {file}.")}
                ]})
            })
            .collect()
    }

    /// Run `po-spawn --agent AGENT --id e2e --runtime-dir R` with more `args`
    /// and the agent's `env`.
    pub fn spawn(&self, agent: &str, args: &[&str], env: &[(String, String)]) -> (Output, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_po-spawn"));
        cmd.args(["--agent", agent, "--id", ORCH_ID])
            .arg("--runtime-dir")
            .arg(&self.runtime_dir)
            .args(args)
            .current_dir(&self.repo)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in FOREIGN_ENV {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let out = wait_output(cmd.spawn().expect("start po-spawn"), "po-spawn");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out, stderr)
    }

    pub fn status(&self, agent: &str) -> AgentStatus {
        store::read_status(&layout::status_path(&self.dir, agent)).unwrap()
    }

    /// The task's status after the run; asserts it completed with its commit
    /// on its branch.
    pub fn assert_completed(&self, (agent, _, file, content): Task, stderr: &str) -> AgentStatus {
        let s = self.status(agent);
        let shown = serde_json::to_string_pretty(&s).unwrap();
        let log = s
            .log_file
            .as_ref()
            .and_then(|l| fs::read_to_string(l).ok())
            .unwrap_or_default();
        assert_eq!(
            s.status,
            State::Completed,
            "{agent}: {shown}\n{stderr}\nlog:\n{log}"
        );
        let branch = s.branch.clone().expect("branch recorded");
        assert_eq!(
            git(
                &self.repo,
                &["log", "--format=%s", &format!("{}..{branch}", self.base)]
            ),
            format!("{agent}: add {file}"),
            "{agent}: {shown}\nlog:\n{log}"
        );
        assert_eq!(
            git(&self.repo, &["show", &format!("{branch}:{file}")]),
            content
        );
        assert_eq!(s.exit_code, Some(0), "{shown}");
        assert_eq!(s.error, None, "{shown}");
        s
    }

    /// The agent's log (its stream and po-spawn's notes).
    pub fn log(&self, s: &AgentStatus) -> String {
        fs::read_to_string(s.log_file.as_ref().expect("log_file recorded")).unwrap()
    }

    /// `po-summarize --format json` of the orchestration.
    pub fn summary(&self) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_po-summarize"))
            .args(["--format", "json", "--runtime-dir"])
            .arg(&self.runtime_dir)
            .arg(ORCH_ID)
            .current_dir(&self.repo)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "po-summarize: {e}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// What one agent of [`Orch::conversations`] costs on the models' server:
/// two model calls of its usage (3,500 input tokens of which 2,000 cached,
/// 85 output) at `model`'s price in po's table.
pub fn conversation_cost(model: &str) -> f64 {
    po::prices::Prices::built_in()
        .of(model)
        .unwrap()
        .cost(&po::cost::Tokens {
            input: 7000,
            cache_write: 0,
            cache_read: 4000,
            output: 170,
        })
}

/// The `field` of every event of type `kind` in a JSON-lines log, in order.
pub fn event_ids(log: &str, kind: &str, field: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == kind)
        .map(|e| e[field].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `(a - b).abs() < 1e-9`, said with both.
pub fn assert_close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}
