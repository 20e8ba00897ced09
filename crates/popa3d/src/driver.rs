//! Carries out a [`pop3_proto::Session`]'s actions over blocking byte streams.
//!
//! The engine decides every byte of every reply; this module only moves bytes and asks
//! the maildrop. Output policy, from the issue that introduced it: nothing is written in
//! small pieces. Replies accumulate in the session's output buffer and go out in one
//! `write` when the engine needs more input or the session ends; a message being sent
//! goes out in writes of at least [`FLUSH_AT`] bytes. (Debian's popa3d writes each RETR
//! reply in three pieces, which with Nagle and delayed ACKs costs ~44 ms per message.)

use std::io::{self, Read, Write};

use pop3_mailbox::{DropError, Maildrop};
use pop3_proto::{
    Action, CloseReason, EmptyListing, MessageEncoder, Options, Password, Session, Totals,
};

/// Output is flushed during RETR/TOP once this many bytes are buffered.
pub const FLUSH_AT: usize = 64 * 1024;

/// Bytes read from the maildrop per call while sending a message.
const READ_CHUNK: usize = 64 * 1024;

/// The reply to any failed login, USER/PASS or AUTH PLAIN alike: popa3d's text
/// (research/popa3d.md §3.3), the same bytes for an unknown user, a wrong password and
/// root, with the RFC 3206 `[AUTH]` code that CAPA's `AUTH-RESP-CODE` promises.
pub const AUTH_FAILED: &[u8] = b"-ERR [AUTH] Authentication failed (bad password?)\r\n";

/// The reply when the maildrop cannot be loaded after a successful login, where popa3d
/// sends a bare `-ERR`. The code tells a client whether retrying can help (RFC 3206,
/// RFC 2449 §8.1.2): `[IN-USE]` for a lock held elsewhere, `[SYS/PERM]` for a mailbox
/// refused as it is (not a regular file, not an mbox, over a limit), `[SYS/TEMP]` for
/// other I/O errors. `[IN-USE]` comes from a lock wait that ran out (`lock_timeout`,
/// `Mbox::open_within`) or a lock call that reports a deadlock.
pub fn load_failed_reply(e: &DropError) -> &'static [u8] {
    match e {
        DropError::Refused(_) => b"-ERR [SYS/PERM] Cannot load the mailbox\r\n",
        DropError::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Deadlock
            ) =>
        {
            b"-ERR [IN-USE] The mailbox is locked\r\n"
        }
        DropError::Io(_) | DropError::Stale => b"-ERR [SYS/TEMP] Cannot load the mailbox\r\n",
    }
}

/// How AUTHORIZATION ended.
#[derive(Debug)]
pub enum AuthOutcome {
    /// USER and PASS, or AUTH PLAIN, were given. No reply to them has been sent.
    Login {
        user: Vec<u8>,
        password: Password,
        pipelined: Vec<u8>,
    },
    /// STLS was accepted and `+OK Begin TLS negotiation` sent; every byte the client
    /// had sent after the STLS line was dropped with the session. Start TLS on the raw
    /// connection, then resume with [`run_authorization_after_tls`].
    StartTls,
    /// QUIT; `+OK` was sent. popa3d logs "Didn't attempt authentication".
    Quit,
    /// The client went away (or a write failed). Also "Didn't attempt authentication".
    Disconnected,
    /// The client sent nothing for the idle timeout, or stopped reading our replies.
    /// popa3d logs this as "Didn't attempt authentication" too.
    TimedOut,
}

/// How TRANSACTION (and UPDATE) ended; each maps to one of popa3d's log lines.
#[derive(Debug)]
pub enum TransactionOutcome {
    /// QUIT and a successful UPDATE: "D (DS) deleted, L (LS) left".
    Quit(Totals),
    /// UPDATE failed other than by staleness: "Failed to update", `-ERR` sent.
    UpdateFailed(DropError),
    /// Another program changed the mailbox: "Another MUA active, giving up"; the
    /// session ends without a reply.
    Stale,
    /// Reading the mailbox failed: "Server failure accessing"; no reply.
    ServerFailure(DropError),
    /// EOF or a write error: "Premature disconnect"; nothing committed.
    Disconnected,
    /// Idle timeout, or the client stopped reading: "Connection timed out"; nothing
    /// committed.
    TimedOut,
}

