//! Issue #5's hard requirement, on the real binary: "The private key stays out of reach
//! of every process that handles a session. Neither the pre-auth child, which parses
//! hostile input, nor the post-auth process, which runs as the mail user, may read the
//! key file or hold the key in memory." (docs/tls-design.md, test plan items 1, 2, 7.)
//!
//! Each test runs one scenario of tests/sysenv/tls_isolation_scenarios.py inside
//! `scripts/sysenv` (private mount, network and PID namespaces with real accounts,
//! /var/mail and syslog; loopback only). The scenario makes ECDSA P-256 and RSA-2048
//! keys with the openssl tool (files 0600 root), starts `popa3d -D -F` or, for inetd
//! mode, `systemd-socket-activate --inetd`, holds Python `ssl` sessions at each stage
//! (before the ClientHello, waiting for PASS, in TRANSACTION, after a wrong password,
//! after STLS), and for every process of each session reads its whole memory through
//! /proc/PID/mem looking for the key in every form a crypto library keeps it
//! (tests/sysenv/memscan.py: the PEM lines, the DER encodings, the EC scalar and the RSA
//! private numbers in both byte orders and in ring's Montgomery forms). It also records
//! each process's uid and gid and tries to read the key file with them (the session's
//! root process stays uid 0 and could read it: it never parses a client byte, and the
//! scan shows it never has). The processes at the key holder's end of a session's
//! signature channel, and the daemon's key holder, are scanned too and must hold the
//! key: that is what shows the scan can find it. What the scenario saw is in
//! `$OUT/facts` (one `key=value` per line, bytes escaped); the judging is here. A failed
//! test keeps its scenario's files (`INTEROP_KEEP=1` keeps all).
//!
//! Needs root and the packages that scripts/install-test-deps.sh installs; a plain
//! `cargo test` lists these as ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sysenv;
use std::collections::BTreeSet;
use std::path::Path;

use sysenv::*;

/// The keys of the isolation scenarios: `ec` (P-256, PKCS#8), `rsa` (2048, PKCS#1).
const KEYS: [&str; 2] = ["ec", "rsa"];

/// Our reply to a failed login (driver::AUTH_FAILED), as a fact.
const AUTH_FAILED: &str = r"-ERR [AUTH] Authentication failed (bad password?)\r\n";

/// The chroot of the pre-auth process and the relay (Debian's, the default).
const CHROOT: &str = "/var/lib/popa3d";

fn scenario(name: &str) -> Run {
    require("openssl", "openssl");
    require("setpriv", "util-linux");
    require("systemd-socket-activate", "systemd");
    require("ss", "iproute2");
    Run::scenario(
        "tls_isolation_scenarios.py",
        name,
        Path::new(env!("CARGO_BIN_EXE_popa3d")),
        "interop.mbox",
        120,
    )
}

// The facts of tls_isolation_scenarios.py.
impl Run {
    fn num(&self, key: &str) -> u64 {
        self.fact(key)
            .parse()
            .unwrap_or_else(|_| panic!("fact `{key}` is not a number\n{}", self.context()))
    }

    fn is(&self, key: &str, want: &str) {
        assert_eq!(self.fact(key), want, "fact `{key}`\n{}", self.context());
    }

    fn starts(&self, key: &str, want: &str) {
        let got = self.fact(key);
        assert!(
            got.starts_with(want),
            "fact `{key}` is {got:?}, expected it to start with {want:?}\n{}",
            self.context()
        );
    }

    fn context(&self) -> String {
        let facts: Vec<String> = self.facts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("facts:\n{}\n{}", facts.join("\n"), self.o.describe())
    }

    /// `uid uid uid uid`: the real, effective, saved and filesystem ids of /proc's
    /// `Uid:` line, all `account`'s.
    fn ids(&self, account: &str) -> String {
        let id = self.fact(&format!("{account}.uid"));
        format!("{id} {id} {id} {id}")
    }

    /// The roles of a stage's session (`hello.ec.roles`: `preauth,relay,root`).
    fn roles(&self, stage: &str) -> BTreeSet<String> {
        self.fact(&format!("{stage}.roles"))
            .split(',')
            .map(str::to_owned)
            .collect()
    }

    fn assert_roles(&self, stage: &str, want: &[&str]) {
        let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(
            self.roles(stage),
            want,
            "the processes of session `{stage}`\n{}",
            self.context()
        );
    }

