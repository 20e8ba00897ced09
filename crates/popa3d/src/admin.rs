//! `popa3d-admin`: tools for the administrator, which need no server running.
//!
//! - `scan MBOX` lists a mailbox as the server would (number, LIST size, UIDL), for
//!   comparing with another server's LIST/UIDL before a migration.
//! - `serve MBOX` runs a TRANSACTION-state session on stdin/stdout over a mailbox,
//!   without authentication, as the mailbox's owner ("pre-authenticated" mode, for
//!   testing and benchmarks).
//!
//! Neither keeps a privilege it does not need: run as root, `scan` opens the file and
//! then becomes `nobody` before reading a byte of it, and `serve` becomes the mailbox's
//! owner before opening it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use pop3_mailbox::{DropError, Mbox};
use pop3_proto::Listing;

use crate::driver;
use crate::messages;

pub const USAGE: &str = "\
Usage: popa3d-admin scan [--json | --popa3d] MBOX
       popa3d-admin serve MBOX
       popa3d-admin --version

scan   Print one line per message of the mbox MBOX: number, LIST size and UIDL,
       exactly as popa3d-rs would list them (the same lines as LIST and UIDL).
       --popa3d  print popa3d 1.0.3's size and UIDL instead, where they differ
                 (see docs/differences-from-popa3d.md), to compare with a running
                 popa3d before switching
       --json    one JSON document with both, and the totals
       Opens MBOX read-only; run as root, it reads it as the user nobody.
serve  Run a POP3 session in the TRANSACTION state over MBOX on standard input and
       output, without authentication: it greets with +OK, then takes STAT, LIST,
       RETR, DELE, QUIT and the rest. Run as root, it first becomes MBOX's owner.
       Log lines go to standard error.

Exit status: 0 on success, 1 if the mailbox cannot be loaded, 2 on a usage error.
";

/// What went wrong, and the exit status it gives.
#[derive(Debug)]
pub struct Failure {
    pub status: i32,
    pub message: String,
}

fn fail(status: i32, message: impl Into<String>) -> Failure {
    Failure {
        status,
        message: message.into(),
    }
}

fn load_error(path: &Path, e: DropError) -> Failure {
    fail(
        1,
        format!(
            "{}: {}",
            messages::load_failed(&path.display().to_string()),
            e
        ),
    )
}

