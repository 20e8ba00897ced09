//! Shared by the golden and the live differential tests: the compliance session scripts
//! (compliance/README.md), running a session through our code as the server would, and
//! comparing a transcript with popa3d's under the documented differences.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pop3_mailbox::Mbox;
use pop3_proto::Listing;
use popa3d::driver::{load_failed_reply, run_authorization, run_transaction, AuthOutcome};
use popa3d::messages;

pub fn compliance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compliance")
}

/// One fixture from compliance/golden/MANIFEST.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub name: String,
    /// `None` for the missing-spool case.
    pub path: Option<PathBuf>,
    /// Messages popa3d reported (0 for rejected mailboxes).
    pub n: u32,
}

impl Fixture {
    pub fn bytes(&self) -> Vec<u8> {
        self.path
            .as_ref()
            .map(|p| std::fs::read(p).unwrap())
            .unwrap_or_default()
    }
    /// The mailbox's last line has no LF: the one message whose LIST size differs.
    pub fn unterminated(&self) -> bool {
        self.bytes().last().is_some_and(|&b| b != b'\n')
    }
}

pub fn fixtures() -> Vec<Fixture> {
    let dir = compliance_dir();
    let manifest = std::fs::read_to_string(dir.join("golden/MANIFEST")).unwrap();
    manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f[0].trim_end_matches(".mbox").to_owned();
            let path = (f[1] != "-").then(|| dir.join("fixtures").join(f[0]));
            Fixture {
                name,
                path,
                n: f[2].parse().unwrap(),
            }
        })
        .collect()
}

/// The standard session of compliance/session-script.py.
pub fn standard_script(n: u32) -> Vec<String> {
    let mut c: Vec<String> = ["USER bob", "PASS bobpw", "STAT", "LIST", "UIDL"]
        .map(String::from)
        .into();
    for i in 1..=n {
        for cmd in ["LIST", "UIDL", "TOP 0", "TOP 1", "TOP 3", "RETR"] {
            c.push(match cmd.split_once(' ') {
                Some((v, k)) => format!("{v} {i} {k}"),
                None => format!("{cmd} {i}"),
            });
        }
    }
    c.push("LAST".into());
    c.push("QUIT".into());
    c
}

pub fn dele_script(msgs: &[u32]) -> Vec<String> {
    let mut c: Vec<String> = vec!["USER bob".into(), "PASS bobpw".into()];
    c.extend(msgs.iter().map(|m| format!("DELE {m}")));
    c.push("QUIT".into());
    c
}

/// The DELE variants recorded for a fixture of `n` messages.
pub fn dele_variants(n: u32) -> Vec<(&'static str, Vec<u32>)> {
    if n < 2 {
        return vec![];
    }
    let mut v = vec![("1", vec![1]), ("last", vec![n])];
    if n >= 3 {
        v.push(("middle", vec![n.div_ceil(2)]));
    }
    v.push(("all", (1..=n).collect()));
    v
}

pub fn wire(cmds: &[String]) -> Vec<u8> {
    cmds.iter()
        .flat_map(|c| format!("{c}\r\n").into_bytes())
        .collect()
}

/// What our side produced.
pub struct Ours {
    pub transcript: Vec<u8>,
    /// popa3d-format log lines after "Authentication passed" (`<pri>text`).
    pub logs: Vec<String>,
    pub mbox_after: Option<Vec<u8>>,
}

/// Runs `cmds` against a copy of the fixture through the engine, the driver and the mbox
/// maildrop, with a stand-in for authentication that accepts bob: what the server does
/// from the socket's point of view.
pub fn run_ours(f: &Fixture, cmds: &[String], tmp: &Path) -> Ours {
    let spool = tmp.join("bob");
    let _ = std::fs::remove_file(&spool);
    if let Some(p) = &f.path {
        std::fs::copy(p, &spool).unwrap();
    }
    let script = wire(cmds);
    let mut input = &script[..];
    let mut out = Vec::new();
    let mut logs = Vec::new();
    let AuthOutcome::Login {
        user, pipelined, ..
    } = run_authorization(&mut input, &mut out)
    else {
        return Ours {
            transcript: out,
            logs,
            mbox_after: None,
        };
    };
    assert_eq!(user, b"bob");
    let mailbox = "/var/mail/bob";
    match Mbox::open(&spool) {
        Err(e) => {
            out.extend_from_slice(load_failed_reply(&e));
            logs.push(format!("<29>{}", messages::load_failed(mailbox)));
        }
        Ok(mut m) => {
            let total: u64 = (0..m.count()).map(|i| m.size(i)).sum();
            logs.push(format!("<30>{}", messages::loaded(m.count(), total)));
            let outcome = run_transaction(&mut input, &mut out, &mut m, &pipelined);
            let (level, text) = messages::transaction_outcome(&outcome, mailbox);
            let pri = match level {
                messages::Level::Info => 30,
                messages::Level::Notice => 29,
                messages::Level::Crit => 26,
            };
            logs.push(format!("<{pri}>{text}"));
        }
    }
    let mbox_after = std::fs::read(&spool).ok();
    Ours {
        transcript: out,
        logs,
        mbox_after,
    }
}

