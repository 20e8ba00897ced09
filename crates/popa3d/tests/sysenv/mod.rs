//! Helpers for the real-client interop tests (tests/interop.rs): run a scenario inside
//! `scripts/sysenv`, which gives real accounts, /var/mail, syslog and the server under
//! test behind socat on 127.0.0.1:110 and [::1]:110; then read what the clients
//! delivered and compare it, byte for byte, with the messages of the fixture mailbox as
//! popa3d reads them. Nothing here talks POP3 itself: the clients do.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// This directory: fixtures and client helper scripts.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sysenv")
}

pub fn fixture(name: &str) -> PathBuf {
    data_dir().join(name)
}

/// The server under test: `$POPA3D_SERVER` if set (Debian's popa3d is
/// `target/reference/usr/sbin/popa3d`), else our `popa3d` binary as cargo built it for
/// this test.
pub fn server() -> PathBuf {
    let path = match std::env::var_os("POPA3D_SERVER") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                std::env::current_dir().unwrap().join(p)
            }
        }
        // `option_env!`: this file also builds in a tree without the binary.
        _ => option_env!("CARGO_BIN_EXE_popa3d")
            .map_or_else(|| repo_root().join("target/debug/popa3d"), PathBuf::from),
    };
    assert!(
        path.is_file(),
        "server {} does not exist: build it, or set POPA3D_SERVER (Debian's is \
         target/reference/usr/sbin/popa3d, installed by scripts/install-test-deps.sh)",
        path.display()
    );
    path
}

/// Whether the server under test is Debian's popa3d (some answers differ on purpose).
pub fn is_reference(server: &Path) -> bool {
    let reference = repo_root().join("target/reference/usr/sbin/popa3d");
    match (server.canonicalize(), reference.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What a scenario left behind: the files it wrote to `$OUT`, and the syslog.
pub struct Outcome {
    pub out: PathBuf,
    pub server: PathBuf,
    pub syslog: String,
    keep: bool,
}

impl Outcome {
    pub fn path(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name))
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", self.path(name).display(), self.context()))
    }
    pub fn text(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.bytes(name)).into_owned()
    }
    /// The exit status a `run NAME ...` line of the scenario recorded.
    pub fn rc(&self, name: &str) -> i32 {
        self.text(&format!("{name}.rc")).trim().parse().unwrap()
    }
    /// Assert that `run NAME ...` exited with `want`; on failure show its output.
    pub fn assert_rc(&self, name: &str, want: i32) {
        let got = self.rc(name);
        assert_eq!(
            got,
            want,
            "{name} exited with {got}, expected {want}; its output:\n{}\n{}",
            self.text(&format!("{name}.log")),
            self.context()
        );
    }
    /// Every regular file directly in `$OUT/dir`, sorted by name.
    pub fn files(&self, dir: &str) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.path(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        names.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name.parse::<u64>().unwrap_or(u64::MAX), name)
        });
        names.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }
    /// The messages of a Maildir at `$OUT/dir`, in new/ and cur/, in no given order.
    pub fn maildir(&self, dir: &str) -> Vec<Vec<u8>> {
        let mut all = self.files(&format!("{dir}/new"));
        all.extend(self.files(&format!("{dir}/cur")));
        all
    }
    pub fn syslog_lines(&self) -> Vec<&str> {
        self.syslog.lines().collect()
    }
    /// The syslog messages without the `<pri>date host popa3d[pid]: ` prefix.
    pub fn syslog_texts(&self) -> Vec<String> {
        self.syslog
            .lines()
            .map(|l| l.split_once("]: ").map_or(l, |(_, t)| t).to_owned())
            .collect()
    }
    fn context(&self) -> String {
        format!(
            "(server {}; scenario output kept in {})\nsyslog:\n{}",
            self.server.display(),
            self.out.display(),
            self.syslog
        )
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // Keep the evidence of a failed test (or of every test with INTEROP_KEEP set).
        if !self.keep && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.out);
        }
    }
}

