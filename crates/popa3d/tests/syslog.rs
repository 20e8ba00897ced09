//! The syslog client against a socket of our own: exact datagrams for each priority,
//! the local-time timestamp, what happens without a logger, and `escape()`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use popa3d::syslog::{escape, Level, Syslog, DEFAULT_SOCKET, IDENT};

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "popa3d-syslog-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fake `/dev/log`.
fn listener(dir: &Path) -> (UnixDatagram, PathBuf) {
    let path = dir.join("log");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (sock, path)
}

fn recv(sock: &UnixDatagram) -> Vec<u8> {
    let mut buf = vec![0; 65536];
    let n = sock.recv(&mut buf).expect("a datagram");
    buf.truncate(n);
    buf
}

fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

/// Checks the `Mmm dd hh:mm:ss` shape and replaces it with `TIMESTAMP`.
fn mask_timestamp(line: &[u8]) -> String {
    let text = String::from_utf8(line.to_vec()).unwrap();
    let close = text.find('>').unwrap();
    let ts = &text[close + 1..close + 16];
    let b = ts.as_bytes();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    assert!(months.contains(&&ts[..3]), "month in {ts:?}");
    assert_eq!(b[3], b' ');
    assert!(
        b[4] == b' ' || (b'1'..=b'3').contains(&b[4]),
        "day in {ts:?}"
    );
    assert!(b[5].is_ascii_digit());
    assert_eq!(&ts[6..7], " ");
    for i in [7, 8, 10, 11, 13, 14] {
        assert!(b[i].is_ascii_digit(), "time in {ts:?}");
    }
    assert_eq!((b[9], b[12]), (b':', b':'));
    format!("{}TIMESTAMP{}", &text[..close + 1], &text[close + 16..])
}

