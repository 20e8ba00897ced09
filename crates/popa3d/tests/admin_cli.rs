//! `popa3d-admin` as a user runs it: exit codes, output formats, error messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_popa3d-admin");

const BOB: &[u8] = b"From alice@example.org Mon Jan  1 00:00:00 2024\nReceived: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <one@example.org>\nSubject: first\n\nHello bob.\n.leading dot line\n..two dots\n>From escaped\nlast line\n\nFrom carol@example.org Tue Jan  2 00:00:00 2024\nDate: Tue, 2 Jan 2024 00:00:00 +0000\nSubject: second\n\nbody2 line1\nbody2 line2\nbody2 line3\n\n";

fn tmpfile(name: &str, data: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("admin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn scan_prints_number_size_uidl() {
    let p = tmpfile("bob", BOB);
    let (code, out, _) = run(&["scan", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(out, "1 211 fed9c3594b4c341c\n2 96 a9ba9d20b213cf39\n");
}

#[test]
fn scan_json_is_valid_json_with_both_views() {
    // Two messages without any hashed header: popa3d gives both d98c1dd404b2008f.
    let p = tmpfile("dup", b"From a\nSubject: 1\n\nx\n\nFrom b\nSubject: 2\n\ny");
    let (code, out, _) = run(&["scan", "--json", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    let check = r#"
import json, sys
d = json.load(sys.stdin)
m = d["messages"]
assert d["count"] == 2 and len(m) == 2, d
assert m[0]["uidl"] == m[0]["popa3d_uidl"] == m[1]["popa3d_uidl"] == "d98c1dd404b2008f", m
assert m[1]["uidl"].startswith("d98c1dd404b2008f-") and len(m[1]["uidl"]) == 33, m
assert m[1]["size"] == m[1]["popa3d_size"] + 1, m   # last line without LF
assert d["total_size"] == m[0]["size"] + m[1]["size"]
print("ok")
"#;
    let mut py = Command::new("python3")
        .args(["-c", check])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(out.as_bytes()).unwrap();
    let o = py.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok", "{out}");
    let (_, popa3d_view, _) = run(&["scan", "--popa3d", p.to_str().unwrap()]);
    assert_eq!(
        popa3d_view,
        "1 17 d98c1dd404b2008f\n2 16 d98c1dd404b2008f\n"
    );
}

#[test]
fn refused_mailbox_and_usage_errors() {
    let p = tmpfile("bad", b"\nFrom x\nA: b\n");
    let (code, out, err) = run(&["scan", p.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("Failed or refused to load")
            && err.contains("does not start with a \"From \" line"),
        "{err}"
    );
    assert_eq!(run(&["scan"]).0, 2);
    assert_eq!(run(&["scan", "--bogus", "x"]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("popa3d-admin (popa3d-rs) "));
    let (code, out, _) = run(&["--help"]);
    assert!(code == 0 && out.contains("scan") && out.contains("serve"));
}

#[test]
fn missing_mailbox_scans_empty() {
    let (code, out, _) = run(&["scan", "/nonexistent/popa3d-rs/mbox"]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn serve_speaks_pop3_on_stdio_and_commits_on_quit() {
    let p = tmpfile("serve", BOB);
    if pop3_sys::privileges::euid() == 0 {
        // Run as root, serve becomes the owner; give the mailbox an unprivileged one.
        let st = Command::new("chown")
            .args(["nobody", p.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
        let dir = p.parent().unwrap();
        Command::new("chmod")
            .args(["777", dir.to_str().unwrap()])
            .status()
            .unwrap();
    }
    let mut c = Command::new(BIN)
        .args(["serve", p.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"STAT\r\nDELE 1\r\nQUIT\r\n")
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.stdout, b"+OK\r\n+OK 2 307\r\n+OK\r\n+OK\r\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("2 messages (307 bytes) loaded")
            && err.contains("1 (211) deleted, 1 (96) left"),
        "{err}"
    );
    let after = std::fs::read(&p).unwrap();
    assert!(after.starts_with(b"From carol@example.org"));
}
