//! The key holder process: the only process that reads the private keys and holds them.
//!
//! No process that handles a session may read a key file or hold a key in memory
//! (docs/tls-design.md, "Who holds the key"). [`Holder::spawn`] therefore forks a process
//! that loads every key *after* the fork, so the caller (the daemon, or the root process
//! of an inetd session) never has a key in its memory and no session it forks inherits
//! one. The holder then confines itself ([`confine_key_holder`]: no open(2) or any other
//! call but those that serve a channel, not dumpable, no core file) and serves channels.
//!
//! A channel is a Unix stream socketpair made by [`Holder::channel`]: one end goes to the
//! holder over the control socket, the other to the relay, which asks for one signature
//! (or the public key) on it. The daemon makes one per connection on a TLS listener
//! when it accepts it, and on an STLS listener the client may send `STLS` minutes later
//! or never. So the holder keeps each channel it receives *idle*, in its own poll set
//! and without a process, until it becomes readable. End of file (the session ended
//! without TLS) closes it. The first byte of a request (taken, not looked at) forks a
//! child that reads the rest, parses and answers it ([`serve_channel`]) and exits: a
//! request, hostile or not, is only ever parsed in a child, which cannot crash or stall
//! the holder, and a relay that stops in the middle delays no one else.
//! [`Holder::channel`] set the channel's read and write timeouts before passing it, so
//! that child gives up after `request_timeout` (counted from the first byte, not from
//! when the channel was made). The kernel reaps those children
//! ([`process::ignore_child_exits`]).
//!
//! The idle set is bounded: the holder raises its soft `RLIMIT_NOFILE` to the hard limit
//! at start and keeps at most [`MAX_IDLE_CHANNELS`] channels, or the limit less
//! [`SPARE_DESCRIPTORS`] if that is smaller. A channel that arrives when the set is full
//! pushes out the oldest idle one, whose relay then reads end of file (its handshake
//! fails cleanly): the holder never stops taking channels.
//!
//! # Control socket
//!
//! A `SOCK_SEQPACKET` pair, so every message is one packet. From the caller: one byte,
//! the key's index, with the channel as its one `SCM_RIGHTS` descriptor. A packet of
//! another length, without exactly one descriptor or with an index past the last key is
//! dropped (its descriptors closed) and the holder goes on. From the holder, once, after
//! loading and confining: `00` (ready), `01 | index | reason` (that key failed to load)
//! or `02 | reason` (setting up failed). End of file from the caller ends the holder once
//! it has no idle channel left: it takes no new channel, but every channel it was given
//! is still answered (or closed by its peer) first, so a session that got its channel
//! before a reload, or the inetd session that lets its holder go as soon as it has its
//! channels, can still ask. Children already forked finish their one request on their
//! own.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use pop3_sys::net::{packet_pair, recv_fd, send_fd};
use pop3_sys::poll::wait_any_readable;
use pop3_sys::process::{self, exit_now, Fork, Pid};
use pop3_sys::sandbox::confine_key_holder;
use pop3_sys::signals;
use rustls_pki_types::SubjectPublicKeyInfoDer;

use crate::keyholder::{serve_channel, HolderKey, Served};
use crate::remote::{fetch_public_key, RemoteError};

/// The most keys one holder serves: the index travels in one byte.
pub const MAX_KEYS: usize = 256;

/// How long [`Holder::spawn`] waits for the holder to load its keys and confine itself.
/// Loading takes milliseconds; a key path that blocks (a FIFO, a hung network file
/// system) must not stall the daemon for ever.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most channels the holder keeps idle (received, no request yet) at once: one per
/// connection on a TLS listener that has not started its handshake, of which an STLS
/// listener may have as many as it has plaintext sessions (the daemon's largest
/// `max_sessions` is this too). A bound of its own, so that a high descriptor limit does
/// not make each wait scan a huge poll set: every wakeup polls the whole set.
pub const MAX_IDLE_CHANNELS: usize = 65536;

