//! The key holder process ([`pop3_tls::holder::Holder`]) from outside: real processes,
//! real TLS 1.3 and 1.2 handshakes whose signature the holder makes, its confinement as
//! /proc shows it, and its lifetime.
//!
//! `Holder::spawn` forks, and pop3-sys refuses to fork a multi-threaded process, which a
//! libtest process always is. pop3-sys's own scenario harness starts scenarios from
//! `.init_array`, which needs `#[link_section]`, an unsafe attribute this crate forbids.
//! So this test has no libtest harness (`harness = false` in Cargo.toml): [`main`] runs
//! every scenario in a fresh copy of this binary (with [`ENV`] naming it), each of which
//! starts single-threaded with std's runtime set up, and reports like libtest. Arguments
//! that do not start with `-` filter scenarios by name.
//!
//! None of these needs root; a scenario started as root drops to nobody where the
//! difference matters (not dumpable). Counting the holder's descriptors in /proc/PID/fd
//! does (the holder is not dumpable): without root those counts are skipped, and the
//! scenario on a full idle set shows the same through the channels themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{p256, rsa, TestKey};
use pop3_sys::process::{self, Exit, Fork, Pid};
use pop3_tls::holder::{Holder, HolderError, SPARE_DESCRIPTORS};
use pop3_tls::keyholder::{read_response, HolderKey, Request, ResponseError};
use pop3_tls::relay::pump;
use pop3_tls::remote::{server_config, RemoteError, RemoteSigningKey};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, SignatureScheme};

/// Set to a scenario's name in the copy of this binary that runs it.
const ENV: &str = "POP3_TLS_HOLDER_SCENARIO";

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn ok<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

type Scenario = fn() -> Outcome;

/// Each scenario, with the name libtest would have shown for it.
const SCENARIOS: &[(&str, Scenario)] = &[
    (
        "holder_reports_each_keys_public_key_and_reaps_its_children",
        public_keys,
    ),
    (
        "tls13_and_tls12_handshakes_are_signed_by_the_holder",
        handshakes,
    ),
    ("unreadable_key_files_are_named", key_errors),
    (
        "a_silent_channel_does_not_block_another",
        silent_channel_blocks_no_one,
    ),
    (
        "a_partial_request_is_closed_after_the_request_timeout",
        partial_request_times_out,
    ),
    (
        "a_channel_idle_longer_than_the_request_timeout_is_still_answered",
        late_request_answered,
    ),
    (
        "idle_channels_cost_no_process",
        idle_channels_cost_no_process,
    ),
    (
        "a_channel_closed_before_its_request_is_dropped",
        closed_channels_dropped,
    ),
    ("a_full_idle_set_closes_its_oldest_channel", full_idle_set),
    ("a_channel_answers_one_request", one_request_per_channel),
    ("dropping_the_holder_ends_it", drop_ends_holder),
    ("holder_is_confined_and_not_dumpable", confined),
    ("holder_keeps_no_inherited_descriptor", descriptors),
];

