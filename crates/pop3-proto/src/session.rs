//! The session: input buffer, line assembly, state dispatch, output buffer.
//!
//! [`Session`] owns every buffer and never blocks; it turns input bytes into output
//! bytes and [`Action`]s. Its memory is bounded except for the output buffer: pipelined
//! commands stop running once [`OUTPUT_HIGH_WATER`] bytes are queued, so it holds at
//! most that plus one reply (a multi-line LIST or UIDL, the largest), plus whatever the
//! driver streams into it.

use crate::authorization::Authorization;
use crate::capability::Options;
use crate::line::LineAssembler;
use crate::listing::Listing;
use crate::params::{INPUT_BUFFER, MAX_AUTH_LINE, MAX_LINE, OUTPUT_HIGH_WATER};
use crate::password::Password;
use crate::reply;
use crate::transaction::{Totals, Transaction};
use zeroize::Zeroize;

/// What the driver must do next. Returned by [`Session::poll`].
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Every buffered input byte has been used. Flush [`Session::output`], then read
    /// into [`Session::input_space`] or report the end of input with
    /// [`Session::input_eof`], and poll again.
    NeedInput,
    /// At least [`OUTPUT_HIGH_WATER`] bytes of replies are queued and
    /// more commands are waiting: write [`Session::output`] out (at least below that
    /// mark), then poll again without reading.
    Flush,
    /// PASS, or a well-formed `AUTH PLAIN` response, was received: AUTHORIZATION is
    /// over, and this session is finished (polling it again returns `Close(Done)`). No
    /// reply has been queued. The two ways in give the same action, within the same
    /// limits: `user` is at most [`crate::params::MAX_ARG`] bytes (empty only from
    /// `USER`), the password 1 to [`crate::params::MAX_PASSWORD`] bytes; `pipelined`
    /// holds the input bytes that followed the PASS (or AUTH) line and were already
    /// buffered (at most [`INPUT_BUFFER`]), to be given to [`Session::try_transaction`]
    /// if the login succeeds.
    Login {
        /// The USER argument, or PLAIN's authentication identity.
        user: Vec<u8>,
        /// The PASS parameter string as typed, or PLAIN's password.
        password: Password,
        /// Commands the client sent ahead of the PASS reply.
        pipelined: Vec<u8>,
    },
    /// STLS was accepted (only where [`Options::stls`] is set): `+OK Begin TLS
    /// negotiation` is queued, and every input byte that followed the STLS line has been
    /// discarded (the STARTTLS command-injection hole: a command sent before the
    /// handshake must never be run as if it came through TLS). Flush the output, then
    /// start TLS; AUTHORIZATION goes on in a new session made with
    /// [`Session::authorization_after_tls`]. This session is finished (polling it again
    /// returns `Close(Done)`).
    StartTls,
    /// RETR (`top: None`) or TOP (`top: Some(body_lines)`) of the message with 0-based
    /// `index`, which exists and is not marked deleted. Nothing has been queued: the
    /// driver re-checks the maildrop (and on a change ends the session without any
    /// reply, as popa3d does), calls [`Session::retrieve_begin`], streams the message
    /// through a [`crate::MessageEncoder`] into [`Session::output_mut`], re-checks, calls
    /// [`crate::MessageEncoder::finish`], then polls again.
    Retrieve {
        /// 0-based message index.
        index: u32,
        /// TOP's line count, or `None` for RETR.
        top: Option<u32>,
    },
    /// QUIT in TRANSACTION. `deleted` lists the 0-based indexes marked deleted, in
    /// increasing order (possibly none). The driver runs the UPDATE state, then calls
    /// [`Session::update_done`]; polling before that returns this action again.
    Update {
        /// Indexes to remove from the maildrop.
        deleted: Vec<u32>,
    },
    /// The session is over: flush the output and close the connection.
    Close(CloseReason),
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// QUIT in AUTHORIZATION; `+OK` is queued. popa3d logs "Didn't attempt
    /// authentication".
    QuitAuthorization,
    /// The client closed its side at a line boundary (after any partial last line was
    /// run). In AUTHORIZATION popa3d logs "Didn't attempt authentication", in TRANSACTION
    /// "Premature disconnect", and nothing is committed.
    Eof,
    /// After [`Session::update_done`], or when polled again after [`Action::Login`].
    Done,
}

/// [`Session::try_transaction`] was given more pipelined bytes than [`INPUT_BUFFER`],
/// which an honest pre-auth side can never produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelinedTooLong {
    /// How many bytes were offered.
    pub len: usize,
}