/// Descriptors the holder keeps free for everything but idle channels: 0, 1 and 2, the
/// control socket, and the channel being received, with room to spare. Its idle set
/// holds at most its `RLIMIT_NOFILE` less this many channels (and at least one), so that
/// receiving a channel never fails for want of a descriptor number.
pub const SPARE_DESCRIPTORS: u64 = 16;

/// The most control packets the holder reads after one poll of its whole idle set
/// before it polls again: a burst of connections costs one poll per batch rather than
/// one per channel, and a request that begins meanwhile waits for at most this many
/// packets. More than the control socket queues (`net.unix.max_dgram_qlen`, 10 by
/// default), so the daemon, which blocks while that queue is full, is let go at once.
const CONTROL_BATCH: usize = 32;

/// Longest reason text in a failure report, in bytes.
const MAX_REASON: usize = 512;

const REPORT_READY: u8 = 0;
const REPORT_KEY: u8 = 1;
const REPORT_SETUP: u8 = 2;

/// Why a key holder could not be started.
#[derive(Debug)]
pub enum HolderError {
    /// Forking failed, the holder could not set itself up or confine itself, or it did
    /// not report within [`READY_TIMEOUT`].
    Spawn(io::Error),
    /// Key `index` (the file `path`) could not be loaded.
    Key {
        /// Its position in the list given to [`Holder::spawn`].
        index: usize,
        /// The file.
        path: PathBuf,
        /// Why, as the holder saw it (printable characters only).
        reason: String,
    },
    /// The holder ended without reporting, or reported something unreadable.
    Protocol(String),
}

impl fmt::Display for HolderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HolderError::Spawn(e) => write!(f, "cannot start the TLS key holder: {e}"),
            HolderError::Key { path, reason, .. } => {
                write!(f, "tls_key {}: {reason}", path.display())
            }
            HolderError::Protocol(why) => write!(f, "TLS key holder: {why}"),
        }
    }
}

impl std::error::Error for HolderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HolderError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// The holder's one report on the control socket.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Report {
    Ready,
    Key { index: usize, reason: String },
    Setup(String),
}

impl Report {
    fn encode(&self) -> Vec<u8> {
        match self {
            Report::Ready => vec![REPORT_READY],
            Report::Key { index, reason } => {
                let mut out = vec![REPORT_KEY, u8::try_from(*index).unwrap_or(u8::MAX)];
                out.extend_from_slice(printable(reason).as_bytes());
                out
            }
            Report::Setup(reason) => {
                let mut out = vec![REPORT_SETUP];
                out.extend_from_slice(printable(reason).as_bytes());
                out
            }
        }
    }

    fn decode(bytes: &[u8]) -> Option<Report> {
        let text = |b: &[u8]| printable(&String::from_utf8_lossy(b));
        match bytes {
            [REPORT_READY] => Some(Report::Ready),
            [REPORT_KEY, index, reason @ ..] => Some(Report::Key {
                index: usize::from(*index),
                reason: text(reason),
            }),
            [REPORT_SETUP, reason @ ..] => Some(Report::Setup(text(reason))),
            _ => None,
        }
    }
}

