//! Fuzz target bodies, kept as plain functions so that `cargo test` runs them too and
//! the fuzz crate only wraps them. They report a broken invariant by panicking (through
//! `assert!`), which is what a fuzzer looks for; nothing else in this crate may panic.
//!
//! Also holds the scripted driver ([`run`]) and in-memory maildrop ([`FakeMaildrop`])
//! that the crate's tests use, so fuzzing and tests drive sessions the same way.

use crate::listing::{EmptyListing, Listing};
use crate::params::{INPUT_BUFFER, MAX_ARG, MAX_PASSWORD, OUTPUT_HIGH_WATER};
use crate::{Action, CloseReason, MessageEncoder, Options, Session};

/// An in-memory maildrop: message data as the mailbox holds it (LF line ends, no From_
/// line) and UIDLs. Sizes are popa3d's: data length with every LF counted as CRLF.
#[derive(Debug, Clone, Default)]
pub struct FakeMaildrop {
    messages: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Message 1 of the test mailbox in popa3d.md §9 (LIST size 211).
pub const BOB_1: &[u8] = b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\n\
Message-ID: <one@example.org>\n\
Subject: first\n\
\n\
Hello bob.\n\
.leading dot line\n\
..two dots\n\
>From escaped\n\
last line\n";

/// Message 2 of the test mailbox in popa3d.md §9 (LIST size 96).
pub const BOB_2: &[u8] = b"Date: Tue, 2 Jan 2024 00:00:00 +0000\n\
Subject: second\n\
\n\
body2 line1\n\
body2 line2\n\
body2 line3\n";

impl FakeMaildrop {
    /// Messages as `(data, uidl)` pairs, message 1 first.
    pub fn new(messages: Vec<(Vec<u8>, Vec<u8>)>) -> FakeMaildrop {
        FakeMaildrop { messages }
    }

    /// bob's mailbox from popa3d.md §9, with the UIDLs the real popa3d printed.
    pub fn bob() -> FakeMaildrop {
        FakeMaildrop::new(vec![
            (BOB_1.to_vec(), b"fed9c3594b4c341c".to_vec()),
            (BOB_2.to_vec(), b"a9ba9d20b213cf39".to_vec()),
        ])
    }

    /// bob's mailbox plus a message full of encoder corner cases (dots, NUL, lone CR,
    /// CRLF, no final LF), none of whose lines looks like a status line.
    pub fn fuzz() -> FakeMaildrop {
        let mut drop = FakeMaildrop::bob();
        drop.messages.push((
            b"X: y\n\n.\n..\n.x\nnul\0 and cr\r here\r\n\r\nlast without LF".to_vec(),
            b"0123456789abcdef".to_vec(),
        ));
        drop
    }

    /// The data of message `index`, empty if there is none.
    pub fn message(&self, index: u32) -> &[u8] {
        self.messages
            .get(index as usize)
            .map(|(data, _)| data.as_slice())
            .unwrap_or_default()
    }
}

impl Listing for FakeMaildrop {
    fn count(&self) -> u32 {
        u32::try_from(self.messages.len()).unwrap_or(u32::MAX)
    }

    fn size(&self, index: u32) -> u64 {
        let data = self.message(index);
        (data.len() + memchr::memchr_iter(b'\n', data).count()) as u64
    }

    fn uidl(&self, index: u32) -> &[u8] {
        self.messages
            .get(index as usize)
            .map(|(_, uidl)| uidl.as_slice())
            .unwrap_or_default()
    }
}

/// Which state a scripted session starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A fresh connection (greeting first).
    Authorization,
    /// Just after a successful login (PASS reply first).
    Transaction,
}

/// An action the scripted driver saw, minus what legitimately depends on how input was
/// chunked (the pipelined bytes of a login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Retrieve {
        index: u32,
        top: Option<u32>,
    },
    Update {
        deleted: Vec<u32>,
    },
    /// STLS was accepted; the scripted session ends there (what follows would be TLS,
    /// and which bytes were discarded depends on the chunking).
    StartTls,
    Close(CloseReason),
}

/// Everything a scripted session produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// All bytes the server sent, in order.
    pub output: Vec<u8>,
    pub events: Vec<Event>,
}

/// Drives a session over `maildrop` the way the daemon does, with the client sending
/// `input` in reads of at most `chunk` bytes and then closing. Every login succeeds and
/// continues in a TRANSACTION session with the pipelined bytes; every RETR/TOP is sent
/// from `maildrop` (also in `chunk`-byte pieces); every UPDATE succeeds.
pub fn run(start: Start, maildrop: &FakeMaildrop, input: &[u8], chunk: usize) -> Transcript {
    run_with(start, Options::default(), maildrop, input, chunk)
}

