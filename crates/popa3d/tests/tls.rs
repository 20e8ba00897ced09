//! TLS as clients meet it: implicit TLS and STLS (RFC 2595) on the standalone daemon
//! (`popa3d -D -F -c CONF`, one `[[listener]]` per case) and implicit TLS in inetd mode,
//! against openssl s_client, curl, mpop (GnuTLS), fetchmail and Python's ssl/poplib,
//! each verifying the chain against a throw-away CA; the plaintext-login policy; bytes
//! sent behind STLS (the STARTTLS command-injection class); handshakes that fail.
//!
//! Each test runs one scenario of tests/sysenv/tls_scenarios.py inside `scripts/sysenv`
//! (private mount, network and PID namespaces with real accounts, /var/mail and syslog;
//! loopback only, plus 192.0.2.1 on the namespace's own `lo` as a non-loopback source).
//! The scenario makes its PKI with the openssl command (P-256 and RSA-2048 server
//! certificates, SAN DNS:localhost and IP:127.0.0.1, keys 0600 root), starts and stops
//! every process itself, and records what it saw in `$OUT/facts` (one `key=value` per
//! line, bytes escaped); the assertions are here. A failed test keeps its scenario's
//! files (`INTEROP_KEEP=1` keeps all).
//!
//! Needs root and the packages that scripts/install-test-deps.sh installs; a plain
//! `cargo test` lists these as ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sysenv;
use std::path::Path;

use sysenv::*;

/// bob's mailbox in every scenario (tests/sysenv/interop.mbox).
const MBOX: &str = "interop.mbox";

/// The reply to an accepted STLS (tls-spec; RFC 2595 §4 asks only for `+OK`).
const BEGIN_TLS: &str = r"+OK Begin TLS negotiation\r\n";
/// The reply to USER, PASS or AUTH PLAIN refused without TLS.
const PLAINTEXT_REFUSED: &str = r"-ERR [AUTH] Plaintext authentication disallowed without TLS\r\n";

