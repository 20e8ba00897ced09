//! The standalone daemon as it is deployed: started by systemd socket activation
//! (`Accept=no`: `popa3d -D` with `LISTEN_FDS` and `NOTIFY_SOCKET`; `Accept=yes`: inetd
//! mode, one process per connection) and behind the PROXY protocol, with headers built
//! here by the specification and with HAProxy as the proxy.
//!
//! Each test runs one scenario of tests/sysenv/activation_scenarios.py inside
//! `scripts/sysenv` (private mount, network and PID namespaces with real accounts,
//! /var/mail and syslog; loopback only). `systemd-socket-activate` (Debian's systemd
//! package) stands in for systemd, Debian's `haproxy` is the proxy. The scenario starts
//! every process itself, stops each by its pid, and records what it saw in `$OUT/facts`
//! (one `key=value` per line, bytes escaped); the assertions are here. A failed test
//! keeps its scenario's files (`INTEROP_KEEP=1` keeps all).
//!
//! Needs root and the packages that scripts/install-test-deps.sh installs; a plain
//! `cargo test` lists these as ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sysenv;
use std::collections::BTreeSet;
use std::path::Path;

use sysenv::*;

/// bob's mailbox in every scenario (tests/sysenv/interop.mbox).
const MBOX: &str = "interop.mbox";

// The facts of activation_scenarios.py.
impl Run {
    fn seconds(&self, key: &str) -> f64 {
        self.fact(key).parse().unwrap()
    }

    fn assert_seconds(&self, key: &str, min: f64, max: f64) {
        let s = self.seconds(key);
        assert!(
            (min..max).contains(&s),
            "`{key}` took {s} s, expected {min} to {max} s\n{}",
            self.o.describe()
        );
    }

    /// The connection `key` was closed by the server without a byte (a FIN, or a
    /// reset when the client's bytes were still unread), within `max` seconds.
    fn assert_closed_silently(&self, key: &str, min: f64, max: f64) {
        let got = self.fact(key);
        let mut parts = got.split(' ');
        let (bytes, end, took) = (parts.next(), parts.next(), parts.next());
        assert!(
            bytes == Some("0") && matches!(end, Some("eof" | "reset")),
            "`{key}`: expected the server to close without sending anything, got \
             `{got}` (bytes, how it ended, seconds; data: {:?})\n{}",
            self.facts.get(&format!("{key}.data")),
            self.o.describe()
        );
        let took: f64 = took.unwrap().parse().unwrap();
        assert!(
            (min..max).contains(&took),
            "`{key}` was closed after {took} s, expected {min} to {max} s\n{}",
            self.o.describe()
        );
    }

    /// Session `key` logged in as bob, saw the whole mailbox and got message 1 byte
    /// for byte.
    fn assert_fetched(&self, key: &str) {
        assert!(
            !self.facts.contains_key(&format!("{key}.error")),
            "session `{key}` failed: {}\n{}",
            self.fact(&format!("{key}.error")),
            self.o.describe()
        );
        let msgs = fixture_messages(MBOX);
        let size: usize = msgs.iter().map(Message::pop_size).sum();
        self.assert_prefix(&format!("{key}.welcome"), "+OK");
        self.assert_fact(&format!("{key}.stat"), &format!("{} {size}", msgs.len()));
        let got = self.o.bytes(&format!("{key}.retr1"));
        assert!(
            got == msgs[0].data,
            "session `{key}`: RETR 1: {}",
            first_difference(&msgs[0].data, &got)
        );
        self.assert_prefix(&format!("{key}.quit"), "+OK");
    }

    /// The lines of `$OUT/name`, a daemon's own syslog.
    fn syslog_file(&self, name: &str) -> Vec<Entry> {
        parse_syslog(&self.o.text(name))
    }
}

const SOCKET_ACTIVATE: (&str, &str) = ("systemd-socket-activate", "systemd");
const HAPROXY: (&str, &str) = ("haproxy", "haproxy");

/// Runs scenario `name` of activation_scenarios.py against our `popa3d`, with `tools`
/// (program, Debian package) installed.
fn scenario(name: &str, tools: &[(&str, &str)]) -> Run {
    for &(tool, package) in tools {
        require(tool, package);
    }
    Run::scenario(
        "activation_scenarios.py",
        name,
        Path::new(env!("CARGO_BIN_EXE_popa3d")),
        MBOX,
        100,
    )
}

/// The entries whose text is exactly `text`.
fn exactly<'a>(log: &'a [Entry], text: &str) -> Vec<&'a Entry> {
    log.iter().filter(|e| e.text == text).collect()
}

/// The addresses of the `Session from` lines, in order.
fn sessions_from(log: &[Entry]) -> Vec<&str> {
    log.iter()
        .filter_map(|e| e.text.strip_prefix("Session from "))
        .collect()
}