/// [`run`] with the engine's [`Options`] for both states.
pub fn run_with(
    start: Start,
    options: Options,
    maildrop: &FakeMaildrop,
    input: &[u8],
    chunk: usize,
) -> Transcript {
    let chunk = chunk.max(1);
    let mut transcript = Transcript {
        output: Vec::new(),
        events: Vec::new(),
    };
    let mut in_authorization = start == Start::Authorization;
    let mut session = if in_authorization {
        Session::authorization_with(options)
    } else {
        match Session::try_transaction_with(maildrop, &[], options) {
            Ok(session) => session,
            Err(_) => return transcript,
        }
    };
    let mut fed = 0;
    let mut eof_sent = false;
    loop {
        let listing: &dyn Listing = if in_authorization {
            &EmptyListing
        } else {
            maildrop
        };
        match session.poll(listing) {
            Action::NeedInput => {
                assert!(!eof_sent, "NeedInput after EOF");
                flush(&mut session, &mut transcript.output);
                let rest = input.get(fed..).unwrap_or_default();
                let space = session.input_space();
                let n = space.len().min(chunk).min(rest.len());
                assert!(rest.is_empty() || n > 0, "no input space after NeedInput");
                if let (Some(dst), Some(src)) = (space.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                session.input_filled(n);
                fed += n;
                if n == 0 {
                    session.input_eof();
                    eof_sent = true;
                }
            }
            Action::Flush => {
                assert!(
                    session.output().len() >= OUTPUT_HIGH_WATER,
                    "needless Flush"
                );
                flush(&mut session, &mut transcript.output);
            }
            Action::Login {
                user,
                password,
                pipelined,
            } => {
                assert!(in_authorization, "Login outside AUTHORIZATION");
                assert!(user.len() <= MAX_ARG);
                assert!(!password.is_empty() && password.len() <= MAX_PASSWORD);
                assert!(pipelined.len() <= INPUT_BUFFER);
                assert_eq!(
                    session.poll(&EmptyListing),
                    Action::Close(CloseReason::Done)
                );
                transcript.events.push(Event::Login {
                    user,
                    password: password.as_bytes().to_vec(),
                });
                flush(&mut session, &mut transcript.output);
                session = match Session::try_transaction_with(maildrop, &pipelined, options) {
                    Ok(session) => session,
                    Err(_) => return transcript,
                };
                in_authorization = false;
                eof_sent = false;
            }
            Action::StartTls => {
                assert!(in_authorization, "StartTls outside AUTHORIZATION");
                assert!(options.stls, "StartTls without the stls option");
                assert_eq!(
                    session.poll(&EmptyListing),
                    Action::Close(CloseReason::Done)
                );
                transcript.events.push(Event::StartTls);
                flush(&mut session, &mut transcript.output);
                return transcript;
            }
            Action::Retrieve { index, top } => {
                assert!(!in_authorization, "Retrieve in AUTHORIZATION");
                transcript.events.push(Event::Retrieve { index, top });
                session.retrieve_begin();
                let mut encoder = MessageEncoder::new(top);
                for piece in maildrop.message(index).chunks(chunk) {
                    let used = encoder.encode(piece, session.output_mut());
                    if encoder.is_done() {
                        break;
                    }
                    assert_eq!(used, piece.len(), "encoder stopped early");
                }
                encoder.finish(session.output_mut());
            }
            Action::Update { deleted } => {
                assert!(!in_authorization, "Update in AUTHORIZATION");
                assert_eq!(
                    session.poll(maildrop),
                    Action::Update {
                        deleted: deleted.clone()
                    }
                );
                let totals = session.totals();
                assert_eq!(totals.deleted as usize, deleted.len());
                transcript.events.push(Event::Update { deleted });
                session.update_done(true);
            }
            Action::Close(reason) => {
                transcript.events.push(Event::Close(reason));
                flush(&mut session, &mut transcript.output);
                return transcript;
            }
        }
    }
}

/// Takes the queued output in small, uneven pieces, as partial socket writes would.
fn flush(session: &mut Session, wire: &mut Vec<u8>) {
    let mut piece = 1;
    while !session.output().is_empty() {
        let n = piece.min(session.output().len());
        wire.extend_from_slice(session.output().get(..n).unwrap_or_default());
        session.consume_output(n);
        piece = piece * 3 + 1;
    }
}

/// Checks that `output` is a sequence of whole CRLF-terminated replies: status lines
/// starting `+OK` or `-ERR`, SASL continuations (`+ `), and multi-line bodies (after a
/// bare `+OK`) ended by `.`. Relies on no message line of the maildrop looking like a
/// status line or a continuation.
pub fn check_replies(output: &[u8]) -> Result<(), String> {
    if !output.is_empty() && !output.ends_with(b"\r\n") {
        return Err("output does not end with CRLF".into());
    }
    #[derive(PartialEq)]
    enum Mode {
        Status,
        /// After a bare `+OK`: a body may follow, or another status line.
        MaybeBody,
        Body,
    }
    if output.is_empty() {
        return Ok(());
    }
    let mut mode = Mode::Status;
    // Drop the final LF only, so that every piece below should end with its CR.
    let body = output.strip_suffix(b"\n").unwrap_or_default();
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(format!("line {n} ends with a bare LF"));
        };
        let status = line.starts_with(b"+OK") || line.starts_with(b"-ERR");
        mode = match mode {
            Mode::Status | Mode::MaybeBody if status => {
                if line == b"+OK" {
                    Mode::MaybeBody
                } else {
                    Mode::Status
                }
            }
            // A continuation is always a reply of its own (RFC 5034 §4).
            Mode::Status | Mode::MaybeBody if line.starts_with(b"+ ") => Mode::Status,
            Mode::Status => return Err(format!("line {n} is not a status line")),
            Mode::MaybeBody | Mode::Body if line == b"." => Mode::Status,
            Mode::MaybeBody | Mode::Body if status => {
                return Err(format!("line {n}: status line inside a multi-line reply"))
            }
            Mode::MaybeBody | Mode::Body => Mode::Body,
        };
    }
    if mode == Mode::Body {
        return Err("unterminated multi-line reply".into());
    }
    Ok(())
}