/// `s` with every control character escaped (`\n`, `\u{1b}`), cut to [`MAX_REASON`]
/// bytes: the text ends up in the daemon's log.
fn printable(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        if out.len() + piece.len() > MAX_REASON {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// A running key holder, seen from the process that spawned it.
///
/// Dropping it closes the control socket: the holder takes no more channels, and exits
/// once each channel it holds idle has had its request (answered in a child) or been
/// closed by its peer; at once if it holds none. Nothing waits for it here: the spawning
/// process reaps it like its other children (the daemon's SIGCHLD loop), or waits for
/// [`Holder::into_pid`].
#[derive(Debug)]
pub struct Holder {
    pid: Pid,
    control: UnixStream,
    keys: usize,
    request_timeout: Duration,
}

impl Holder {
    /// Forks the key holder. The child closes every inherited descriptor but its control
    /// socket, points 0, 1 and 2 at /dev/null, unblocks every signal (the daemon blocks
    /// some for its signalfd), starts its own session (a Ctrl-C or a signal to the
    /// daemon's process group must not end it while sessions still need a signature; it
    /// ends on end of file instead), raises its soft `RLIMIT_NOFILE` to the hard limit
    /// (one descriptor per idle channel), loads every file of `key_paths` in order
    /// ([`HolderKey::from_pem_file`]), confines itself ([`confine_key_holder`]) and
    /// reports. Key `i` is then served on [`Holder::channel`]`(i)`, each request with
    /// `request_timeout` on reads and writes.
    ///
    /// Waits at most [`READY_TIMEOUT`] for the report. On any error the child has been
    /// killed if need be and reaped: nothing is left behind. The caller must be
    /// single-threaded ([`process::fork`] refuses otherwise) and is typically root, so
    /// that it can read the key files and the holder stays out of reach of the relays.
    pub fn spawn(key_paths: &[PathBuf], request_timeout: Duration) -> Result<Holder, HolderError> {
        if key_paths.is_empty() || key_paths.len() > MAX_KEYS {
            return Err(HolderError::Spawn(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a key holder serves 1 to {MAX_KEYS} keys, not {}",
                    key_paths.len()
                ),
            )));
        }
        let (ours, theirs) = packet_pair().map_err(HolderError::Spawn)?;
        ours.set_read_timeout(Some(READY_TIMEOUT))
            .map_err(HolderError::Spawn)?;
        let pid = match process::fork().map_err(HolderError::Spawn)? {
            Fork::Child => {
                drop(ours);
                holder_main(theirs, key_paths)
            }
            Fork::Parent(pid) => pid,
        };
        drop(theirs);

        let mut buf = [0u8; 2 + MAX_REASON];
        let report = (&ours).read(&mut buf);
        if let Ok(n) = report {
            if Report::decode(&buf[..n]) == Some(Report::Ready) {
                let holder = Holder {
                    pid,
                    control: ours,
                    keys: key_paths.len(),
                    request_timeout: request_timeout.max(Duration::from_millis(1)),
                };
                // The holder never writes again; a send to a holder that stopped
                // reading must not hang the caller.
                holder
                    .control
                    .set_write_timeout(Some(holder.request_timeout))
                    .map_err(HolderError::Spawn)?;
                return Ok(holder);
            }
        }
        // Failed: make sure the child is gone, then reap it (a child that reported a
        // failure is exiting anyway; a silent one must not outlive us).
        drop(ours);
        let _ = process::kill(pid, signals::SIGKILL);
        let ended = process::wait(pid);
        Err(match report {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                HolderError::Spawn(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the key holder did not report within {} s (a key file that blocks, such as a FIFO?)",
                        READY_TIMEOUT.as_secs()
                    ),
                ))
            }
            Err(e) => HolderError::Spawn(e),
            Ok(0) => HolderError::Protocol(format!(
                "the key holder ended before reporting ({})",
                match ended {
                    Ok(exit) => format!("{exit:?}"),
                    Err(e) => e.to_string(),
                }
            )),
            Ok(n) => match Report::decode(&buf[..n]) {
                Some(Report::Key { index, reason }) => match key_paths.get(index) {
                    Some(path) => HolderError::Key {
                        index,
                        path: path.clone(),
                        reason,
                    },
                    None => HolderError::Protocol(format!("report names key {index}, which does not exist")),
                },
                Some(Report::Setup(reason)) => HolderError::Spawn(io::Error::other(reason)),
                Some(Report::Ready) | None => {
                    HolderError::Protocol(format!("unreadable report ({n} bytes)"))
                }
            },
        })
    }

    /// The holder's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// How many keys the holder serves (indexes `0..keys()`).
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// The read and write timeout of every channel.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Closes the control socket, as dropping does, and returns the holder's process
    /// id, for a caller that waits for it. It exits once it holds no idle channel (at
    /// once if the caller kept none unused); its per-channel children are not its to
    /// wait for.
    pub fn into_pid(self) -> Pid {
        self.pid
    }

    /// A new channel for key `index`: a socketpair, one end passed to the holder (with
    /// the request timeout set on it), the other returned. The holder keeps it idle, for
    /// as long as it takes, until the request starts to arrive, then answers that one
    /// request in a child of its own (which waits at most the request timeout for each
    /// read and write) and closes it. Closing the returned end before asking just frees
    /// the holder's end. If more channels wait unused than the holder keeps
    /// ([`MAX_IDLE_CHANNELS`], or fewer under a low descriptor limit:
    /// [`SPARE_DESCRIPTORS`]), the oldest is closed: asking on it then reads end of file.
    /// Fails if `index` is not below [`Holder::keys`] or the holder is gone (`EPIPE`).
    pub fn channel(&self, index: usize) -> io::Result<UnixStream> {
        let byte = u8::try_from(index)
            .ok()
            .filter(|_| index < self.keys)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("no key {index}: the holder has {}", self.keys),
                )
            })?;
        let (ours, theirs) = UnixStream::pair()?;
        // Set here, on the holder's end, so the holder needs no setsockopt.
        theirs.set_read_timeout(Some(self.request_timeout))?;
        theirs.set_write_timeout(Some(self.request_timeout))?;
        send_fd(&self.control, &[byte], theirs.as_fd())?;
        Ok(ours)
    }

    /// Key `index`'s `SubjectPublicKeyInfo`, over a fresh channel, waiting at most
    /// `timeout` for each read and write ([`fetch_public_key`]).
    pub fn public_key(
        &self,
        index: usize,
        timeout: Duration,
    ) -> Result<SubjectPublicKeyInfoDer<'static>, RemoteError> {
        let channel = self.channel(index).map_err(RemoteError::Io)?;
        fetch_public_key(channel, timeout)
    }
}

