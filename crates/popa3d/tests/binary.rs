//! The `popa3d` binary's start-up, run as a user would run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_popa3d");

#[test]
fn version_and_usage() {
    let o = Command::new(BIN).arg("-V").output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!(
            "popa3d version 1.0.3 (popa3d-rs {})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let o = Command::new(BIN).arg("-x").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "nothing on stdout: in inetd mode it is the client"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("Usage: popa3d [-D [-F]] [-V] [-c FILE]"));
    let o = Command::new(BIN).arg("-F").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("-F needs -D"));
}

/// Without root, the server refuses to start: exit 1, a CRIT line in syslog, and not a
/// byte to the client (stdin/stdout are the client in inetd mode).
#[test]
#[ignore = "needs root (to start the server as another user): run scripts/test.sh"]
fn refuses_to_run_without_root() {
    assert_eq!(
        pop3_sys::privileges::euid(),
        0,
        "this test must run as root"
    );
    let dir = std::env::temp_dir().join(format!("popa3d-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let sock = dir.join("log");
    let log = UnixDatagram::bind(&sock).unwrap();
    log.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let conf = dir.join("popa3d.toml");
    std::fs::write(&conf, format!("syslog_socket = \"{}\"\n", sock.display())).unwrap();
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "-c",
        ])
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "stdout/stderr are not a terminal here"
    );
    let mut buf = [0u8; 2048];
    let n = log.recv(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]);
    assert!(line.starts_with("<26>"), "{line}");
    assert!(
        line.contains("popa3d[") && line.contains("must be started as root"),
        "{line}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A configuration error is reported with file and line, and nothing reaches the client.
#[test]
fn bad_configuration_fails_closed() {
    let dir = std::env::temp_dir().join(format!("popa3d-badconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("bad.toml");
    std::fs::write(&conf, "timeout = \"soon\"\n").unwrap();
    let o = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