impl core::fmt::Display for PipelinedTooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} pipelined bytes exceed the {INPUT_BUFFER}-byte input buffer",
            self.len
        )
    }
}

impl std::error::Error for PipelinedTooLong {}

/// What a handler asks the session loop to do after a line.
pub(crate) enum Step {
    Continue,
    NeedInput,
    Eof,
    QuitAuthorization,
    Login { user: Vec<u8>, password: Password },
    StartTls,
    Retrieve { index: u32, top: Option<u32> },
    Update,
}

enum State {
    Authorization(Authorization),
    Transaction,
    /// QUIT received in TRANSACTION, waiting for [`Session::update_done`].
    Update,
    Closed(CloseReason),
}

/// What [`Input::next_line`] found.
enum Next {
    /// A line is ready in the assembler; `true` if it ended with LF, `false` if with EOF.
    Line(bool),
    NeedInput,
    Eof,
}

/// Boxed so that moving a [`Session`] does not leave copies of a PASS line behind.
struct Buffers {
    input: [u8; INPUT_BUFFER],
    line: LineAssembler,
}

/// The client input side: a fixed buffer (`start..end` unread) feeding the line
/// assembler.
struct Input {
    bufs: Box<Buffers>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Input {
    fn new() -> Input {
        Input {
            bufs: Box::new(Buffers {
                input: [0; INPUT_BUFFER],
                line: LineAssembler::new(),
            }),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    fn next_line(&mut self) -> Next {
        loop {
            let bufs = &mut *self.bufs;
            let pending = bufs.input.get(self.start..self.end).unwrap_or_default();
            if pending.is_empty() {
                self.start = 0;
                self.end = 0;
                return if !self.eof {
                    Next::NeedInput
                } else if bufs.line.is_started() {
                    // popa3d runs a last line cut short by EOF (§9.10).
                    Next::Line(false)
                } else {
                    Next::Eof
                };
            }
            let (used, complete) = bufs.line.feed(pending);
            self.start += used;
            if complete {
                return Next::Line(true);
            }
        }
    }

    /// Hands over the unread bytes and wipes the buffer, which held the PASS (or AUTH)
    /// line.
    fn take_pipelined(&mut self) -> Vec<u8> {
        let pipelined = self
            .bufs
            .input
            .get(self.start..self.end)
            .unwrap_or_default()
            .to_vec();
        self.bufs.input.zeroize();
        self.start = 0;
        self.end = 0;
        pipelined
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.bufs.input.zeroize();
    }
}

/// Capacity kept by the output buffer once emptied; more is released, so one huge
/// LIST does not pin memory for the rest of the session.
const OUTPUT_KEEP: usize = 256 * 1024;

/// One POP3 session, from greeting (or login) to close. See the crate docs for the
/// driver loop.
pub struct Session {
    input: Input,
    out: Vec<u8>,
    /// Bytes of `out` already taken by the driver.
    sent: usize,
    state: State,
    tx: Transaction,
    options: Options,
}

impl Session {
    /// A new connection in the AUTHORIZATION state, with the greeting (`+OK\r\n`,
    /// popa3d's whole banner) queued, and the default [`Options`].
    pub fn authorization() -> Session {
        Session::authorization_with(Options::default())
    }

    /// [`Session::authorization`] with this connection's [`Options`] (what CAPA
    /// advertises, whether plaintext logins are accepted).
    pub fn authorization_with(options: Options) -> Session {
        let mut out = Vec::with_capacity(512);
        reply::ok(&mut out);
        Session {
            input: Input::new(),
            out,
            sent: 0,
            state: State::Authorization(Authorization::default()),
            tx: Transaction::empty(),
            options,
        }
    }

    /// AUTHORIZATION resumed after STLS and the TLS handshake: like
    /// [`Session::authorization_with`] but without a greeting, which RFC 2595 §4 does
    /// not send again (the client asks CAPA anew instead). `options` should have `stls`
    /// off: TLS cannot start twice.
    pub fn authorization_after_tls(options: Options) -> Session {
        let mut session = Session::authorization_with(options);
        session.out.clear();
        session
    }

    /// A session entering TRANSACTION after a successful login done elsewhere: queues
    /// the `+OK\r\n` reply to PASS, and buffers `pipelined` (the client's bytes that
    /// followed PASS, from [`Action::Login`]) to be run by the next [`Session::poll`].
    ///
    /// The message count and total size are taken from `listing` now and are fixed
    /// for the session; pass the same listing to every `poll`.
    ///
    /// # Errors
    /// [`PipelinedTooLong`] if `pipelined` exceeds [`INPUT_BUFFER`]: the bytes come from
    /// the untrusted pre-auth side, and a genuine one never sends more.
    pub fn try_transaction(
        listing: &dyn Listing,
        pipelined: &[u8],
    ) -> Result<Session, PipelinedTooLong> {
        Session::try_transaction_with(listing, pipelined, Options::default())
    }

    /// [`Session::try_transaction`] with this connection's [`Options`] (what CAPA
    /// advertises after login).
    ///
    /// # Errors
    /// As [`Session::try_transaction`].
    pub fn try_transaction_with(
        listing: &dyn Listing,
        pipelined: &[u8],
        options: Options,
    ) -> Result<Session, PipelinedTooLong> {
        if pipelined.len() > INPUT_BUFFER {
            return Err(PipelinedTooLong {
                len: pipelined.len(),
            });
        }
        let mut out = Vec::with_capacity(512);
        // The reply to PASS: the login succeeded and the maildrop is loaded.
        reply::ok(&mut out);
        let mut session = Session {
            input: Input::new(),
            out,
            sent: 0,
            state: State::Transaction,
            tx: Transaction::new(listing),
            options,
        };
        if let Some(dst) = session.input.bufs.input.get_mut(..pipelined.len()) {
            dst.copy_from_slice(pipelined);
            session.input.end = pipelined.len();
        }
        Ok(session)
    }

    /// Free space at the end of the input buffer, to read client bytes into. Empty only
    /// if input is still buffered and no [`Session::poll`] consumed it (after
    /// [`Action::NeedInput`] the whole [`INPUT_BUFFER`] is free).
    pub fn input_space(&mut self) -> &mut [u8] {
        let input = &mut self.input;
        if input.start > 0 {
            input.bufs.input.copy_within(input.start..input.end, 0);
            input.end -= input.start;
            input.start = 0;
        }
        input.bufs.input.get_mut(input.end..).unwrap_or_default()
    }

    /// Records that `n` bytes were written at the start of [`Session::input_space`].
    /// (Clamped to the buffer, so a wrong `n` cannot make the session panic.)
    pub fn input_filled(&mut self, n: usize) {
        self.input.end = self.input.end.saturating_add(n).min(INPUT_BUFFER);
    }

    /// The client closed its side (or a read failed, which popa3d treats alike).
    pub fn input_eof(&mut self) {
        self.input.eof = true;
    }

    /// Runs buffered command lines, queuing their replies, until one needs the driver.
    /// Pipelined commands are answered strictly in order. `listing` is only consulted in
    /// TRANSACTION; in AUTHORIZATION pass [`crate::EmptyListing`].
    pub fn poll(&mut self, listing: &dyn Listing) -> Action {
        loop {
            // Only worth stopping for if more commands are waiting; otherwise NeedInput
            // comes next and the driver flushes anyway.
            let backlog = self.out.len().saturating_sub(self.sent);
            let flush_first = backlog >= OUTPUT_HIGH_WATER && self.input.start < self.input.end;
            let out = &mut self.out;
            let options = &self.options;
            let step = match &mut self.state {
                State::Closed(reason) => return Action::Close(*reason),
                State::Update => {
                    return Action::Update {
                        deleted: self.tx.deleted_indexes(),
                    }
                }
                _ if flush_first => return Action::Flush,
                State::Authorization(auth) => {
                    let long = |line: &[u8]| auth.accepts_long(line);
                    match run_line(&mut self.input, long) {
                        Err(step) => step,
                        Ok(line) => {
                            let step = auth.handle_line(line.get(), options, out);
                            line.clear();
                            step
                        }
                    }
                }
                State::Transaction => match run_line(&mut self.input, |_| false) {
                    Err(step) => step,
                    Ok(line) => {
                        let step = match line.get() {
                            Some(line) => self.tx.handle_line(line, listing, options, out),
                            None => {
                                reply::err(out);
                                Step::Continue
                            }
                        };
                        line.clear();
                        step
                    }
                },
            };
            match step {
                Step::Continue => {}
                Step::NeedInput => return Action::NeedInput,
                Step::Eof => self.state = State::Closed(CloseReason::Eof),
                Step::QuitAuthorization => {
                    self.state = State::Closed(CloseReason::QuitAuthorization)
                }
                Step::Login { user, password } => {
                    self.state = State::Closed(CloseReason::Done);
                    return Action::Login {
                        user,
                        password,
                        pipelined: self.input.take_pipelined(),
                    };
                }
                Step::StartTls => {
                    self.state = State::Closed(CloseReason::Done);
                    drop(self.input.take_pipelined());
                    return Action::StartTls;
                }
                Step::Retrieve { index, top } => return Action::Retrieve { index, top },
                Step::Update => self.state = State::Update,
            }
        }
    }

    /// Queues the `+OK\r\n` that starts a RETR or TOP reply, once the driver knows it
    /// can send the message.
    pub fn retrieve_begin(&mut self) {
        reply::ok(&mut self.out);
    }

    /// Ends UPDATE: queues `+OK` (`ok`) or `-ERR` and closes the session (the next poll
    /// returns `Close(Done)`). If the maildrop changed under us, popa3d sends nothing;
    /// the driver then just drops the session instead of calling this. Ignored outside
    /// UPDATE.
    pub fn update_done(&mut self, ok: bool) {
        if let State::Update = self.state {
            if ok {
                reply::ok(&mut self.out);
            } else {
                reply::err(&mut self.out);
            }
            self.state = State::Closed(CloseReason::Done);
        }
    }

    /// Queued output not yet taken by [`Session::consume_output`]. Only whole replies
    /// are queued by the session itself.
    pub fn output(&self) -> &[u8] {
        self.out.get(self.sent..).unwrap_or_default()
    }

    /// The output buffer, for streaming message data into (append only).
    pub fn output_mut(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Marks the first `n` bytes of [`Session::output`] as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.out.len());
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
            if self.out.capacity() > OUTPUT_KEEP {
                self.out.shrink_to(OUTPUT_KEEP);
            }
        } else if self.sent >= OUTPUT_KEEP && self.sent >= self.out.len() / 2 {
            // Partial writes of a large buffer: move the rest down now and then, so
            // the buffer neither grows without bound nor is shifted on every write.
            self.out.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Deletion marks by 0-based index (all `false` in AUTHORIZATION).
    pub fn deleted(&self) -> &[bool] {
        self.tx.deleted()
    }

    /// Deleted and remaining message counts and sizes, for STAT and the log line
    /// `D (DS) deleted, L (LS) left`.
    pub fn totals(&self) -> Totals {
        self.tx.totals()
    }
}

/// A finished line, borrowed from the assembler, which [`ReadyLine::clear`] wipes.
struct ReadyLine<'a> {
    line: &'a mut LineAssembler,
    terminated: bool,
    long_ok: bool,
}

impl ReadyLine<'_> {
    /// The line, or `None` if it is refused before parsing: longer than [`MAX_LINE`]
    /// (or [`MAX_AUTH_LINE`] where the state allows a long line), or holding a NUL.
    /// Either way it gets exactly one `-ERR`.
    fn get(&self) -> Option<&[u8]> {
        self.line
            .line(self.terminated, MAX_AUTH_LINE)
            .ok()
            .filter(|line| line.len() <= MAX_LINE || self.long_ok)
    }

    fn clear(self) {
        self.line.clear();
    }
}

/// Takes the next line from `input`, if any. `long_ok` says whether a line (already
/// within [`MAX_AUTH_LINE`]) may exceed [`MAX_LINE`]. `Err` is what to do when no line
/// is ready.
fn run_line(input: &mut Input, long_ok: impl FnOnce(&[u8]) -> bool) -> Result<ReadyLine<'_>, Step> {
    match input.next_line() {
        Next::NeedInput => Err(Step::NeedInput),
        Next::Eof => Err(Step::Eof),
        Next::Line(terminated) => {
            let line = &mut input.bufs.line;
            let long_ok = line
                .line(terminated, MAX_AUTH_LINE)
                .is_ok_and(|l| l.len() > MAX_LINE && long_ok(l));
            Ok(ReadyLine {
                line,
                terminated,
                long_ok,
            })
        }
    }
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match self.state {
            State::Authorization(_) => "Authorization",
            State::Transaction => "Transaction",
            State::Update => "Update",
            State::Closed(_) => "Closed",
        };
        f.debug_struct("Session")
            .field("state", &state)
            .field(
                "buffered_input",
                &self.input.end.saturating_sub(self.input.start),
            )
            .field("output", &self.output().len())
            .finish_non_exhaustive()
    }
}