/// Shell functions and files every scenario gets (it runs with `bash`, as root, in the
/// environment of scripts/sysenv, with `$OUT` the host directory for its results and
/// `$DATA` this directory).
const PRELUDE: &str = r#"set -euo pipefail
cd "$SYSENV_TMP"
# run NAME COMMAND...: run COMMAND, its output to $OUT/NAME.log, its status to NAME.rc.
run() {
    local name=$1 rc=0
    shift
    "$@" >"$OUT/$name.log" 2>&1 || rc=$?
    echo "$rc" >"$OUT/$name.rc"
}
# save_mailbox NAME: copy /var/mail/bob to $OUT/NAME (absent if there is none).
save_mailbox() {
    if [ -e /var/mail/bob ]; then cp /var/mail/bob "$OUT/$1"; fi
}
# A fetchmail MDA: store the message from stdin as the next numbered file in $1.
cat >"$SYSENV_TMP/deliver" <<'EOF'
#!/bin/sh
set -e
n=$(ls "$1" | wc -l)
exec cat >"$1/$((n + 1))"
EOF
chmod 0755 "$SYSENV_TMP/deliver"
"#;

/// Run `script` (bash) inside scripts/sysenv with the server under test, `mbox` as bob's
/// mailbox. Panics unless the script exits 0.
pub fn run(name: &str, mbox: &Path, script: &str) -> Outcome {
    let server = server();
    let out = std::env::temp_dir().join(format!("interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script_path = out.join("scenario.sh");
    std::fs::write(&script_path, format!("{PRELUDE}\n{script}")).unwrap();
    let syslog_path = out.join("syslog");
    let output = Command::new(repo_root().join("scripts/sysenv"))
        .arg("--server")
        .arg(&server)
        .arg("--mbox")
        .arg(mbox)
        .arg("--log")
        .arg(&syslog_path)
        .args(["--timeout", "300", "--", "bash"])
        .arg(&script_path)
        .env("OUT", &out)
        .env("DATA", data_dir())
        .output()
        .unwrap();
    let syslog = std::fs::read_to_string(&syslog_path).unwrap_or_default();
    let outcome = Outcome {
        out,
        server,
        syslog,
        keep: std::env::var_os("INTEROP_KEEP").is_some(),
    };
    if !output.status.success() {
        let mut outcome = outcome;
        outcome.keep = true;
        panic!(
            "scenario {name} failed ({}):\nstdout:\n{}\nstderr:\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            outcome.context()
        );
    }
    // scripts/sysenv complains on stderr when the server wrote to stderr (under inetd
    // that is the client's socket), when the inetd failed, or when sessions were still
    // running 10 s after the clients had finished.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.lines().any(|l| l.starts_with("sysenv: ")),
        "scenario {name}:\n{stderr}\n{}",
        outcome.context()
    );
    outcome
}

// ---------------------------------------------------------------------------------
// The fixture as popa3d reads it.

/// One message of an mbox, as popa3d serves it.
#[derive(Clone, Debug)]
pub struct Message {
    /// The message as the client gets it after undoing the wire format (CRLF to LF,
    /// dot-unstuffing): the lines after the From_ line, without the separating blank
    /// line, ending with LF.
    pub data: Vec<u8>,
    /// The byte range of the whole entry in the mbox (From_ line to the next one).
    pub raw: std::ops::Range<usize>,
}

impl Message {
    /// The same with every LF as CRLF (what curl writes out).
    pub fn crlf(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() * 2);
        for &b in &self.data {
            if b == b'\n' {
                v.push(b'\r');
            }
            v.push(b);
        }
        v
    }
    /// The size LIST reports: every LF counted as CRLF.
    pub fn pop_size(&self) -> usize {
        self.data.len() + self.data.iter().filter(|&&b| b == b'\n').count()
    }
    /// What `TOP n k` gives: the headers, the blank line and `k` body lines.
    pub fn top(&self, k: usize) -> Vec<u8> {
        let mut end = 0;
        let mut in_body = false;
        let mut left = k + 1;
        for line in self.data.split_inclusive(|&b| b == b'\n') {
            if !in_body && line == b"\n" {
                in_body = true;
            }
            if in_body {
                if left == 0 {
                    break;
                }
                left -= 1;
            }
            end += line.len();
        }
        self.data[..end].to_vec()
    }
    pub fn message_id(&self) -> String {
        message_id(&self.data)
    }
}

