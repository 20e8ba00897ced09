//! Privilege separation, proven on the real server (docs/privsep.md): our `popa3d`
//! binary behind the inetd of `scripts/sysenv`, with real accounts, /var/mail and
//! syslog, one session per connection. Each test looks at the server's processes
//! while they are alive, in `/proc/<pid>/status` (Uid, Gid — real, effective, saved and
//! filesystem —, Groups, capabilities, NoNewPrivs, Seccomp, Seccomp_filters),
//! `/proc/<pid>/root` (the chroot), `/proc/<pid>/fd` and `fdinfo` (what is open, and how),
//! `/proc/<pid>/limits` and `/proc/<pid>/syscall` (what it is blocked in):
//!
//! - the pre-auth process: the `popa3d` account, chrooted, no_new_privs, one seccomp
//!   filter, the sandbox's rlimits, holding the client socket, the syslog socket and the
//!   write end of its pipe and nothing else; its root parent blocked reading that pipe;
//! - the session after a login: one process, the mail user (every id, groups), not
//!   chrooted, holding the mailbox, with the pre-auth process and every pipe gone;
//! - the verifier (made slow with an Argon2id passwd-file entry so that it can be
//!   caught): root, not chrooted, outside the seccomp sandbox, gone after the login;
//! - a failed login (wrong password, unknown user, root): the exact reply and log line,
//!   from a process caught as it exits (tests/sysenv/ptrace_tool.py `hold-exit`) with
//!   the `popa3d` account's ids, in the chroot;
//! - a forbidden system call (openat, socket, execve, mmap with PROT_EXEC) made from
//!   inside the live pre-auth process (ptrace_tool.py `inject`, playing an attacker who
//!   has taken it over) kills it with SIGSYS, while the same socket() in its unconfined
//!   parent is executed: the sandbox of the running server, not only of
//!   crates/pop3-sys/tests/sandbox.rs;
//! - the idle timeout in both states and the write timeout, with generous bounds.
//!
//! How a test runs: the `#[test]` function starts `scripts/sysenv` with this very test
//! binary as the command, filtered to itself (`NAME --exact`), with `PRIVSEP_INNER=NAME`
//! in the environment; inside the namespaces that second run sees the variable and does
//! the work (it must: the server's processes live in sysenv's PID namespace, and only
//! there is 127.0.0.1:110 served). A failure inside fails the outer test with the
//! inner's output and the syslog; the scenario directory is kept then.
//!
//! The server is always our `popa3d` (these are properties of our implementation;
//! `POPA3D_SERVER` is not consulted). Needs root; `scripts/test.sh` runs these.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sysenv;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use pop3_sys::sandbox::Limits;

/// Set, to the test's name, in the run inside sysenv.
const INNER: &str = "PRIVSEP_INNER";
/// The scenario directory (host side; visible inside too).
const DIR: &str = "PRIVSEP_DIR";

/// Our reply to every failed login: popa3d's with `[AUTH]` (RFC 3206).
const AUTH_FAILED: &str = "-ERR [AUTH] Authentication failed (bad password?)\r\n";

/// Argon2id of `bobpw`, m = 64 MiB, t = 1, p = 1: 1 to 2 s in a debug build of the
/// server, about 0.1 s in a release build, long enough to catch the verifier. Made with the
/// `argon2` command (Debian package `argon2`), which the test does not need:
/// `printf bobpw | argon2 popa3d-rs-privsep -id -t 1 -m 16 -p 1 -e`.
const BOB_ARGON2ID: &str =
    "$argon2id$v=19$m=65536,t=1,p=1$cG9wYTNkLXJzLXByaXZzZXA$qMSJleiNK042DL/hRKG5eq9a0jUXZJ/L9jpn0VuJQf8";

// ---------------------------------------------------------------------------------
// Outside: run the scenario in scripts/sysenv.

/// What the server is started with.
#[derive(Default)]
struct Setup {
    /// The TOML configuration (`popa3d -c FILE`); `{DIR}` is replaced by the scenario
    /// directory.
    config: Option<&'static str>,
    /// bob's mailbox (else sysenv's built-in two-message mbox).
    mbox: Option<Vec<u8>>,
}

/// Runs `inner` inside scripts/sysenv (see the top of the file): called from the test
/// function `name`, it is the whole test.
fn scenario(name: &str, setup: Setup, inner: impl FnOnce(&Inside)) {
    match std::env::var(INNER) {
        Ok(running) => {
            assert_eq!(running, name, "{INNER} names another test");
            inner(&Inside::new());
        }
        Err(_) => outside(name, setup),
    }
}

/// Our server binary, as cargo built it for this test.
fn our_server() -> PathBuf {
    // `option_env!`: this file also builds in a tree without the binary.
    let path = option_env!("CARGO_BIN_EXE_popa3d").map_or_else(
        || sysenv::repo_root().join("target/debug/popa3d"),
        PathBuf::from,
    );
    assert!(path.is_file(), "server {} does not exist", path.display());
    path
}

