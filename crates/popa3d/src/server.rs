//! One POP3 session in popa3d's process model, inetd mode: the client is on fds 0 and 1
//! and the process starts as root. docs/privsep.md describes each process.
//!
//! ```text
//!  root (this process)
//!   ├─ fork ─▶ TLS relay (implicit TLS at once; STLS when the client asks): chroot,
//!   │          user "popa3d", seccomp; owns the client socket, and fds 0/1 of this
//!   │          process become a plaintext socket to it (crate::tls)
//!   ├─ fork ─▶ pre-auth: chroot, user "popa3d", no_new_privs, rlimits, Landlock,
//!   │          seccomp; speaks AUTHORIZATION; sends one LoginRequest (or START_TLS,
//!   │          after which a fresh pre-auth runs behind the relay); exits
//!   │  reads the request as hostile input (pop3_privsep), never a client byte
//!   ├─ fork ─▶ verifier: root; one password check (shadow, PAM or passwd-file);
//!   │          sends one Verdict; exits, taking shadow data and PAM state with it
//!   └─ success: becomes the mail user for good, opens the mailbox with the user's
//!      rights alone, serves TRANSACTION and UPDATE
//!      failure: becomes "popa3d" in the chroot, logs, answers -ERR, exits
//! ```
//!
//! Only this file and the verifier run as root. Root's work between the forks is:
//! reading two bounded messages from pipes, checking lengths, logging and switching
//! users. No process here ever reads the TLS private key (crate::tls).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pop3_auth::{Authenticator, Backend};
use pop3_mailbox::Mbox;
use pop3_privsep::{LoginRequest, Verdict, START_TLS};
use pop3_proto::Listing;
use pop3_sys::poll::TimedFd;
use pop3_sys::privileges;
use pop3_sys::process::{self, Exit, Fork, Pid};
use pop3_sys::sandbox::{self, Confinement};

use crate::config::{AuthKind, Config, TlsMode};
use crate::control::{SessionEnd, ToDaemon, ToSession};
use crate::driver::{self, AuthOutcome};
use crate::messages::{self, Level};
use crate::syslog::{escape, Syslog};
use crate::tls::SessionTls;

/// The reply to any failed login: popa3d's text with `[AUTH]` (driver::AUTH_FAILED).
const AUTH_FAILED: &[u8] = driver::AUTH_FAILED;