/// The `Message-ID:` of a message, or `?`.
pub fn message_id(msg: &[u8]) -> String {
    msg.split(|&b| b == b'\n')
        .take_while(|l| !l.is_empty())
        .find(|l| l.len() > 11 && l[..11].eq_ignore_ascii_case(b"message-id:"))
        .map_or("?".into(), |l| {
            String::from_utf8_lossy(&l[11..]).trim().to_owned()
        })
}

/// Split an mbox by popa3d's rules: a message starts at a `From ` line that follows a
/// blank line (or starts the file); the blank line before the next From_ line is a
/// separator, dropped if the message has a body. Panics on a mailbox popa3d rejects.
pub fn mbox_messages(mbox: &[u8]) -> Vec<Message> {
    struct Open {
        start: usize,
        data: Vec<u8>,
        seen_blank: bool,
        has_body: bool,
        last_blank: bool,
    }
    fn close(open: Open, end: usize, out: &mut Vec<Message>) {
        let mut data = open.data;
        if open.has_body && open.last_blank {
            data.pop();
        }
        // popa3d ends a message without a final LF with CRLF on the wire.
        if data.last().is_some_and(|&b| b != b'\n') {
            data.push(b'\n');
        }
        out.push(Message {
            data,
            raw: open.start..end,
        });
    }
    let mut out = Vec::new();
    let mut cur: Option<Open> = None;
    let mut prev_blank = true;
    let mut offset = 0;
    for line in mbox.split_inclusive(|&b| b == b'\n') {
        if prev_blank && line.starts_with(b"From ") {
            if let Some(open) = cur.take() {
                close(open, offset, &mut out);
            }
            cur = Some(Open {
                start: offset,
                data: Vec::new(),
                seen_blank: false,
                has_body: false,
                last_blank: false,
            });
            prev_blank = false;
        } else {
            let open = cur.as_mut().expect("data before the first From_ line");
            let blank = line == b"\n";
            if open.seen_blank {
                open.has_body = true;
            } else if blank {
                open.seen_blank = true;
            }
            open.data.extend_from_slice(line);
            open.last_blank = blank;
            prev_blank = blank;
        }
        offset += line.len();
    }
    if let Some(open) = cur.take() {
        close(open, offset, &mut out);
    }
    out
}

pub fn fixture_messages(name: &str) -> Vec<Message> {
    mbox_messages(&std::fs::read(fixture(name)).unwrap())
}

/// The mailbox after deleting messages (1-based numbers) and QUIT: popa3d removes each
/// deleted message's whole entry, From_ line to the next From_ line.
pub fn mbox_without(mbox: &[u8], deleted: &[usize]) -> Vec<u8> {
    let msgs = mbox_messages(mbox);
    let mut out = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if !deleted.contains(&(i + 1)) {
            out.extend_from_slice(&mbox[m.raw.clone()]);
        }
    }
    out
}

/// Split an mbox written by a client in mboxrd format (getmail6 `Mboxrd`, mpop's
/// `mbox` delivery): every unquoted `From ` line starts a message, the writer added one
/// blank line after each message, and `>From `, `>>From `... lose one `>`.
pub fn mboxrd_messages(mbox: &[u8]) -> Vec<Vec<u8>> {
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    for line in mbox.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            msgs.push(Vec::new());
            continue;
        }
        let msg = msgs
            .last_mut()
            .expect("mboxrd: data before the first From_ line");
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            msg.extend_from_slice(&line[1..]);
        } else {
            msg.extend_from_slice(line);
        }
    }
    for msg in &mut msgs {
        assert!(
            msg.ends_with(b"\n\n"),
            "mboxrd: a message without the separating blank line: {}",
            message_id(msg)
        );
        msg.pop();
    }
    msgs
}