/// A fact's value as the bytes it stands for (the scenario escapes `\`, CR, LF and
/// anything outside printable ASCII).
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => panic!("bad escape \\{} in {s:?}", other as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

// The facts of tls_scenarios.py.
impl Run {
    fn assert_not(&self, key: &str, unwanted: &str) {
        let got = self.fact(key);
        assert_ne!(got, unwanted, "fact `{key}`\n{}", self.o.describe());
    }

    /// A client's exit status was not 0 (it failed, as it must).
    fn assert_failed(&self, key: &str) {
        self.assert_not(key, "0");
        self.assert_not(key, "timeout");
    }

    /// Client `name` (the scenario's `run()`) exited with `want`; on failure, its output.
    fn assert_rc(&self, name: &str, want: &str) {
        let got = self.fact(&format!("{name}.rc"));
        assert_eq!(
            got,
            want,
            "{name} exited with {got}, expected {want}; its output:\n{}\n{}",
            self.o.text(&format!("{name}.log")),
            self.o.describe()
        );
    }

    /// The capabilities CAPA listed in fact `key` (its lines after `+OK`), without
    /// IMPLEMENTATION, sorted.
    fn capa(&self, key: &str) -> Vec<String> {
        let mut caps: Vec<String> = String::from_utf8(unescape(self.fact(key)))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("IMPLEMENTATION "))
            .map(str::to_owned)
            .collect();
        caps.sort_unstable();
        caps
    }

    /// CAPA in AUTHORIZATION listed exactly the base capabilities and `extra` (so no
    /// stray line, such as a greeting or another reply, got into it).
    fn assert_capa(&self, key: &str, extra: &[&str]) {
        let mut want: Vec<String> = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect();
        want.sort_unstable();
        assert_eq!(self.capa(key), want, "CAPA `{key}`\n{}", self.o.describe());
    }

    /// A session recorded by the scenario's `session()`: (the greeting,) CAPA as it must
    /// be under TLS, a login as bob, the whole mailbox in STAT, message 1 byte for byte,
    /// QUIT and the close.
    fn assert_session(&self, key: &str, greeting: bool, capa: Option<&[&str]>) {
        assert!(
            !self.has(&format!("{key}.error")),
            "session `{key}` failed: {}\n{}",
            self.fact(&format!("{key}.error")),
            self.o.describe()
        );
        let msgs = fixture_messages(MBOX);
        let size: usize = msgs.iter().map(Message::pop_size).sum();
        if greeting {
            self.assert_prefix(&format!("{key}.welcome"), "+OK");
        }
        if let Some(extra) = capa {
            self.assert_capa(&format!("{key}.capa"), extra);
        }
        self.assert_prefix(&format!("{key}.user"), "+OK");
        self.assert_prefix(&format!("{key}.pass"), "+OK");
        self.assert_fact(
            &format!("{key}.stat"),
            &format!(r"+OK {} {size}\r\n", msgs.len()),
        );
        self.assert_prefix(&format!("{key}.retr"), "+OK");
        let got = self.o.bytes(&format!("{key}.retr1"));
        assert!(
            got == msgs[0].data,
            "session `{key}`: RETR 1: {}\n{}",
            first_difference(&msgs[0].data, &got),
            self.o.describe()
        );
        self.assert_prefix(&format!("{key}.quit"), "+OK");
        self.assert_fact(&format!("{key}.end"), "eof");
    }

    /// Connection `key` (recorded by `closed_fact()`) ended within `min..max` seconds
    /// without a plaintext POP3 byte: nothing, or a TLS alert record (content type 21).
    fn assert_closed_without_pop3(&self, key: &str, min: f64, max: f64) {
        let got = self.fact(key);
        let mut parts = got.split(' ');
        let (end, took) = (parts.nth(1).unwrap(), parts.next().unwrap());
        let data = unescape(self.fact(&format!("{key}.data")));
        assert!(
            matches!(end, "eof" | "reset") && (data.is_empty() || data[0] == 0x15),
            "`{key}`: expected the server to close with nothing or a TLS alert, got \
             `{got}` (bytes, how it ended, seconds), data {:?}\n{}",
            String::from_utf8_lossy(&data),
            self.o.describe()
        );
        let took: f64 = took.parse().unwrap();
        assert!(
            (min..max).contains(&took),
            "`{key}` was closed after {took} s, expected {min} to {max} s\n{}",
            self.o.describe()
        );
    }
}

const OPENSSL: (&str, &str) = ("openssl", "openssl");
const IP: (&str, &str) = ("ip", "iproute2");

/// Runs scenario `name` of tls_scenarios.py against our `popa3d`, with `tools`
/// (program, Debian package) installed, and checks what holds in every scenario:
/// nothing at CRIT (a confinement kill, a key/certificate mismatch), every log line
/// printable ASCII, and each failed handshake logged at NOTICE.
fn scenario(name: &str, tools: &[(&str, &str)]) -> Run {
    require(OPENSSL.0, OPENSSL.1);
    for &(tool, package) in tools {
        require(tool, package);
    }
    let run = Run::scenario(
        "tls_scenarios.py",
        name,
        Path::new(env!("CARGO_BIN_EXE_popa3d")),
        MBOX,
        120,
    );
    for e in run.syslog() {
        assert!(e.pri != CRIT, "logged at CRIT: {e:?}\n{}", run.describe());
        assert!(
            e.text.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "a log line with unescaped bytes: {e:?}\n{}",
            run.describe()
        );
        if e.text.starts_with("TLS handshake failed") {
            assert_eq!(e.pri, NOTICE, "{e:?}\n{}", run.describe());
        }
    }
    if run.has("daemon.stderr") {
        run.assert_fact("daemon.stderr", "");
    }
    // The keys as the scenario made them: the server reads them as root.
    run.assert_fact("pki.ec.key", "600 0");
    run.assert_fact("pki.rsa.key", "600 0");
    run
}