/// Splits a transcript into the greeting and one reply per command.
pub fn split_replies(t: &[u8], cmds: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let mut lines = t.split_inclusive(|&b| b == b'\n');
    let mut replies = vec![lines.next().ok_or("no greeting")?.to_vec()];
    for c in cmds {
        let Some(status) = lines.next() else { break };
        let mut r = status.to_vec();
        let upper = c.to_ascii_uppercase();
        let multi = status.starts_with(b"+OK")
            && (upper == "LIST"
                || upper == "UIDL"
                || upper.starts_with("TOP ")
                || upper.starts_with("RETR "));
        if multi {
            loop {
                let l = lines
                    .next()
                    .ok_or_else(|| format!("{c}: unterminated multi-line reply"))?;
                r.extend_from_slice(l);
                if l == b".\r\n" {
                    break;
                }
            }
        }
        replies.push(r);
    }
    if lines.next().is_some() {
        return Err("bytes after the last reply".into());
    }
    Ok(replies)
}

fn parse_listing(reply: &[u8]) -> Vec<(u32, String)> {
    let s = String::from_utf8_lossy(reply);
    s.lines()
        .skip(1)
        .filter(|l| *l != ".")
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.parse().unwrap(), v.to_owned())
        })
        .collect()
}

/// Checks our UIDL list against popa3d's by docs/uidl.md: equal where popa3d's is the
/// first of its value, `P-<16 hex>[-k]` after that, all unique.
pub fn check_uidls(popa3d: &[(u32, String)], ours: &[(u32, String)]) -> Result<(), String> {
    if popa3d.len() != ours.len() {
        return Err(format!("{} UIDLs, popa3d has {}", ours.len(), popa3d.len()));
    }
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut all = std::collections::HashSet::new();
    for ((pn, p), (on, o)) in popa3d.iter().zip(ours) {
        if pn != on {
            return Err(format!("numbering differs: {pn} vs {on}"));
        }
        let first = !seen.contains_key(p.as_str());
        *seen.entry(p).or_insert(0) += 1;
        if first {
            if o != p {
                return Err(format!(
                    "message {on}: UIDL {o}, popa3d's {p} is unique so far"
                ));
            }
        } else {
            let rest = o.strip_prefix(p.as_str()).and_then(|r| r.strip_prefix('-'));
            let ok = rest.is_some_and(|r| {
                let (h, k) = r.split_once('-').unwrap_or((r, "2"));
                h.len() == 16
                    && h.bytes().all(|b| b.is_ascii_hexdigit())
                    && k.parse::<u32>().is_ok_and(|k| k >= 2)
            });
            if !ok {
                return Err(format!(
                    "message {on}: UIDL {o} does not extend repeated {p}"
                ));
            }
        }
        if !all.insert(o.clone()) {
            return Err(format!("UIDL {o} repeats"));
        }
    }
    Ok(())
}

/// What we send where popa3d sends a bare `-ERR` after PASS because it refused the
/// mailbox: the same status with RFC 3206's `[SYS/PERM]` (docs/differences-from-popa3d.md,
/// "Extensions").
pub const REFUSED_MAILBOX: &[u8] = b"-ERR [SYS/PERM] Cannot load the mailbox\r\n";

