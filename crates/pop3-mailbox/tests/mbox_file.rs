//! The mbox maildrop on real files: loading, change detection and UPDATE, including
//! another process appending mail with fcntl locks while we work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use pop3_mailbox::{DropError, Maildrop, Mbox};
use pop3_proto::Listing;

struct Tmp(PathBuf);
impl Tmp {
    fn new(name: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("mbox-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, data).unwrap();
        p
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn msg(n: u32) -> Vec<u8> {
    format!(
        "From sender{n}@example.org Mon Jan  1 00:00:00 2024\nReceived: by mx id {n}\nMessage-ID: <{n}@x>\nSubject: {n}\n\nbody of {n}\n.dot\n\n"
    )
    .into_bytes()
}

fn mbox(ns: &[u32]) -> Vec<u8> {
    ns.iter().flat_map(|&n| msg(n)).collect()
}

fn read_all(drop: &mut Mbox, i: u32) -> Vec<u8> {
    let mut out = vec![];
    let mut buf = [0u8; 7];
    loop {
        let n = drop.read(i, out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn missing_empty_and_refused() {
    let t = Tmp::new("refused");
    let m = Mbox::open(&t.0.join("nobody")).unwrap();
    assert_eq!(m.count(), 0);
    let m = Mbox::open(&t.file("empty", b"")).unwrap();
    assert_eq!(m.count(), 0);
    let not = t.file("notmbox", b"\nFrom x\nA: b\n");
    assert!(matches!(Mbox::open(&not), Err(DropError::Refused(why)) if why.contains("From")));
    std::os::unix::fs::symlink(t.file("target", &mbox(&[1])), t.0.join("link")).unwrap();
    assert!(matches!(
        Mbox::open(&t.0.join("link")),
        Err(DropError::Refused(_))
    ));
    assert!(matches!(Mbox::open(&t.0), Err(DropError::Refused(_))));
}

#[test]
fn reads_message_data_without_from_line_and_separator() {
    let t = Tmp::new("read");
    let p = t.file("bob", &mbox(&[1, 2]));
    let mut m = Mbox::open(&p).unwrap();
    assert_eq!(m.count(), 2);
    let one = read_all(&mut m, 0);
    assert_eq!(
        one,
        b"Received: by mx id 1\nMessage-ID: <1@x>\nSubject: 1\n\nbody of 1\n.dot\n"
    );
    let lf = one.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(m.size(0), one.len() as u64 + lf);
    assert_ne!(m.uidl(0), m.uidl(1));
}

#[test]
fn appended_mail_is_invisible_and_accepted() {
    let t = Tmp::new("append");
    let p = t.file("bob", &mbox(&[1, 2]));
    let mut m = Mbox::open(&p).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(&msg(3))
        .unwrap();
    m.check().unwrap();
    assert_eq!(m.count(), 2);
    assert_eq!(read_all(&mut m, 1).len() as u64, m.data_len(1));
}

#[test]
fn other_changes_make_the_maildrop_stale() {
    let t = Tmp::new("stale");
    // Same size, a different first Received: line: only the UIDL digest tells. (A change
    // outside the hashed headers that keeps every size is invisible, as in popa3d.)
    let p = t.file("a", &mbox(&[1, 2]));
    let mut m = Mbox::open(&p).unwrap();
    let changed = String::from_utf8(mbox(&[1, 2]))
        .unwrap()
        .replace("mx id 1\n", "mx id 9\n");
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .write_all(changed.as_bytes())
        .unwrap();
    assert!(matches!(m.check(), Err(DropError::Stale)));
    // Once stale, always stale, and UPDATE leaves the other program's file alone.
    assert!(matches!(m.update(&[true, false]), Err(DropError::Stale)));
    assert_eq!(fs::read(&p).unwrap(), changed.as_bytes());

    // Truncation.
    let p = t.file("b", &mbox(&[1, 2]));
    let mut m = Mbox::open(&p).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(10)
        .unwrap();
    assert!(matches!(m.check(), Err(DropError::Stale)));

    // A new file renamed over the mailbox: our descriptor still sees the old, unchanged
    // inode, which popa3d would not notice. Messages keep coming from the loaded inode
    // (what the client was promised), but UPDATE must not compact a file nobody will see
    // again: it reports the other MUA and leaves the new file alone.
    let p = t.file("c", &mbox(&[1, 2]));
    let mut m = Mbox::open(&p).unwrap();
    let new = t.file("c.new", &mbox(&[2]));
    fs::rename(&new, &p).unwrap();
    m.check().unwrap();
    assert!(read_all(&mut m, 0).starts_with(b"Received: by mx id 1\n"));
    assert!(matches!(m.update(&[true, false]), Err(DropError::Stale)));
    assert_eq!(fs::read(&p).unwrap(), mbox(&[2]));
}

#[test]
fn update_removes_exactly_the_deleted_messages() {
    let t = Tmp::new("update");
    let all = [1, 2, 3, 4];
    let cases: &[(&[bool], &[u32])] = &[
        (&[true, false, false, false], &[2, 3, 4]),
        (&[false, true, false, true], &[1, 3]),
        (&[false, false, false, true], &[1, 2, 3]),
        (&[true, true, true, true], &[]),
        (&[false, false, false, false], &[1, 2, 3, 4]),
    ];
    for (i, (deleted, left)) in cases.iter().enumerate() {
        let p = t.file(&format!("m{i}"), &mbox(&all));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o620)).unwrap();
        let before = fs::metadata(&p).unwrap();
        let mut m = Mbox::open(&p).unwrap();
        m.update(deleted).unwrap();
        assert_eq!(fs::read(&p).unwrap(), mbox(left), "case {i}");
        let after = fs::metadata(&p).unwrap();
        assert_eq!(
            (after.ino(), after.mode(), after.uid(), after.gid()),
            (before.ino(), before.mode(), before.uid(), before.gid())
        );
    }
}

#[test]
fn update_keeps_mail_appended_during_the_session() {
    let t = Tmp::new("update-append");
    let p = t.file("bob", &mbox(&[1, 2, 3]));
    let mut m = Mbox::open(&p).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(&msg(4))
        .unwrap();
    m.update(&[false, true, false]).unwrap();
    assert_eq!(fs::read(&p).unwrap(), mbox(&[1, 3, 4]));
}

/// Another process delivers mail the way procmail or postfix's local do it (fcntl write
/// lock, append, unlock) as fast as it can while we load, re-check and rewrite. Every
/// message it wrote must be there afterwards, whole and in order, after the messages we
/// kept.
#[test]
fn update_with_a_concurrent_locking_appender() {
    let t = Tmp::new("concurrent");
    let p = t.file("bob", &mbox(&(1..=50).collect::<Vec<_>>()));
    let appender = r#"
import fcntl, sys
path, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for n in range(first, last + 1):
    with open(path, "ab") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        f.write(("From sender%d@example.org Mon Jan  1 00:00:00 2024\nReceived: by mx id %d\nMessage-ID: <%d@x>\nSubject: %d\n\nbody of %d\n.dot\n\n" % (n, n, n, n, n)).encode())
        f.flush()
        fcntl.lockf(f, fcntl.LOCK_UN)
    if n == first:
        print("started", flush=True)
"#;
    let mut child = Command::new("python3")
        .args(["-c", appender])
        .arg(&p)
        .args(["1001", "1400"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let mut m = Mbox::open(&p).unwrap();
    let loaded = m.count();
    assert!(loaded >= 51, "loaded {loaded}");
    m.check().unwrap();
    let deleted: Vec<bool> = (0..loaded).map(|i| i % 2 == 0).collect();
    m.update(&deleted).unwrap();
    assert!(child.wait().unwrap().success());

    let after = Mbox::open(&p).unwrap();
    let all: Vec<u32> = (1..=50).chain(1001..=1400).collect();
    let kept: Vec<u32> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !(*i < loaded as usize && i % 2 == 0))
        .map(|(_, &n)| n)
        .collect();
    assert_eq!(fs::read(&p).unwrap(), mbox(&kept));
    assert_eq!(after.count() as usize, kept.len());
}

/// A lock held by another program: `open_within` gives up after its limit with an error
/// of kind WouldBlock (the server's `[IN-USE]`), and `open` waits until the lock is gone,
/// as popa3d does.
#[test]
fn lock_timeout_gives_up_and_plain_open_waits() {
    let t = Tmp::new("locked");
    let p = t.file("bob", &mbox(&[1, 2]));
    let holder = r#"
import fcntl, sys, time
with open(sys.argv[1], "r+b") as f:
    fcntl.lockf(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(1.5)
"#;
    let mut child = Command::new("python3")
        .args(["-c", holder])
        .arg(&p)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let start = std::time::Instant::now();
    match Mbox::open_within(&p, Some(std::time::Duration::from_millis(300))) {
        Err(pop3_mailbox::DropError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}")
        }
        other => panic!(
            "expected a lock timeout, got {:?}",
            other.map(|m| m.count())
        ),
    }
    let gave_up = start.elapsed();
    assert!(
        gave_up >= std::time::Duration::from_millis(300),
        "{gave_up:?}"
    );
    assert!(
        gave_up < std::time::Duration::from_millis(1200),
        "{gave_up:?}"
    );
    // popa3d's behaviour: wait for the other program.
    let m = Mbox::open(&p).unwrap();
    assert_eq!(m.count(), 2);
    assert!(start.elapsed() >= std::time::Duration::from_millis(1400));
    assert!(child.wait().unwrap().success());
    // Unlocked: the limit changes nothing.
    let m = Mbox::open_within(&p, Some(std::time::Duration::from_millis(300))).unwrap();
    assert_eq!(m.count(), 2);
}