    /// The process `p` (a fact prefix) was scanned whole and holds no form of any key,
    /// and has no descriptor on a key file.
    fn assert_no_key(&self, p: &str) {
        self.is(&format!("{p}.gone"), "False");
        assert!(
            self.num(&format!("{p}.read")) > 0,
            "nothing of {p} was read\n{}",
            self.context()
        );
        self.is(&format!("{p}.unreadable"), "");
        assert_eq!(
            self.num(&format!("{p}.hits")),
            0,
            "{p} (pid {}) holds the key: {} (at {})\n{}",
            self.fact(&format!("{p}.pid")),
            self.fact(&format!("{p}.found")),
            self.fact(&format!("{p}.where")),
            self.context()
        );
        self.is(&format!("{p}.key_fds"), "0");
    }

    /// The process `p` holds key `key`, in the in-memory form of the numbers (not only
    /// as leftover PEM or DER): the positive control.
    fn assert_holds(&self, p: &str, key: &str) {
        self.is(&format!("{p}.gone"), "False");
        assert!(
            self.num(&format!("{p}.numeric.{key}")) > 0,
            "{p} (pid {}) was expected to hold key {key} (the scan's control), found: {}\n{}",
            self.fact(&format!("{p}.pid")),
            self.fact(&format!("{p}.found")),
            self.context()
        );
    }

    /// The process `p` runs as `account` and cannot open any key file with its
    /// credentials.
    fn assert_cannot_read_keys(&self, p: &str, account: &str, keys: &[&str]) {
        self.is(&format!("{p}.uid"), &self.ids(account));
        for key in keys {
            let got = self.fact(&format!("{p}.open.{key}"));
            assert!(
                got.starts_with("rc=1 ") && got.ends_with(": Permission denied"),
                "{p} (uid {}) opening key {key}: {got}\n{}",
                self.fact(&format!("{p}.uid")),
                self.context()
            );
        }
    }

    /// The key holder's side of session `stage`'s signature channel: one process, not
    /// running as popa3d.
    fn assert_key_side(&self, stage: &str) {
        let pids = self.fact(&format!("{stage}.keyside"));
        assert!(
            !pids.is_empty() && !pids.contains(' '),
            "{stage}: expected one process at the key holder's end of the relay's \
             signature channel, found `{pids}`\n{}",
            self.context()
        );
        assert_ne!(
            self.fact(&format!("{stage}.keyside.uid")).split(' ').nth(1),
            Some(self.fact("popa3d.uid")),
            "{stage}: the key side runs as popa3d\n{}",
            self.context()
        );
    }

    /// Every process of session `stage` holds no key; the relay and the pre-auth
    /// process run as popa3d in the chroot, the mail-user process as bob, the
    /// failed-login process as popa3d in the chroot, and none of them can read a key.
    /// After the handshake nothing waits at the key holder's end of its channel.
    fn assert_session(&self, stage: &str, keys: &[&str]) {
        if !stage.starts_with("hello.") {
            self.is(&format!("{stage}.keyside"), "");
        }
        for role in self.roles(stage) {
            let p = format!("{stage}.{role}");
            self.assert_no_key(&p);
            match role.as_str() {
                "relay" | "preauth" | "failed" => {
                    self.assert_cannot_read_keys(&p, "popa3d", keys);
                    self.is(&format!("{p}.chroot"), CHROOT);
                }
                "mailuser" => self.assert_cannot_read_keys(&p, "bob", keys),
                "root" => self.is(&format!("{p}.uid"), "0 0 0 0"),
                "helper" => {}
                other => panic!(
                    "session {stage}: unexpected role {other}\n{}",
                    self.context()
                ),
            }
        }
    }

    /// The replies of the sessions that held each stage.
    fn assert_replies(&self, key: &str) {
        self.starts(&format!("a.{key}.greeting"), "+OK");
        self.is(&format!("a.{key}.version"), "TLSv1.3");
        self.is(&format!("a.{key}.fingerprint"), "True");
        self.starts(&format!("a.{key}.user"), "+OK");
        self.starts(&format!("b.{key}.pass"), "+OK");
        self.starts(&format!("b.{key}.stat"), "+OK");
        self.starts(&format!("c.{key}.user"), "+OK");
        self.is(&format!("c.{key}.reply"), AUTH_FAILED);
    }

    fn assert_stls(&self, key: &str) {
        self.starts(&format!("d.{key}.greeting"), "+OK");
        let plain = self.fact(&format!("d.{key}.capa.plain"));
        assert!(plain.contains(r"\r\nSTLS\r\n"), "CAPA before STLS: {plain}");
        self.starts(&format!("d.{key}.stls"), "+OK");
        let tls = self.fact(&format!("d.{key}.capa.tls"));
        assert!(
            tls.starts_with("+OK") && !tls.contains("STLS"),
            "CAPA after STLS: {tls}"
        );
    }