/// The entries whose text is exactly `text`.
fn exactly<'a>(log: &'a [Entry], text: &str) -> Vec<&'a Entry> {
    log.iter().filter(|e| e.text == text).collect()
}

fn starting<'a>(log: &'a [Entry], prefix: &str) -> Vec<&'a Entry> {
    log.iter().filter(|e| e.text.starts_with(prefix)).collect()
}

/// The relays' `TLS x.y session, SUITE` lines (INFO), sorted.
fn tls_sessions(run: &Run, log: &[Entry]) -> Vec<String> {
    let mut lines: Vec<String> = log
        .iter()
        .filter(|e| e.text.starts_with("TLS 1."))
        .map(|e| {
            assert_eq!(e.pri, INFO, "{e:?}\n{}", run.describe());
            e.text.clone()
        })
        .collect();
    lines.sort_unstable();
    lines
}

/// The pid of the one `Session from ADDR` line.
fn session_pid(run: &Run, log: &[Entry], addr: &str) -> u32 {
    let lines = exactly(log, &format!("Session from {addr}"));
    assert_eq!(
        lines.len(),
        1,
        "`Session from {addr}` logged {} times, expected once\n{}",
        lines.len(),
        run.describe()
    );
    lines[0].pid
}

/// Whether the session from `addr` logged an `Authentication ...` line (passed or
/// failed): the process that logs `Session from` also logs the login.
fn authenticated(run: &Run, log: &[Entry], addr: &str) -> Vec<String> {
    let pid = session_pid(run, log, addr);
    log.iter()
        .filter(|e| e.pid == pid && e.text.starts_with("Authentication"))
        .map(|e| e.text.clone())
        .collect()
}

/// CAPA in AUTHORIZATION where a login is accepted and STLS is not offered: under TLS,
/// or on a listener without TLS.
const LOGIN_CAPA: &[&str] = &["USER", "SASL PLAIN"];

// ---------------------------------------------------------------------------------
// openssl s_client.