/// Asserts exactly one `Session from <ip>` line, logged at INFO, and a login as bob by
/// the same process.
fn assert_session_logged_in(run: &Run, log: &[Entry], ip: &str) {
    let lines = exactly(log, &format!("Session from {ip}"));
    assert_eq!(
        lines.len(),
        1,
        "`Session from {ip}` logged {} times, expected once\n{}",
        lines.len(),
        run.describe()
    );
    assert_eq!(lines[0].pri, INFO);
    let pid = lines[0].pid;
    assert!(
        log.iter()
            .any(|e| e.pid == pid && e.text == "Authentication passed for bob"),
        "the session from {ip} (pid {pid}) did not log in\n{}",
        run.describe()
    );
}

// ---------------------------------------------------------------------------------
// systemd socket activation.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn accept_no_foreground_notify_reload_stop() {
    let run = scenario("accept_no", &[SOCKET_ACTIVATE]);
    let status = r"STATUS=listening on 127.0.0.1:1110";
    // Readiness once it listens, sent by the process systemd started: LISTEN_FDS kept
    // it in the foreground although it was given -D without -F.
    run.assert_fact("ready", &format!(r"READY=1\n{status}"));
    run.assert_fact("ready.from_main", "True");
    run.assert_fact("running", "True");
    // It used the socket it was given and bound nothing itself (no default :110).
    run.assert_fact("port110", "free");
    run.assert_fetched("login");
    // SIGHUP: RELOADING=1, then READY=1 again; the inherited socket still serves.
    run.assert_fact("hup.1", "RELOADING=1");
    run.assert_fact("hup.2", &format!(r"READY=1\n{status}"));
    run.assert_fact("hup.1.from_main", "True");
    run.assert_fact("hup.2.from_main", "True");
    run.assert_fetched("after_hup");
    // SIGTERM: STOPPING=1 and exit 0.
    run.assert_fact("term", "STOPPING=1");
    run.assert_fact("term.from_main", "True");
    run.assert_fact("exit", "0");

    let log = run.syslog();
    let pid: u32 = run.fact("pid").parse().unwrap();
    for (text, pri) in [
        ("listening on 127.0.0.1:1110", INFO),
        ("configuration reloaded", NOTICE),
        ("stopping: 0 sessions running", NOTICE),
    ] {
        let lines = exactly(&log, text);
        assert!(
            lines.len() == 1 && lines[0].pid == pid && lines[0].pri == pri,
            "expected `{text}` once, at priority {pri}, from the daemon (pid {pid}); got \
             {lines:?}\n{}",
            run.describe()
        );
    }
    assert_eq!(
        sessions_from(&log),
        ["127.0.0.1", "127.0.0.1"],
        "{}",
        run.describe()
    );
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn accept_no_sockets_take_their_listeners_settings() {
    let run = scenario("accept_no_settings", &[SOCKET_ACTIVATE]);
    run.assert_fact(
        "ready",
        r"READY=1\nSTATUS=listening on 127.0.0.1:1110, 127.0.0.1:1111",
    );
    // Both listeners say proxy_protocol = true: `pop3` on 1110 is matched by name (the
    // table's own address is :9), the other socket by its address. Without a header,
    // nothing is sent and the connection is closed...
    run.assert_closed_silently("plain.1110", 0.0, 1.0);
    run.assert_closed_silently("plain.1111", 0.0, 1.0);
    // ...and with one, the client it names is served.
    run.assert_fetched("proxied.1110");
    run.assert_fetched("proxied.1111");
    run.assert_fact("exit", "0");

    let log = run.syslog();
    assert_session_logged_in(&run, &log, "203.0.113.50");
    assert_session_logged_in(&run, &log, "203.0.113.51");
    assert_eq!(sessions_from(&log).len(), 2, "{}", run.describe());
    let refused = log
        .iter()
        .filter(|e| e.text.starts_with("127.0.0.1: no valid PROXY header: "))
        .count();
    assert_eq!(refused, 2, "{}", run.describe());
    // A [[listener]] that systemd did not pass is not opened by the daemon.
    run.assert_fact("port1112", "free");
    assert_eq!(
        exactly(
            &log,
            "[[listener]] 127.0.0.1:1112 was not passed by systemd: not listening there"
        )
        .len(),
        1,
        "{}",
        run.describe()
    );
    let listening: Vec<&str> = log
        .iter()
        .filter_map(|e| e.text.strip_prefix("listening on "))
        .collect();
    assert_eq!(
        listening,
        ["127.0.0.1:1110", "127.0.0.1:1111"],
        "{}",
        run.describe()
    );
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn accept_no_socket_without_listener_fails_to_start() {
    let run = scenario("accept_no_unmatched", &[SOCKET_ACTIVATE]);
    run.assert_fact("exit", "1");
    let message = "socket 127.0.0.1:1110 passed by systemd (name pop3) matches no \
                   [[listener]] by name or address";
    let stderr = run.fact("stderr");
    assert!(
        stderr.contains(&format!(r"\npopa3d: {message}\n")),
        "stderr does not say `popa3d: {message}`: {stderr}\n{}",
        run.describe()
    );
    let log = run.syslog();
    assert_eq!(log.len(), 1, "{}", run.describe());
    assert_eq!(log[0].pri, CRIT);
    assert_eq!(log[0].text, message);
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn accept_yes_runs_inetd_mode_per_connection() {
    let run = scenario("inetd", &[SOCKET_ACTIVATE]);
    run.assert_fetched("first");
    run.assert_fetched("second");
    // inetd mode logs as popa3d's does: no `Session from` (the daemon's line), and one
    // process per connection, each logging its login and its QUIT.
    let log = run.syslog();
    let msgs = fixture_messages(MBOX);
    let size: usize = msgs.iter().map(Message::pop_size).sum();
    let quit = format!("0 (0) deleted, {} ({size}) left", msgs.len());
    let pids: BTreeSet<u32> = log.iter().map(|e| e.pid).collect();
    assert_eq!(pids.len(), 2, "{}", run.describe());
    for pid in pids {
        let texts: Vec<&str> = log
            .iter()
            .filter(|e| e.pid == pid)
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(
            texts,
            [
                "Authentication passed for bob",
                &format!("{} messages ({size} bytes) loaded", msgs.len()),
                &quit,
            ],
            "the lines of process {pid}\n{}",
            run.describe()
        );
    }
}

// ---------------------------------------------------------------------------------
// The PROXY protocol, headers built by the specification.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn proxy_headers_name_the_client() {
    let run = scenario("proxy_headers", &[]);
    let log = run.syslog();
    for (key, ip) in [
        ("v1", "203.0.113.7"),
        ("v1.tcp6", "2001:db8::6"),
        ("v2.ipv4", "198.51.100.9"),
        ("v2.ipv6", "2001:db8::5"),
        // LOCAL (a health check): the proxy itself is the client.
        ("v2.local", "127.0.0.1"),
    ] {
        run.assert_fetched(key);
        assert_session_logged_in(&run, &log, ip);
    }
    // A command right behind the header, in the same segment, is the session's.
    run.assert_fact("pipelined", r"+OK\r\n+OK\r\n");
    assert_eq!(
        exactly(&log, "Session from 203.0.113.8").len(),
        1,
        "{}",
        run.describe()
    );
    assert_eq!(sessions_from(&log).len(), 6, "{}", run.describe());
    run.assert_fact("exit", "0");
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn proxy_limits_and_delays_count_the_real_client() {
    let run = scenario("proxy_limits", &[]);
    // max_per_source = 3: three sessions "from" 203.0.113.7 are served, a fourth is
    // closed without a byte, while 203.0.113.8 (through the same proxy) is served.
    for i in 1..=3 {
        run.assert_prefix(&format!("held.{i}"), "+OK");
    }
    run.assert_closed_silently("fourth", 0.0, 1.0);
    run.assert_prefix("other", "+OK");
    let log = run.syslog();
    assert_eq!(
        exactly(&log, "Session from 203.0.113.7").len(),
        3,
        "{}",
        run.describe()
    );
    assert_eq!(
        exactly(&log, "Session from 203.0.113.8").len(),
        1,
        "{}",
        run.describe()
    );
    let limit = exactly(&log, "203.0.113.7: per source limit reached");
    assert!(
        limit.len() == 1 && limit[0].pri == NOTICE,
        "{limit:?}\n{}",
        run.describe()
    );
    assert!(
        !log.iter().any(|e| e.text.starts_with("127.0.0.1: ")),
        "the proxy itself hit a limit\n{}",
        run.describe()
    );
    // Failed logins wait 1 s, then 2 s from the same client; another client behind the
    // same proxy starts again at 1 s (keyed by the proxy, it would wait 4 s).
    for key in ["fail.20.1", "fail.20.2", "fail.21.1"] {
        run.assert_fact(
            &format!("{key}.reply"),
            r"-ERR [AUTH] Authentication failed (bad password?)\r\n",
        );
    }
    run.assert_seconds("fail.20.1", 0.99, 1.9);
    run.assert_seconds("fail.20.2", 1.99, 3.0);
    run.assert_seconds("fail.21.1", 0.99, 1.9);
    run.assert_fact("exit", "0");
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn proxy_headers_cannot_spoof_the_client() {
    let run = scenario("spoofing", &[]);
    let log = run.syslog();

    // (a) A valid header from a peer that is not in proxy_trusted: closed unread.
    run.assert_closed_silently("untrusted.v1", 0.0, 1.0);
    run.assert_closed_silently("untrusted.v2", 0.0, 1.0);
    // One line per untrusted address (rate-limited per address, not for all together).
    for peer in ["127.0.0.2", "127.0.0.3"] {
        let untrusted = log
            .iter()
            .filter(|e| {
                e.text
                    .starts_with(&format!("{peer}: not a trusted proxy for 127.0.0.1:1110"))
            })
            .count();
        assert_eq!(untrusted, 1, "{peer}\n{}", run.describe());
    }

    // (b) On a plain listener a v1 header is an unknown command, and a v2 header is
    // binary noise (with a QUIT in its signature); the session is the peer's own.
    run.assert_prefix("plain.v1.greeting", "+OK");
    run.assert_prefix("plain.v1.reply", "-ERR");
    run.assert_prefix("plain.v1.user", "+OK");
    run.assert_prefix("plain.v1.pass", "+OK");
    run.assert_prefix("plain.v1.quit", "+OK");
    run.assert_prefix("plain.v2", "+OK");
    run.assert_fact("plain.v2.end", "eof");
    // Every session there is is from 127.0.0.1: the plain listener's two; none for an
    // address from a header, none for a refused header.
    assert_eq!(
        sessions_from(&log),
        ["127.0.0.1", "127.0.0.1"],
        "{}",
        run.describe()
    );

    // (c) A trusted peer without a valid header: closed without a greeting, at once for
    // bytes that cannot be a header, after proxy_timeout (1 s) for a header that never
    // ends or never comes.
    run.assert_closed_silently("garbage", 0.0, 0.9);
    run.assert_closed_silently("bad.v1", 0.0, 0.9);
    for key in ["truncated.v1", "truncated.v2", "nothing"] {
        run.assert_closed_silently(key, 0.9, 2.5);
    }
    let invalid: Vec<&Entry> = log
        .iter()
        .filter(|e| e.text.starts_with("127.0.0.1: no valid PROXY header: "))
        .collect();
    assert!(
        invalid.len() == 5 && invalid.iter().all(|e| e.pri == NOTICE),
        "{invalid:?}\n{}",
        run.describe()
    );
    run.assert_fact("exit", "0");
}

// ---------------------------------------------------------------------------------
// HAProxy.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn haproxy_v1_and_v2_backends() {
    let run = scenario("haproxy", &[HAPROXY]);
    let a = run.syslog_file("syslog-a");
    let b = run.syslog_file("syslog-b");
    assert_eq!(
        exactly(&a, "listening on 127.0.0.1:1111").len(),
        1,
        "{}",
        run.describe()
    );
    assert_eq!(
        exactly(&b, "listening on 127.0.0.1:1112").len(),
        1,
        "{}",
        run.describe()
    );

    // Four logins, round robin: two on each daemon (a gets send-proxy-v2, b send-proxy),
    // each logged with the client's own address, never HAProxy's 127.0.0.1.
    let logins = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"];
    for i in 10..=13 {
        run.assert_fetched(&format!("login.{i}"));
    }
    let mut seen: Vec<&str> = Vec::new();
    for log in [&a, &b] {
        let here: Vec<&str> = sessions_from(log)
            .into_iter()
            .filter(|ip| logins.contains(ip))
            .collect();
        assert_eq!(here.len(), 2, "{here:?}\n{}", run.describe());
        for ip in &here {
            assert_session_logged_in(&run, log, ip);
        }
        seen.extend(here);
        assert!(
            !sessions_from(log).contains(&"127.0.0.1"),
            "a session logged HAProxy's address\n{}",
            run.describe()
        );
    }
    seen.sort_unstable();
    assert_eq!(seen, logins, "{}", run.describe());

    // max_per_source = 2 on each: of five connections from 127.0.0.30, the first four
    // fill both daemons, the fifth is closed without a byte.
    for i in 1..=4 {
        run.assert_fact(&format!("held.{i}"), "served");
    }
    run.assert_fact("held.5", "closed 0 bytes");
    let limit = "127.0.0.30: per source limit reached";
    for log in [&a, &b] {
        assert_eq!(
            exactly(log, "Session from 127.0.0.30").len(),
            2,
            "{}",
            run.describe()
        );
    }
    assert_eq!(
        exactly(&a, limit).len() + exactly(&b, limit).len(),
        1,
        "{}",
        run.describe()
    );
    run.assert_fact("exit.a", "0");
    run.assert_fact("exit.b", "0");
}