// ---------------------------------------------------------------------------------------
// The holder's side. Never returns: every way out is exit_now, so nothing the parent
// owned is dropped (or flushed) here.

fn holder_main(control: UnixStream, key_paths: &[PathBuf]) -> ! {
    let control = match above_stdio(control) {
        Ok(c) => c,
        Err((c, e)) => fail(&c, Report::Setup(format!("descriptors: {e}"))),
    };
    if let Err(why) = isolate(&control) {
        fail(&control, Report::Setup(why));
    }
    // Before confinement, which has no setrlimit. Raising the soft limit to the hard one
    // is always allowed, so a failure here means something is badly wrong.
    let capacity = match process::raise_fd_limit(u64::MAX) {
        Ok(limit) => idle_capacity(limit),
        Err(e) => fail(
            &control,
            Report::Setup(format!("raising RLIMIT_NOFILE: {e}")),
        ),
    };
    let mut keys = Vec::with_capacity(key_paths.len());
    for (index, path) in key_paths.iter().enumerate() {
        match HolderKey::from_pem_file(path) {
            Ok(key) => keys.push(key),
            Err(e) => fail(
                &control,
                Report::Key {
                    index,
                    reason: e.to_string(),
                },
            ),
        }
    }
    if let Err(e) = confine_key_holder() {
        fail(&control, Report::Setup(format!("confinement: {e}")));
    }
    if (&control).write_all(&Report::Ready.encode()).is_err() {
        exit_now(1);
    }
    serve(control, &keys, capacity)
}

/// Reports `report` (if the caller still listens) and exits.
fn fail(control: &UnixStream, report: Report) -> ! {
    let _ = (&*control).write_all(&report.encode());
    exit_now(1)
}

/// The control socket on a number above 2, which /dev/null is about to take (it is
/// below 3 only if the caller had closed some of 0, 1 and 2).
fn above_stdio(control: UnixStream) -> Result<UnixStream, (UnixStream, io::Error)> {
    if control.as_raw_fd() > 2 {
        return Ok(control);
    }
    // std duplicates with F_DUPFD_CLOEXEC from 3 up.
    match control.try_clone() {
        Ok(high) => Ok(high),
        Err(e) => Err((control, e)),
    }
}