fn outside(name: &str, setup: Setup) {
    let dir = std::env::temp_dir().join(format!("privsep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(sysenv::repo_root().join("scripts/sysenv"));
    cmd.arg("--server").arg(our_server());
    if let Some(config) = setup.config {
        let path = dir.join("popa3d.toml");
        let text = config.replace("{DIR}", dir.to_str().unwrap());
        std::fs::write(&path, text).unwrap();
        cmd.arg("--server-arg").arg(format!("-c{}", path.display()));
    }
    if let Some(mbox) = &setup.mbox {
        let path = dir.join("bob.mbox");
        std::fs::write(&path, mbox).unwrap();
        cmd.arg("--mbox").arg(path);
    }
    let syslog_path = dir.join("syslog");
    let output = cmd
        .arg("--log")
        .arg(&syslog_path)
        .args(["--timeout", "300", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--include-ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(INNER, name)
        .env(DIR, &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let syslog = std::fs::read_to_string(&syslog_path).unwrap_or_default();
    // The inner run must have run exactly this test, and passed; sysenv complains on
    // stderr when the server wrote to stderr, when the inetd failed, or when sessions
    // were still running 10 s after the test.
    let ran = stdout.contains("test result: ok. 1 passed");
    let complaints = stderr.lines().any(|l| l.starts_with("sysenv: "));
    if !output.status.success() || !ran || complaints {
        panic!(
            "{name} inside scripts/sysenv: {} (kept {})\n--- stdout:\n{stdout}\n--- stderr:\n\
             {stderr}\n--- syslog:\n{syslog}",
            output.status,
            dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------
// Inside: the environment.

struct Inside {
    dir: PathBuf,
    syslog: PathBuf,
}

impl Inside {
    fn new() -> Inside {
        let var = |name: &str| PathBuf::from(std::env::var_os(name).unwrap());
        Inside {
            dir: var(DIR),
            syslog: var("SYSENV_LOG"),
        }
    }

    /// The syslog so far, parsed.
    fn log_lines(&self) -> Vec<LogLine> {
        std::fs::read_to_string(&self.syslog)
            .unwrap()
            .lines()
            .map(LogLine::parse)
            .collect()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.syslog).unwrap()
    }

    /// Waits (10 s at most) for the line `text` from process `pid`.
    #[track_caller]
    fn wait_log(&self, pid: i32, text: &str) {
        self.wait_log_where(pid, text, |t| t == text);
    }

    /// Waits (10 s at most) for a line from process `pid` that `matches` (`what`
    /// describes it).
    #[track_caller]
    fn wait_log_where(&self, pid: i32, what: &str, matches: impl Fn(&str) -> bool) {
        let found = wait_for(Duration::from_secs(10), || {
            self.log_lines()
                .into_iter()
                .find(|l| l.pid == pid && matches(&l.text))
        });
        assert!(
            found.is_some(),
            "no `popa3d[{pid}]: {what}` in the syslog:\n{}",
            self.log_text()
        );
    }

    /// Every log line of process `pid`.
    fn log_of(&self, pid: i32) -> Vec<String> {
        self.log_lines()
            .into_iter()
            .filter(|l| l.pid == pid)
            .map(|l| l.text)
            .collect()
    }
}

/// `<PRI>Mmm dd hh:mm:ss popa3d[PID]: TEXT`
struct LogLine {
    pid: i32,
    text: String,
}

impl LogLine {
    fn parse(line: &str) -> LogLine {
        let (pid, text) = line
            .split_once("popa3d[")
            .and_then(|(_, rest)| rest.split_once("]: "))
            .unwrap_or_else(|| panic!("not a popa3d log line: {line:?}"));
        LogLine {
            pid: pid.parse().unwrap(),
            text: text.to_owned(),
        }
    }
}

/// Polls `f` every 2 ms until it gives something or `limit` has passed.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An account's uid and gid, from the namespace's /etc/passwd.
fn account(name: &str) -> (u32, u32) {
    let a = pop3_sys::privileges::lookup_user(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no account {name}"));
    (a.uid, a.gid)
}

// ---------------------------------------------------------------------------------
// Inside: /proc.

/// `/proc/PID/stat`: (comm, state, ppid), or `None` once the process is gone.
fn stat(pid: i32) -> Option<(String, char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (left, right) = (s.find('(')?, s.rfind(')')?);
    let comm = s[left + 1..right].to_owned();
    let mut rest = s[right + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// Whether the process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(_, state, _)| state != 'Z')
}

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The children of `pid` (zombies included).
fn children(pid: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|(_, _, ppid)| ppid == pid))
        .collect()
}

/// Every process running the server.
fn server_processes() -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|(comm, state, _)| comm == "popa3d" && state != 'Z'))
        .collect()
}

/// `/proc/PID/status` as key → value.
struct Status(BTreeMap<String, String>);

impl Status {
    fn of(pid: i32) -> Status {
        Status::try_of(pid).unwrap_or_else(|| panic!("process {pid} is gone"))
    }

    fn try_of(pid: i32) -> Option<Status> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(Status(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect(),
        ))
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in /proc/PID/status"))
    }

    fn numbers(&self, key: &str) -> Vec<u32> {
        self.get(key)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }

    /// Uid or Gid: real, effective, saved, filesystem.
    fn ids(&self, key: &str) -> [u32; 4] {
        self.numbers(key).try_into().unwrap()
    }

    fn groups(&self) -> Vec<u32> {
        self.numbers("Groups")
    }

    fn caps(&self, key: &str) -> u64 {
        u64::from_str_radix(self.get(key), 16).unwrap()
    }

    /// Asserts the credentials of an unprivileged process: every uid and gid, the
    /// supplementary groups (`gid` alone), no capability in any set that counts.
    #[track_caller]
    fn assert_user(&self, what: &str, uid: u32, gid: u32) {
        assert_eq!(
            self.ids("Uid"),
            [uid; 4],
            "{what}: Uid (real, effective, saved, fs)"
        );
        assert_eq!(
            self.ids("Gid"),
            [gid; 4],
            "{what}: Gid (real, effective, saved, fs)"
        );
        assert_eq!(self.groups(), [gid], "{what}: supplementary groups");
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(self.caps(set), 0, "{what}: {set}");
        }
    }

    #[track_caller]
    fn assert_root(&self, what: &str) {
        assert_eq!(self.ids("Uid"), [0; 4], "{what}: Uid");
        assert_eq!(self.ids("Gid"), [0; 4], "{what}: Gid");
    }

    /// NoNewPrivs, Seccomp (0 off, 2 filter), Seccomp_filters.
    fn confinement(&self) -> (&str, &str, &str) {
        (
            self.get("NoNewPrivs"),
            self.get("Seccomp"),
            self.get("Seccomp_filters"),
        )
    }
}

fn readlink(pid: i32, what: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/{what}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/{what}: {e}"))
}

/// An open descriptor: what it refers to (`socket:[N]`, `pipe:[N]`, a path) and its
/// open flags.
#[derive(Clone, PartialEq, Eq)]
struct Fd {
    target: String,
    flags: u32,
}

impl std::fmt::Debug for Fd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (flags {:#o})", self.target, self.flags)
    }
}

impl Fd {
    /// O_RDONLY 0, O_WRONLY 1, O_RDWR 2.
    fn access(&self) -> u32 {
        self.flags & 3
    }
}

/// `/proc/PID/fd`, with `fdinfo` flags.
fn fds(pid: i32) -> BTreeMap<i32, Fd> {
    try_fds(pid).unwrap_or_else(|| panic!("/proc/{pid}/fd: the process is gone"))
}

fn try_fds(pid: i32) -> Option<BTreeMap<i32, Fd>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let name = entry.ok()?.file_name();
        let fd: i32 = name.to_str().unwrap().parse().unwrap();
        let Ok(target) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
            continue; // closed meanwhile
        };
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())?;
        out.insert(
            fd,
            Fd {
                target: target.to_string_lossy().into_owned(),
                flags,
            },
        );
    }
    Some(out)
}

