//! man/ and completions/ are rendered from the clap definitions and committed.
//! This fails when they are stale; `TMDA_UPDATE_GENERATED=1` rewrites them.

use std::path::Path;

#[test]
fn generated_files_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("TMDA_UPDATE_GENERATED").is_some();
    let mut stale = vec![];
    for g in tmda::cli::doc::render_all() {
        let path = root.join(&g.path);
        let current = std::fs::read(&path).ok();
        if current.as_deref() == Some(&g.contents[..]) {
            continue;
        }
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &g.contents).unwrap();
        } else {
            stale.push(g.path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}\nregenerate with: TMDA_UPDATE_GENERATED=1 cargo test --test integration generated"
    );
}

#[test]
fn bash_completion_loads_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c"])
        .arg(format!(
            "source {} && complete -p tmda",
            root.join("completions/tmda.bash").display()
        ))
        .output()
        .expect("bash is required for this test");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// See: #11. Every tmda page a man page refers to (`tmda-passwd(1)`) is in man/, in
/// that section; and no synopsis shows an option without its value (`[-f ]`).
#[test]
fn r11_man_cross_references_name_pages_that_are_there() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut bad = vec![];
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap().replace("\\-", "-");
        let mut refs = 0;
        for (at, _) in text.match_indices("tmda") {
            let rest = &text[at..];
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(name_len);
            let Some(section) = after.strip_prefix('(').and_then(|a| a.split(')').next()) else {
                continue;
            };
            if section.len() != 1 || !section.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            refs += 1;
            let file = format!("{name}.{section}");
            if !pages.contains(&file) {
                bad.push(format!("{page}: {name}({section}) but there is no man/{file}"));
            }
        }
        if page != "tmda-filter.5" && page != "tmda-config.5" {
            assert!(refs > 0, "{page} refers to no other page");
        }
        if text.contains(" \\fR]") {
            bad.push(format!("{page}: an option without its value in the synopsis"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