fn main() -> ExitCode {
    if let Some(name) = std::env::var_os(ENV) {
        let name = name.to_string_lossy();
        let Some((_, scenario)) = SCENARIOS.iter().find(|(n, _)| *n == name) else {
            eprintln!("FAILED: unknown scenario {name:?}");
            return ExitCode::FAILURE;
        };
        return match scenario() {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("FAILED: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<&str> = SCENARIOS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let exe = std::env::current_exe().unwrap();
    // All at once, each in its own process.
    let runs: Vec<_> = chosen
        .iter()
        .map(|&name| {
            let exe = exe.clone();
            let run = thread::spawn(move || {
                Command::new(exe)
                    .env(ENV, name)
                    .stdin(Stdio::null())
                    .output()
            });
            (name, run)
        })
        .collect();
    let mut failed = Vec::new();
    for (name, run) in runs {
        match run.join().unwrap() {
            Ok(out) if out.status.success() => println!("test {name} ... ok"),
            Ok(out) => {
                println!("test {name} ... FAILED");
                failed.push((
                    name,
                    format!("{}\n{}", out.status, String::from_utf8_lossy(&out.stderr)),
                ));
            }
            Err(e) => {
                println!("test {name} ... FAILED");
                failed.push((name, format!("cannot run: {e}")));
            }
        }
    }
    for (name, why) in &failed {
        println!("\n---- {name} ----\n{why}");
    }
    println!(
        "\ntest result: {}. {} passed; {} failed\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Fixtures

/// A directory of key files, removed on drop.
struct KeyDir(PathBuf);

impl KeyDir {
    fn new(tag: &str) -> Result<KeyDir, String> {
        let dir =
            std::env::temp_dir().join(format!("pop3-tls-holder-{}-{tag}", std::process::id()));
        ok("mkdir", std::fs::create_dir(&dir))?;
        Ok(KeyDir(dir))
    }

    fn write(&self, name: &str, contents: &str) -> Result<PathBuf, String> {
        let path = self.0.join(name);
        ok("write key", std::fs::write(&path, contents))?;
        Ok(path)
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A holder for the committed RSA key (index 0) and a fresh P-256 key (index 1).
struct Fixture {
    _dir: KeyDir,
    keys: [TestKey; 2],
    holder: Holder,
}

fn fixture(tag: &str, request_timeout: Duration) -> Result<Fixture, String> {
    let dir = KeyDir::new(tag)?;
    let keys = [rsa(), p256()];
    let paths = [
        dir.write("rsa.pem", &keys[0].pem)?,
        dir.write("p256.pem", &keys[1].pem)?,
    ];
    let holder = Holder::spawn(&paths, request_timeout).map_err(|e| format!("spawn: {e}"))?;
    Ok(Fixture {
        _dir: dir,
        keys,
        holder,
    })
}

fn public_key_of(key: &TestKey) -> Vec<u8> {
    let local = HolderKey::from_pem(key.pem.as_bytes()).unwrap();
    local.public_key().unwrap().as_ref().to_vec()
}

/// Waits up to `TIMEOUT` for child `pid` to end, without blocking for ever.
fn wait_ended(pid: Pid) -> Result<Exit, String> {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if let Some((p, exit)) = ok("try_wait_any", process::try_wait_any())? {
            ensure!(p == pid, "reaped {p:?}, expected {pid:?}");
            return Ok(exit);
        }
        thread::sleep(Duration::from_millis(10));
    }
    Err(format!("{pid:?} still running after {TIMEOUT:?}"))
}

fn status_field(pid: Pid, key: &str) -> Result<String, String> {
    let status = ok(
        "status",
        std::fs::read_to_string(format!("/proc/{}/status", pid.as_raw())),
    )?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .ok_or_else(|| format!("no {key} in /proc/{}/status", pid.as_raw()))
}

/// Polls until `done` holds, for at most `TIMEOUT`.
fn eventually(what: &str, mut done: impl FnMut() -> Result<bool, String>) -> Outcome {
    let start = Instant::now();
    while !done()? {
        ensure!(start.elapsed() < TIMEOUT, "{what}: not within {TIMEOUT:?}");
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The processes whose parent is `pid`, from the `ppid` field of every /proc/N/stat
/// (readable whoever owns the process).
fn children_of(pid: Pid) -> Result<Vec<i32>, String> {
    let mut children = Vec::new();
    for entry in ok("/proc", std::fs::read_dir("/proc"))? {
        let Ok(entry) = entry else { continue };
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // Gone since the listing: not a child any more.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "N (comm) S PPID ...": comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pid.as_raw()) {
            children.push(n);
        }
    }
    Ok(children)
}

/// How many descriptors `pid` has open, or `None` if /proc/PID/fd cannot be listed: the
/// holder is not dumpable, so only root (`CAP_SYS_PTRACE`) may.
fn fd_count(pid: Pid) -> Result<Option<usize>, String> {
    match std::fs::read_dir(format!("/proc/{}/fd", pid.as_raw())) {
        Ok(dir) => Ok(Some(dir.count())),
        Err(e) if e.kind() == ErrorKind::PermissionDenied && pop3_sys::privileges::euid() != 0 => {
            Ok(None)
        }
        Err(e) => Err(format!("/proc/{}/fd: {e}", pid.as_raw())),
    }
}

/// Waits until the holder has `want` descriptors open (skipped without root).
fn holder_fds_reach(pid: Pid, want: usize) -> Outcome {
    if fd_count(pid)?.is_none() {
        eprintln!("not root: /proc/{}/fd not checked", pid.as_raw());
        return Ok(());
    }
    let mut last = 0;
    eventually(&format!("holder descriptors to reach {want}"), || {
        last = fd_count(pid)?.unwrap_or(0);
        Ok(last == want)
    })
    .map_err(|e| format!("{e}; last count {last}"))
}

/// Whether `r` reads end of file (the holder closed its end) within `wait`; `false` if
/// it is still open and silent after that.
fn reads_eof(r: &UnixStream, wait: Duration) -> Result<bool, String> {
    ok("timeout", r.set_read_timeout(Some(wait)))?;
    match (&*r).read(&mut [0u8; 1]) {
        Ok(0) => Ok(true),
        Ok(_) => Err("unexpected byte from the holder".into()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(true),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// Asks for the public key on `channel` and checks the answer.
fn ask_public_key(channel: &UnixStream, key: &TestKey) -> Outcome {
    ok("write", (&*channel).write_all(&Request::PublicKey.encode()))?;
    ok("timeout", channel.set_read_timeout(Some(TIMEOUT)))?;
    let spki = read_response(channel).map_err(|e| e.to_string())?;
    ensure!(spki == public_key_of(key), "wrong public key");
    Ok(())
}

/// A TLS 1.3 CertificateVerify signature request (RFC 8446 §4.4.3) for a P-256 key.
fn sign_request() -> Vec<u8> {
    let mut message = vec![0x20; 64];
    message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
    message.extend_from_slice(&[0x5a; 32]);
    Request::Sign {
        scheme: SignatureScheme::ECDSA_NISTP256_SHA256,
        message,
    }
    .encode()
}

// ---------------------------------------------------------------------------------------
// A handshake whose signature the holder makes: a rustls client on loopback TCP, the
// relay loop (pump) with a RemoteSigningKey on a holder channel, and a plaintext
// "session" that greets, echoes one line and closes.

fn handshake(
    holder: &Holder,
    index: usize,
    key: &TestKey,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<ProtocolVersion, String> {
    let channel = ok("channel", holder.channel(index))?;
    handshake_on(holder, channel, index, key, version)
}

/// [`handshake`] with the signature asked for on `channel`, a channel for key `index`
/// made earlier.
fn handshake_on(
    holder: &Holder,
    channel: UnixStream,
    index: usize,
    key: &TestKey,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<ProtocolVersion, String> {
    let spki = holder
        .public_key(index, TIMEOUT)
        .map_err(|e| format!("public key: {e}"))?;
    let signing =
        RemoteSigningKey::new(channel, spki, TIMEOUT).map_err(|e| format!("signing key: {e}"))?;
    let config = server_config(key.chain.clone(), signing).map_err(|e| format!("config: {e}"))?;

    let listener = ok("bind", TcpListener::bind("127.0.0.1:0"))?;
    let addr = ok("addr", listener.local_addr())?;
    let (plain_relay, plain_session) = ok("socketpair", UnixStream::pair())?;
    let relay = thread::spawn(move || {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
        plain_relay.set_write_timeout(Some(TIMEOUT)).unwrap();
        let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
        pump(conn, tcp, plain_relay, TIMEOUT).map_err(|e| e.to_string())
    });
    let session = thread::spawn(move || -> std::io::Result<String> {
        plain_session.set_read_timeout(Some(TIMEOUT))?;
        (&plain_session).write_all(b"+OK ready\r\n")?;
        let mut line = String::new();
        BufReader::new(&plain_session).read_line(&mut line)?;
        (&plain_session).write_all(format!("+OK {line}").as_bytes())?;
        Ok(line)
    });

    let mut roots = RootCertStore::empty();
    roots.add(key.chain[0].clone()).unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = ok("connect", TcpStream::connect(addr))?;
    ok("timeout", tcp.set_read_timeout(Some(TIMEOUT)))?;
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    let mut client = rustls::StreamOwned::new(conn, tcp);
    let line = ok("read greeting", read_line(&mut client))?;
    ensure!(line == "+OK ready\r\n", "greeting {line:?}");
    ok("write", client.write_all(b"CAPA\r\n"))?;
    let line = ok("read reply", read_line(&mut client))?;
    ensure!(line == "+OK CAPA\r\n", "reply {line:?}");
    let negotiated = client
        .conn
        .protocol_version()
        .ok_or("no protocol version")?;

    let echoed = session.join().unwrap();
    ensure!(
        matches!(&echoed, Ok(l) if l == "CAPA\r\n"),
        "session saw {echoed:?}"
    );
    let ended = relay.join().unwrap();
    ensure!(ended.is_ok(), "relay: {ended:?}");
    Ok(negotiated)
}

/// One line, read byte by byte (nothing after it is consumed).
fn read_line<R: Read>(r: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        if r.read(&mut byte)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

// ---------------------------------------------------------------------------------------
// Scenarios

fn public_keys() -> Outcome {
    let f = fixture("spki", TIMEOUT)?;
    ensure!(f.holder.keys() == 2, "keys() = {}", f.holder.keys());
    for (index, key) in f.keys.iter().enumerate() {
        let spki = f
            .holder
            .public_key(index, TIMEOUT)
            .map_err(|e| format!("key {index}: {e}"))?;
        ensure!(
            spki.as_ref() == public_key_of(key),
            "key {index}: the holder's SPKI is not the key's"
        );
    }
    let e = f.holder.channel(2).map(drop);
    ensure!(
        e.as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::InvalidInput),
        "channel(2) of 2 keys: {e:?}"
    );
    ensure!(
        matches!(f.holder.public_key(2, TIMEOUT), Err(RemoteError::Io(_))),
        "public_key(2) did not fail"
    );
    // Many channels, one child each: all answered, and none is left a zombie.
    for i in 0..50 {
        let spki = f
            .holder
            .public_key(i % 2, TIMEOUT)
            .map_err(|e| format!("request {i}: {e}"))?;
        ensure!(
            spki.as_ref() == public_key_of(&f.keys[i % 2]),
            "request {i}"
        );
    }
    let pid = f.holder.pid().as_raw();
    let children = format!("/proc/{pid}/task/{pid}/children");
    let start = Instant::now();
    loop {
        let list = ok("children", std::fs::read_to_string(&children))?;
        if list.trim().is_empty() {
            break;
        }
        ensure!(
            start.elapsed() < TIMEOUT,
            "the holder still has children (zombies?): {list}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn handshakes() -> Outcome {
    let f = fixture("handshakes", TIMEOUT)?;
    for (index, name) in [(0, "RSA"), (1, "P-256")] {
        for (version, expected) in [
            (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
            (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
        ] {
            let got = handshake(&f.holder, index, &f.keys[index], version)
                .map_err(|e| format!("{name} {expected:?}: {e}"))?;
            ensure!(got == expected, "{name}: negotiated {got:?}");
            eprintln!("{name} {expected:?}: handshake signed by the holder");
        }
    }
    // The certificate of one key with the other key's holder channel is refused before
    // any handshake: the holder reports the key it really holds.
    let spki = f.holder.public_key(1, TIMEOUT).map_err(|e| e.to_string())?;
    let channel = ok("channel", f.holder.channel(1))?;
    let signing = RemoteSigningKey::new(channel, spki, TIMEOUT).map_err(|e| e.to_string())?;
    ensure!(
        matches!(
            server_config(f.keys[0].chain.clone(), signing),
            Err(RemoteError::KeyMismatch(_))
        ),
        "RSA certificate accepted with the P-256 key"
    );
    Ok(())
}

fn key_errors() -> Outcome {
    let dir = KeyDir::new("errors")?;
    let good = dir.write("good.pem", &p256().pem)?;
    let garbage = dir.write("garbage.pem", "this is not a key\n")?;
    let missing = dir.0.join("missing.pem");
    let cert_only = dir.write(
        "cert.pem",
        &format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            "QUJD"
        ),
    )?;

    for (paths, index, path, words) in [
        (
            vec![good.clone(), missing.clone()],
            1,
            &missing,
            "No such file",
        ),
        (
            vec![garbage.clone(), good.clone()],
            0,
            &garbage,
            "no PEM private key",
        ),
        (
            vec![good.clone(), good.clone(), cert_only.clone()],
            2,
            &cert_only,
            "no PEM private key",
        ),
    ] {
        let e = match Holder::spawn(&paths, TIMEOUT) {
            Err(e) => e,
            Ok(h) => return Err(format!("{path:?}: spawned {:?}", h.pid())),
        };
        let text = e.to_string();
        let HolderError::Key {
            index: i,
            path: p,
            reason,
        } = e
        else {
            return Err(format!("{path:?}: {text}"));
        };
        ensure!(
            i == index && p == *path,
            "{path:?}: error names key {i} {p:?}"
        );
        let prefix = format!("tls_key {}: ", path.display());
        ensure!(
            text.starts_with(&prefix) && text.contains(words),
            "{path:?}: message {text:?}, reason {reason:?}"
        );
        eprintln!("{text}");
        // spawn reaped its child: there is no zombie left to reap.
        let left = ok("try_wait_any", process::try_wait_any())?;
        ensure!(
            left.is_none(),
            "{path:?}: spawn left a child behind: {left:?}"
        );
    }

    let none: [PathBuf; 0] = [];
    ensure!(
        matches!(Holder::spawn(&none, TIMEOUT), Err(HolderError::Spawn(e)) if e.kind() == ErrorKind::InvalidInput),
        "no keys at all accepted"
    );
    Ok(())
}

/// A channel held open without a request keeps no one busy: a whole handshake on
/// another channel completes meanwhile.
fn silent_channel_blocks_no_one() -> Outcome {
    let f = fixture("silent", Duration::from_secs(60))?;
    let silent = ok("channel", f.holder.channel(1))?;
    let start = Instant::now();
    let got = handshake(&f.holder, 1, &f.keys[1], &rustls::version::TLS13)?;
    ensure!(got == ProtocolVersion::TLSv1_3, "negotiated {got:?}");
    ensure!(
        start.elapsed() < Duration::from_secs(5),
        "handshake took {:?}",
        start.elapsed()
    );
    // The silent channel is still open and still answers.
    let mut silent = silent;
    ok("write", silent.write_all(&Request::PublicKey.encode()))?;
    ok("timeout", silent.set_read_timeout(Some(TIMEOUT)))?;
    let spki = read_response(&silent).map_err(|e| e.to_string())?;
    ensure!(spki == public_key_of(&f.keys[1]), "late answer is wrong");
    Ok(())
}

/// Once a request has begun, its child gives up after `request_timeout` without the
/// rest; a channel that has sent nothing is not timed out at all.
fn partial_request_times_out() -> Outcome {
    let f = fixture("timeout", Duration::from_millis(300))?;
    ensure!(
        f.holder.request_timeout() == Duration::from_millis(300),
        "request_timeout {:?}",
        f.holder.request_timeout()
    );
    let silent = ok("channel", f.holder.channel(1))?;
    let mut partial = ok("channel", f.holder.channel(1))?;
    ok("timeout", partial.set_read_timeout(Some(TIMEOUT)))?;
    // The type and half the scheme of a signature request.
    let start = Instant::now();
    ok("write", partial.write_all(&sign_request()[..2]))?;
    let mut rest = Vec::new();
    let n = ok("read", partial.read_to_end(&mut rest))?;
    let waited = start.elapsed();
    ensure!(n == 0, "partial request got {rest:?}");
    ensure!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected about 300 ms"
    );
    // Twice the request timeout, and more, since it was made: still open, still answered.
    ensure!(
        !reads_eof(&silent, Duration::from_millis(300))?,
        "a silent channel was closed"
    );
    ask_public_key(&silent, &f.keys[1])
}

/// An STLS late in a session: a channel that waits (here 1 s) far longer than the
/// request timeout (200 ms) is still answered, for a public key and for a whole TLS 1.3
/// handshake.
fn late_request_answered() -> Outcome {
    let f = fixture("late", Duration::from_millis(200))?;
    let for_key = ok("channel", f.holder.channel(0))?;
    let for_handshake = ok("channel", f.holder.channel(1))?;
    thread::sleep(Duration::from_secs(1));
    ask_public_key(&for_key, &f.keys[0])?;
    let got = handshake_on(
        &f.holder,
        for_handshake,
        1,
        &f.keys[1],
        &rustls::version::TLS13,
    )?;
    ensure!(got == ProtocolVersion::TLSv1_3, "negotiated {got:?}");
    Ok(())
}

/// 200 channels waiting for their request cost the holder 200 descriptors and no
/// process; once asked, every one is answered and its child goes away.
fn idle_channels_cost_no_process() -> Outcome {
    let f = fixture("idle", TIMEOUT)?;
    let pid = f.holder.pid();
    let base = fd_count(pid)?;
    let channels = (0..200)
        .map(|i| ok("channel", f.holder.channel(i % 2)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(base) = base {
        holder_fds_reach(pid, base + 200)?;
    } else {
        // Without the count: a public key round trip, which the holder answers only
        // after it has taken every channel sent before.
        f.holder.public_key(0, TIMEOUT).map_err(|e| e.to_string())?;
    }
    let children = children_of(pid)?;
    ensure!(
        children.is_empty(),
        "200 idle channels, {} children: {children:?}",
        children.len()
    );
    ensure!(
        status_field(pid, "Threads:")? == "1",
        "holder has more than one thread"
    );
    eprintln!("200 idle channels: {base:?} + 200 descriptors, no child");
    for channel in &channels {
        ok("write", (&*channel).write_all(&Request::PublicKey.encode()))?;
        ok("timeout", channel.set_read_timeout(Some(TIMEOUT)))?;
    }
    for (i, channel) in channels.iter().enumerate() {
        let spki = read_response(channel).map_err(|e| format!("channel {i}: {e}"))?;
        ensure!(
            spki == public_key_of(&f.keys[i % 2]),
            "channel {i}: wrong key"
        );
    }
    eventually("the holder's children end", || {
        Ok(children_of(pid)?.is_empty())
    })?;
    if let Some(base) = base {
        holder_fds_reach(pid, base)?;
    }
    Ok(())
}

/// A channel whose peer closes it (the session ended without TLS), or shuts down its
/// writing side, before any request is closed by the holder, without a child.
fn closed_channels_dropped() -> Outcome {
    let f = fixture("closed", TIMEOUT)?;
    let pid = f.holder.pid();
    let base = fd_count(pid)?;
    let channels = (0..50)
        .map(|_| ok("channel", f.holder.channel(0)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(base) = base {
        holder_fds_reach(pid, base + 50)?;
    }
    drop(channels);
    if let Some(base) = base {
        holder_fds_reach(pid, base)?;
    }
    let children = children_of(pid)?;
    ensure!(
        children.is_empty(),
        "children for closed channels: {children:?}"
    );

    let half = ok("channel", f.holder.channel(1))?;
    ok("shutdown", half.shutdown(std::net::Shutdown::Write))?;
    ensure!(
        reads_eof(&half, TIMEOUT)?,
        "a channel shut down for writing was not closed"
    );
    // The holder still serves.
    let spki = f.holder.public_key(1, TIMEOUT).map_err(|e| e.to_string())?;
    ensure!(spki.as_ref() == public_key_of(&f.keys[1]), "answer wrong");
    Ok(())
}

/// The idle set's bound, from a descriptor limit of 64 (the holder raises its soft limit
/// of 32 to that hard limit): channels closed by their peer leave it at once, and a
/// channel that arrives when it is full closes the oldest idle one, which then reads end
/// of file, while the others are still answered.
fn full_idle_set() -> Outcome {
    const HARD: u64 = 64;
    ok("set_fd_limit", process::set_fd_limit(32, HARD))?;
    let f = fixture("full", TIMEOUT)?;
    ok("raise_fd_limit", process::raise_fd_limit(HARD))?;
    let pid = f.holder.pid();
    let limits = ok(
        "limits",
        std::fs::read_to_string(format!("/proc/{}/limits", pid.as_raw())),
    )?;
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    ensure!(
        files.get(3..5) == Some(&["64", "64"][..]),
        "holder descriptor limit {files:?}, expected 64 64"
    );
    let capacity = (HARD - SPARE_DESCRIPTORS) as usize;

    // 4 channels that wait throughout, then enough to fill the set but one, closed.
    let old = (0..4)
        .map(|_| ok("channel", f.holder.channel(1)))
        .collect::<Result<Vec<_>, _>>()?;
    let closed = (0..capacity - 5)
        .map(|_| ok("channel", f.holder.channel(1)))
        .collect::<Result<Vec<_>, _>>()?;
    drop(closed);
    // Taken after those closes were seen: 5 idle, then 4 again.
    f.holder.public_key(1, TIMEOUT).map_err(|e| e.to_string())?;
    // Fill the set exactly: 4 + 44.
    let newer = (0..capacity - 4)
        .map(|_| ok("channel", f.holder.channel(1)))
        .collect::<Result<Vec<_>, _>>()?;
    // One more: the oldest idle channel makes room for it.
    f.holder.public_key(1, TIMEOUT).map_err(|e| e.to_string())?;
    ensure!(
        reads_eof(&old[0], TIMEOUT)?,
        "the oldest channel was not closed when the set was full"
    );
    for (i, c) in old.iter().enumerate().skip(1) {
        ask_public_key(c, &f.keys[1]).map_err(|e| format!("old channel {i}: {e}"))?;
    }
    for (i, c) in newer.iter().enumerate() {
        ask_public_key(c, &f.keys[1]).map_err(|e| format!("newer channel {i}: {e}"))?;
    }
    Ok(())
}

/// One request per channel: a second one on the same channel is never answered, and a
/// malformed request is refused without harming the holder.
fn one_request_per_channel() -> Outcome {
    let f = fixture("once", TIMEOUT)?;
    let mut ch = ok("channel", f.holder.channel(1))?;
    ok("timeout", ch.set_read_timeout(Some(TIMEOUT)))?;
    let mut two = Request::PublicKey.encode();
    two.extend(Request::PublicKey.encode());
    // Both at once, so no write can meet a closed channel.
    ok("write", ch.write_all(&two))?;
    let first = read_response(&ch).map_err(|e| format!("first: {e}"))?;
    ensure!(first == public_key_of(&f.keys[1]), "first answer wrong");
    let mut rest = Vec::new();
    match ch.read_to_end(&mut rest) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => return Err(format!("second request answered: {other:?} {rest:?}")),
    }

    let mut bad = ok("channel", f.holder.channel(0))?;
    ok("timeout", bad.set_read_timeout(Some(TIMEOUT)))?;
    ok("write", bad.write_all(&[0x07]))?;
    match read_response(&bad) {
        Err(ResponseError::Refused(1)) => {}
        other => return Err(format!("malformed request: {other:?}")),
    }
    let spki = f.holder.public_key(0, TIMEOUT).map_err(|e| e.to_string())?;
    ensure!(
        spki.as_ref() == public_key_of(&f.keys[0]),
        "holder broken after a refusal"
    );
    Ok(())
}

/// Dropping the Holder ends the holder process (exit status 0) once it holds no idle
/// channel: a channel it was given before is still answered (the inetd session lets its
/// holder go before the relay asks), or closed by its peer; a request already begun is
/// finished by its child after the holder has gone.
fn drop_ends_holder() -> Outcome {
    // An idle channel keeps the holder until it is asked on.
    let f = fixture("drop", TIMEOUT)?;
    let pid = f.holder.pid();
    let held = ok("channel", f.holder.channel(0))?;
    let Fixture {
        _dir, keys, holder, ..
    } = f;
    drop(holder);
    thread::sleep(Duration::from_millis(300));
    let early = ok("try_wait_any", process::try_wait_any())?;
    ensure!(
        early.is_none(),
        "holder ended with an idle channel: {early:?}"
    );
    ask_public_key(&held, &keys[0]).map_err(|e| format!("after the drop: {e}"))?;
    let exit = wait_ended(pid)?;
    ensure!(exit == Exit::Exited(0), "holder ended {exit:?}");

    // ... or until its peer closes it.
    let f = fixture("drop-closed", TIMEOUT)?;
    let pid = f.holder.pid();
    let held = ok("channel", f.holder.channel(0))?;
    drop(f.holder);
    thread::sleep(Duration::from_millis(300));
    let early = ok("try_wait_any", process::try_wait_any())?;
    ensure!(
        early.is_none(),
        "holder ended with an idle channel: {early:?}"
    );
    drop(held);
    let exit = wait_ended(pid)?;
    ensure!(exit == Exit::Exited(0), "holder ended {exit:?}");

    // A request begun before the drop: the holder goes at once, its child answers.
    let f = fixture("drop-inflight", TIMEOUT)?;
    let pid = f.holder.pid();
    let mut begun = ok("channel", f.holder.channel(1))?;
    let request = sign_request();
    ok("write", begun.write_all(&request[..3]))?;
    eventually("a child for the begun request", || {
        Ok(!children_of(pid)?.is_empty())
    })?;
    drop(f.holder);
    let exit = wait_ended(pid)?;
    ensure!(exit == Exit::Exited(0), "holder ended {exit:?}");
    ok("write", begun.write_all(&request[3..]))?;
    ok("timeout", begun.set_read_timeout(Some(TIMEOUT)))?;
    let signature = read_response(&begun).map_err(|e| format!("after the holder ended: {e}"))?;
    // An ECDSA signature is a DER SEQUENCE.
    ensure!(
        signature.first() == Some(&0x30),
        "not an ECDSA signature: {signature:02x?}"
    );

    // into_pid closes the control socket just the same; with no channel it ends at once.
    let f = fixture("into_pid", TIMEOUT)?;
    let pid = f.holder.into_pid();
    let exit = wait_ended(pid)?;
    ensure!(exit == Exit::Exited(0), "holder ended {exit:?}");
    Ok(())
}

/// /proc/PID/status of a process that is not dumpable belongs to root whatever its uid, so the
/// scenario runs as a user other than root (nobody, if started as root) and dumpable,
/// and checks first that its ordinary child's /proc entry is its own.
fn confined() -> Outcome {
    if pop3_sys::privileges::euid() == 0 {
        ok(
            "drop to nobody",
            pop3_sys::privileges::drop_to(65534, 65534),
        )?;
    }
    // A uid change just made us not dumpable; a child would inherit that.
    ok("set_dumpable", process::set_dumpable(true))?;
    let uid = pop3_sys::privileges::euid();

    let (r, w) = ok("pipe", process::pipe())?;
    let plain = match ok("fork", process::fork())? {
        Fork::Child => {
            drop(w);
            let _ = std::fs::File::from(r).read(&mut [0]);
            process::exit_now(0);
        }
        Fork::Parent(pid) => pid,
    };
    drop(r);
    let owner = proc_owner(plain);
    drop(w);
    let exit = ok("wait", process::wait(plain))?;
    ensure!(exit == Exit::Exited(0), "plain child ended {exit:?}");
    ensure!(
        owner? == uid,
        "a dumpable child's /proc/PID/status is not its own: the check below would prove nothing"
    );

    let f = fixture("confined", TIMEOUT)?;
    let pid = f.holder.pid();
    let want = |key: &str, value: &str| -> Outcome {
        let got = status_field(pid, key)?;
        ensure!(got == value, "holder {key} {got:?}, expected {value:?}");
        Ok(())
    };
    want("NoNewPrivs:", "1")?;
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        want("Seccomp:", "2")?;
        want("Seccomp_filters:", "1")?;
    }
    want("Threads:", "1")?;
    want("Uid:", &vec![uid.to_string(); 4].join(" "))?;
    let owner = proc_owner(pid)?;
    ensure!(
        owner == 0 && uid != 0,
        "holder (uid {uid}) /proc/PID/status owned by {owner}: it is dumpable"
    );
    let limits = ok(
        "limits",
        std::fs::read_to_string(format!("/proc/{}/limits", pid.as_raw())),
    )?;
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    ensure!(
        core.get(4..6) == Some(&["0", "0"][..]),
        "holder core limit {core:?}"
    );
    // Still serving under all that.
    let spki = f.holder.public_key(1, TIMEOUT).map_err(|e| e.to_string())?;
    ensure!(spki.as_ref() == public_key_of(&f.keys[1]), "answer wrong");
    eprintln!("holder {pid:?}: uid {uid}, /proc owner 0, NoNewPrivs 1, Seccomp 2, core 0");
    Ok(())
}

/// The owner of /proc/PID/status: the process's euid if it is dumpable, else root (the
/// kernel's task_dump_owner; /proc/PID itself always shows the euid).
fn proc_owner(pid: Pid) -> Result<u32, String> {
    let path = Path::new("/proc")
        .join(pid.as_raw().to_string())
        .join("status");
    let meta = ok("stat /proc/PID/status", std::fs::metadata(path))?;
    Ok(meta.uid())
}

/// The holder keeps no inherited descriptor: neither one above 2 nor what was on 0 (it
/// points 0, 1 and 2 at /dev/null). Both are write ends of one pipe, which reads end of
/// file only once no process holds a write end.
fn descriptors() -> Outcome {
    let (r, w) = ok("pipe", process::pipe())?;
    ok("pipe onto 0", process::dup_onto(w.as_fd(), 0))?;
    let f = fixture("fds", TIMEOUT)?;
    let null = ok("/dev/null", std::fs::File::open("/dev/null"))?;
    ok("restore 0", process::dup_onto(null.as_fd(), 0))?;
    drop(w);
    let mut r = std::fs::File::from(r);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = tx.send(r.read_to_end(&mut rest).map(|_| rest));
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(rest)) if rest.is_empty() => {}
        Ok(other) => return Err(format!("pipe: {other:?}")),
        Err(_) => return Err("the holder still holds an inherited descriptor".into()),
    }
    let spki = f.holder.public_key(0, TIMEOUT).map_err(|e| e.to_string())?;
    ensure!(spki.as_ref() == public_key_of(&f.keys[0]), "answer wrong");
    Ok(())
}