/// What the descriptors refer to, without duplicates.
fn targets(fds: &BTreeMap<i32, Fd>) -> BTreeSet<String> {
    fds.values().map(|f| f.target.clone()).collect()
}

/// The descriptors referring to `target`.
fn fds_on(fds: &BTreeMap<i32, Fd>, target: &str) -> Vec<i32> {
    fds.iter()
        .filter(|(_, f)| f.target == target)
        .map(|(&n, _)| n)
        .collect()
}

/// Whether `socket:[N]` is a unix datagram socket (/proc/net/unix, type 0002).
fn is_unix_datagram(target: &str) -> bool {
    let inode = target
        .strip_prefix("socket:[")
        .and_then(|s| s.strip_suffix(']'));
    let Some(inode) = inode else { return false };
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 7 && f[4] == "0002" && f[6] == inode
        })
}

/// `/proc/PID/limits`: (soft, hard) of the limit whose line starts with `name`.
fn limit(pid: i32, name: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/limits"));
    let mut f = line[name.len()..].split_whitespace();
    (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
}

#[cfg(target_arch = "x86_64")]
const SYS_READ: u64 = 0;
#[cfg(target_arch = "aarch64")]
const SYS_READ: u64 = 63;
/// Another architecture: its number of read(2) belongs here (until then the tests that
/// check what a process is blocked in fail).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_READ: u64 = u64::MAX;

/// `/proc/PID/syscall` of a blocked process: (number, first argument); `None` while
/// it runs.
fn blocked_in(pid: i32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut f = s.split_whitespace();
    let nr = f.next()?.parse().ok()?;
    let arg0 = u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
    Some((nr, arg0))
}

// ---------------------------------------------------------------------------------
// Inside: a POP3 client and the server's processes for its connection.

struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to the server and reads the greeting.
    fn connect() -> Client {
        let stream = TcpStream::connect("127.0.0.1:110").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Client { stream, reader };
        assert_eq!(c.line(), "+OK\r\n", "greeting");
        c
    }

    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).unwrap();
        assert!(buf.ends_with(b"\n"), "connection closed after {buf:?}");
        String::from_utf8(buf).unwrap()
    }

    fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// Sends `line` and checks that the reply starts with `want`.
    fn command(&mut self, line: &str, want: &str) -> String {
        self.send(line);
        let reply = self.line();
        assert!(
            reply.starts_with(want),
            "{line}: {reply:?}, expected {want}"
        );
        reply
    }

    fn login(&mut self, user: &str, pass: &str) {
        self.command(&format!("USER {user}"), "+OK");
        self.command(&format!("PASS {pass}"), "+OK");
    }

    /// Everything until the server closes the connection, and how long that took.
    fn rest(&mut self) -> (Vec<u8>, Duration) {
        let start = Instant::now();
        let mut buf = Vec::new();
        self.reader.read_to_end(&mut buf).unwrap();
        (buf, start.elapsed())
    }

    fn port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }
}

