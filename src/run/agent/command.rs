//! The generic agent: any program, from an `--agent-cmd` template
//! ([`crate::run::template`]). Its output goes to the log as it is; it
//! reports progress and spend itself with `po-status set`.

use super::{Agent, AgentSpec, Invocation, Launch, PromptVia, StreamRead};
use crate::run::template;

/// The name `AgentSpec::kind` has for `--agent-cmd`.
pub const NAME: &str = "command";

#[derive(Clone, Debug)]
pub struct Command {
    /// The template, split into words.
    words: Vec<String>,
}

impl Command {
    pub fn new(spec: &AgentSpec) -> Command {
        Command {
            words: spec.words.clone(),
        }
    }
}

impl Agent for Command {
    fn name(&self) -> &str {
        NAME
    }

    fn program(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }

    fn install_hint(&self) -> String {
        "check --agent-cmd (PO_AGENT_CMD): its first word is the program, a name on PATH or a \
         path, relative to where po-spawn runs"
            .into()
    }

    fn invocation(&self, launch: &Launch) -> Invocation {
        let names_file = self.words.iter().any(|w| w.contains("{prompt_file}"));
        Invocation {
            argv: template::fill(&self.words, launch.values),
            prompt: if names_file {
                PromptVia::File
            } else {
                PromptVia::Stdin
            },
        }
    }

    fn reader(&self) -> Option<Box<dyn StreamRead>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AgentStatus;
    use crate::run::agent::Session;

    #[test]
    fn the_template_is_filled_and_says_how_the_prompt_arrives() {
        let spec = AgentSpec::command(vec![
            "/opt/agent".into(),
            "--in={prompt_file}".into(),
            "{agent_id}".into(),
        ]);
        let agent = spec.agent().unwrap();
        let task = AgentStatus::new("agent-3", "7");
        let values = template::Values {
            prompt_file: "/p/agent-3.md",
            worktree: "/w",
            agent_id: "agent-3",
            branch: "b",
            id: "7",
        };
        let inv = agent.invocation(&Launch {
            task: &task,
            values: &values,
            session: Session::Fresh,
        });
        assert_eq!(inv.argv, ["/opt/agent", "--in=/p/agent-3.md", "agent-3"]);
        assert_eq!(inv.prompt, PromptVia::File);
        assert!(agent.reader().is_none());
        assert_eq!(agent.sessions(), super::super::Sessions::None);
        let plain = AgentSpec::command(vec!["true".into()]).agent().unwrap();
        assert_eq!(
            plain
                .invocation(&Launch {
                    task: &task,
                    values: &values,
                    session: Session::Fresh
                })
                .prompt,
            PromptVia::Stdin
        );
    }
}