/// Runs the admin command line (without the program name).
pub fn main(args: &[String], out: &mut dyn Write) -> Result<(), Failure> {
    match args.first().map(String::as_str) {
        Some("scan") => {
            let mut format = Format::Text;
            let mut path = None;
            for a in &args[1..] {
                match a.as_str() {
                    "--json" => format = Format::Json,
                    "--popa3d" => format = Format::Popa3d,
                    s if s.starts_with('-') => {
                        return Err(fail(2, format!("unknown option {s}\n{USAGE}")))
                    }
                    s if path.is_none() => path = Some(s),
                    _ => return Err(fail(2, USAGE)),
                }
            }
            let path = path.ok_or_else(|| fail(2, USAGE))?;
            scan_command(Path::new(path), format, out)
        }
        Some("serve") if args.len() == 2 => serve(Path::new(&args[1])),
        Some("--version") | Some("-V") if args.len() == 1 => writeln!(
            out,
            "popa3d-admin (popa3d-rs) {}",
            env!("CARGO_PKG_VERSION")
        )
        .map_err(|e| fail(1, e.to_string())),
        Some("--help") | Some("-h") => out
            .write_all(USAGE.as_bytes())
            .map_err(|e| fail(1, e.to_string())),
        _ => Err(fail(2, USAGE)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Popa3d,
    Json,
}

/// Becomes `nobody` if running as root.
fn shed_root() -> Result<(), Failure> {
    if pop3_sys::privileges::euid() != 0 {
        return Ok(());
    }
    let nobody = pop3_sys::privileges::lookup_user("nobody")
        .map_err(|e| fail(1, format!("getpwnam(\"nobody\"): {e}")))?
        .ok_or_else(|| fail(1, "getpwnam(\"nobody\"): No such user"))?;
    pop3_sys::privileges::drop_to(nobody.uid, nobody.gid)
        .map_err(|e| fail(1, format!("dropping root: {e}")))
}

/// `scan`: opens `path` read-only, gives up root if it has it, then lists.
fn scan_command(path: &Path, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    let file = Mbox::open_file(path, false).map_err(|e| load_error(path, e))?;
    shed_root()?;
    let mbox = Mbox::load(path, file).map_err(|e| load_error(path, e))?;
    list(&mbox, format, out)
}

/// Lists a loaded mailbox in `format` (no privilege changes: callable from tests).
pub fn list(mbox: &Mbox, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    let path = mbox.path();
    let w = |r: io::Result<()>| r.map_err(|e| fail(1, e.to_string()));
    let mut buf = Vec::with_capacity(64 * 1024);
    match format {
        Format::Text | Format::Popa3d => {
            for i in 0..mbox.count() {
                let (size, uidl) = match format {
                    Format::Popa3d => (
                        mbox.popa3d_size(i).unwrap_or(0),
                        mbox.popa3d_uidl(i).map(|u| u.to_vec()).unwrap_or_default(),
                    ),
                    _ => (mbox.size(i), mbox.uidl(i).to_vec()),
                };
                let _ = write!(buf, "{} {} ", i + 1, size);
                buf.extend_from_slice(&uidl);
                buf.push(b'\n');
                if buf.len() > 60 * 1024 {
                    w(out.write_all(&buf))?;
                    buf.clear();
                }
            }
        }
        Format::Json => {
            let total: u64 = (0..mbox.count()).map(|i| mbox.size(i)).sum();
            let _ = write!(
                buf,
                "{{\"mailbox\":{},\"count\":{},\"total_size\":{},\"messages\":[",
                json_string(&path.display().to_string()),
                mbox.count(),
                total
            );
            for i in 0..mbox.count() {
                let p = mbox.popa3d_uidl(i).unwrap_or_default();
                let _ = write!(
                    buf,
                    "{}\n{{\"number\":{},\"size\":{},\"uidl\":\"{}\",\"popa3d_size\":{},\"popa3d_uidl\":\"{}\"}}",
                    if i == 0 { "" } else { "," },
                    i + 1,
                    mbox.size(i),
                    String::from_utf8_lossy(mbox.uidl(i)),
                    mbox.popa3d_size(i).unwrap_or(0),
                    String::from_utf8_lossy(&p),
                );
                if buf.len() > 60 * 1024 {
                    w(out.write_all(&buf))?;
                    buf.clear();
                }
            }
            buf.extend_from_slice(b"\n]}\n");
        }
    }
    w(out.write_all(&buf))?;
    w(out.flush())
}

fn json_string(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn serve(path: &Path) -> Result<(), Failure> {
    if pop3_sys::privileges::euid() == 0 {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| fail(1, format!("{}: {e}", path.display())))?;
        if meta.uid() == 0 {
            return Err(fail(
                1,
                format!(
                    "{}: owned by root; refusing to serve it as root",
                    path.display()
                ),
            ));
        }
        pop3_sys::privileges::drop_to(meta.uid(), meta.gid())
            .map_err(|e| fail(1, format!("dropping root: {e}")))?;
    }
    let name = path.display().to_string();
    let log = |line: &str| eprintln!("popa3d-admin serve: {line}");
    // Raw descriptors, not Rust's buffered stdio: the driver decides when bytes leave.
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map(File::from);
    let mut input = dup(io::stdin().as_fd()).map_err(|e| fail(1, e.to_string()))?;
    let mut output = dup(io::stdout().as_fd()).map_err(|e| fail(1, e.to_string()))?;
    let mut mbox = match Mbox::open(path) {
        Ok(m) => m,
        Err(e) => {
            log(&format!("{}: {e}", messages::load_failed(&name)));
            let _ = output.write_all(b"-ERR\r\n");
            return Err(fail(1, format!("{}: {e}", messages::load_failed(&name))));
        }
    };
    let total: u64 = (0..mbox.count()).map(|i| mbox.size(i)).sum();
    log(&messages::loaded(mbox.count(), total));
    let outcome = driver::run_transaction(&mut input, &mut output, &mut mbox, b"");
    log(&messages::transaction_outcome(&outcome, &name).1);
    Ok(())
}