/// Why a transfer to or from the client stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    Closed,
    TimedOut,
}

fn broken(e: &io::Error) -> Broken {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        Broken::TimedOut
    } else {
        Broken::Closed
    }
}

/// Writes the whole pending output in one go.
fn flush<W: Write>(session: &mut Session, out: &mut W) -> Result<(), Broken> {
    let n = session.output().len();
    if n > 0 {
        out.write_all(session.output()).map_err(|e| broken(&e))?;
        out.flush().map_err(|e| broken(&e))?;
        session.consume_output(n);
    }
    Ok(())
}

/// Reads once into the session's input buffer. EOF and read errors end the input
/// (popa3d counts a read error as EOF); a timeout is reported.
fn fill<R: Read>(session: &mut Session, input: &mut R) -> Result<(), Broken> {
    let space = session.input_space();
    if space.is_empty() {
        return Ok(());
    }
    let n = loop {
        match input.read(space) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(n) => break n,
            Err(e) if broken(&e) == Broken::TimedOut => return Err(Broken::TimedOut),
            Err(_) => break 0,
        }
    };
    if n == 0 {
        session.input_eof();
    } else {
        session.input_filled(n);
    }
    Ok(())
}

/// Runs AUTHORIZATION with the default [`Options`]: greeting, then USER, PASS, AUTH,
/// CAPA, QUIT.
pub fn run_authorization<R: Read, W: Write>(input: &mut R, out: &mut W) -> AuthOutcome {
    run_authorization_with(input, out, Options::default())
}

/// Runs AUTHORIZATION with this connection's [`Options`].
pub fn run_authorization_with<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    options: Options,
) -> AuthOutcome {
    authorize(input, out, Session::authorization_with(options))
}

/// Runs AUTHORIZATION over a connection on which STLS has just set up TLS: no greeting
/// (RFC 2595 §4), and `options.stls` should be off.
pub fn run_authorization_after_tls<R: Read, W: Write>(
    input: &mut R,
    out: &mut W,
    options: Options,
) -> AuthOutcome {
    authorize(input, out, Session::authorization_after_tls(options))
}

fn authorize<R: Read, W: Write>(input: &mut R, out: &mut W, mut session: Session) -> AuthOutcome {
    loop {
        match session.poll(&EmptyListing) {
            Action::NeedInput => {
                if let Err(b) = flush(&mut session, out).and_then(|()| fill(&mut session, input)) {
                    return auth_broken(b);
                }
            }
            Action::Flush => {
                if let Err(b) = flush(&mut session, out) {
                    return auth_broken(b);
                }
            }
            Action::Login {
                user,
                password,
                pipelined,
            } => {
                // Replies to commands before PASS may still be buffered.
                if let Err(b) = flush(&mut session, out) {
                    return auth_broken(b);
                }
                return AuthOutcome::Login {
                    user,
                    password,
                    pipelined,
                };
            }
            Action::StartTls => {
                // The +OK must reach the client before the handshake; the input buffer
                // (commands pipelined behind STLS) is already gone.
                if let Err(b) = flush(&mut session, out) {
                    return auth_broken(b);
                }
                return AuthOutcome::StartTls;
            }
            Action::Close(reason) => {
                let _ = flush(&mut session, out);
                return match reason {
                    CloseReason::QuitAuthorization => AuthOutcome::Quit,
                    CloseReason::Eof | CloseReason::Done => AuthOutcome::Disconnected,
                };
            }
            // Not reachable in AUTHORIZATION; treat as a broken session.
            Action::Retrieve { .. } | Action::Update { .. } => return AuthOutcome::Disconnected,
        }
    }
}

fn auth_broken(b: Broken) -> AuthOutcome {
    match b {
        Broken::Closed => AuthOutcome::Disconnected,
        Broken::TimedOut => AuthOutcome::TimedOut,
    }
}