    /// `(priority, text)` of the lines of a `*.log` fact.
    fn log(&self, key: &str) -> Vec<(u8, String)> {
        let all = self.fact(key);
        if all.is_empty() {
            return Vec::new();
        }
        all.split(r"\n")
            .map(|l| {
                let (pri, text) = l
                    .strip_prefix('<')
                    .and_then(|r| r.split_once('>'))
                    .unwrap_or_else(|| panic!("{key}: {l:?}"));
                (pri.parse().unwrap(), text.to_owned())
            })
            .collect()
    }
}

/// Standalone daemon, a P-256 and an RSA-2048 key, each on an implicit-TLS and an STLS
/// listener. No process of any session, at any stage, holds either key or can open
/// either key file; the key holder (the daemon's one child before any client) holds
/// both; the daemon holds neither.
#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn daemon_sessions_never_hold_the_key() {
    let run = scenario("daemon_isolation");
    for key in KEYS {
        run.assert_replies(key);
        run.assert_stls(key);
        // Before the ClientHello the relay and the pre-auth process are there, and the
        // key holder (or a child of its) waits for the relay's request: it holds both
        // keys.
        let hello = format!("hello.{key}");
        run.assert_roles(&hello, &["preauth", "relay", "root"]);
        run.assert_key_side(&hello);
        let holder = run.fact("holder.pid");
        assert!(
            run.fact(&format!("{hello}.keyside")) == holder
                || run.fact(&format!("{hello}.keyside.ppid")) == holder,
            "{hello}: the key side is neither the key holder ({holder}) nor its child\n{}",
            run.context()
        );
        for k in KEYS {
            run.assert_holds(&format!("{hello}.keyside"), k);
        }
        run.assert_roles(&format!("a.{key}"), &["preauth", "relay", "root"]);
        run.assert_roles(&format!("b.{key}"), &["mailuser", "relay"]);
        // Examined during the failed-login delay.
        run.is(&format!("c.{key}.caught"), "delay");
        run.assert_roles(&format!("c.{key}"), &["failed", "relay"]);
        run.assert_roles(&format!("d.{key}"), &["preauth", "relay", "root"]);
        for stage in ["hello", "a", "b", "c", "d"] {
            run.assert_session(&format!("{stage}.{key}"), &KEYS);
        }
    }

    // The holder: the daemon's only child before the first client, and the only child
    // without a client connection while sessions run; it holds both keys, and it is not
    // the popa3d account (which every relay runs as: it could ptrace it).
    let holder = run.fact("holder.before_clients");
    assert!(
        !holder.is_empty() && !holder.contains(' '),
        "expected one key holder before any client, got `{holder}`\n{}",
        run.context()
    );
    run.is("holder.by_tcp_rule", holder);
    run.is("holder.pid", holder);
    for key in KEYS {
        run.assert_holds("holder", key);
    }
    assert_ne!(
        run.fact("holder.uid").split(' ').nth(1),
        Some(run.fact("popa3d.uid")),
        "the key holder runs as popa3d\n{}",
        run.context()
    );
    // The daemon forks every session: it must never have had the key.
    run.assert_no_key("daemon");
    run.is("unexamined", "");
    run.is("exit", "0");
    run.is("holder.after_exit", "");
    eprintln!(
        "daemon_sessions_never_hold_the_key: holder found {}",
        run.fact("holder.found")
    );
}

/// inetd mode (`systemd-socket-activate --inetd`, top-level `tls`): the session's own key
/// holder holds the key while it waits for the handshake's one signature (the positive
/// control), is gone once the handshake is done, and no process of the session ever
/// holds the key or can open the file.
#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn inetd_sessions_never_hold_the_key() {
    let run = scenario("inetd_isolation");
    for key in KEYS {
        run.assert_replies(key);
        // Before the ClientHello, the session's own key holder waits for the relay's
        // request: it holds this listener's key alone.
        let hello = format!("hello.{key}");
        run.assert_roles(&hello, &["preauth", "relay", "root"]);
        run.assert_key_side(&hello);
        run.assert_holds(&format!("{hello}.keyside"), key);
        for other in KEYS.iter().filter(|k| **k != key) {
            run.is(&format!("{hello}.keyside.hits.{other}"), "0");
        }
        run.assert_session(&hello, &KEYS);
        run.assert_roles(&format!("a.{key}"), &["preauth", "relay", "root"]);
        run.assert_roles(&format!("b.{key}"), &["mailuser", "relay"]);
        // No delay in inetd mode: examined as it exits, held there by ptrace.
        run.is(&format!("c.{key}.caught"), "exit");
        run.assert_roles(&format!("c.{key}"), &["failed", "relay"]);
        for stage in ["a", "b", "c"] {
            run.assert_session(&format!("{stage}.{key}"), &KEYS);
        }
    }
    run.assert_stls("ec");
    run.assert_roles("d.ec", &["preauth", "relay", "root"]);
    run.assert_session("d.ec", &KEYS);
    run.is("unexamined", "");
}