#[test]
fn each_priority_as_glibc_sends_it() {
    let dir = temp_dir();
    let (sock, path) = listener(&dir);
    let log = Syslog::open(&path);
    assert!(log.connected());
    assert!(log.raw_fd().is_some());
    let pid = std::process::id();

    log.info("Authentication passed for bob");
    log.notice("Authentication failed for UNKNOWN USER");
    log.crit("Failed to update /var/mail/bob");
    log.log(Level::Info, "1 (211) deleted, 1 (96) left");

    let expect = [
        format!("<30>TIMESTAMP popa3d[{pid}]: Authentication passed for bob"),
        format!("<29>TIMESTAMP popa3d[{pid}]: Authentication failed for UNKNOWN USER"),
        format!("<26>TIMESTAMP popa3d[{pid}]: Failed to update /var/mail/bob"),
        format!("<30>TIMESTAMP popa3d[{pid}]: 1 (211) deleted, 1 (96) left"),
    ];
    for want in expect {
        assert_eq!(mask_timestamp(&recv(&sock)), want);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_timestamp_is_now_in_the_loggers_zone() {
    let dir = temp_dir();
    let (sock, path) = listener(&dir);
    let log = Syslog::open_with_timezone(&path, "UTC0");
    let before = SystemTime::now();
    log.info("x");
    let after = SystemTime::now();
    let got = recv(&sock);
    let pid = std::process::id();
    let candidates = [
        log.encode(Level::Info, "x", before, pid),
        log.encode(Level::Info, "x", after, pid),
    ];
    assert!(
        candidates.contains(&got),
        "{:?} not in {candidates:?}",
        String::from_utf8_lossy(&got)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_connected_logger_needs_no_path_afterwards() {
    // What chroot does to /dev/log: the name no longer leads to the socket. The
    // connected socket still reaches it.
    let dir = temp_dir();
    let (sock, path) = listener(&dir);
    let log = Syslog::open(&path);
    std::fs::rename(&path, dir.join("moved")).unwrap();
    log.notice("still here");
    let line = mask_timestamp(&recv(&sock));
    assert!(line.ends_with("]: still here"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_logger_logging_does_nothing() {
    let dir = temp_dir();
    let log = Syslog::open(&dir.join("no-such-socket"));
    assert!(!log.connected());
    assert!(log.raw_fd().is_none());
    log.crit("nobody hears this");

    // A path that is not a socket.
    std::fs::write(dir.join("file"), b"").unwrap();
    assert!(!Syslog::open(&dir.join("file")).connected());

    // The logger goes away after we connected (a syslogd restart).
    let (sock, path) = listener(&dir);
    let log = Syslog::open(&path);
    assert!(log.connected());
    drop(sock);
    log.info("lost, quietly");
    log.info("lost again");

    let log = Syslog::disabled();
    assert!(!log.connected());
    log.info("nothing");
    assert_eq!(DEFAULT_SOCKET, "/dev/log");
    assert_eq!(IDENT, "popa3d");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn control_characters_in_a_message_cannot_start_a_new_line() {
    let log = Syslog::disabled();
    let line = log.encode(
        Level::Notice,
        "a\nb\r\0c\x1b[31m\x7fd\\e é",
        at(1_704_459_787),
        42,
    );
    assert_eq!(
        String::from_utf8(line).unwrap(),
        "<29>Jan  5 13:03:07 popa3d[42]: a\\x0ab\\x0d\\x00c\\x1b[31m\\x7fd\\e é"
    );
}

#[test]
fn an_overlong_message_is_cut() {
    let log = Syslog::disabled();
    let msg = "m".repeat(5000);
    let line = String::from_utf8(log.encode(Level::Info, &msg, at(0), 1)).unwrap();
    let prefix = "<30>Jan  1 00:00:00 popa3d[1]: ";
    assert!(line.starts_with(prefix));
    assert_eq!(line.len(), prefix.len() + 2048 + 3);
    assert!(line.ends_with("m..."));

    // A cut never splits a character.
    let msg = format!("m{}", "é".repeat(3000));
    let line = String::from_utf8(log.encode(Level::Info, &msg, at(0), 1)).unwrap();
    assert_eq!(line.len(), prefix.len() + 2047 + 3);
    assert!(line.ends_with("é..."));
}

fn stamp(tz: &str, unix: u64) -> String {
    let log = Syslog::open_with_timezone(Path::new("/nonexistent/log"), tz);
    let line = String::from_utf8(log.encode(Level::Info, "", at(unix), 7)).unwrap();
    line["<30>".len().."<30>".len() + 15].to_owned()
}

#[test]
fn local_time_from_posix_rules() {
    let cet = "CET-1CEST,M3.5.0,M10.5.0/3";
    // Values from `TZ=... date -d @N '+%h %e %T'`.
    let cases = [
        (1_704_459_787, "Jan  5 14:03:07"),
        (1_711_846_799, "Mar 31 01:59:59"), // last second of CET
        (1_711_846_800, "Mar 31 03:00:00"), // first of CEST
        (1_729_990_799, "Oct 27 02:59:59"),
        (1_729_990_800, "Oct 27 02:00:00"),
        (2_224_936_800, "Jul  3 16:00:00"), // 2040
    ];
    for (unix, want) in cases {
        assert_eq!(stamp(cet, unix), want, "{cet} at {unix}");
    }
    assert_eq!(stamp("UTC0", 1_704_459_787), "Jan  5 13:03:07");
    assert_eq!(stamp("IST-5:30", 1_704_459_787), "Jan  5 18:33:07");
    // glibc: an empty TZ is UTC, and so is one it cannot load.
    assert_eq!(stamp("", 1_704_459_787), "Jan  5 13:03:07");
    assert_eq!(stamp("No/Such_Zone", 1_704_459_787), "Jan  5 13:03:07");
    assert_eq!(stamp("/dev/null", 1_704_459_787), "Jan  5 13:03:07");
}

#[test]
fn local_time_from_zone_files() {
    if !Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        eprintln!("skipped: no tzdata");
        return;
    }
    let cases = [
        ("Europe/Berlin", 1_711_846_799, "Mar 31 01:59:59"),
        (":Europe/Berlin", 1_711_846_800, "Mar 31 03:00:00"),
        ("Europe/Berlin", 1_729_990_800, "Oct 27 02:00:00"),
        ("Europe/Berlin", 2_224_936_800, "Jul  3 16:00:00"),
        ("America/New_York", 1_704_459_787, "Jan  5 08:03:07"),
        ("America/New_York", 2_224_936_800, "Jul  3 10:00:00"),
        (
            "/usr/share/zoneinfo/Asia/Kolkata",
            1_704_459_787,
            "Jan  5 18:33:07",
        ),
    ];
    for (tz, unix, want) in cases {
        assert_eq!(stamp(tz, unix), want, "{tz} at {unix}");
    }
}

#[test]
fn escape_table() {
    let cases: &[(&[u8], usize, &str)] = &[
        (b"bob", 64, "bob"),
        (b"", 64, ""),
        (b"john.doe@example.org", 64, "john.doe@example.org"),
        (b"a b~!", 64, "a b~!"),
        (b"\0", 64, "\\x00"),
        (b"\r", 64, "\\x0d"),
        (b"\n", 64, "\\x0a"),
        (
            b"x\r\nAuthentication passed for root",
            64,
            "x\\x0d\\x0aAuthentication passed for root",
        ),
        (b"\x1b[2J", 64, "\\x1b[2J"),
        (b"\t", 64, "\\x09"),
        (b"\x7f", 64, "\\x7f"),
        (b"\xff", 64, "\\xff"),
        (b"\x80", 64, "\\x80"),
        ("é".as_bytes(), 64, "\\xc3\\xa9"),
        (b"\\", 64, "\\\\"),
        (b"\\x41", 64, "\\\\x41"),
        (b"abcdef", 6, "abcdef"),
        (b"abcdefg", 6, "abcdef..."),
        (b"\n\n\n", 2, "\\x0a\\x0a..."),
        (b"abc", 0, "..."),
        (b"", 0, ""),
    ];
    for &(input, max, want) in cases {
        assert_eq!(escape(input, max), want, "escape({input:?}, {max})");
    }
}

#[test]
fn escape_output_is_printable_and_bounded_for_every_byte() {
    for b in 0..=255u8 {
        let out = escape(&[b], 64);
        assert!(
            out.bytes().all(|c| (0x20..0x7f).contains(&c)),
            "{b:#x} -> {out:?}"
        );
        assert!(out.len() <= 4);
    }
    let long = vec![0u8; 100_000];
    let out = escape(&long, 64);
    assert_eq!(out.len(), 64 * 4 + 3);
}

/// A logger restarted under the daemon (rsyslog recreates /dev/log): with reconnecting
/// allowed the next line reaches the new socket, through the same descriptor; without it
/// (every session: a confined process must not call connect) the line is lost.
#[test]
fn reconnects_to_a_restarted_logger_only_when_allowed() {
    let dir = temp_dir();
    let (old, path) = listener(&dir);
    let log = Syslog::open(&path);
    let fd = log.raw_fd();
    log.info("before");
    assert!(String::from_utf8_lossy(&recv(&old)).ends_with("before"));
    // The logger restarts: its socket file is replaced.
    drop(old);
    std::fs::remove_file(&path).unwrap();
    let (new, _) = listener(&dir);
    new.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    log.info("lost: reconnecting not allowed");
    let mut buf = [0u8; 256];
    assert!(new.recv(&mut buf).is_err(), "nothing without reconnect");
    log.set_reconnect(true);
    log.info("after");
    new.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(String::from_utf8_lossy(&recv(&new)).ends_with("after"));
    assert_eq!(log.raw_fd(), fd, "the same descriptor, reconnected");
    log.info("again");
    assert!(String::from_utf8_lossy(&recv(&new)).ends_with("again"));
    let _ = std::fs::remove_dir_all(&dir);
}