/// The server's side of one connection.
struct Session {
    /// The process the inetd started (root until login): its fd 0 is the connection.
    root: i32,
    /// `socket:[N]`: the connection, as the server's descriptors show it.
    socket: String,
}

impl Session {
    /// Finds the server process serving `client`.
    fn of(client: &Client) -> Session {
        let port = client.port();
        let inode = tcp_inode(port).unwrap_or_else(|| panic!("no TCP socket 110 <- {port}"));
        let socket = format!("socket:[{inode}]");
        let root = wait_for(Duration::from_secs(10), || {
            server_processes().into_iter().find(|&p| {
                let parent_is_server = stat(p)
                    .and_then(|(_, _, ppid)| stat(ppid))
                    .is_some_and(|(comm, _, _)| comm == "popa3d");
                !parent_is_server
                    && std::fs::read_link(format!("/proc/{p}/fd/0"))
                        .is_ok_and(|t| t.to_string_lossy() == socket)
            })
        });
        let root = root.unwrap_or_else(|| panic!("no server process for port {port}"));
        Session { root, socket }
    }

    /// The one child of the root process (waits up to 10 s for it).
    fn only_child(&self) -> i32 {
        let kids = wait_for(Duration::from_secs(10), || {
            let k = children(self.root);
            (!k.is_empty()).then_some(k)
        })
        .unwrap_or_else(|| panic!("process {} has no child", self.root));
        assert_eq!(kids.len(), 1, "children of {}: {kids:?}", self.root);
        kids[0]
    }
}

/// The inode of the server side of the TCP connection from local port `port`
/// (/proc/net/tcp: local 127.0.0.1:110, remote port `port`).
fn tcp_inode(port: u16) -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/tcp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port_of = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
        (f.len() >= 10 && port_of(f[1]) == Some(110) && port_of(f[2]) == Some(port))
            .then(|| f[9].to_owned())
    })
}

// ---------------------------------------------------------------------------------
// Inside: tests/sysenv/ptrace_tool.py.

fn ptrace_tool() -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(sysenv::data_dir().join("ptrace_tool.py"));
    cmd
}

/// A process held by `ptrace_tool.py hold-exit`; dropping this lets it go.
struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<std::process::ChildStdout>,
}