/// Everything but loading and confining: signals, session, descriptors.
fn isolate(control: &UnixStream) -> Result<(), String> {
    signals::unblock_all().map_err(|e| format!("unblocking signals: {e}"))?;
    process::ignore_child_exits().map_err(|e| format!("ignoring SIGCHLD: {e}"))?;
    process::setsid().map_err(|e| format!("setsid: {e}"))?;
    // Whatever the caller had open (listeners, sessions' channels, the client socket in
    // inetd mode) is no business of the holder's. The objects that owned those numbers
    // live in the caller's frames, which this process never returns to.
    process::close_other_fds(&[control.as_raw_fd()]);
    stdio_to_dev_null().map_err(|e| format!("/dev/null: {e}"))
}

fn stdio_to_dev_null() -> io::Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    let raw = null.as_raw_fd();
    for fd in 0..3 {
        if fd != raw {
            process::dup_onto(null.as_fd(), fd)?;
        }
    }
    if raw < 3 {
        // It took a free number among 0, 1 and 2 and stays there.
        let _ = null.into_raw_fd();
    }
    Ok(())
}

/// What the next packet on the control socket asks for.
#[derive(Debug)]
enum Next {
    /// End of file: the caller dropped its [`Holder`].
    End,
    /// Serve key `index` on `channel`.
    Channel { index: usize, channel: UnixStream },
    /// A malformed packet (its descriptors are closed already), or an interrupted read.
    Skip,
    /// The control socket failed.
    Failed,
}

fn next_request(control: &UnixStream, keys: usize) -> Next {
    // One byte expected; a second shows a longer packet.
    let mut buf = [0u8; 2];
    match recv_fd(control, &mut buf) {
        Ok((0, _)) => Next::End,
        Ok((1, Some(fd))) if usize::from(buf[0]) < keys => Next::Channel {
            index: usize::from(buf[0]),
            channel: UnixStream::from(fd),
        },
        Ok(_) => Next::Skip,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::InvalidData
            ) =>
        {
            Next::Skip
        }
        Err(_) => Next::Failed,
    }
}

/// How many idle channels fit under a descriptor limit of `fd_limit`: all but
/// [`SPARE_DESCRIPTORS`], at most [`MAX_IDLE_CHANNELS`], at least one.
fn idle_capacity(fd_limit: u64) -> usize {
    let room = fd_limit.saturating_sub(SPARE_DESCRIPTORS);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_IDLE_CHANNELS)
}

/// A channel received and not yet asked on.
#[derive(Debug)]
struct Idle<'k> {
    key: &'k HolderKey,
    channel: UnixStream,
}

/// The channels waiting for their request, oldest first.
#[derive(Debug)]
struct IdleSet<'k> {
    channels: VecDeque<Idle<'k>>,
    capacity: usize,
}

impl<'k> IdleSet<'k> {
    fn new(capacity: usize) -> IdleSet<'k> {
        IdleSet {
            channels: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn len(&self) -> usize {
        self.channels.len()
    }

    fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.channels.iter().map(|c| c.channel.as_fd())
    }

    /// Adds `channel`. When the set is full the oldest channel is closed first (its
    /// relay reads end of file and its handshake fails), so the newest always fits.
    fn admit(&mut self, channel: Idle<'k>) {
        while self.channels.len() >= self.capacity {
            drop(self.channels.pop_front());
        }
        self.channels.push_back(channel);
    }

    /// Sorts out the channels that `ready` (one flag per channel, in the set's order, as
    /// a poll of [`IdleSet::fds`] returned them) marks readable: those whose peer has
    /// sent a request's first byte are taken out and returned with that byte, those
    /// whose peer is gone are closed, and the others stay, in their order.
    fn take_asked(&mut self, ready: &[bool]) -> Vec<Asked<'k>> {
        let mut asked = Vec::new();
        if !ready.contains(&true) {
            return asked;
        }
        let before = std::mem::take(&mut self.channels);
        for (i, idle) in before.into_iter().enumerate() {
            if !ready.get(i).copied().unwrap_or(false) {
                self.channels.push_back(idle);
                continue;
            }
            match first_byte(&idle.channel) {
                Peer::Asked(first) => asked.push(Asked {
                    key: idle.key,
                    first: Some(first),
                    channel: idle.channel,
                }),
                Peer::Gone => drop(idle),
                Peer::Unknown => self.channels.push_back(idle),
            }
        }
        asked
    }
}