/// Where two byte strings first differ, as `line N: "expected" vs "got"`.
pub fn first_difference(want: &[u8], got: &[u8]) -> String {
    let wl: Vec<&[u8]> = want.split_inclusive(|&b| b == b'\n').collect();
    let gl: Vec<&[u8]> = got.split_inclusive(|&b| b == b'\n').collect();
    for i in 0..wl.len().max(gl.len()) {
        let (w, g) = (wl.get(i), gl.get(i));
        if w != g {
            let show = |l: Option<&&[u8]>| {
                l.map_or("(end)".to_owned(), |l| {
                    let s = format!("{:?}", String::from_utf8_lossy(l));
                    if s.len() > 120 {
                        format!("{}... ({} bytes)", &s[..100], l.len())
                    } else {
                        s
                    }
                })
            };
            return format!("line {}: expected {} got {}", i + 1, show(w), show(g));
        }
    }
    "identical".into()
}

/// For each expected message, whether `got` holds it byte for byte: `Ok(())`, or
/// `Err(how it differs)` from the delivered message with the same Message-ID.
pub fn match_messages(expected: &[Message], got: &[Vec<u8>]) -> Vec<(String, Result<(), String>)> {
    expected
        .iter()
        .map(|m| {
            let id = m.message_id();
            let verdict = if got.contains(&m.data) {
                Ok(())
            } else {
                match got.iter().find(|g| message_id(g) == id) {
                    Some(g) => Err(first_difference(&m.data, g)),
                    None => Err("not delivered".into()),
                }
            };
            (id, verdict)
        })
        .collect()
}

/// Assert that `got` holds exactly the expected messages, each byte for byte, in any
/// order (Maildir names do not keep the order).
pub fn assert_messages(client: &str, expected: &[Message], got: &[Vec<u8>]) {
    let mut report = String::new();
    for (id, verdict) in match_messages(expected, got) {
        if let Err(how) = verdict {
            writeln!(report, "  {id}: {how}").unwrap();
        }
    }
    if got.len() != expected.len() {
        writeln!(
            report,
            "  {} messages delivered, {} expected",
            got.len(),
            expected.len()
        )
        .unwrap();
    }
    assert!(
        report.is_empty(),
        "{client}: messages not delivered byte for byte:\n{report}"
    );
}

// ---------------------------------------------------------------------------------
// Scenarios that start their own servers (tests/activation.rs, tests/daemon.rs).