/// How the privileged side's checks of a peer process went wrong. Each is fatal.
#[derive(Debug)]
enum Fatal {
    /// A system call failed: (what, error), logged as popa3d does ("fork: ...").
    Sys(&'static str, io::Error),
    /// A peer process sent something that is not one valid message.
    Peer(&'static str, String),
}

fn log(syslog: &Syslog, level: Level, msg: &str) {
    syslog.log(level, msg);
}

/// What a session knows beyond its configuration: who the client is, and (in the
/// standalone daemon) the channel to the daemon.
#[derive(Debug, Default)]
pub struct Context {
    /// The client's address: the TCP peer, or the client named by a trusted proxy's
    /// PROXY header. Given to PAM as PAM_RHOST. `None` when fd 0 is not a TCP socket.
    pub peer: Option<IpAddr>,
    /// The standalone daemon's end of the channel (crate::control); `None` in inetd
    /// mode. Only this process holds it: the pre-auth process and the verifier close it
    /// first thing, and it is closed before the switch to the mail user.
    pub control: Option<SessionEnd>,
    /// TLS on this connection (implicit or STLS), or `None`.
    pub tls: Option<SessionTls>,
    /// Whether USER/PASS and AUTH PLAIN are accepted before TLS (`plaintext_login` for
    /// this peer). Under TLS they always are.
    pub plaintext_login: bool,
    /// The TLS relay, once started, and this process's end of the plaintext socket to
    /// it (also on fds 0/1): shut down and waited for before this process exits. Child
    /// processes drop it first thing.
    pub(crate) relay: Option<(Pid, UnixStream)>,
    /// inetd mode's key holder for this session, reaped at the end (it exits once the
    /// relay has had its signature, or has gone).
    pub(crate) holder: Option<Pid>,
}

impl Context {
    /// In a child of the session's root process (pre-auth, verifier, relay): closes the
    /// daemon's channel and the root's end of the relay's plaintext socket, which only
    /// the root may use.
    fn drop_in_child(&mut self) {
        drop(self.control.take());
        drop(self.relay.take());
    }
}

/// Runs one session on fds 0/1 (inetd mode) and returns the process's exit status.
pub fn inetd(config: &Config, syslog: &Syslog) -> i32 {
    let peer = pop3_sys::net::tcp_peer(&io::stdin()).map(|a| a.ip().to_canonical());
    run(
        config,
        syslog,
        Context {
            peer,
            control: None,
            tls: SessionTls::for_inetd(config),
            plaintext_login: config.tls.allows_plaintext_login(peer),
            ..Context::default()
        },
    )
}

/// Runs one session on fds 0/1 and returns the process's exit status: inetd mode, and
/// each connection of the standalone daemon after it has put the connection there.
pub fn run(config: &Config, syslog: &Syslog, mut ctx: Context) -> i32 {
    let result = session(config, syslog, &mut ctx);
    if let Some((pid, plain)) = ctx.relay.take() {
        finish_relay(syslog, pid, plain);
    }
    if let Some(pid) = ctx.holder.take() {
        let _ = process::wait(pid);
    }
    match result {
        Ok(code) => code,
        Err(Fatal::Sys(what, e)) => {
            log(
                syslog,
                Level::Crit,
                &format!("{what}: {}", messages::strerror(&e)),
            );
            1
        }
        Err(Fatal::Peer(who, why)) => {
            log(
                syslog,
                Level::Crit,
                &format!("{who} sent an invalid message: {why}"),
            );
            1
        }
    }
}

/// Lets the TLS relay finish: our end of the plaintext socket closes, the relay sends
/// close_notify and exits. Waiting for it keeps the session's process (which the daemon,
/// or systemd with `Accept=yes`, counts) alive until the client has had the last reply,
/// and reports a relay killed by a signal (SIGSYS: its seccomp filter) as loudly as a
/// killed pre-auth process.
fn finish_relay(syslog: &Syslog, relay: Pid, plain: UnixStream) {
    // Whatever fds 0/1 still are (this may be in the chroot, without /dev/null), the
    // socket itself is shut down.
    let _ = plain.shutdown(std::net::Shutdown::Both);
    if let Ok(Exit::Signaled(sig)) = process::wait(relay) {
        log(
            syslog,
            Level::Crit,
            &format!("TLS relay process killed by signal {sig}"),
        );
    }
}

fn sys<T>(what: &'static str, r: io::Result<T>) -> Result<T, Fatal> {
    r.map_err(|e| Fatal::Sys(what, e))
}

/// The client connection as timed reader and writer.
fn client(config: &Config) -> Result<(TimedFd, TimedFd), Fatal> {
    let input = sys("dup", io::stdin().as_fd().try_clone_to_owned())?;
    let output = sys("dup", io::stdout().as_fd().try_clone_to_owned())?;
    Ok((
        TimedFd::new(input, Some(config.timeout), Some(config.write_timeout)),
        TimedFd::new(output, Some(config.timeout), Some(config.write_timeout)),
    ))
}

/// Reads a peer's whole message: at most `max` bytes, then EOF. More is a protocol
/// violation; a read error counts as no message, as in popa3d.
fn read_message(fd: OwnedFd, max: usize) -> Result<Vec<u8>, Fatal> {
    let mut f = File::from(fd);
    let mut buf = Vec::with_capacity(max + 1);
    match (&mut f).take(max as u64 + 1).read_to_end(&mut buf) {
        Ok(n) if n > max => Err(Fatal::Peer(
            "peer process",
            format!("more than {max} bytes"),
        )),
        Ok(_) => Ok(buf),
        Err(_) => Ok(Vec::new()),
    }
}

fn exit_code(e: Exit) -> i32 {
    match e {
        Exit::Exited(c) => c,
        Exit::Signaled(_) => 1,
    }
}

fn session(config: &Config, syslog: &Syslog, ctx: &mut Context) -> Result<i32, Fatal> {
    let unpriv = sys("getpwnam", privileges::lookup_user(&config.user))?.ok_or_else(|| {
        Fatal::Sys(
            "getpwnam",
            io::Error::other(format!("\"{}\": No such user", config.user)),
        )
    })?;

    let mut tls = ctx.tls.take();
    // Whether the client is now talking to the TLS relay.
    let mut secure = false;
    // Whether AUTHORIZATION resumes after STLS (no second greeting).
    let mut resumed = false;
    if tls.as_ref().is_some_and(|t| t.mode == TlsMode::Implicit) {
        match start_tls(config, syslog, ctx, &unpriv, tls.take())? {
            Some(relay) => {
                ctx.relay = Some(relay);
                secure = true;
            }
            None => return Ok(1),
        }
    }

    // AUTHORIZATION in a confined child; a second one behind the relay after STLS.
    let (mut raw, child_status) = loop {
        let mut options = pop3_proto::Options::default();
        options.stls = !secure && tls.is_some();
        options.plaintext_login = secure || ctx.plaintext_login;
        let (rx, tx) = sys("pipe", process::pipe())?;
        let pid = match sys("fork", process::fork())? {
            Fork::Child => {
                drop(rx);
                ctx.drop_in_child();
                drop(tls.take());
                let code = preauth(config, syslog, &unpriv, tx, options, resumed);
                process::exit_now(code);
            }
            Fork::Parent(pid) => pid,
        };
        drop(tx);
        let raw = read_message(rx, LoginRequest::MAX_LEN)?;
        let preauth_exit = sys("waitpid", process::wait(pid))?;
        if let Exit::Signaled(sig) = preauth_exit {
            // SIGSYS is the seccomp filter at work: something in that process tried a
            // system call it never makes, which smells of an exploit. Say so, loudly.
            log(
                syslog,
                Level::Crit,
                &format!("pre-auth process killed by signal {sig}"),
            );
        }
        if raw.as_slice() == START_TLS.as_slice() && options.stls {
            // The client's STLS was answered; the pre-auth process and every byte it
            // had read after STLS are gone. TLS on the raw socket, then AUTHORIZATION
            // again, without a greeting (RFC 2595 §4).
            match start_tls(config, syslog, ctx, &unpriv, tls.take())? {
                Some(relay) => {
                    ctx.relay = Some(relay);
                    secure = true;
                    resumed = true;
                    continue;
                }
                None => return Ok(1),
            }
        }
        break (raw, exit_code(preauth_exit));
    };
    // TLS cannot start any more: the holder channel of an unused STLS goes now, before
    // the verifier and the mail-user process exist.
    drop(tls);
    if raw.is_empty() {
        become_unprivileged(config, unpriv.uid, unpriv.gid)?;
        log(syslog, Level::Info, messages::DIDNT_AUTHENTICATE);
        return Ok(child_status);
    }
    let request =
        LoginRequest::decode(&raw).map_err(|e| Fatal::Peer("pre-auth process", e.to_string()));
    zeroize::Zeroize::zeroize(&mut raw);
    let request = request?;

    // One password check in a short-lived child.
    let verdict = verify(config, syslog, ctx, &request)?;
    let user_for_log = escape(&request.user, 40);
    let LoginRequest {
        password,
        pipelined,
        ..
    } = request;
    drop(password);

    match verdict {
        Verdict::Fail { known } => {
            // The daemon decides how long this source waits for its -ERR (it counts the
            // failures of all sessions); asked while the channel is still ours alone.
            let delay = match ctx.control.take() {
                Some(mut c) => match c.ask(ToDaemon::LoginFailed) {
                    Ok(ToSession::Delay(d)) => d,
                    _ => Duration::ZERO,
                },
                None => Duration::ZERO,
            };
            become_unprivileged(config, unpriv.uid, unpriv.gid)?;
            let who = if known {
                user_for_log.as_str()
            } else {
                "UNKNOWN USER"
            };
            log(
                syslog,
                Level::Notice,
                &format!("Authentication failed for {who}"),
            );
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let (_, mut out) = client(config)?;
            let _ = out.write_all(AUTH_FAILED);
            drop(out);
            close_gracefully();
            Ok(child_status)
        }
        Verdict::Pass {
            uid, gid, mailbox, ..
        } => {
            if let Some(mut c) = ctx.control.take() {
                let _ = c.tell(ToDaemon::LoginPassed);
            }
            log(
                syslog,
                Level::Info,
                &format!("Authentication passed for {user_for_log}"),
            );
            sys("setuid", privileges::drop_to(uid, gid))?;
            transaction(config, syslog, &path_from(mailbox), &pipelined)
        }
    }
}

fn path_from(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// The pre-auth child: confine, speak AUTHORIZATION, hand over USER and PASS (or say
/// that the client asked for STLS). `resumed`: AUTHORIZATION goes on after STLS, with no
/// greeting.
fn preauth(
    config: &Config,
    syslog: &Syslog,
    unpriv: &privileges::Account,
    tx: OwnedFd,
    options: pop3_proto::Options,
    resumed: bool,
) -> i32 {
    let (uid, gid) = (unpriv.uid, unpriv.gid);
    let (mut input, mut output) = match client(config) {
        Ok(c) => c,
        Err(_) => return 1,
    };
    let confinement = Confinement::new(config.chroot.clone(), uid, gid);
    if let Err(e) = sandbox::confine(&confinement) {
        log(
            syslog,
            Level::Crit,
            &format!("confining the pre-auth process: {e}"),
        );
        return 1;
    }
    let outcome = if resumed {
        driver::run_authorization_after_tls(&mut input, &mut output, options)
    } else {
        driver::run_authorization_with(&mut input, &mut output, options)
    };
    match outcome {
        AuthOutcome::Login {
            user,
            password,
            pipelined,
        } => {
            let request = LoginRequest {
                user,
                password,
                pipelined,
            };
            let Some(mut bytes) = request.encode() else {
                return 1;
            };
            let r = File::from(tx).write_all(&bytes);
            zeroize::Zeroize::zeroize(&mut bytes);
            i32::from(r.is_err())
        }
        // The +OK is out, and the bytes read after STLS die with this process.
        AuthOutcome::StartTls => i32::from(File::from(tx).write_all(START_TLS).is_err()),
        AuthOutcome::Quit | AuthOutcome::Disconnected | AuthOutcome::TimedOut => 0,
    }
}

/// Starts TLS on the client connection: builds the handshake's configuration (in inetd
/// mode that spawns the key holder), forks the relay onto the client socket, and puts a
/// plaintext socket to the relay on fds 0/1 of this process. Returns the relay's pid and
/// that socket; `Ok(None)`: TLS could not be set up (logged); the session ends.
fn start_tls(
    config: &Config,
    syslog: &Syslog,
    ctx: &mut Context,
    unpriv: &privileges::Account,
    tls: Option<SessionTls>,
) -> Result<Option<(Pid, UnixStream)>, Fatal> {
    let Some(tls) = tls else {
        return Ok(None);
    };
    let timeout = tls.handshake_timeout;
    let server_config = match tls.server_config() {
        Ok((c, holder)) => {
            ctx.holder = holder;
            c
        }
        Err(e) => {
            log(syslog, Level::Crit, &format!("TLS: {e}"));
            return Ok(None);
        }
    };
    let (ours, theirs) = sys("socketpair", UnixStream::pair())?;
    match sys("fork", process::fork())? {
        Fork::Child => {
            drop(ours);
            ctx.drop_in_child();
            let code = crate::tls::relay(
                config,
                syslog,
                unpriv.uid,
                unpriv.gid,
                server_config,
                theirs,
                timeout,
            );
            process::exit_now(code);
        }
        Fork::Parent(relay) => {
            // The signature channel goes with the configuration: only the relay has it.
            drop(server_config);
            drop(theirs);
            sys("dup2", process::dup_onto(ours.as_fd(), 0))?;
            sys("dup2", process::dup_onto(ours.as_fd(), 1))?;
            Ok(Some((relay, ours)))
        }
    }
}

/// Runs the password check in a child that exits right after, so no shadow entry, hash
/// or PAM handle stays in this process.
fn verify(
    config: &Config,
    syslog: &Syslog,
    ctx: &mut Context,
    request: &LoginRequest,
) -> Result<Verdict, Fatal> {
    let (rx, tx) = sys("pipe", process::pipe())?;
    match sys("fork", process::fork())? {
        Fork::Child => {
            drop(rx);
            ctx.drop_in_child();
            // The verifier runs as root and may run PAM modules: it gets no access to the
            // client at all.
            if to_dev_null(&[0, 1, 2]).is_err() {
                process::exit_now(1);
            }
            let rhost = ctx.peer.map(|ip| ip.to_string());
            let verdict = check_password(config, syslog, request, rhost.as_deref());
            let code = i32::from(File::from(tx).write_all(&verdict.encode()).is_err());
            process::exit_now(code);
        }
        Fork::Parent(pid) => {
            drop(tx);
            let raw = read_message(rx, Verdict::MAX_LEN)?;
            let status = sys("waitpid", process::wait(pid))?;
            if status != Exit::Exited(0) {
                return Err(Fatal::Peer("verifier", format!("exited with {status:?}")));
            }
            Verdict::decode(&raw).map_err(|e| Fatal::Peer("verifier", e.to_string()))
        }
    }
}

/// How long, and how much, a connection is drained after the last reply.
const DRAIN_TIME: Duration = Duration::from_secs(1);
const DRAIN_BYTES: usize = 64 * 1024;

/// Ends the connection after our last reply with a FIN, not a reset: if the client sent
/// more (a pipelined QUIT after a failed PASS, say) and we closed with it unread, the
/// kernel would answer with RST, and a client may lose our `-ERR` and report "connection
/// reset" instead of a failed login. So: shut down our sending side, then read and drop
/// what comes until the client closes, for at most [`DRAIN_TIME`] and [`DRAIN_BYTES`].
/// Does nothing when fd 1 is not a socket (pipes, tests).
pub(crate) fn close_gracefully() {
    if let Ok(out) = io::stdout().as_fd().try_clone_to_owned() {
        shut_down_and_drain(out);
    }
}

/// [`close_gracefully`] on the connection `socket` (the TLS relay's, which may not
/// duplicate descriptors any more).
pub(crate) fn shut_down_and_drain(socket: OwnedFd) {
    let socket = std::net::TcpStream::from(socket);
    if socket.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let mut input = DeadlineReader::new(OwnedFd::from(socket), DRAIN_TIME);
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_BYTES {
        match input.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// The client's input (a duplicate of fd 0) with one deadline for all its reads, where
/// [`TimedFd`]'s timeout applies to each read: for a PROXY header that must arrive in
/// `proxy_timeout`, and for draining a connection before closing it.
pub(crate) struct DeadlineReader {
    fd: TimedFd,
    deadline: Instant,
}

impl DeadlineReader {
    /// Reads from fd 0 until `timeout` from now.
    pub(crate) fn stdin(timeout: Duration) -> io::Result<DeadlineReader> {
        let fd = io::stdin().as_fd().try_clone_to_owned()?;
        Ok(DeadlineReader::new(fd, timeout))
    }

    /// Reads from `fd` until `timeout` from now.
    pub(crate) fn new(fd: OwnedFd, timeout: Duration) -> DeadlineReader {
        DeadlineReader {
            fd: TimedFd::new(fd, Some(timeout), None),
            deadline: Instant::now() + timeout,
        }
    }
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        self.fd.set_read_timeout(Some(left));
        self.fd.read(buf)
    }
}

/// Points each of `fds` at /dev/null: the verifier's 0, 1 and 2 (it gets no access to
/// the client at all), a session's 2 (nothing a library prints may reach a client), the
/// daemon's 0, 1 and 2 once it runs.
pub fn to_dev_null(fds: &[RawFd]) -> io::Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    for &fd in fds {
        process::dup_onto(null.as_fd(), fd)?;
    }
    Ok(())
}

/// In the verifier: the backend's verdict, with the mailbox path filled in.
fn check_password(
    config: &Config,
    syslog: &Syslog,
    request: &LoginRequest,
    rhost: Option<&str>,
) -> Verdict {
    let backend = match &config.auth {
        AuthKind::Shadow => Backend::Shadow,
        AuthKind::Pam => Backend::Pam {
            service: config.pam_service.clone(),
        },
        AuthKind::PasswdFile => Backend::PasswdFile {
            path: config.passwd_file.clone(),
        },
    };
    if matches!(backend, Backend::Pam { .. }) {
        pop3_sys::pam::set_module_log_ident();
    }
    let auth: Box<dyn Authenticator> = backend.authenticator(rhost);
    match auth.verify(&request.user, request.password.as_bytes()) {
        pop3_auth::Verdict::Pass(account) => {
            // popa3d: the mailbox is the spool plus the user name as typed.
            let mailbox = account
                .mailbox
                .unwrap_or_else(|| config.spool.join(path_from(request.user.clone())));
            Verdict::Pass {
                name: account.name.into_bytes(),
                uid: account.uid,
                gid: account.gid,
                mailbox: mailbox.into_os_string().into_encoded_bytes(),
            }
        }
        pop3_auth::Verdict::Fail { known } => Verdict::Fail { known },
        // The check could not be made (an unusable passwd-file, a failing lookup): the
        // client gets the same reply as for a wrong password, the log says why.
        pop3_auth::Verdict::Error(e) => {
            syslog.log(Level::Crit, &format!("authentication: {e}"));
            Verdict::Fail { known: false }
        }
    }
}

/// What popa3d does before logging a failed or abandoned login: give up root for the
/// pre-auth identity, in the chroot.
fn become_unprivileged(config: &Config, uid: u32, gid: u32) -> Result<(), Fatal> {
    sys("chroot", sandbox::enter_chroot(&config.chroot))?;
    sys("setuid", privileges::drop_to(uid, gid))
}

/// TRANSACTION and UPDATE, as the mail user.
fn transaction(
    config: &Config,
    syslog: &Syslog,
    mailbox: &Path,
    pipelined: &[u8],
) -> Result<i32, Fatal> {
    let (mut input, mut output) = client(config)?;
    let name = mailbox.display().to_string();
    let mut mbox = match Mbox::open_within(mailbox, config.lock_timeout) {
        Ok(m) => m,
        Err(e) => {
            log(
                syslog,
                Level::Notice,
                &format!("{}: {e}", messages::load_failed(&name)),
            );
            let _ = output.write_all(driver::load_failed_reply(&e));
            return Ok(0);
        }
    };
    let total: u64 = (0..mbox.count()).map(|i| mbox.size(i)).sum();
    log(syslog, Level::Info, &messages::loaded(mbox.count(), total));
    let outcome = driver::run_transaction(&mut input, &mut output, &mut mbox, pipelined);
    let (level, text) = messages::transaction_outcome(&outcome, &name);
    log(syslog, level, &text);
    Ok(0)
}
