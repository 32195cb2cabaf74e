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