/// What a readable idle channel has to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    /// A request has begun: its first byte.
    Asked(u8),
    /// End of file or an error: the peer closed its end (or shut down its writing side)
    /// without asking, and never will.
    Gone,
    /// The read was interrupted; look again at the next wakeup.
    Unknown,
}

/// Reads one byte from `channel`, which a poll reported readable. It does not block: a
/// readable socket that only this process reads has data, end of file or an error
/// pending (and the channel's read timeout would bound it anyway). The byte is not
/// looked at here: the child parses the whole request ([`Asked`] gives it back).
fn first_byte(mut channel: &UnixStream) -> Peer {
    let mut byte = [0u8; 1];
    match channel.read(&mut byte) {
        Ok(0) => Peer::Gone,
        Ok(_) => Peer::Asked(byte[0]),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Peer::Unknown,
        Err(_) => Peer::Gone,
    }
}

/// A channel whose request has begun: the byte the holder read, then the channel. The
/// child answers on it.
#[derive(Debug)]
struct Asked<'k> {
    key: &'k HolderKey,
    first: Option<u8>,
    channel: UnixStream,
}

impl Read for Asked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(slot) = buf.first_mut() else {
            return Ok(0);
        };
        match self.first.take() {
            Some(first) => {
                *slot = first;
                Ok(1)
            }
            None => (&self.channel).read(buf),
        }
    }
}