impl Held {
    fn attach(pid: i32) -> Held {
        let mut child = ptrace_tool()
            .args(["hold-exit", &pid.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut held = Held { child, stdin, out };
        assert_eq!(
            held.next_line(),
            "attached",
            "ptrace_tool.py hold-exit {pid}"
        );
        held
    }

    fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Waits until the process is stopped at its exit.
    fn exiting(&mut self) {
        let line = self.next_line();
        assert!(line.starts_with("exiting "), "hold-exit: {line:?}");
    }

    fn release(mut self) {
        self.stdin.take();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "ptrace_tool.py hold-exit: {status}");
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------
// The tests.

/// The pre-auth process, caught waiting for the client after the greeting: the
/// `popa3d` account, chrooted, confined; its root parent blocked reading the pipe.
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn preauth_process_is_confined() {
    scenario("preauth_process_is_confined", Setup::default(), |env| {
        let (uid, gid) = account("popa3d");
        let mut client = Client::connect();
        let s = Session::of(&client);
        let preauth = s.only_child();

        // The pre-auth process.
        let st = Status::of(preauth);
        st.assert_user("pre-auth", uid, gid);
        assert_eq!(
            st.confinement(),
            ("1", "2", "1"),
            "pre-auth: NoNewPrivs, Seccomp (2: filter), Seccomp_filters"
        );
        assert_eq!(st.get("Threads"), "1");
        assert_eq!(readlink(preauth, "root"), Path::new("/var/lib/popa3d"));
        assert_eq!(readlink(preauth, "cwd"), Path::new("/var/lib/popa3d"));
        let l = Limits::default();
        for (name, want) in [
            ("Max open files", l.open_files),
            ("Max processes", l.processes),
            ("Max file size", l.file_size),
            ("Max core file size", l.core_size),
            ("Max address space", l.address_space),
        ] {
            let want = (want.to_string(), want.to_string());
            assert_eq!(limit(preauth, name), want, "pre-auth: {name} (soft, hard)");
        }

        // Its root parent: root, blocked in read(2) on the pipe, with nothing open but
        // the client, stderr, the syslog socket and the pipe's read end (inherited
        // descriptors were closed). Looked at once it is blocked: right after the fork it
        // still holds the pipe's write end too.
        let blocked = wait_for(Duration::from_secs(10), || {
            blocked_in(s.root).filter(|&(nr, _)| nr == SYS_READ)
        });
        let parent = fds(s.root);
        let st = Status::of(s.root);
        st.assert_root("root parent");
        assert_eq!(readlink(s.root, "root"), Path::new("/"));
        let stderr = parent[&2].target.clone();
        assert!(!stderr.starts_with("socket:") && !stderr.starts_with("pipe:"));
        assert_eq!(parent[&0].target, s.socket);
        assert_eq!(parent[&1].target, s.socket);
        let others: Vec<(i32, Fd)> = parent
            .iter()
            .filter(|(&n, _)| n > 2)
            .map(|(&n, f)| (n, f.clone()))
            .collect();
        assert_eq!(others.len(), 2, "root parent's descriptors: {parent:?}");
        let syslog = others
            .iter()
            .find(|(_, f)| is_unix_datagram(&f.target))
            .unwrap_or_else(|| panic!("root parent: no syslog socket in {parent:?}"))
            .1
            .target
            .clone();
        let (pipe_fd, pipe) = others
            .iter()
            .find(|(_, f)| f.target.starts_with("pipe:"))
            .unwrap_or_else(|| panic!("root parent: no pipe in {parent:?}"));
        assert_eq!(
            pipe.access(),
            0,
            "root parent's end of the pipe is read-only"
        );
        assert_eq!(
            blocked,
            Some((SYS_READ, *pipe_fd as u64)),
            "the root parent is blocked in read(2) on the pipe; /proc/{}/syscall: {:?}",
            s.root,
            std::fs::read_to_string(format!("/proc/{}/syscall", s.root))
        );

        // The pre-auth process holds the client socket (0 and 1; TimedFd's
        // duplicates), the inetd's stderr (2), the syslog socket and the write end of
        // the pipe to the root parent: nothing else.
        let mine = fds(preauth);
        assert_eq!(mine[&0].target, s.socket);
        assert_eq!(mine[&1].target, s.socket);
        assert_eq!(mine[&2].target, stderr);
        let want: BTreeSet<String> = [&s.socket, &stderr, &syslog, &pipe.target]
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(targets(&mine), want, "pre-auth descriptors: {mine:?}");
        let pipe_ends = fds_on(&mine, &pipe.target);
        assert_eq!(pipe_ends.len(), 1, "pre-auth: {mine:?}");
        assert_eq!(
            mine[&pipe_ends[0]].access(),
            1,
            "pre-auth's end is write-only"
        );
        assert_eq!(fds_on(&mine, &syslog).len(), 1, "pre-auth: {mine:?}");
        eprintln!("pre-auth {preauth} descriptors: {mine:?}");

        // It still works: QUIT, and the root parent logs what popa3d logs.
        client.command("QUIT", "+OK");
        assert_eq!(client.rest().0, b"");
        env.wait_log(s.root, "Didn't attempt authentication");
    });
}

/// After USER bob / PASS bobpw: one process for the connection, bob's in every id, not
/// chrooted, holding the mailbox; the pre-auth process and the pipes are gone.
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn session_runs_as_the_mail_user() {
    scenario("session_runs_as_the_mail_user", Setup::default(), |env| {
        let (uid, gid) = account("bob");
        let mut client = Client::connect();
        let s = Session::of(&client);
        let preauth = s.only_child();
        let before = fds(s.root);
        let stderr = before[&2].target.clone();
        let syslog = before
            .values()
            .find(|f| is_unix_datagram(&f.target))
            .unwrap()
            .target
            .clone();
        client.login("bob", "bobpw");

        // The +OK came from the session, after loading the mailbox: the state is final.
        assert_eq!(server_processes(), [s.root], "server processes after login");
        assert!(stat(preauth).is_none(), "pre-auth {preauth} still exists");
        assert_eq!(children(s.root), Vec::<i32>::new(), "session's children");
        let st = Status::of(s.root);
        st.assert_user("session", uid, gid);
        assert_eq!(
            readlink(s.root, "root"),
            Path::new("/"),
            "session not chrooted"
        );
        assert_eq!(readlink(s.root, "cwd"), Path::new("/"));
        let now = fds(s.root);
        let want: BTreeSet<String> = [&s.socket, &stderr, &syslog]
            .into_iter()
            .cloned()
            .chain(["/var/mail/bob".to_owned()])
            .collect();
        assert_eq!(targets(&now), want, "session descriptors: {now:?}");
        assert_eq!(fds_on(&now, "/var/mail/bob").len(), 1, "{now:?}");
        eprintln!("session {} descriptors: {now:?}", s.root);

        client.command("STAT", "+OK 2 ");
        client.command("QUIT", "+OK");
        assert_eq!(client.rest().0, b"");
        env.wait_log(s.root, "Authentication passed for bob");
        env.wait_log_where(s.root, "0 (0) deleted, N (..) left", |t| {
            t.starts_with("0 (0) deleted, ") && t.ends_with(") left")
        });
    });
}

/// The verifier, caught while it checks an Argon2id hash: root (it must read
/// /etc/shadow or run PAM), not chrooted, no seccomp, a fresh fork of the root parent;
/// gone once the session starts.
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn verifier_is_short_lived_root_outside_the_sandbox() {
    let setup = Setup {
        config: Some("auth = \"passwd-file\"\npasswd_file = \"{DIR}/passwd\"\n"),
        mbox: None,
    };
    scenario(
        "verifier_is_short_lived_root_outside_the_sandbox",
        setup,
        |env| {
            let (uid, gid) = account("bob");
            let passwd = env.dir.join("passwd");
            std::fs::write(
                &passwd,
                format!("bob:{{ARGON2ID}}{BOB_ARGON2ID}:{uid}:{gid}\n"),
            )
            .unwrap();
            std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();

            let mut client = Client::connect();
            let s = Session::of(&client);
            let preauth = s.only_child();
            client.command("USER bob", "+OK");
            client.send("PASS bobpw");

            let verifier = wait_for(Duration::from_secs(30), || {
                children(s.root)
                    .into_iter()
                    .find(|&p| p != preauth && alive(p))
            })
            .expect("no verifier process seen");
            // Right after the fork the verifier still holds both ends of its pipe; it
            // closes the read end before it starts hashing. Wait for that (or its end),
            // then read everything, then check that it is still alive: what was read was
            // the live verifier's.
            let settled = wait_for(Duration::from_secs(30), || {
                let fds = try_fds(verifier)?;
                let pipes = fds.values().filter(|f| f.target.starts_with("pipe:"));
                (pipes.count() == 1).then_some(())
            });
            let blocked = wait_for(Duration::from_secs(10), || {
                blocked_in(s.root).filter(|&(nr, _)| nr == SYS_READ)
            });
            let st = Status::try_of(verifier);
            let root = std::fs::read_link(format!("/proc/{verifier}/root"));
            let vfds = try_fds(verifier);
            let parent = fds(s.root);
            let parent_st = Status::of(s.root);
            assert!(
                settled.is_some()
                    && alive(verifier)
                    && st.is_some()
                    && root.is_ok()
                    && vfds.is_some(),
                "the verifier exited before it could be inspected, or never closed the \
                 read end of its pipe (descriptors: {:?})",
                try_fds(verifier)
            );
            let vfds = vfds.unwrap();
            let st = st.unwrap();
            st.assert_root("verifier");
            assert_eq!(root.unwrap(), Path::new("/"), "verifier not chrooted");
            assert_eq!(
                st.confinement(),
                ("0", "0", "0"),
                "verifier: NoNewPrivs, Seccomp, Seccomp_filters (not the pre-auth's sandbox)"
            );
            assert_eq!(stat(verifier).unwrap().2, s.root, "verifier's parent");
            assert!(stat(preauth).is_none(), "pre-auth still there");
            // It holds the write end of a pipe that its root parent, still root, reads.
            parent_st.assert_root("root parent");
            let pipe = vfds
                .values()
                .find(|f| f.target.starts_with("pipe:"))
                .unwrap_or_else(|| panic!("verifier: no pipe in {vfds:?}"));
            assert_eq!(pipe.access(), 1, "verifier's end is write-only");
            let (pipe_fd, _) = parent
                .iter()
                .find(|(_, f)| f.target == pipe.target)
                .unwrap_or_else(|| panic!("root parent: no {} in {parent:?}", pipe.target));
            assert_eq!(blocked, Some((SYS_READ, *pipe_fd as u64)), "root parent");
            // Fds 0-2 are /dev/null: the verifier, root and possibly running PAM modules,
            // has no access to the client. Nothing else but what the root parent has.
            for fd in 0..=2 {
                assert_eq!(
                    vfds.get(&fd).map(|f| f.target.as_str()),
                    Some("/dev/null"),
                    "verifier fd {fd}"
                );
            }
            let client_socket = &parent[&0].target;
            assert!(
                vfds.values().all(|f| &f.target != client_socket),
                "verifier still holds the client socket: {vfds:?}"
            );
            let allowed = targets(&parent);
            let extra: Vec<&Fd> = vfds
                .values()
                .filter(|f| !allowed.contains(&f.target) && f.target != "/dev/null")
                .collect();
            assert!(
                extra.is_empty(),
                "verifier: unexpected descriptors {extra:?}"
            );
            eprintln!("verifier {verifier} descriptors: {vfds:?}");

            // The login succeeds; the verifier is gone, the session alone remains.
            assert_eq!(client.line(), "+OK\r\n", "PASS");
            assert!(stat(verifier).is_none(), "verifier {verifier} still exists");
            assert_eq!(children(s.root), Vec::<i32>::new());
            assert_eq!(server_processes(), [s.root]);
            Status::of(s.root).assert_user("session", uid, gid);
            client.command("QUIT", "+OK");
            env.wait_log(s.root, "Authentication passed for bob");
        },
    );
}

/// A failed login (wrong password, unknown user, root): popa3d's reply and log line,
/// sent by a process that is the `popa3d` account in the chroot, caught at its exit.
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn failed_logins_are_answered_as_popa3d_in_the_chroot() {
    scenario(
        "failed_logins_are_answered_as_popa3d_in_the_chroot",
        Setup::default(),
        |env| {
            let (uid, gid) = account("popa3d");
            for (user, pass, logged) in [
                ("bob", "wrongpw", "bob"),
                ("nosuchuser", "whatever", "UNKNOWN USER"),
                ("root", "anything", "root"),
            ] {
                let mut client = Client::connect();
                let s = Session::of(&client);
                let stderr = fds(s.root)[&2].target.clone();
                let syslog = fds(s.root)
                    .values()
                    .find(|f| is_unix_datagram(&f.target))
                    .unwrap()
                    .target
                    .clone();
                let mut held = Held::attach(s.root);
                client.command(&format!("USER {user}"), "+OK");
                client.send(&format!("PASS {pass}"));
                assert_eq!(client.line(), AUTH_FAILED, "USER {user}");

                held.exiting();
                let st = Status::of(s.root);
                st.assert_user(&format!("{user}: the failing process"), uid, gid);
                assert_eq!(
                    readlink(s.root, "root"),
                    Path::new("/var/lib/popa3d"),
                    "{user}: the failing process's root"
                );
                let open = fds(s.root);
                let want: BTreeSet<String> = [s.socket.clone(), stderr, syslog].into();
                assert_eq!(
                    targets(&open),
                    want,
                    "{user}: descriptors at exit: {open:?}"
                );
                assert_eq!(children(s.root), Vec::<i32>::new());
                held.release();

                assert_eq!(client.rest().0, b"", "{user}: after the -ERR");
                env.wait_log(s.root, &format!("Authentication failed for {logged}"));
                let log = env.log_of(s.root);
                assert_eq!(log.len(), 1, "{user}: {log:?}");
            }
        },
    );
}

/// A forbidden system call made from inside the live pre-auth process kills it
/// (SIGSYS); the same call in its unconfined root parent is executed.
#[cfg(target_arch = "x86_64")]
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn forbidden_system_calls_kill_the_preauth_process() {
    scenario(
        "forbidden_system_calls_kill_the_preauth_process",
        Setup::default(),
        |env| {
            let inject = |pid: i32, call: &[&str]| -> Vec<String> {
                let out = ptrace_tool()
                    .arg("inject")
                    .arg(pid.to_string())
                    .args(call)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "ptrace_tool.py inject {pid} {call:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect()
            };
            // x86_64 numbers. AT_FDCWD = -100, AF_INET 2, SOCK_STREAM 1; mmap with
            // PROT_READ|PROT_WRITE|PROT_EXEC (7), MAP_PRIVATE|MAP_ANONYMOUS (0x22).
            let calls: [(&str, &[&str]); 4] = [
                ("openat", &["257", "-100", "0", "0"]),
                ("socket", &["41", "2", "1", "0"]),
                ("execve", &["59", "0", "0", "0"]),
                (
                    "mmap PROT_EXEC",
                    &["9", "0", "4096", "7", "0x22", "-1", "0"],
                ),
            ];
            for (name, call) in calls {
                let mut client = Client::connect();
                let s = Session::of(&client);
                let preauth = s.only_child();
                let out = inject(preauth, call);
                assert_eq!(
                    out,
                    [
                        "attached".to_owned(),
                        format!("control: getpid returned {preauth}"),
                        format!("syscall {}: killed by signal 31", call[0]),
                    ],
                    "{name} in the pre-auth process"
                );
                // Reaped by the root parent (it is a zombie until then).
                let reaped = wait_for(Duration::from_secs(10), || {
                    stat(preauth).is_none().then_some(())
                });
                assert!(reaped.is_some(), "{name}: pre-auth {preauth} still exists");
                // The client gets nothing more; nobody was authenticated.
                assert_eq!(client.rest().0, b"", "{name}: after the kill");
                assert!(
                    wait_for(Duration::from_secs(10), || (!alive(s.root)).then_some(())).is_some(),
                    "{name}: the root parent did not exit"
                );
                // The root parent says what happened instead of a harmless-looking line.
                // The logger writes its file a moment after the datagram is sent, so a
                // busy machine may show the line only after the root has exited.
                let said = |log: &Vec<String>| {
                    log.iter()
                        .any(|t| t == "pre-auth process killed by signal 31")
                };
                let log = wait_for(Duration::from_secs(10), || {
                    let log = env.log_of(s.root);
                    said(&log).then_some(log)
                })
                .unwrap_or_else(|| env.log_of(s.root));
                assert!(
                    !log.iter().any(|t| t.starts_with("Authentication")),
                    "{name}: {log:?}"
                );
                assert!(said(&log), "{name}: no CRIT line about the kill in {log:?}");
            }

            // Control: the same socket() in the unconfined root parent is executed (and
            // the tool then kills the process), so the kill above is the sandbox's.
            let client = Client::connect();
            let s = Session::of(&client);
            let out = inject(s.root, &["41", "2", "1", "0"]);
            assert_eq!(out[1], format!("control: getpid returned {}", s.root));
            let ret: i64 = out[2]
                .strip_prefix("syscall 41: returned ")
                .unwrap_or_else(|| panic!("socket() in the root parent: {out:?}"))
                .parse()
                .unwrap();
            assert!(ret >= 0, "socket() in the root parent returned {ret}");
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
        },
    );
}

/// `timeout = 2`: a silent client is disconnected after about 2 s in AUTHORIZATION.
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn idle_timeout_in_authorization() {
    let setup = Setup {
        config: Some("timeout = 2\n"),
        mbox: None,
    };
    scenario("idle_timeout_in_authorization", setup, |env| {
        let mut client = Client::connect();
        let s = Session::of(&client);
        let (rest, waited) = client.rest();
        eprintln!("disconnected after {waited:?}");
        assert_eq!(rest, b"", "nothing is sent on a timeout");
        assert!(
            waited >= Duration::from_millis(1500) && waited <= Duration::from_secs(20),
            "disconnected after {waited:?}, expected about 2 s"
        );
        env.wait_log(s.root, "Didn't attempt authentication");
    });
}

/// `timeout = 2`: a silent client is disconnected after about 2 s in TRANSACTION.
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn idle_timeout_in_transaction() {
    let setup = Setup {
        config: Some("timeout = 2\n"),
        mbox: None,
    };
    scenario("idle_timeout_in_transaction", setup, |env| {
        let mut client = Client::connect();
        let s = Session::of(&client);
        client.login("bob", "bobpw");
        let (rest, waited) = client.rest();
        eprintln!("disconnected after {waited:?}");
        assert_eq!(rest, b"", "nothing is sent on a timeout");
        assert!(
            waited >= Duration::from_millis(1500) && waited <= Duration::from_secs(20),
            "disconnected after {waited:?}, expected about 2 s"
        );
        env.wait_log(s.root, "Connection timed out");
    });
}

/// The size of the message in [`write_timeout_for_a_client_that_stops_reading`]: far
/// more than the socket buffers of a client that never reads can take (on loopback at
/// most about 4 MiB sent + 128 KiB received with Linux's defaults).
const BIG: usize = 16 << 20;

fn big_mbox() -> Vec<u8> {
    let mut m = b"From alice@example.org Mon Jan  1 00:00:00 2024\n\
                  From: Alice <alice@example.org>\nSubject: big\n\n"
        .to_vec();
    let line = [b'x'; 75];
    while m.len() < BIG {
        m.extend_from_slice(&line);
        m.push(b'\n');
    }
    m
}

/// `write_timeout = 2`: a client that sends RETR for a large message and never reads
/// is given up on (the server does not wait for ever, as popa3d does).
#[test]
#[ignore = "needs root and the test environment: run scripts/test.sh"]
fn write_timeout_for_a_client_that_stops_reading() {
    let setup = Setup {
        config: Some("write_timeout = 2\n"),
        mbox: Some(big_mbox()),
    };
    scenario(
        "write_timeout_for_a_client_that_stops_reading",
        setup,
        |env| {
            let mut client = Client::connect();
            let s = Session::of(&client);
            client.login("bob", "bobpw");
            client.send("RETR 1");
            let start = Instant::now();
            let gone = wait_for(Duration::from_secs(60), || (!alive(s.root)).then_some(()));
            let waited = start.elapsed();
            assert!(
                gone.is_some(),
                "the session is still running after {waited:?}"
            );
            assert!(
                waited >= Duration::from_millis(1500) && waited <= Duration::from_secs(30),
                "the session ended {waited:?} after RETR, expected about 2 s after the \
             buffers filled"
            );
            let (got, _) = client.rest();
            eprintln!(
                "session ended {waited:?} after RETR; {} bytes sent",
                got.len()
            );
            assert!(got.starts_with(b"+OK"), "{:?}", &got[..got.len().min(40)]);
            assert!(
                got.len() < BIG,
                "the whole message ({} bytes) was sent to a client that did not read",
                got.len()
            );
            env.wait_log(s.root, "Connection timed out");
        },
    );
}