/// The suite as rustls names it (the relay's log line) for openssl's name.
fn rustls_suite(openssl: &str) -> String {
    if let Some(rest) = openssl.strip_prefix("TLS_") {
        return format!("TLS13_{rest}");
    }
    match openssl {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384" => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        other => panic!("no rustls name for {other} here"),
    }
    .to_owned()
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn openssl_s_client_stls_and_implicit_tls() {
    let run = scenario("openssl", &[]);
    // (session, STLS, protocol, the suite asked for, the server's signature)
    let sessions = [
        ("stls.tls13", true, "TLSv1.3", None, "ECDSA"),
        ("implicit.tls13", false, "TLSv1.3", None, "ECDSA"),
        (
            "implicit.tls12.ecdsa",
            false,
            "TLSv1.2",
            Some("ECDHE-ECDSA-AES128-GCM-SHA256"),
            "ECDSA",
        ),
        (
            "stls.tls12.ecdsa",
            true,
            "TLSv1.2",
            Some("ECDHE-ECDSA-CHACHA20-POLY1305"),
            "ECDSA",
        ),
        (
            "implicit.tls12.rsa",
            false,
            "TLSv1.2",
            Some("ECDHE-RSA-AES256-GCM-SHA384"),
            "RSA-PSS",
        ),
        // -sigalgs RSA+SHA256: PKCS#1 v1.5, TLS 1.2 only.
        (
            "stls.tls12.rsa_pkcs1",
            true,
            "TLSv1.2",
            Some("ECDHE-RSA-CHACHA20-POLY1305"),
            "RSA",
        ),
        ("implicit.tls13.rsa", false, "TLSv1.3", None, "RSA-PSS"),
        ("after.tls11", false, "TLSv1.3", None, "ECDSA"),
        ("after.rsa_kx", false, "TLSv1.3", None, "RSA-PSS"),
    ];
    let mut want_log = Vec::new();
    for (key, stls, protocol, suite, signature) in sessions {
        // With -starttls, s_client read the greeting and did STLS itself; after the
        // handshake the server must not greet again (RFC 2595 §4): a greeting would
        // show up as a stray line in CAPA.
        run.assert_session(key, !stls, Some(LOGIN_CAPA));
        run.assert_fact(&format!("{key}.verify"), "OK");
        run.assert_fact(&format!("{key}.peer"), "CN = localhost");
        run.assert_fact(&format!("{key}.protocol"), protocol);
        run.assert_fact(&format!("{key}.signature"), signature);
        let got = run.fact(&format!("{key}.cipher"));
        if let Some(suite) = suite {
            assert_eq!(got, suite, "{key}\n{}", run.describe());
        }
        let version = if protocol == "TLSv1.3" { "1.3" } else { "1.2" };
        want_log.push(format!("TLS {version} session, {}", rustls_suite(got)));
        // Exit status 0: s_client saw close_notify before the close (RFC 8446 §6.1),
        // not an unexpected EOF.
        run.assert_fact(&format!("{key}.rc"), "0");
    }

    // Refused: TLS 1.1 (implicit and after STLS) and RSA key exchange, each of which
    // the same client gets from openssl s_server, so the refusal is popa3d's.
    for key in ["tls11", "tls11.stls", "rsa_kx"] {
        run.assert_failed(&format!("{key}.rc"));
        assert!(
            !run.has(&format!("{key}.protocol")) && !run.has(&format!("{key}.client_refused")),
            "`{key}`: the handshake must fail at the server\n{}",
            run.describe()
        );
    }
    run.assert_fact("tls11.control.rc", "0");
    run.assert_fact("tls11.control.protocol", "TLSv1.1");
    run.assert_fact("rsa_kx.control.rc", "0");
    run.assert_fact("rsa_kx.control.protocol", "TLSv1.2");

    let log = run.syslog();
    want_log.sort_unstable();
    assert_eq!(tls_sessions(&run, &log), want_log, "{}", run.describe());
    assert_eq!(
        starting(&log, "TLS handshake failed: ").len(),
        3,
        "{}",
        run.describe()
    );
    assert_eq!(
        exactly(&log, "Authentication passed for bob").len(),
        sessions.len(),
        "{}",
        run.describe()
    );
    run.assert_fact("exit", "0");
}

// ---------------------------------------------------------------------------------
// curl, mpop, fetchmail.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn curl_pop3s_and_ssl_reqd() {
    let run = scenario("curl", &[("curl", "curl")]);
    let msgs = fixture_messages(MBOX);
    run.assert_fact("implicit.list.rc", "0");
    let list: String = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}\r\n", i + 1, m.pop_size()))
        .collect();
    assert_eq!(run.o.text("implicit.list"), list, "{}", run.describe());
    let mut fetched: Vec<String> = vec!["implicit.list".into(), "rsa.1".into()];
    for i in 1..=msgs.len() {
        fetched.push(format!("implicit.{i}"));
        fetched.push(format!("stls.{i}"));
    }
    for key in &fetched {
        run.assert_rc(key, "0");
        // Each one over TLS (curl's default is TLS 1.3), verified against the CA.
        run.assert_prefix(&format!("{key}.tls"), "TLSv1.3 / ");
        if key != "implicit.list" {
            let n: usize = key.rsplit('.').next().unwrap().parse().unwrap();
            let got = run.o.bytes(key);
            let want = msgs[n - 1].crlf();
            assert!(
                got == want,
                "curl {key}: {}\n{}",
                first_difference(&want, &got),
                run.describe()
            );
        }
    }
    // --ssl-reqd where STLS is not offered, and a CA that did not sign the server's
    // certificate: curl refuses (CURLE_USE_SSL_FAILED, CURLE_PEER_FAILED_VERIFICATION).
    run.assert_rc("plain.ssl_reqd", "64");
    assert!(!run.has("plain.ssl_reqd.tls"), "{}", run.describe());
    run.assert_rc("other_ca", "60");

    let log = run.syslog();
    assert_eq!(
        tls_sessions(&run, &log).len(),
        fetched.len(),
        "{}",
        run.describe()
    );
    assert_eq!(
        starting(&log, "TLS handshake failed: ").len(),
        1,
        "{}",
        run.describe()
    );
    run.assert_fact("exit", "0");
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn mpop_tls_and_starttls() {
    let run = scenario("mpop", &[("mpop", "mpop")]);
    let msgs = fixture_messages(MBOX);
    for key in ["implicit", "stls", "rsa"] {
        run.assert_rc(key, "0");
        assert_messages(&format!("mpop {key}"), &msgs, &run.o.maildir(key));
    }
    // tls_starttls on: mpop sent STLS; off: it spoke TLS from the first byte.
    run.assert_prefix("stls.sent_stls", "--> STLS");
    run.assert_prefix("rsa.sent_stls", "--> STLS");
    assert!(!run.has("implicit.sent_stls"), "{}", run.describe());
    // A trust file without the server's CA: no session. (GnuTLS checks the chain after
    // the handshake, so the server may see a complete one.)
    run.assert_failed("other_ca.rc");
    assert!(run.o.maildir("other_ca").is_empty());

    let log = run.syslog();
    assert!(tls_sessions(&run, &log).len() >= 3, "{}", run.describe());
    assert_eq!(
        exactly(&log, "Authentication passed for bob").len(),
        3,
        "{}",
        run.describe()
    );
    run.assert_fact("exit", "0");
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn fetchmail_ssl_and_sslproto() {
    let run = scenario("fetchmail", &[("fetchmail", "fetchmail")]);
    let msgs = fixture_messages(MBOX);
    for key in ["implicit", "stls"] {
        run.assert_rc(key, "0");
        assert_messages(&format!("fetchmail {key}"), &msgs, &run.o.files(key));
        run.assert_prefix(&format!("{key}.tls"), "using protocol TLSv1.");
    }
    run.assert_prefix("stls.sent_stls", "fetchmail: POP3> STLS");
    assert!(!run.has("implicit.sent_stls"), "{}", run.describe());
    // sslproto without ssl requires STLS: a listener without TLS answers it -ERR and
    // fetchmail gives up before logging in.
    run.assert_failed("plain.rc");
    assert!(run.o.files("plain").is_empty());

    let log = run.syslog();
    assert_eq!(tls_sessions(&run, &log).len(), 2, "{}", run.describe());
    assert_eq!(
        exactly(&log, "Authentication passed for bob").len(),
        2,
        "{}",
        run.describe()
    );
    run.assert_fact("exit", "0");
}

// ---------------------------------------------------------------------------------
// Python's ssl and poplib.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn poplib_pop3_ssl_and_stls() {
    let run = scenario("poplib", &[]);
    let msgs = fixture_messages(MBOX);
    let size: usize = msgs.iter().map(Message::pop_size).sum();
    let base = "AUTH-RESP-CODE,IMPLEMENTATION popa3d-rs,PIPELINING,RESP-CODES";
    let tls_capa = format!("{base},SASL PLAIN,TOP,UIDL,USER");

    assert!(!run.has("ssl.error"), "{}", run.fact("ssl.error"));
    run.assert_prefix("ssl.welcome", "+OK");
    run.assert_fact("ssl.version", "TLSv1.3");
    run.assert_fact("ssl.capa", &tls_capa);
    run.assert_prefix("ssl.pass", "+OK");
    run.assert_fact("ssl.stat", &format!("{} {size}", msgs.len()));
    let got: Vec<Vec<u8>> = (1..=msgs.len())
        .map(|i| run.o.bytes(&format!("ssl.retr{i}")))
        .collect();
    assert_messages("poplib POP3_SSL", &msgs, &got);
    run.assert_prefix("ssl.quit", "+OK");

    // POP3.stls(): STLS offered before (loopback: USER and SASL too), not after.
    assert!(!run.has("stls.error"), "{}", run.fact("stls.error"));
    run.assert_prefix("stls.welcome", "+OK");
    run.assert_fact(
        "stls.capa.before",
        &format!("{base},SASL PLAIN,STLS,TOP,UIDL,USER"),
    );
    run.assert_fact("stls.stls", "+OK Begin TLS negotiation");
    run.assert_fact("stls.version", "TLSv1.3");
    run.assert_fact("stls.capa.after", &tls_capa);
    run.assert_prefix("stls.pass", "+OK");
    run.assert_fact("stls.stat", &format!("{} {size}", msgs.len()));
    let got = run.o.bytes("stls.retr1");
    assert!(
        got == msgs[0].data,
        "{}",
        first_difference(&msgs[0].data, &got)
    );
    run.assert_prefix("stls.quit", "+OK");

    let log = run.syslog();
    assert_eq!(tls_sessions(&run, &log).len(), 2, "{}", run.describe());
    run.assert_fact("exit", "0");
}