/// Fuzz target: `data` as client input to a fresh connection and to a session just
/// logged in, over [`FakeMaildrop::fuzz`]. Must never panic; the output must be whole,
/// well-formed replies.
pub fn command_line(data: &[u8]) {
    let maildrop = FakeMaildrop::fuzz();
    for start in [Start::Authorization, Start::Transaction] {
        let transcript = run(start, &maildrop, data, usize::MAX);
        let checked = check_replies(&transcript.output);
        assert!(
            checked.is_ok(),
            "{checked:?}; input {:?}",
            String::from_utf8_lossy(data)
        );
        assert!(
            matches!(transcript.events.last(), Some(Event::Close(_))),
            "session did not close"
        );
    }
}

/// Fuzz target: the first byte is a read size (0 means 1), the rest client input. Input
/// read in pieces of that size must give exactly what reading it whole gives.
pub fn session_chunks(data: &[u8]) {
    let Some((&size, input)) = data.split_first() else {
        return;
    };
    let maildrop = FakeMaildrop::fuzz();
    for start in [Start::Authorization, Start::Transaction] {
        let whole = run(start, &maildrop, input, usize::MAX);
        let pieces = run(start, &maildrop, input, usize::from(size));
        assert_eq!(whole, pieces, "chunk size {size} changed the session");
    }
}

#[cfg(test)]
mod tests {
    use super::{check_replies, command_line, session_chunks};

    #[test]
    fn checker_rejects_bad_output() {
        assert!(check_replies(b"").is_ok());
        assert!(check_replies(b"+OK\r\n1 2\r\n.\r\n-ERR\r\n").is_ok());
        assert!(check_replies(b"+OK\r\n+OK\r\n").is_ok());
        assert!(check_replies(b"+OK").is_err());
        assert!(check_replies(b"+OK\n").is_err());
        assert!(check_replies(b"hello\r\n").is_err());
        assert!(check_replies(b"+OK\r\nbody\r\n").is_err());
        assert!(check_replies(b"+OK\r\nbody\r\n+OK\r\n").is_err());
        assert!(check_replies(b"+OK 1\r\nbody\r\n.\r\n").is_err());
        assert!(check_replies(b"+OK\r\n+ \r\n-ERR x\r\n").is_ok());
        assert!(check_replies(b"+ \r\nbody\r\n").is_err());
        assert!(check_replies(b"+\r\n").is_err());
    }

    #[test]
    fn targets_accept_samples() {
        let samples: &[&[u8]] = &[
            b"",
            b"USER bob\r\nPASS x\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 3\r\nTOP 1 0\r\nDELE 2\r\nQUIT\r\n",
            b"\x03USER a\nPASS b\nRETR 1\nTOP 3 1\nRSET\nLAST",
            b"\x00\x00\x00\r\r\n\n\n",
            b"LIST 1\r\nRETR 2\r\nTOP 3 100\r\nDELE 1\r\nDELE 1\r\nLAST\r\nQUIT",
            b"CAPA\r\nAUTH\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN\r\nAGJvYgBib2Jwdw==\r\nCAPA\r\nQUIT\r\n",
            b"\x05AUTH PLAIN AGJvYgBib2Jwdw==\nCAPA\nAUTH\nRETR 1\n",
        ];
        for sample in samples {
            command_line(sample);
            session_chunks(sample);
        }
        let mut long = vec![b'x'; 3000];
        long.extend_from_slice(b"\nNOOP\n");
        command_line(&long);
        long.insert(0, 7);
        session_chunks(&long);
    }
}