/// SIGHUP with a new certificate and key: new connections get the new certificate, a
/// session from before goes on (one that had not started its handshake yet completes
/// it with the old pair), a new key holder holds the new key (and not the old one) and
/// the old holder exits. SIGHUP with a certificate that does not match its key:
/// a CRIT line, and the running pair is kept.
#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn sighup_reloads_certificate_and_key() {
    let run = scenario("reload");
    run.is("served.1", "a greeted");
    run.starts("old.stat", "+OK");

    let hup1 = run.log("hup.1.log");
    assert!(
        hup1.contains(&(NOTICE, "configuration reloaded".to_owned())),
        "first SIGHUP: {hup1:?}\n{}",
        run.context()
    );
    assert!(
        !hup1.iter().any(|(pri, _)| *pri == CRIT),
        "first SIGHUP: {hup1:?}\n{}",
        run.context()
    );
    let (old, new) = (run.fact("holder.1"), run.fact("holder.2"));
    assert!(
        !old.is_empty() && !new.is_empty() && !new.contains(' ') && old != new,
        "key holders before ({old}) and after ({new}) the reload\n{}",
        run.context()
    );
    run.is("holder.1.gone", "True");
    run.is("holders.after_1", new);
    run.is("served.2", "b greeted");
    // Connected before the reload, handshake after: served with the pair of its
    // connection, signed by the old holder's side of its channel.
    run.is("served.pending", "a greeted");
    run.starts("old.stat.after", "+OK");
    run.starts("old.quit", "+OK");
    run.assert_holds("holder.2", "b");
    run.is("holder.2.hits.a", "0");

    // Certificate c with key b.
    let hup2 = run.log("hup.2.log");
    let crit: Vec<&String> = hup2
        .iter()
        .filter(|(pri, _)| *pri == CRIT)
        .map(|(_, t)| t)
        .collect();
    assert!(
        crit.iter()
            .any(|t| t.contains("live.crt") || t.contains("live.key")),
        "second SIGHUP (certificate and key do not match): expected a CRIT line naming \
         the file, got {hup2:?}\n{}",
        run.context()
    );
    run.is("holders.after_2", new);
    run.is("served.3", "b greeted");
    run.assert_no_key("daemon");
    run.is("exit", "0");
}

/// A key or certificate that cannot be used: `popa3d -D -F` exits 1 with a message on
/// stderr naming the file, before it listens.
#[test]
#[ignore = "needs root, Debian packages and the test environment: run scripts/test.sh"]
fn unusable_key_or_certificate_stops_start_up() {
    let run = scenario("startup_errors");
    for (case, names) in [
        ("missing_key", &["key"][..]),
        ("missing_cert", &["cert"]),
        ("mismatch", &["cert", "key"]),
        ("cert_dir", &["cert"]),
        ("cert_empty", &["cert"]),
        ("key_garbage", &["key"]),
        ("background_missing_key", &["key"]),
        ("background_mismatch", &["cert", "key"]),
    ] {
        run.is(&format!("{case}.exit"), "1");
        let stderr = run.fact(&format!("{case}.stderr"));
        let paths: Vec<&str> = names
            .iter()
            .map(|n| run.fact(&format!("{case}.{n}")))
            .collect();
        assert!(
            stderr.contains("popa3d: ") && paths.iter().any(|p| stderr.contains(p)),
            "{case}: stderr should name {paths:?}: {stderr}\n{}",
            run.context()
        );
        // Printed once: by the daemon child in the background, not again by its parent.
        assert_eq!(stderr.matches("popa3d: ").count(), 1, "{case}: {stderr}");
        let log = run.log(&format!("{case}.log"));
        assert!(
            !log.iter().any(|(_, t)| t.starts_with("listening on")),
            "{case}: it listened: {log:?}\n{}",
            run.context()
        );
        assert!(
            log.iter()
                .any(|(pri, t)| *pri == CRIT && paths.iter().any(|p| t.contains(p))),
            "{case}: no CRIT line naming {paths:?}: {log:?}\n{}",
            run.context()
        );
    }
}