// ---------------------------------------------------------------------------------
// STLS and the bytes behind it.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn stls_ignores_pipelined_commands() {
    let run = scenario("injection", &[]);
    let log = run.syslog();
    // (key, source, the command sent inside TLS that shows the injected ones were
    // dropped)
    for (key, src) in [
        ("capa", "127.0.0.65"),
        ("login", "127.0.0.66"),
        ("split", "127.0.0.67"),
    ] {
        run.assert_prefix(&format!("{key}.welcome"), "+OK");
        // In plaintext, the answer to STLS and nothing else, ever. Bytes that were still
        // in the server's socket buffer when its relay started (the second send of the
        // split case, if it arrived after the pre-auth process had read STLS) are read
        // as TLS and answered with a fatal decode_error alert (a TLS record: 21, version
        // 3.3, length 2, level 2, description 50), which may come before the client's
        // ClientHello; never with a POP3 line.
        let plain = run.fact(&format!("{key}.plain"));
        assert!(
            plain == BEGIN_TLS || plain == format!(r"{BEGIN_TLS}\x15\x03\x03\x00\x02\x022"),
            "`{key}.plain`: {plain:?}\n{}",
            run.describe()
        );
        if run.fact(&format!("{key}.handshake")) == "ok" {
            // No greeting and no answer to an injected command inside TLS.
            run.assert_fact(&format!("{key}.early"), "");
            if key == "capa" {
                // Exactly one CAPA answer: the one asked for inside TLS.
                let capa = run.fact("capa.capa");
                let tail = capa
                    .strip_prefix(r"+OK\r\n")
                    .unwrap_or_else(|| panic!("CAPA inside TLS: {capa:?}\n{}", run.describe()));
                assert!(
                    !tail.contains("+OK") && tail.contains(r"\nUSER\n"),
                    "{capa:?}\n{}",
                    run.describe()
                );
            } else {
                // Not logged in: the injected USER/PASS were never executed.
                run.assert_prefix(&format!("{key}.stat"), "-ERR");
            }
            run.assert_prefix(&format!("{key}.quit"), "+OK");
            run.assert_fact(&format!("{key}.rest"), "");
        } else {
            // Failed at the server, not on plaintext that reached the client's TLS
            // parser (OpenSSL: "wrong version number").
            let err = run.fact(&format!("{key}.handshake"));
            assert!(
                !err.to_ascii_lowercase().contains("wrong version number"),
                "`{key}`: {err}\n{}",
                run.describe()
            );
            run.assert_closed_without_pop3(&format!("{key}.closed"), 0.0, 3.0);
        }
        if key != "capa" {
            let auth = authenticated(&run, &log, src);
            assert!(
                auth.is_empty(),
                "`{key}`: the injected login ran: {auth:?}\n{}",
                run.describe()
            );
        }
    }
    // The control: the same login sent inside TLS is executed and logged.
    run.assert_fact("control.stls", BEGIN_TLS);
    run.assert_fact("control.handshake", "ok");
    run.assert_session("control", false, None);
    assert_eq!(
        authenticated(&run, &log, "127.0.0.75"),
        ["Authentication passed for bob"],
        "{}",
        run.describe()
    );

    // STLS only in AUTHORIZATION before USER, once, on a listener with STLS.
    run.assert_prefix("after_user.user", "+OK");
    run.assert_prefix("after_user.stls", "-ERR");
    run.assert_prefix("after_user.pass", "+OK");
    run.assert_fact("twice.stls", BEGIN_TLS);
    run.assert_fact("twice.handshake", "ok");
    run.assert_prefix("twice.stls2", "-ERR");
    run.assert_prefix("twice.quit", "+OK");
    run.assert_prefix("implicit.stls", "-ERR");
    run.assert_prefix("implicit.quit", "+OK");
    run.assert_prefix("plain.stls", "-ERR");
    run.assert_prefix("plain.quit", "+OK");
    run.assert_prefix("transaction.pass", "+OK");
    run.assert_prefix("transaction.stls", "-ERR");
    run.assert_prefix("transaction.quit", "+OK");
    run.assert_fact("exit", "0");
}

