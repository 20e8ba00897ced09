//! The session driver over in-memory streams and maildrops: what reaches the client, in
//! how many writes, and what is committed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Write};

use pop3_mailbox::{DropError, Maildrop, MemoryDrop};
use pop3_proto::{Listing, Options};
use popa3d::driver::{
    load_failed_reply, run_authorization, run_authorization_after_tls, run_authorization_with,
    run_transaction, AuthOutcome, TransactionOutcome, AUTH_FAILED, FLUSH_AT,
};

/// Records every write call separately.
#[derive(Default)]
struct Writes(Vec<Vec<u8>>);
impl Write for Writes {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.push(b.to_vec());
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Writes {
    fn all(&self) -> Vec<u8> {
        self.0.concat()
    }
}

fn drop_of(msgs: &[&[u8]]) -> MemoryDrop {
    MemoryDrop::new(msgs.iter().map(|m| m.to_vec()).collect())
}

#[test]
fn login_hands_over_pipelined_commands() {
    let mut input: &[u8] = b"USER bob\r\nPASS secret word\r\nSTAT\r\nQUIT\r\n";
    let mut out = Writes::default();
    let AuthOutcome::Login {
        user,
        password,
        pipelined,
    } = run_authorization(&mut input, &mut out)
    else {
        panic!("no login");
    };
    assert_eq!(user, b"bob");
    assert_eq!(password.as_bytes(), b"secret word");
    assert_eq!(out.all(), b"+OK\r\n+OK\r\n");
    let mut d = drop_of(&[b"A: b\n\nbody\n"]);
    let mut out = Writes::default();
    let r = run_transaction(&mut input, &mut out, &mut d, &pipelined);
    assert!(matches!(r, TransactionOutcome::Quit(t) if t.left == 1 && t.deleted == 0));
    assert_eq!(out.all(), b"+OK\r\n+OK 1 14\r\n+OK\r\n");
}

#[test]
fn quit_in_authorization_and_eof() {
    let mut out = Writes::default();
    assert!(matches!(
        run_authorization(&mut &b"QUIT\r\n"[..], &mut out),
        AuthOutcome::Quit
    ));
    assert_eq!(out.all(), b"+OK\r\n+OK\r\n");
    let mut out = Writes::default();
    assert!(matches!(
        run_authorization(&mut &b"USER x\r\n"[..], &mut out),
        AuthOutcome::Disconnected
    ));
}

#[test]
fn replies_are_never_split_and_messages_leave_in_large_writes() {
    let small: &[u8] = b"Subject: s\n\nshort body\n.dot\n";
    let big: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("line {i} of a long message\n").into_bytes())
        .collect();
    let mut d = drop_of(&[small, &big]);
    let script: &[u8] = b"STAT\r\nLIST\r\nRETR 1\r\nRETR 2\r\nNOOP\r\nQUIT\r\n";
    let mut out = Writes::default();
    run_transaction(&mut &script[..], &mut out, &mut d, b"");
    // The greeting goes out before anything is read; then the pipelined replies up to the
    // big message, RETR 1 whole included, leave together in one write.
    assert_eq!(out.0[0], b"+OK\r\n");
    let second = &out.0[1];
    assert!(
        second.starts_with(b"+OK 2 "),
        "{:?}",
        String::from_utf8_lossy(&second[..40])
    );
    assert!(second.windows(11).any(|w| w == b"..dot\r\n.\r\n+"));
    // Every write but the last is at least FLUSH_AT bytes, and no write ends mid-line.
    for w in &out.0[1..out.0.len() - 1] {
        assert!(w.len() >= FLUSH_AT, "small write of {} bytes", w.len());
    }
    for w in &out.0 {
        assert!(w.ends_with(b"\n") || w.len() >= FLUSH_AT);
    }
    let all = out.all();
    assert!(all.ends_with(b"\r\n.\r\n+OK\r\n+OK\r\n"));
    assert!(
        out.0.len() <= 2 + big.len() * 2 / FLUSH_AT,
        "{} writes",
        out.0.len()
    );
}

/// A maildrop that another MUA changes while a message is being read.
struct ChangesDuringRead {
    inner: MemoryDrop,
    reads: u32,
}
impl Listing for ChangesDuringRead {
    fn count(&self) -> u32 {
        self.inner.count()
    }
    fn size(&self, i: u32) -> u64 {
        self.inner.size(i)
    }
    fn uidl(&self, i: u32) -> &[u8] {
        self.inner.uidl(i)
    }
}
impl Maildrop for ChangesDuringRead {
    fn check(&mut self) -> Result<(), DropError> {
        if self.reads > 0 {
            Err(DropError::Stale)
        } else {
            Ok(())
        }
    }
    fn data_len(&self, i: u32) -> u64 {
        self.inner.data_len(i)
    }
    fn read(&mut self, i: u32, off: u64, buf: &mut [u8]) -> Result<usize, DropError> {
        self.reads += 1;
        self.inner.read(i, off, buf)
    }
    fn update(&mut self, d: &[bool]) -> Result<(), DropError> {
        self.inner.update(d)
    }
}