impl Write for Asked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.channel).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The holder's loop: one poll over the control socket and every idle channel, then the
/// channels asked on get a child each, those whose peer left are closed, and the control
/// packets waiting are read. At end of file on the control socket it closes that and
/// goes on with the idle channels alone, until none is left.
fn serve(control: UnixStream, keys: &[HolderKey], capacity: usize) -> ! {
    let mut control = Some(control);
    let mut idle = IdleSet::new(capacity);
    loop {
        if control.is_none() && idle.is_empty() {
            exit_now(0);
        }
        let ready = {
            let mut fds: Vec<BorrowedFd<'_>> = Vec::with_capacity(idle.len() + 1);
            fds.extend(control.as_ref().map(|c| c.as_fd()));
            fds.extend(idle.fds());
            // A failure here is not a peer's doing (the set is bounded below the
            // descriptor limit, which is poll's bound too): give up, as on a broken
            // control socket, rather than spin.
            match wait_any_readable(&fds, None) {
                Ok(ready) => ready,
                Err(_) => exit_now(1),
            }
        };
        let (control_ready, channels_ready) = match (&control, ready.split_first()) {
            (Some(_), Some((first, rest))) => (*first, rest),
            _ => (false, &ready[..]),
        };
        let mut asked = idle.take_asked(channels_ready);
        while let Some(request) = asked.pop() {
            match process::fork() {
                Ok(Fork::Child) => {
                    // Only this channel: the holder alone closes the others (an evicted
                    // channel must read end of file at once, not when this child ends).
                    drop(control);
                    drop(idle);
                    drop(asked);
                    let key = request.key;
                    let code = match serve_channel(key, request) {
                        Ok(Served::Answered(_)) => 0,
                        Ok(Served::Refused(_)) => 2,
                        Err(_) => 1,
                    };
                    exit_now(code)
                }
                // The child has its own copy; without a child (fork failed) the
                // requester sees end of file and its handshake fails.
                Ok(Fork::Parent(_)) | Err(_) => drop(request),
            }
        }
        if !control_ready {
            continue;
        }
        // Every packet waiting (a burst of connections), up to a bound, for one poll of
        // the whole set: that poll costs time in proportion to the idle channels, and
        // the daemon blocks while the control socket's queue is full.
        for _ in 0..CONTROL_BATCH {
            let Some(socket) = &control else {
                break;
            };
            match next_request(socket, keys.len()) {
                Next::End => control = None,
                Next::Failed => exit_now(1),
                Next::Skip => {}
                Next::Channel { index, channel } => {
                    if let Some(key) = keys.get(index) {
                        idle.admit(Idle { key, channel });
                    }
                }
            }
            match control
                .as_ref()
                .map(|c| wait_any_readable(&[c.as_fd()], Some(Duration::ZERO)))
            {
                Some(Ok(more)) if more == [true] => {}
                _ => break,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_stay_printable() {
        for r in [
            Report::Ready,
            Report::Key {
                index: 3,
                reason: "cannot read PEM private key: no items found".into(),
            },
            Report::Setup("confinement: refused".into()),
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        let nasty = Report::Key {
            index: 0,
            reason: "a\nb\x1b[31m".into(),
        };
        assert_eq!(
            Report::decode(&nasty.encode()),
            Some(Report::Key {
                index: 0,
                reason: "a\\nb\\u{1b}[31m".into()
            })
        );
        let long = Report::Setup("é".repeat(1000));
        let Some(Report::Setup(text)) = Report::decode(&long.encode()) else {
            panic!("long report");
        };
        assert!(text.len() <= MAX_REASON && text.len() >= MAX_REASON - 1);
        assert_eq!(Report::decode(&[]), None);
        assert_eq!(Report::decode(&[REPORT_READY, 0]), None);
        assert_eq!(Report::decode(&[9]), None);
        assert_eq!(
            Report::decode(&[REPORT_KEY, 7, 0xff]),
            Some(Report::Key {
                index: 7,
                reason: "\u{fffd}".into()
            })
        );
    }

    #[test]
    fn errors_say_which_key_file() {
        let e = HolderError::Key {
            index: 1,
            path: PathBuf::from("/etc/popa3d/key.pem"),
            reason: "cannot read PEM private key: I/O error: No such file".into(),
        };
        assert_eq!(
            e.to_string(),
            "tls_key /etc/popa3d/key.pem: cannot read PEM private key: I/O error: No such file"
        );
        let e = HolderError::Spawn(io::Error::other("fork: no"));
        assert_eq!(e.to_string(), "cannot start the TLS key holder: fork: no");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            HolderError::Protocol("x".into()).to_string(),
            "TLS key holder: x"
        );
    }

    /// Reads `r` to its end: it returns once every copy of the other end is closed.
    fn at_eof(mut r: UnixStream) -> bool {
        r.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }

    /// The holder's parsing of control packets: only one byte naming a key, with exactly
    /// one descriptor, is a request; anything else is skipped with its descriptors
    /// closed; end of file ends it.
    #[test]
    fn control_packets_are_checked() {
        let (daemon, holder) = packet_pair().unwrap();

        let (ours, theirs) = UnixStream::pair().unwrap();
        send_fd(&daemon, &[1], theirs.as_fd()).unwrap();
        drop(theirs);
        match next_request(&holder, 2) {
            Next::Channel { index: 1, channel } => {
                (&channel).write_all(b"hi").unwrap();
                drop(channel);
                let mut got = Vec::new();
                (&ours).read_to_end(&mut got).unwrap();
                assert_eq!(got, b"hi");
            }
            other => panic!("{other:?}"),
        }

        // Bad index, long packet, no descriptor: skipped, and the descriptor closed.
        for payload in [&[2u8][..], &[0, 0][..]] {
            let (ours, theirs) = UnixStream::pair().unwrap();
            send_fd(&daemon, payload, theirs.as_fd()).unwrap();
            drop(theirs);
            assert!(matches!(next_request(&holder, 2), Next::Skip));
            assert!(at_eof(ours), "descriptor of {payload:?} left open");
        }
        (&daemon).write_all(&[0]).unwrap();
        assert!(matches!(next_request(&holder, 2), Next::Skip));

        drop(daemon);
        assert!(matches!(next_request(&holder, 2), Next::End));
    }

    #[test]
    fn idle_capacity_is_bounded_both_ways() {
        assert_eq!(idle_capacity(1024), 1024 - SPARE_DESCRIPTORS as usize);
        assert_eq!(idle_capacity(20_000), 20_000 - SPARE_DESCRIPTORS as usize);
        assert_eq!(idle_capacity(1 << 20), MAX_IDLE_CHANNELS);
        assert_eq!(idle_capacity(u64::MAX), MAX_IDLE_CHANNELS);
        assert_eq!(idle_capacity(SPARE_DESCRIPTORS + 1), 1);
        assert_eq!(idle_capacity(SPARE_DESCRIPTORS), 1);
        assert_eq!(idle_capacity(0), 1);
    }

    fn test_key() -> HolderKey {
        HolderKey::from_pem(include_str!("../tests/data/rsa2048-test-only.pem").as_bytes()).unwrap()
    }

    /// Whether `r` reads end of file now (every copy of its peer is closed), without
    /// waiting for it.
    fn closed(r: &UnixStream) -> bool {
        r.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        matches!((&*r).read(&mut [0u8; 1]), Ok(0))
    }

    /// A full set closes its oldest channel for a new one; the others stay, in order.
    #[test]
    fn a_full_idle_set_closes_its_oldest_channel() {
        let key = test_key();
        let mut set = IdleSet::new(3);
        let mut peers = Vec::new();
        for _ in 0..5 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            set.admit(Idle {
                key: &key,
                channel: theirs,
            });
            peers.push(ours);
            assert!(set.len() <= 3);
        }
        assert_eq!(set.len(), 3);
        let open: Vec<bool> = peers.iter().map(|p| !closed(p)).collect();
        assert_eq!(open, [false, false, true, true, true]);
        assert_eq!(IdleSet::new(0).capacity, 1);
    }

    /// Of the readable channels, those asked on are taken out with their first byte,
    /// those whose peer left are closed; channels not reported readable are not touched
    /// even if they could be read.
    #[test]
    fn readable_channels_are_sorted_out() {
        let key = test_key();
        let mut set = IdleSet::new(10);
        let mut peers = Vec::new();
        for _ in 0..5 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            set.admit(Idle {
                key: &key,
                channel: theirs,
            });
            peers.push(Some(ours));
        }
        // 0: asks (two bytes); 1: closes; 2: shuts down its writing side; 3: asks but
        // is not reported readable; 4: silent.
        let peer = |i: usize| peers[i].as_ref().unwrap();
        peer(0).write_all(&[0x02, 0x7f]).unwrap();
        peer(2).shutdown(std::net::Shutdown::Write).unwrap();
        peer(3).write_all(&[0x02]).unwrap();
        drop(peers[1].take());

        assert!(set.take_asked(&[false; 5]).is_empty());
        assert_eq!(set.len(), 5);
        let mut asked = set.take_asked(&[true, true, true, false, false]);
        assert_eq!(set.len(), 2, "3 and 4 stay");
        assert_eq!(asked.len(), 1);
        let mut first = asked.pop().unwrap();
        assert_eq!(first.first, Some(0x02));
        // The child reads the byte the holder took, then the rest, and answers.
        let mut got = [0u8; 2];
        first.read_exact(&mut got).unwrap();
        assert_eq!(got, [0x02, 0x7f]);
        first.write_all(b"ok").unwrap();
        drop(first);
        let p0 = peers[0].take().unwrap();
        let mut answer = Vec::new();
        (&p0).read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"ok");
        // 2 was closed by the holder: its peer reads end of file.
        assert!(closed(peers[2].as_ref().unwrap()));
        assert!(!closed(peers[3].as_ref().unwrap()));
        assert!(!closed(peers[4].as_ref().unwrap()));

        // Now 3 is reported (it is first in the set), 4 still silent.
        let asked = set.take_asked(&[true, false]);
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].first, Some(0x02));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(printable("tab\there"), "tab\\there");
        assert_eq!(printable(&"x".repeat(600)).len(), MAX_REASON);
    }
}