/// Compares our transcript with popa3d's for the same fixture and commands. Identical
/// byte for byte, except the documented differences: the size of a message whose last
/// line has no LF is one more, repeated UIDLs are disambiguated, and a refused mailbox's
/// `-ERR` carries `[SYS/PERM]`.
pub fn compare(f: &Fixture, cmds: &[String], popa3d: &[u8], ours: &[u8]) -> Result<(), String> {
    let p = split_replies(popa3d, cmds).map_err(|e| format!("popa3d transcript: {e}"))?;
    let o = split_replies(ours, cmds).map_err(|e| format!("our transcript: {e}"))?;
    if p.len() != o.len() {
        return Err(format!("{} replies, popa3d gave {}", o.len(), p.len()));
    }
    let bump = |n: u32| u64::from(f.unterminated() && n == f.n);
    // Sizes and UIDLs as popa3d listed them, from its LIST and UIDL replies.
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    let mut our_uidls: HashMap<u32, String> = HashMap::new();
    // A session can end early (a refused mailbox): compare the replies there are.
    for (i, c) in cmds.iter().enumerate().take(p.len() - 1) {
        let (pr, or) = (&p[i + 1], &o[i + 1]);
        if c == "LIST" && pr.starts_with(b"+OK") {
            for (n, s) in parse_listing(pr) {
                sizes.insert(n, s.parse::<u64>().unwrap() + bump(n));
            }
        }
        if c == "UIDL" && pr.starts_with(b"+OK") {
            check_uidls(&parse_listing(pr), &parse_listing(or))?;
            our_uidls.extend(parse_listing(or));
        }
    }
    // A session can end early (a refused mailbox): compare the replies there are.
    for (i, c) in cmds.iter().enumerate().take(p.len() - 1) {
        let (pr, or) = (&p[i + 1], &o[i + 1]);
        let words: Vec<&str> = c.split(' ').collect();
        let expected: Vec<u8> = match (words[0], pr.starts_with(b"+OK")) {
            ("STAT", true) => {
                let total: u64 = sizes.values().sum();
                format!("+OK {} {total}\r\n", sizes.len()).into_bytes()
            }
            ("LIST", true) if words.len() == 1 => {
                let mut v = b"+OK\r\n".to_vec();
                for n in 1..=sizes.len() as u32 {
                    v.extend(format!("{n} {}\r\n", sizes[&n]).into_bytes());
                }
                v.extend(b".\r\n");
                v
            }
            ("LIST", true) => {
                let n: u32 = words[1].parse().unwrap();
                format!("+OK {n} {}\r\n", sizes[&n]).into_bytes()
            }
            ("UIDL", true) if words.len() == 1 => {
                let mut v = b"+OK\r\n".to_vec();
                for n in 1..=our_uidls.len() as u32 {
                    v.extend(format!("{n} {}\r\n", our_uidls[&n]).into_bytes());
                }
                v.extend(b".\r\n");
                v
            }
            ("UIDL", true) => {
                let n: u32 = words[1].parse().unwrap();
                format!("+OK {n} {}\r\n", our_uidls[&n]).into_bytes()
            }
            ("PASS", false) if pr == b"-ERR\r\n" => REFUSED_MAILBOX.to_vec(),
            _ => pr.clone(),
        };
        if *or != expected {
            return Err(format!(
                "reply to {c:?} differs:\n  popa3d:   {:?}\n  expected: {:?}\n  ours:     {:?}",
                String::from_utf8_lossy(&pr[..pr.len().min(400)]),
                String::from_utf8_lossy(&expected[..expected.len().min(400)]),
                String::from_utf8_lossy(&or[..or.len().min(400)]),
            ));
        }
    }
    Ok(())
}

/// popa3d's log lines after "Authentication passed", PIDs stripped, with the documented
/// size difference applied to the totals.
pub fn expected_logs(f: &Fixture, popa3d_log: &str, last_deleted: bool) -> Vec<String> {
    let delta = u64::from(f.unterminated());
    popa3d_log
        .lines()
        .filter(|l| !l.contains("Authentication passed"))
        .map(|l| {
            let (pri, rest) = l.split_once("popa3d[PID]: ").unwrap();
            let text = if let Some(n) = rest.strip_suffix(" bytes) loaded") {
                let (count, bytes) = n
                    .split_once(" messages (")
                    .unwrap_or_else(|| n.split_once(" message (").unwrap());
                let bytes: u64 = bytes.parse::<u64>().unwrap() + delta;
                let count: u32 = count.parse().unwrap();
                messages::loaded(count, bytes)
            } else if rest.ends_with(" byte) loaded") {
                rest.to_owned()
            } else if rest.contains(") deleted, ") {
                let nums: Vec<u64> = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect();
                let (ds, ls) = if last_deleted {
                    (nums[1] + delta, nums[3])
                } else {
                    (nums[1], nums[3] + delta)
                };
                format!("{} ({ds}) deleted, {} ({ls}) left", nums[0], nums[2])
            } else {
                rest.to_owned()
            };
            format!("{pri}{text}")
        })
        .collect()
}