fn transaction_broken(b: Broken) -> TransactionOutcome {
    match b {
        Broken::Closed => TransactionOutcome::Disconnected,
        Broken::TimedOut => TransactionOutcome::TimedOut,
    }
}

/// Runs TRANSACTION and UPDATE over a loaded maildrop. Sends the `+OK` that answers
/// PASS first, then serves `pipelined` and whatever else the client sends.
pub fn run_transaction<R: Read, W: Write, M: Maildrop>(
    input: &mut R,
    out: &mut W,
    drop: &mut M,
    pipelined: &[u8],
) -> TransactionOutcome {
    let mut session = match Session::try_transaction(&*drop, pipelined) {
        Ok(s) => s,
        Err(_) => return TransactionOutcome::Disconnected,
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match session.poll(&*drop) {
            Action::NeedInput => {
                if let Err(b) = flush(&mut session, out).and_then(|()| fill(&mut session, input)) {
                    return transaction_broken(b);
                }
            }
            Action::Flush => {
                if let Err(b) = flush(&mut session, out) {
                    return transaction_broken(b);
                }
            }
            Action::Retrieve { index, top } => {
                match send_message(&mut session, out, drop, &mut buf, index, top) {
                    Ok(()) => {}
                    Err(SendError::Drop(DropError::Stale)) => {
                        let _ = flush(&mut session, out);
                        return TransactionOutcome::Stale;
                    }
                    Err(SendError::Drop(e)) => {
                        let _ = flush(&mut session, out);
                        return TransactionOutcome::ServerFailure(e);
                    }
                    Err(SendError::Write(b)) => return transaction_broken(b),
                }
            }
            Action::Update { deleted } => {
                let mut marks = vec![false; drop.count() as usize];
                for i in deleted {
                    if let Some(m) = marks.get_mut(i as usize) {
                        *m = true;
                    }
                }
                let totals = session.totals();
                match drop.update(&marks) {
                    Ok(()) => {
                        session.update_done(true);
                        let _ = flush(&mut session, out);
                        return TransactionOutcome::Quit(totals);
                    }
                    Err(DropError::Stale) => {
                        let _ = flush(&mut session, out);
                        return TransactionOutcome::Stale;
                    }
                    Err(e) => {
                        session.update_done(false);
                        let _ = flush(&mut session, out);
                        return TransactionOutcome::UpdateFailed(e);
                    }
                }
            }
            Action::Close(_) => {
                let _ = flush(&mut session, out);
                return TransactionOutcome::Disconnected;
            }
            Action::Login { .. } | Action::StartTls => return TransactionOutcome::Disconnected,
        }
    }
}

enum SendError {
    Drop(DropError),
    Write(Broken),
}

/// RETR/TOP: re-check, `+OK`, the message, re-check, terminator. A change found by either
/// check ends the session before the terminator, so a client never takes a damaged
/// message for a complete one.
fn send_message<W: Write, M: Maildrop>(
    session: &mut Session,
    out: &mut W,
    drop: &mut M,
    buf: &mut [u8],
    index: u32,
    top: Option<u32>,
) -> Result<(), SendError> {
    drop.check().map_err(SendError::Drop)?;
    session.retrieve_begin();
    let mut enc = MessageEncoder::new(top);
    let len = drop.data_len(index);
    let mut offset = 0u64;
    while offset < len && !enc.is_done() {
        let n = drop.read(index, offset, buf).map_err(SendError::Drop)?;
        if n == 0 {
            drop.check().map_err(SendError::Drop)?;
            return Err(SendError::Drop(DropError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "message shorter than loaded",
            ))));
        }
        enc.encode(&buf[..n], session.output_mut());
        offset += n as u64;
        if session.output().len() >= FLUSH_AT {
            flush(session, out).map_err(SendError::Write)?;
        }
    }
    drop.check().map_err(SendError::Drop)?;
    enc.finish(session.output_mut());
    Ok(())
}