#[test]
fn a_change_during_retr_ends_the_session_without_the_terminator() {
    let mut d = ChangesDuringRead {
        inner: drop_of(&[b"A: b\n\nbody\n"]),
        reads: 0,
    };
    let mut out = Writes::default();
    let r = run_transaction(&mut &b"RETR 1\r\nQUIT\r\n"[..], &mut out, &mut d, b"");
    assert!(matches!(r, TransactionOutcome::Stale));
    assert_eq!(out.all(), b"+OK\r\n+OK\r\nA: b\r\n\r\nbody\r\n");

    // A change found before RETR starts: no reply to RETR at all.
    let mut d = drop_of(&[b"A: b\n\nbody\n"]);
    d.stale = true;
    let mut out = Writes::default();
    let r = run_transaction(&mut &b"RETR 1\r\nQUIT\r\n"[..], &mut out, &mut d, b"");
    assert!(matches!(r, TransactionOutcome::Stale));
    assert_eq!(out.all(), b"+OK\r\n");
}

#[test]
fn quit_commits_deletions_and_eof_commits_nothing() {
    let mut d = drop_of(&[b"A: 1\n\nx\n", b"A: 2\n\ny\n", b"A: 3\n\nz\n"]);
    let mut out = Writes::default();
    let r = run_transaction(&mut &b"DELE 2\r\nQUIT\r\n"[..], &mut out, &mut d, b"");
    let TransactionOutcome::Quit(t) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (t.deleted, t.deleted_size, t.left, t.left_size),
        (1, 11, 2, 22)
    );
    assert_eq!(
        d.messages,
        vec![b"A: 1\n\nx\n".to_vec(), b"A: 3\n\nz\n".to_vec()]
    );
    assert_eq!(out.all(), b"+OK\r\n+OK\r\n+OK\r\n");

    let mut d = drop_of(&[b"A: 1\n\nx\n"]);
    let r = run_transaction(&mut &b"DELE 1\r\n"[..], &mut Writes::default(), &mut d, b"");
    assert!(matches!(r, TransactionOutcome::Disconnected));
    assert_eq!((d.messages.len(), d.updates), (1, 0));
}

/// A maildrop whose UPDATE fails with an I/O error.
struct FailingUpdate(MemoryDrop);
impl Listing for FailingUpdate {
    fn count(&self) -> u32 {
        self.0.count()
    }
    fn size(&self, i: u32) -> u64 {
        self.0.size(i)
    }
    fn uidl(&self, i: u32) -> &[u8] {
        self.0.uidl(i)
    }
}
impl Maildrop for FailingUpdate {
    fn check(&mut self) -> Result<(), DropError> {
        Ok(())
    }
    fn data_len(&self, i: u32) -> u64 {
        self.0.data_len(i)
    }
    fn read(&mut self, i: u32, off: u64, buf: &mut [u8]) -> Result<usize, DropError> {
        self.0.read(i, off, buf)
    }
    fn update(&mut self, _: &[bool]) -> Result<(), DropError> {
        Err(DropError::Io(io::Error::other("disk full")))
    }
}

#[test]
fn a_failed_update_answers_err() {
    let mut d = FailingUpdate(drop_of(&[b"A: 1\n\nx\n"]));
    let mut out = Writes::default();
    let r = run_transaction(&mut &b"DELE 1\r\nQUIT\r\n"[..], &mut out, &mut d, b"");
    assert!(matches!(r, TransactionOutcome::UpdateFailed(_)));
    assert_eq!(out.all(), b"+OK\r\n+OK\r\n-ERR\r\n");
}

#[test]
fn too_many_pipelined_bytes_from_the_preauth_side_are_refused() {
    let mut d = drop_of(&[]);
    let mut out = Writes::default();
    let r = run_transaction(&mut &b""[..], &mut out, &mut d, &vec![b'N'; 5000]);
    assert!(matches!(r, TransactionOutcome::Disconnected));
    assert!(out.all().is_empty());
}

/// A client that sends some bytes, then nothing until the read times out.
struct Stalls<'a>(&'a [u8]);
impl io::Read for Stalls<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "idle"));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// A client that stops reading: every write times out.
struct NotReading;
impl Write for NotReading {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::TimedOut, "not reading"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn timeouts_are_told_apart_from_disconnects() {
    let mut out = Writes::default();
    let r = run_authorization(&mut Stalls(b"USER bob\r\n"), &mut out);
    assert!(matches!(r, AuthOutcome::TimedOut));
    assert_eq!(out.all(), b"+OK\r\n+OK\r\n");

    let mut d = drop_of(&[b"A: 1\n\nx\n"]);
    let r = run_transaction(
        &mut Stalls(b"DELE 1\r\n"),
        &mut Writes::default(),
        &mut d,
        b"",
    );
    assert!(matches!(r, TransactionOutcome::TimedOut));
    assert_eq!(d.updates, 0, "a timed-out session commits nothing");

