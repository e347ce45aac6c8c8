//! Man pages and shell completions, generated from the clap definitions.
//!
//! `man/*.1` and `completions/*` are checked in; `tests/docs_fresh.rs` fails
//! when one is stale (`PO_BLESS=1 cargo test --test docs_fresh` rewrites them).

use clap_complete::Shell;

/// `(path relative to the repository, contents)` of every generated file.
pub fn generated_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for cmd in super::commands() {
        let name = cmd.get_name().to_string();
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .expect("rendering to memory cannot fail");
        files.push((format!("man/{name}.1"), page));
        for (shell, file) in [
            (Shell::Bash, format!("completions/{name}.bash")),
            (Shell::Zsh, format!("completions/_{name}")),
            (Shell::Fish, format!("completions/{name}.fish")),
        ] {
            let mut cmd = cmd.clone();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut out);
            files.push((file, out));
        }
    }
    files
}