// ---------------------------------------------------------------------------------
// plaintext_login.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn plaintext_login_policy() {
    let run = scenario("policy", &[IP]);
    // Refused without TLS: from 192.0.2.1 with the default (`loopback`), and from
    // anywhere with `never`. CAPA says so; the same login works after STLS.
    for key in ["remote", "never"] {
        run.assert_prefix(&format!("{key}.welcome"), "+OK");
        run.assert_capa(&format!("{key}.capa"), &["STLS"]);
        run.assert_fact(&format!("{key}.user"), PLAINTEXT_REFUSED);
        run.assert_prefix(&format!("{key}.pass"), "-ERR");
        run.assert_fact(&format!("{key}.auth_ir"), PLAINTEXT_REFUSED);
        // Refused before the client is asked for its password.
        run.assert_fact(&format!("{key}.auth"), PLAINTEXT_REFUSED);
        run.assert_fact(&format!("{key}.stls"), BEGIN_TLS);
        run.assert_fact(&format!("{key}.handshake"), "ok");
        run.assert_session(&format!("{key}.tls"), false, Some(LOGIN_CAPA));
    }
    // Accepted without TLS: loopback with the default, `always` from 192.0.2.1 (STLS
    // still offered), and a listener with tls = "none", as popa3d (no STLS).
    run.assert_session("loopback", true, Some(&["USER", "SASL PLAIN", "STLS"]));
    run.assert_session("always", true, Some(&["USER", "SASL PLAIN", "STLS"]));
    run.assert_session("none", true, Some(LOGIN_CAPA));
    // AUTH PLAIN inside TLS from 192.0.2.1.
    run.assert_fact("sasl.stls", BEGIN_TLS);
    run.assert_fact("sasl.handshake", "ok");
    run.assert_prefix("sasl.auth", "+OK");
    run.assert_prefix("sasl.stat", "+OK");

    let log = run.syslog();
    assert_eq!(
        exactly(&log, "Session from 192.0.2.1").len(),
        4,
        "{}",
        run.describe()
    );
    // Two refused logins never reached the password check.
    assert!(
        !log.iter()
            .any(|e| e.text.starts_with("Authentication failed")),
        "{}",
        run.describe()
    );
    assert_eq!(
        exactly(&log, "Authentication passed for bob").len(),
        6,
        "{}",
        run.describe()
    );
    run.assert_fact("exit", "0");
}