    let mut d = drop_of(&[b"A: 1\n\nx\n"]);
    let r = run_transaction(&mut &b"RETR 1\r\n"[..], &mut NotReading, &mut d, b"");
    assert!(matches!(r, TransactionOutcome::TimedOut));
}

/// AUTH PLAIN ends AUTHORIZATION exactly as USER/PASS does: the same outcome, with the
/// pipelined commands, for the same privileged verification path.
#[test]
fn auth_plain_hands_over_like_pass() {
    // base64("\0bob\0secret word")
    let mut input: &[u8] =
        b"CAPA\r\nAUTH PLAIN\r\nAGJvYgBzZWNyZXQgd29yZA==\r\nSTAT\r\nCAPA\r\nQUIT\r\n";
    let mut out = Writes::default();
    let AuthOutcome::Login {
        user,
        password,
        pipelined,
    } = run_authorization(&mut input, &mut out)
    else {
        panic!("no login");
    };
    assert_eq!(user, b"bob");
    assert_eq!(password.as_bytes(), b"secret word");
    assert_eq!(
        out.all(),
        b"+OK\r\n+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\nIMPLEMENTATION popa3d-rs\r\n.\r\n+ \r\n"
    );
    let mut d = drop_of(&[b"A: b\n\nbody\n"]);
    let mut out = Writes::default();
    let r = run_transaction(&mut input, &mut out, &mut d, &pipelined);
    assert!(matches!(r, TransactionOutcome::Quit(t) if t.left == 1));
    assert_eq!(
        out.all(),
        b"+OK\r\n+OK 1 14\r\n+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION popa3d-rs\r\n.\r\n+OK\r\n"
    );
}

#[test]
fn plaintext_policy_reaches_the_driver() {
    let mut options = Options::default();
    options.plaintext_login = false;
    let mut out = Writes::default();
    let r = run_authorization_with(
        &mut &b"USER bob\r\nAUTH PLAIN AGJvYgBib2Jwdw==\r\nQUIT\r\n"[..],
        &mut out,
        options,
    );
    assert!(matches!(r, AuthOutcome::Quit));
    let refused = "-ERR [AUTH] Plaintext authentication disallowed without TLS\r\n";
    assert_eq!(
        String::from_utf8(out.all()).unwrap(),
        format!("+OK\r\n{refused}{refused}+OK\r\n")
    );
}

#[test]
fn load_failures_carry_response_codes() {
    let cases: [(DropError, &[u8]); 5] = [
        (
            DropError::Refused("not a regular file".into()),
            b"-ERR [SYS/PERM] Cannot load the mailbox\r\n",
        ),
        (
            DropError::Io(io::ErrorKind::WouldBlock.into()),
            b"-ERR [IN-USE] The mailbox is locked\r\n",
        ),
        (
            DropError::Io(io::ErrorKind::Deadlock.into()),
            b"-ERR [IN-USE] The mailbox is locked\r\n",
        ),
        (
            DropError::Io(io::ErrorKind::PermissionDenied.into()),
            b"-ERR [SYS/TEMP] Cannot load the mailbox\r\n",
        ),
        (
            DropError::Stale,
            b"-ERR [SYS/TEMP] Cannot load the mailbox\r\n",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(load_failed_reply(&e), want, "{e:?}");
    }
    assert_eq!(
        AUTH_FAILED,
        b"-ERR [AUTH] Authentication failed (bad password?)\r\n"
    );
}

#[test]
fn stls_flushes_its_ok_and_reads_nothing_more() {
    let mut o = Options::default();
    o.stls = true;
    let input = b"STLS\r\nCAPA\r\nUSER bob\r\nPASS x\r\n";
    let mut reader: &[u8] = input;
    let mut out = Writes::default();
    let r = run_authorization_with(&mut reader, &mut out, o);
    assert!(matches!(r, AuthOutcome::StartTls), "{r:?}");
    // Greeting and the STLS answer, nothing for the commands sent behind it.
    assert_eq!(out.all(), b"+OK\r\n+OK Begin TLS negotiation\r\n");

    // Behind the relay: no greeting, STLS no longer offered, plaintext login allowed.
    let mut reader: &[u8] = b"CAPA\r\nSTLS\r\nQUIT\r\n";
    let mut out = Writes::default();
    let r = run_authorization_after_tls(&mut reader, &mut out, Options::default());
    assert!(matches!(r, AuthOutcome::Quit), "{r:?}");
    let all = String::from_utf8(out.all()).unwrap();
    assert!(all.starts_with("+OK\r\nTOP\r\n"), "{all:?}");
    assert!(
        all.contains("USER\r\n") && !all.contains("STLS\r\n"),
        "{all:?}"
    );
    assert!(all.ends_with(".\r\n-ERR\r\n+OK\r\n"), "{all:?}");
}
