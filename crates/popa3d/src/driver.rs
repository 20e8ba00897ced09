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
use pop3_proto::{Action, CloseReason, EmptyListing, MessageEncoder, Password, Session, Totals};

/// Output is flushed during RETR/TOP once this many bytes are buffered.
pub const FLUSH_AT: usize = 64 * 1024;

/// Bytes read from the maildrop per call while sending a message.
const READ_CHUNK: usize = 64 * 1024;

/// How AUTHORIZATION ended.
#[derive(Debug)]
pub enum AuthOutcome {
    /// USER and PASS were given. No reply to PASS has been sent.
    Login {
        user: Vec<u8>,
        password: Password,
        pipelined: Vec<u8>,
    },
    /// QUIT; `+OK` was sent. popa3d logs "Didn't attempt authentication".
    Quit,
    /// The client went away (or a write failed). Also "Didn't attempt authentication".
    Disconnected,
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
}

/// Writes the whole pending output in one go.
fn flush<W: Write>(session: &mut Session, out: &mut W) -> io::Result<()> {
    let n = session.output().len();
    if n > 0 {
        out.write_all(session.output())?;
        out.flush()?;
        session.consume_output(n);
    }
    Ok(())
}

/// Reads once into the session's input buffer; EOF and read errors both end input
/// (popa3d counts a read error as EOF).
fn fill<R: Read>(session: &mut Session, input: &mut R) {
    let space = session.input_space();
    if space.is_empty() {
        return;
    }
    let n = loop {
        match input.read(space) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(n) => break n,
            Err(_) => break 0,
        }
    };
    if n == 0 {
        session.input_eof();
    } else {
        session.input_filled(n);
    }
}

/// Runs AUTHORIZATION: greeting, USER, PASS, QUIT.
pub fn run_authorization<R: Read, W: Write>(input: &mut R, out: &mut W) -> AuthOutcome {
    let mut session = Session::authorization();
    loop {
        match session.poll(&EmptyListing) {
            Action::NeedInput => {
                if flush(&mut session, out).is_err() {
                    return AuthOutcome::Disconnected;
                }
                fill(&mut session, input);
            }
            Action::Flush => {
                if flush(&mut session, out).is_err() {
                    return AuthOutcome::Disconnected;
                }
            }
            Action::Login {
                user,
                password,
                pipelined,
            } => {
                // Replies to commands before PASS may still be buffered.
                if flush(&mut session, out).is_err() {
                    return AuthOutcome::Disconnected;
                }
                return AuthOutcome::Login {
                    user,
                    password,
                    pipelined,
                };
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
                if flush(&mut session, out).is_err() {
                    return TransactionOutcome::Disconnected;
                }
                fill(&mut session, input);
            }
            Action::Flush => {
                if flush(&mut session, out).is_err() {
                    return TransactionOutcome::Disconnected;
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
                    Err(SendError::Write) => return TransactionOutcome::Disconnected,
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
            Action::Login { .. } => return TransactionOutcome::Disconnected,
        }
    }
}

enum SendError {
    Drop(DropError),
    Write,
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
            flush(session, out).map_err(|_| SendError::Write)?;
        }
    }
    drop.check().map_err(SendError::Drop)?;
    enc.finish(session.output_mut());
    Ok(())
}