/// Run `script` (bash) inside scripts/sysenv without its inetd on port 110: the scenario
/// starts the servers it needs itself (`$POPA3D_BIN` is `server`) and stops them, by
/// pid, before it exits. `mbox` is bob's mailbox; the whole run may take `timeout_secs`.
/// Panics unless the script exits 0 and every process it started is gone when it does.
pub fn run_own_servers(
    name: &str,
    server: &Path,
    mbox: &Path,
    timeout_secs: u32,
    script: &str,
) -> Outcome {
    let out = std::env::temp_dir().join(format!("sysenv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script_path = out.join("scenario.sh");
    std::fs::write(&script_path, format!("{PRELUDE}\n{script}")).unwrap();
    let syslog_path = out.join("syslog");
    let output = Command::new(repo_root().join("scripts/sysenv"))
        .arg("--mbox")
        .arg(mbox)
        .arg("--log")
        .arg(&syslog_path)
        .args(["--timeout", &timeout_secs.to_string(), "--", "bash"])
        .arg(&script_path)
        .env("OUT", &out)
        .env("DATA", data_dir())
        .env("POPA3D_BIN", server)
        .output()
        .unwrap();
    let syslog = std::fs::read_to_string(&syslog_path).unwrap_or_default();
    let mut outcome = Outcome {
        out,
        server: server.to_owned(),
        syslog,
        keep: std::env::var_os("INTEROP_KEEP").is_some(),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    // scripts/sysenv says `sysenv: ...` when processes outlived the scenario.
    if !output.status.success() || stderr.lines().any(|l| l.starts_with("sysenv: ")) {
        outcome.keep = true;
        panic!(
            "scenario {name} failed ({}):\nstdout:\n{}\nstderr:\n{stderr}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            outcome.context()
        );
    }
    outcome
}

impl Outcome {
    /// Where the scenario's files are and the whole syslog, for assertion messages.
    pub fn describe(&self) -> String {
        self.context()
    }
}

// ---------------------------------------------------------------------------------
// Scenarios that record facts (tests/activation.rs, tests/tls.rs, tests/tls_isolation.rs):
// a Python script here drives and observes, and writes `$OUT/facts`, one `key=value` per
// line with bytes escaped (scenario_common.py); the test judges.

/// Syslog priorities (facility daemon): what popa3d writes, and so fail2ban matches.
pub const INFO: u8 = 30;
pub const NOTICE: u8 = 29;
pub const CRIT: u8 = 26;

/// Fails with a clear message unless `tool` (from Debian's `package`) is installed.
pub fn require(tool: &str, package: &str) {
    let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(tool).is_file());
    assert!(
        found,
        "{tool} not found: install Debian's {package} package (scripts/install-test-deps.sh)"
    );
}

/// One syslog line: `<PRI>Mmm dd hh:mm:ss popa3d[PID]: TEXT`.
#[derive(Debug)]
pub struct Entry {
    pub pri: u8,
    pub pid: u32,
    pub text: String,
}

pub fn parse_syslog(log: &str) -> Vec<Entry> {
    log.lines()
        .map(|l| {
            let pri = l
                .strip_prefix('<')
                .and_then(|r| r.split_once('>'))
                .and_then(|(p, _)| p.parse().ok())
                .unwrap_or_else(|| panic!("syslog line without a priority: {l:?}"));
            let (head, text) = l
                .split_once("]: ")
                .unwrap_or_else(|| panic!("syslog line without `]: `: {l:?}"));
            let pid = head
                .rsplit_once("popa3d[")
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or_else(|| panic!("syslog line without popa3d[PID]: {l:?}"));
            Entry {
                pri,
                pid,
                text: text.to_owned(),
            }
        })
        .collect()
}

/// A scenario's outcome: its facts and the syslog. Each test adds the assertions of its
/// own facts in an `impl Run` of its own.
pub struct Run {
    pub o: Outcome,
    pub facts: BTreeMap<String, String>,
}

impl Run {
    /// Runs scenario `name` of `script` (a file here, which takes the scenario's name as
    /// its one argument) with [`run_own_servers`]: `server`, bob's mailbox `mbox` (a
    /// fixture), `timeout_secs` for the whole run.
    pub fn scenario(script: &str, name: &str, server: &Path, mbox: &str, timeout_secs: u32) -> Run {
        let o = run_own_servers(
            name,
            server,
            &fixture(mbox),
            timeout_secs,
            &format!(r#"python3 "$DATA/{script}" {name}"#),
        );
        let facts = String::from_utf8(o.bytes("facts"))
            .unwrap()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Run { o, facts }
    }

    pub fn has(&self, key: &str) -> bool {
        self.facts.contains_key(key)
    }

    pub fn fact(&self, key: &str) -> &str {
        self.facts.get(key).map_or_else(
            || {
                panic!(
                    "the scenario recorded no `{key}`; facts: {:#?}\n{}",
                    self.facts,
                    self.o.describe()
                )
            },
            String::as_str,
        )
    }

    pub fn assert_fact(&self, key: &str, want: &str) {
        let got = self.fact(key);
        assert_eq!(got, want, "fact `{key}`\n{}", self.o.describe());
    }

    pub fn assert_prefix(&self, key: &str, want: &str) {
        let got = self.fact(key);
        assert!(
            got.starts_with(want),
            "fact `{key}` is {got:?}, expected it to start with {want:?}\n{}",
            self.o.describe()
        );
    }

    pub fn syslog(&self) -> Vec<Entry> {
        parse_syslog(&self.o.syslog)
    }

    pub fn describe(&self) -> String {
        self.o.describe()
    }
}
