//! Runs every fuzz target over its checked-in corpus (`fuzz/corpus/<target>/`).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

fn run(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{target}: {} failed", path.display());
        n += 1;
    }
    assert!(
        n >= 5,
        "{target}: only {n} corpus files in {}",
        dir.display()
    );
}

#[test]
fn command_line_corpus() {
    run("command_line", popa3d_fuzz::command_line);
}

#[test]
fn session_chunks_corpus() {
    run("session_chunks", popa3d_fuzz::session_chunks);
}

#[test]
fn mbox_corpus() {
    run("mbox", popa3d_fuzz::mbox);
}

#[test]
fn privsep_corpus() {
    run("privsep", popa3d_fuzz::privsep);
}

#[test]
fn proxy_corpus() {
    run("proxy", popa3d_fuzz::proxy);
}