// ---------------------------------------------------------------------------------
// Failed handshakes.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn failed_handshakes_close_cleanly() {
    let run = scenario("failures", &[]);
    // A client that trusts another CA refuses the server (client-side error).
    run.assert_prefix("other_ca", "SSLCertVerificationError: ");
    run.assert_failed("other_ca.s_client.rc");
    run.assert_session("after_other_ca", true, Some(LOGIN_CAPA));
    // Plaintext POP3 to the implicit port: no POP3 reply, closed at once (not at the
    // handshake deadline).
    run.assert_closed_without_pop3("plaintext", 0.0, 1.5);
    // Silence: closed at tls_handshake_timeout (2 s), implicit and after STLS.
    run.assert_closed_without_pop3("silent", 1.9, 4.0);
    run.assert_fact("silent_stls.stls", BEGIN_TLS);
    run.assert_closed_without_pop3("silent_stls", 1.9, 4.0);
    run.assert_session("after_all", true, Some(LOGIN_CAPA));

    let log = run.syslog();
    // Python's and s_client's refusals and the plaintext (the silent ones may say
    // more).
    let failed = starting(&log, "TLS handshake failed: ");
    assert!(failed.len() >= 3, "{failed:?}\n{}", run.describe());
    assert!(
        !log.iter().any(|e| e.text.contains("USER bob")),
        "{}",
        run.describe()
    );
    assert_eq!(tls_sessions(&run, &log).len(), 2, "{}", run.describe());
    run.assert_fact("exit", "0");
}

