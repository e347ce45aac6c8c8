//! The library's top-level modules form layers: no module uses one that
//! uses it back, directly or through others. Read from the source: every
//! `crate::module` a module's code names (test code left out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// The top-level modules `lib.rs` declares.
fn modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// The code of a file without comments and without its tests (what follows
/// a `#[cfg(test)]`).
fn code(text: &str) -> String {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first names of the paths in a `use crate::{a::b, c}` group.
fn group_heads(inner: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut start) = (0, true);
    let mut word = String::new();
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                start = true;
                continue;
            }
            _ => {}
        }
        if start && depth == 0 {
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if !word.is_empty() {
                heads.push(std::mem::take(&mut word));
                start = false;
            }
        }
    }
    if !word.is_empty() {
        heads.push(word);
    }
    heads
}

/// Every module `code` names through `crate::`.
fn named(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(group.len(), |(j, _)| j);
            out.extend(group_heads(&group[..end]));
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(word);
        }
    }
    // `crate::exit`, `crate::Error`, `crate::Result`: lib.rs's re-exports
    // of the error module.
    out.into_iter()
        .map(|n| match n.as_str() {
            "exit" => "error".to_string(),
            _ if n.starts_with(char::is_uppercase) => "error".to_string(),
            _ => n,
        })
        .collect()
}

/// Module → module it uses → the files that use it.
fn graph(src: &Path) -> Graph {
    let mods = modules(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut g = Graph::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(dir) = files.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files.push(p);
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if !mods.contains(&top) || p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            if p.file_stem().is_some_and(|s| s == "tests") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for n in named(&code(&text)) {
                if n != top && mods.contains(&n) {
                    g.entry(top.clone())
                        .or_default()
                        .entry(n)
                        .or_default()
                        .insert(rel.display().to_string());
                }
            }
        }
    }
    g
}

/// A cycle of modules, if there is one: `a → b → a`, with a file of each
/// step.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in g.get(m).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

fn shown(g: &Graph, c: &[String]) -> String {
    c.windows(2)
        .map(|w| {
            let files: Vec<&String> = g[&w[0]][&w[1]].iter().collect();
            format!("{} → {} ({files:?})", w[0], w[1])
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn the_library_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.len() > 10, "the module graph was not read: {g:?}");
    assert!(
        g["cli"].contains_key("run") && g["run"].contains_key("protocol"),
        "{g:?}"
    );
    if let Some(c) = cycle(&g) {
        panic!("the modules use each other in a cycle: {}", shown(&g, &c));
    }
}

#[test]
fn a_cycle_is_found_through_groups_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").unwrap();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(src.join("a/mod.rs"), "use crate::{b::x, text};\n").unwrap();
    std::fs::write(
        src.join("b.rs"),
        "// crate::a in a comment is no use\nfn f() { crate::c::g() }\n\
         #[cfg(test)]\nmod tests { use crate::a; }\n",
    )
    .unwrap();
    std::fs::write(src.join("c.rs"), "pub fn g() {}\n").unwrap();
    let g = graph(src);
    assert_eq!(cycle(&g), None, "{g:?}");
    std::fs::write(src.join("c.rs"), "pub fn g() { crate::a::h() }\n").unwrap();
    let g = graph(src);
    let c = cycle(&g).expect("a → b → c → a");
    assert_eq!(c.len(), 4, "{c:?}");
    assert!(
        shown(&g, &c).contains("c → a ([\"c.rs\"])"),
        "{}",
        shown(&g, &c)
    );
}
