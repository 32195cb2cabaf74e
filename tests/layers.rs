//! The import graph points down: every module uses only modules on floors below its own,
//! as `src/lib.rs`'s opening comment lists them, and no two files of one module use
//! each other in a circle. Read from the sources' `crate::` and `super::` paths (test
//! modules excluded: a test may use anything).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Floors from lib.rs: lines `//! N. `a`, `b` — what they are`.
fn floors() -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut floors = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((n, names)) = rest.split_once(". ") else {
            continue;
        };
        let Ok(n) = n.trim().parse::<u32>() else { continue };
        let names = names.split(" — ").next().unwrap();
        for name in names.split(',') {
            let name = name.trim().trim_matches('`');
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "lib.rs floor {n}: {name:?} is not a module name"
            );
            assert!(floors.insert(name.to_string(), n).is_none(), "{name} is on two floors");
        }
    }
    assert!(floors.len() > 20, "no floors found in src/lib.rs's opening comment");
    floors
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code that is not a test module, without whole-line comments.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t == "#[cfg(test)]" && lines.peek().is_some_and(|l| l.trim_start().starts_with("mod tests")) {
            break;
        }
        if !t.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Expand `a::{b, c::{d, e}}` (the text after a `crate::` or `super::`) into paths.
fn expand(text: &str) -> Vec<Vec<String>> {
    fn ident(s: &str) -> (&str, &str) {
        let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
        (&s[..end], &s[end..])
    }
    fn group(s: &str) -> (Vec<Vec<String>>, &str) {
        // s starts after '{'
        let mut out = vec![];
        let mut rest = s;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                return (out, r);
            }
            let (paths, r) = path(rest);
            out.extend(paths);
            rest = r.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
            if rest.is_empty() {
                return (out, rest);
            }
        }
    }
    fn path(s: &str) -> (Vec<Vec<String>>, &str) {
        let s = s.trim_start();
        if let Some(r) = s.strip_prefix('{') {
            return group(r);
        }
        let (id, rest) = ident(s);
        if id.is_empty() {
            // `*`, `self` handled as leaves; skip one character to make progress.
            let skip = s.chars().next().map_or(0, char::len_utf8);
            return (vec![], &s[skip..]);
        }
        if let Some(r) = rest.strip_prefix("::") {
            let (subs, r) = path(r);
            let subs = if subs.is_empty() { vec![vec![]] } else { subs };
            let paths = subs
                .into_iter()
                .map(|mut p| {
                    p.insert(0, id.to_string());
                    p
                })
                .collect();
            return (paths, r);
        }
        (vec![vec![id.to_string()]], rest)
    }
    path(text).0
}

/// The module file a path inside `src/` names (as far as files go).
fn resolve(segments: &[String]) -> Option<PathBuf> {
    let mut best = None;
    let mut dir = src();
    for s in segments {
        let file = dir.join(format!("{s}.rs"));
        let sub = dir.join(s).join("mod.rs");
        if sub.exists() {
            best = Some(sub);
            dir = dir.join(s);
        } else if file.exists() {
            best = Some(file);
            break;
        } else {
            break;
        }
    }
    best
}

/// The module path of a file: src/transport/relay.rs → [transport, relay].
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

/// Every (target file, path) a file's code uses through `crate::` or `super::`.
fn uses(file: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let text = code(&std::fs::read_to_string(file).unwrap());
    let here = module_of(file);
    let mut out = vec![];
    for (at, _) in text.match_indices("crate::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        for p in expand(&text[at + "crate::".len()..]) {
            if let Some(f) = resolve(&p) {
                out.push((f, p));
            }
        }
    }
    for (at, _) in text.match_indices("super::") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut rest = &text[at..];
        let mut base = here.clone();
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        for p in expand(rest) {
            let full: Vec<String> = base.iter().cloned().chain(p).collect();
            if let Some(f) = resolve(&full) {
                out.push((f, full));
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let floors = floors();
    let mut files = vec![];
    rust_files(&src(), &mut files);
    files.sort();
    let mut wrong = vec![];
    let mut unplaced = BTreeSet::new();
    for f in &files {
        let m = module_of(f);
        let Some(top) = m.first() else { continue }; // lib.rs
        if top == "main" || top == "lib" {
            continue;
        }
        let Some(&floor) = floors.get(top) else {
            unplaced.insert(top.clone());
            continue;
        };
        for (_, p) in uses(f) {
            let target = &p[0];
            if target == top {
                continue;
            }
            match floors.get(target) {
                Some(&t) if t < floor => {}
                Some(&t) => wrong.push(format!(
                    "{} (floor {floor}) uses {} (floor {t})",
                    f.strip_prefix(src()).unwrap().display(),
                    p.join("::")
                )),
                None => {
                    unplaced.insert(target.clone());
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules missing from src/lib.rs's list of floors: {unplaced:?}"
    );
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports that do not point down:\n{}",
        wrong.join("\n")
    );
}

/// Within a module, the files use each other without a circle (a parent's `mod.rs`
/// declaring and re-exporting its children does not count as using them).
#[test]
fn no_circles_between_the_files_of_a_module() {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for f in &files {
        let parent_dir = f.parent().unwrap();
        for (target, _) in uses(f) {
            let child_of_f = f.ends_with("mod.rs") && target.starts_with(parent_dir) && &target != f;
            if &target != f && !child_of_f {
                graph.entry(f.clone()).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, u8>,
        stack: &mut Vec<PathBuf>,
        found: &mut Vec<String>,
    ) {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                0 => visit(m, graph, state, stack, found),
                1 => {
                    let at = stack.iter().position(|x| x == m).unwrap();
                    let circle: Vec<String> = stack[at..]
                        .iter()
                        .chain([m])
                        .map(|p| p.strip_prefix(src()).unwrap().display().to_string())
                        .collect();
                    found.push(circle.join(" -> "));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
    }
    let mut state = BTreeMap::new();
    let mut found = vec![];
    for n in graph.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            visit(n, &graph, &mut state, &mut vec![], &mut found);
        }
    }
    assert!(
        found.is_empty(),
        "files that use each other in a circle:\n{}",
        found.join("\n")
    );
}

/// The checker itself: paths in groups are expanded, and an upward import is caught.
#[test]
fn the_checker_reads_paths_as_rustc_does() {
    let p = expand("{address::{Kind, tag}, config, transport::relay::send};");
    assert_eq!(
        p,
        vec![
            vec!["address", "Kind"],
            vec!["address", "tag"],
            vec!["config"],
            vec!["transport", "relay", "send"]
        ]
    );
    assert_eq!(expand("exit::quote(&x)"), vec![vec!["exit", "quote"]]);
    assert_eq!(
        code("use a;\n// crate::cli in a comment\nfn f() {}\n#[cfg(test)]\nmod tests {\n use crate::cli;\n}\n"),
        "use a;\nfn f() {}\n"
    );
    assert_eq!(
        resolve(&["transport".into(), "relay".into(), "send".into()]),
        Some(src().join("transport/relay.rs"))
    );
}