// ---------------------------------------------------------------------------------
// inetd mode.

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn inetd_mode_implicit_tls() {
    let run = scenario("inetd", &[("systemd-socket-activate", "systemd")]);
    let msgs = fixture_messages(MBOX);
    let size: usize = msgs.iter().map(Message::pop_size).sum();
    assert!(!run.has("ssl.error"), "{}", run.fact("ssl.error"));
    run.assert_prefix("ssl.welcome", "+OK");
    run.assert_fact("ssl.version", "TLSv1.3");
    run.assert_prefix("ssl.pass", "+OK");
    run.assert_fact("ssl.stat", &format!("{} {size}", msgs.len()));
    let got = run.o.bytes("ssl.retr1");
    assert!(
        got == msgs[0].data,
        "{}",
        first_difference(&msgs[0].data, &got)
    );
    run.assert_prefix("ssl.quit", "+OK");
    run.assert_closed_without_pop3("plaintext", 0.0, 1.5);

    let log = run.syslog();
    assert_eq!(tls_sessions(&run, &log).len(), 1, "{}", run.describe());
    assert_eq!(
        exactly(&log, "Authentication passed for bob").len(),
        1,
        "{}",
        run.describe()
    );
    assert_eq!(
        starting(&log, "TLS handshake failed: ").len(),
        1,
        "{}",
        run.describe()
    );
}

#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn a_dead_key_holder_is_replaced_once_then_on_reload() {
    require(OPENSSL.0, OPENSSL.1);
    // Not `scenario()`: this one logs at CRIT on purpose.
    let run = Run::scenario(
        "tls_scenarios.py",
        "holder_restart",
        Path::new(env!("CARGO_BIN_EXE_popa3d")),
        MBOX,
        120,
    );
    for key in ["before", "after", "reloaded"] {
        assert!(
            !run.has(&format!("{key}.error")),
            "{key}\n{}",
            run.describe()
        );
        run.assert_prefix(&format!("{key}.stat"), "+OK");
        run.assert_prefix(&format!("{key}.quit"), "+OK");
    }
    run.assert_fact("second.new", "True");
    run.assert_fact("third.new", "True");
    // Killed twice within 10 s: no new holder, and TLS connections fail (closed by the
    // daemon before any byte) until the reload.
    run.assert_fact("broken.children", "0");
    assert!(run.has("broken.error"), "{}", run.describe());
    let log = run.syslog();
    let crit: Vec<&str> = log
        .iter()
        .filter(|e| e.pri == CRIT)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(crit.len(), 3, "{crit:?}\n{}", run.describe());
    assert!(
        crit[0].starts_with("key holder process ")
            && crit[0].ends_with(" killed by signal 9; started a new one"),
        "{crit:?}"
    );
    assert!(
        crit[1].ends_with(" killed by signal 9 again: TLS handshakes fail until a reload (SIGHUP)"),
        "{crit:?}"
    );
    assert!(
        crit[2].ends_with(": TLS: key holder: no key holder") || crit[2].contains(": TLS: "),
        "{crit:?}"
    );
    assert_eq!(
        exactly(&log, "configuration reloaded").len(),
        1,
        "{}",
        run.describe()
    );
    run.assert_fact("exit", "0");
}
