//! The standalone daemon (`popa3d -D`): accepts connections and runs each one through
//! the same privilege-separated session as inetd mode (crate::server), in a process of
//! its own.
//!
//! ```text
//!  daemon (root, one thread): poll(signalfd, listeners, one channel per session)
//!   ├─ accept ─▶ flood control (crate::flood): refused? close at once, no bytes
//!   └─ fork ───▶ session (root): new process group, connection on fds 0/1,
//!                [PROXY header read and checked here, real client told to the daemon],
//!                "Session from <ip>", then crate::server::run, exactly as inetd mode
//! ```
//!
//! The daemon never reads a byte from a client: it accepts, counts, forks and closes.
//! What it learns from a session comes as one fixed-format message on the session's
//! channel (crate::control). It has no thread, no timer and no signal handler: signals
//! arrive through a signalfd read in the same poll loop, so reaping, reloading and
//! stopping happen between accepts, never in the middle of one.
//!
//! Differences from popa3d's `-D` (docs/differences-from-popa3d.md): IPv6 as well as
//! IPv4, several listeners, a large backlog emptied at once instead of 5 (no SYN-retry
//! stalls), limits per network as well as per address, a growing delay after failed
//! logins, SIGHUP reloads, SIGTERM lets sessions finish, systemd socket activation and
//! readiness, the PROXY protocol from trusted proxies.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pop3_sys::errno;
use pop3_sys::net;
use pop3_sys::poll::wait_any_readable;
use pop3_sys::process::{self, Exit, Fork, Pid};
use pop3_sys::signals::{self, SignalFd, SIGCHLD, SIGHUP, SIGINT, SIGTERM};

use crate::config::{self, Config};
use crate::control::{SessionEnd, ToDaemon, ToSession, MAX_MESSAGE};
use crate::flood::{self, SlotId, Table};
use crate::messages::strerror;
use crate::server::{self, Context};
use crate::syslog::{escape, Syslog};
use crate::systemd;
use crate::tls::{DaemonTls, SessionTls};

/// Connections accepted from one listener before the others get their turn.
const ACCEPT_BATCH: usize = 64;

/// How long accepting pauses after running out of descriptors, so that a full
/// descriptor table does not spin the loop.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The interval of the daemon's own rate-limited log lines (untrusted PROXY peers,
/// accept errors).
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The most untrusted PROXY peers whose last log line is remembered; beyond that (a
/// flood from many addresses) they are not logged until old entries expire.
const MAX_UNTRUSTED_LOGGED: usize = 4096;

/// How the daemon is started.
#[derive(Debug)]
pub struct Options {
    /// `-c FILE`, re-read on SIGHUP.
    pub config_path: Option<PathBuf>,
    /// `-F`, or started by systemd: no fork into the background.
    pub foreground: bool,
}

/// A socket the daemon accepts on, with its settings.
struct Bound {
    socket: TcpListener,
    settings: config::Listener,
    origin: Origin,
}

/// Who opened a listening socket.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    /// The daemon, from the configuration: reloads open and close such sockets.
    Ours,
    /// systemd (`LISTEN_FDS`), with its `FileDescriptorName=`: kept across reloads
    /// whatever the file says; only its settings follow the file.
    Systemd { name: Option<String> },
}

/// The `[[listener]]` a socket passed by systemd takes its settings from: the one named
/// like the socket (`FileDescriptorName=`), else the one with its local address.
fn listener_for<'a>(
    listeners: &'a [config::Listener],
    name: Option<&str>,
    local: SocketAddr,
) -> Option<&'a config::Listener> {
    let by_name = name.and_then(|n| listeners.iter().find(|l| l.name.as_deref() == Some(n)));
    by_name.or_else(|| listeners.iter().find(|l| l.address == local))
}

/// Opens the listener of `settings`. `Ok(None)`: it is popa3d's default IPv6 listener
/// (`defaults`) on a host without IPv6, which is skipped with a NOTICE, since popa3d
/// listens on IPv4 only anyway. Any other failure is an error naming the address.
fn bind(
    settings: &config::Listener,
    defaults: bool,
    syslog: &Syslog,
) -> Result<Option<TcpListener>, String> {
    match net::listen(settings.address, settings.backlog) {
        Ok(socket) => Ok(Some(socket)),
        Err(e)
            if defaults
                && settings.address.is_ipv6()
                && matches!(
                    e.raw_os_error(),
                    Some(errno::EAFNOSUPPORT) | Some(errno::EADDRNOTAVAIL)
                ) =>
        {
            syslog.notice(&format!(
                "not listening on {}: {} (no IPv6 on this host?)",
                settings.address,
                strerror(&e)
            ));
            Ok(None)
        }
        Err(e) => Err(format!("bind: {}: {}", settings.address, strerror(&e))),
    }
}

/// A running session, as the daemon sees it.
struct Session {
    slot: SlotId,
    /// `None` once the session closed its end (it had nothing more to say).
    channel: Option<UnixStream>,
    /// Behind a trusted proxy, until the session reports the real client.
    awaiting_source: bool,
    /// Whether the session has asked for its failure delay (once at most).
    asked_delay: bool,
}

/// The flood-control figures of a configuration.
pub fn limits(d: &config::Daemon) -> flood::Limits {
    flood::Limits {
        max_sessions: d.max_sessions,
        max_per_source: d.max_per_source,
        max_per_network: d.max_per_network,
        ipv4_prefix: d.network_prefix_ipv4,
        ipv6_prefix: d.network_prefix_ipv6,
        window: d.flood_window,
        // popa3d rate-limits its lines with the same MIN_DELAY; never faster than that.
        log_interval: d.flood_window.max(Duration::from_secs(10)),
        failure_delay: d.login_failure_delay,
        failure_delay_max: d.login_failure_delay_max,
        ..flood::Limits::default()
    }
}

/// Why the daemon could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Opens the listeners: the sockets systemd passed (`LISTEN_FDS`), else the configured
/// addresses, else popa3d's port 110 on IPv4 and IPv6. Called before going into the
/// background, so that a port in use is reported on the terminal with exit status 1.
pub fn open_listeners(config: &Config, syslog: &Syslog) -> Result<Vec<BoundInfo>, StartError> {
    let inherited = systemd::listen_fds(process::getpid().as_raw() as u32)
        .map_err(|e| StartError(format!("LISTEN_FDS: {e}")))?;
    if let Some(fds) = inherited {
        return adopt(config, syslog, fds);
    }
    let (wanted, defaults) = (config.effective_listeners(), config.listeners.is_empty());
    let mut out = Vec::new();
    for settings in wanted {
        if let Some(socket) = bind(&settings, defaults, syslog).map_err(StartError)? {
            out.push(BoundInfo(Bound {
                socket,
                settings,
                origin: Origin::Ours,
            }));
        }
    }
    Ok(out)
}

/// An open listener, before the daemon runs.
pub struct BoundInfo(Bound);

impl BoundInfo {
    pub fn raw_fd(&self) -> i32 {
        self.0.socket.as_raw_fd()
    }
}

/// Matches the sockets systemd passed to the `[[listener]]` tables: by
/// `FileDescriptorName=` first, then by local address. Without any table, each socket
/// gets the default settings.
fn adopt(
    config: &Config,
    syslog: &Syslog,
    fds: Vec<systemd::Inherited>,
) -> Result<Vec<BoundInfo>, StartError> {
    let mut out: Vec<BoundInfo> = Vec::new();
    for fd in fds {
        let socket =
            net::adopt_listener(fd.fd).map_err(|e| StartError(format!("LISTEN_FDS: {e}")))?;
        let local = socket
            .local_addr()
            .map_err(|e| StartError(format!("LISTEN_FDS: descriptor {}: {e}", fd.fd)))?;
        let settings = match listener_for(&config.listeners, fd.name.as_deref(), local) {
            Some(l) => config::Listener {
                address: local,
                ..l.clone()
            },
            None if config.listeners.is_empty() => config::Listener {
                tls: config.tls.clone(),
                ..config::Listener::on(local)
            },
            None => {
                return Err(StartError(format!(
                    "socket {local} passed by systemd (name {}) matches no [[listener]] by name or address",
                    fd.name.as_deref().map_or("unset".to_owned(), |n| escape(n.as_bytes(), 64))
                )))
            }
        };
        out.push(BoundInfo(Bound {
            socket,
            settings,
            origin: Origin::Systemd { name: fd.name },
        }));
    }
    for l in &config.listeners {
        let used = out.iter().any(|b| match &b.0.origin {
            Origin::Systemd { name } => {
                listener_for(&config.listeners, name.as_deref(), b.0.settings.address) == Some(l)
            }
            Origin::Ours => false,
        });
        if !used {
            syslog.notice(&format!(
                "[[listener]] {} was not passed by systemd: not listening there",
                l.address
            ));
        }
    }
    Ok(out)
}

/// The running daemon.
pub struct Daemon {
    config: Config,
    options: Options,
    syslog: Arc<Syslog>,
    listeners: Vec<Bound>,
    sessions: HashMap<i32, Session>,
    table: Table,
    signals: SignalFd,
    /// Set by SIGTERM: when running sessions get SIGTERM themselves.
    stop_deadline: Option<Instant>,
    sessions_signalled: bool,
    accept_paused_until: Option<Instant>,
    /// When each untrusted peer of a PROXY listener was last logged (bounded).
    untrusted_logged: HashMap<IpAddr, Instant>,
    accept_error_logged: Option<Instant>,
    /// The key holder and the public half of every certificate and key pair.
    tls: DaemonTls,
    tls_error_logged: Option<Instant>,
    /// When the key holder was last restarted after dying.
    holder_restarted: Option<Instant>,
}

impl Daemon {
    /// Takes over the open listeners. Signals are blocked from here on and read from a
    /// signalfd; every child unblocks them first thing.
    pub fn new(
        config: Config,
        options: Options,
        syslog: Arc<Syslog>,
        listeners: Vec<BoundInfo>,
        tls: DaemonTls,
    ) -> io::Result<Daemon> {
        let signals = SignalFd::new(&[SIGCHLD, SIGHUP, SIGTERM, SIGINT])?;
        let table = Table::new(limits(&config.daemon));
        // One descriptor per session channel, plus the listeners and some slack.
        let want = u64::from(config.daemon.max_sessions) + listeners.len() as u64 + 64;
        let _ = process::raise_fd_limit(want);
        Ok(Daemon {
            config,
            options,
            syslog,
            listeners: listeners.into_iter().map(|b| b.0).collect(),
            sessions: HashMap::new(),
            table,
            signals,
            stop_deadline: None,
            sessions_signalled: false,
            accept_paused_until: None,
            untrusted_logged: HashMap::new(),
            accept_error_logged: None,
            tls,
            tls_error_logged: None,
            holder_restarted: None,
        })
    }

    /// Serves until SIGTERM or SIGINT and the last session has ended. Returns the exit
    /// status.
    pub fn run(mut self) -> i32 {
        // Not chrooted, not confined: may reconnect to a restarted logger.
        self.syslog.set_reconnect(true);
        for l in &self.listeners {
            self.syslog
                .info(&format!("listening on {}", l.settings.address));
        }
        let _ = systemd::notify(&format!("READY=1\nSTATUS={}", self.status()));
        loop {
            if self.stopping() && self.sessions.is_empty() {
                self.syslog.info("stopped");
                return 0;
            }
            let now = Instant::now();
            if let Some(deadline) = self.stop_deadline {
                if now >= deadline && !self.sessions_signalled {
                    self.signal_sessions();
                }
            }
            let timeout = self.poll_timeout(now);
            let (listener_ready, session_ready, signal_ready) = match self.wait(timeout) {
                Ok(r) => r,
                Err(e) => {
                    self.syslog.crit(&format!("poll: {e}"));
                    return 1;
                }
            };
            if signal_ready && self.handle_signals() == Some(()) {
                continue;
            }
            for pid in session_ready {
                self.read_channel(pid);
            }
            for i in listener_ready {
                self.accept_from(i);
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop_deadline.is_some()
    }

    fn status(&self) -> String {
        let addrs: Vec<String> = self
            .listeners
            .iter()
            .map(|l| l.settings.address.to_string())
            .collect();
        format!("listening on {}", addrs.join(", "))
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let mut t: Option<Duration> = None;
        if let (Some(d), false) = (self.stop_deadline, self.sessions_signalled) {
            t = Some(d.saturating_duration_since(now));
        }
        if let Some(p) = self.accept_paused_until {
            let left = p.saturating_duration_since(now);
            t = Some(t.map_or(left, |t| t.min(left)));
        }
        t
    }

    /// Polls; returns the ready listeners (indices), the sessions with a message or a
    /// closed channel (pids), and whether a signal is pending.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<(Vec<usize>, Vec<i32>, bool)> {
        let now = Instant::now();
        if self.accept_paused_until.is_some_and(|p| now >= p) {
            self.accept_paused_until = None;
        }
        let accepting = !self.stopping() && self.accept_paused_until.is_none();
        let pids: Vec<i32> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.channel.is_some())
            .map(|(&pid, _)| pid)
            .collect();
        let mut fds: Vec<BorrowedFd<'_>> = vec![self.signals.as_fd()];
        if accepting {
            fds.extend(self.listeners.iter().map(|l| l.socket.as_fd()));
        }
        for pid in &pids {
            if let Some(c) = self.sessions.get(pid).and_then(|s| s.channel.as_ref()) {
                fds.push(c.as_fd());
            }
        }
        let ready = wait_any_readable(&fds, timeout)?;
        let nl = if accepting { self.listeners.len() } else { 0 };
        let signal = ready.first().copied().unwrap_or(false);
        let listeners = (0..nl)
            .filter(|i| ready.get(1 + i).copied().unwrap_or(false))
            .collect();
        let sessions = pids
            .iter()
            .enumerate()
            .filter(|(i, _)| ready.get(1 + nl + i).copied().unwrap_or(false))
            .map(|(_, &pid)| pid)
            .collect();
        Ok((listeners, sessions, signal))
    }

    /// Handles pending signals. `Some(())` when the listener set changed (go round
    /// again before using listener indices).
    fn handle_signals(&mut self) -> Option<()> {
        let pending = match self.signals.pending() {
            Ok(p) => p,
            Err(e) => {
                self.syslog.crit(&format!("signalfd: {e}"));
                return None;
            }
        };
        let mut changed = None;
        for sig in pending {
            match sig {
                SIGCHLD => self.reap(),
                SIGHUP => {
                    self.reload();
                    changed = Some(());
                }
                SIGTERM | SIGINT => {
                    self.stop();
                    changed = Some(());
                }
                _ => {}
            }
        }
        changed
    }

    fn reap(&mut self) {
        loop {
            match process::try_wait_any() {
                Ok(Some((pid, exit))) => {
                    let raw = pid.as_raw();
                    if self.tls.holder_pid() == Some(pid) {
                        self.holder_ended(raw, exit);
                        continue;
                    }
                    self.table.exited(raw);
                    if self.sessions.remove(&raw).is_none() {
                        // A key holder replaced at a reload.
                        continue;
                    }
                    if let Exit::Signaled(sig) = exit {
                        if sig != SIGTERM || !self.sessions_signalled {
                            self.syslog
                                .crit(&format!("session process {raw} killed by signal {sig}"));
                        }
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    self.syslog.crit(&format!("waitpid: {e}"));
                    return;
                }
            }
        }
    }

    /// The key holder died (it never exits on its own while the daemon keeps its control
    /// socket): start a new one from the running configuration, at most once per
    /// [`LOG_INTERVAL`], so that a holder that cannot live does not become a fork loop.
    fn holder_ended(&mut self, pid: i32, exit: Exit) {
        let exit = match exit {
            Exit::Exited(code) => format!("exited with status {code}"),
            Exit::Signaled(sig) => format!("killed by signal {sig}"),
        };
        let now = Instant::now();
        self.tls.forget_holder();
        if !due(&mut self.holder_restarted, now) {
            self.syslog.crit(&format!(
                "key holder process {pid} {exit} again: TLS handshakes fail until a reload (SIGHUP)"
            ));
            return;
        }
        match DaemonTls::start(&self.config) {
            Ok(tls) => {
                self.tls = tls;
                self.syslog.crit(&format!(
                    "key holder process {pid} {exit}; started a new one"
                ));
            }
            Err(e) => self.syslog.crit(&format!(
                "key holder process {pid} {exit} and no new one could start: {e}; TLS handshakes fail until a reload (SIGHUP)"
            )),
        }
    }

    fn stop(&mut self) {
        if self.stopping() {
            // A second SIGTERM: do not wait any longer.
            if !self.sessions_signalled {
                self.signal_sessions();
            }
            return;
        }
        self.listeners.clear();
        self.reap();
        let _ = systemd::notify("STOPPING=1");
        self.syslog.notice(&format!(
            "stopping: {} sessions running",
            self.sessions.len()
        ));
        self.stop_deadline = Some(Instant::now() + self.config.daemon.shutdown_timeout);
    }

    /// SIGTERM to each session's process group. A session in UPDATE has every signal
    /// blocked and finishes rewriting the mailbox first; one anywhere else ends at once,
    /// before its mailbox was changed.
    fn signal_sessions(&mut self) {
        self.sessions_signalled = true;
        if !self.sessions.is_empty() {
            self.syslog.notice(&format!(
                "shutdown timeout: ending {} sessions",
                self.sessions.len()
            ));
        }
        for &pid in self.sessions.keys() {
            let _ = process::kill_group(Pid::from_raw(pid), SIGTERM);
        }
    }

    fn reload(&mut self) {
        let _ = systemd::notify("RELOADING=1");
        let result = match &self.options.config_path {
            Some(path) => Config::load(path).map_err(|e| e.to_string()),
            None => Ok(Config::default()),
        };
        let result = result.and_then(|c| {
            // The new keys and certificates are checked (in a new key holder) before
            // anything changes; the old holder exits when it is dropped.
            let tls = DaemonTls::start(&c).map_err(|e| e.to_string())?;
            self.apply(c)?;
            self.tls = tls;
            Ok(())
        });
        match result {
            Ok(()) => self.syslog.notice("configuration reloaded"),
            Err(e) => self
                .syslog
                .crit(&format!("reload: {e}; keeping the running configuration")),
        }
        let _ = systemd::notify(&format!("READY=1\nSTATUS={}", self.status()));
    }

    /// Switches to `new`: all of it, or nothing if a new listener cannot be opened.
    fn apply(&mut self, new: Config) -> Result<(), String> {
        let inherited = self
            .listeners
            .iter()
            .any(|l| matches!(l.origin, Origin::Systemd { .. }));
        let mut next: Vec<Bound> = Vec::new();
        if inherited {
            // systemd owns the sockets: only their settings can change, matched as at
            // start-up.
            for old in std::mem::take(&mut self.listeners) {
                let name = match &old.origin {
                    Origin::Systemd { name } => name.as_deref(),
                    Origin::Ours => None,
                };
                let settings = listener_for(&new.listeners, name, old.settings.address)
                    .map(|l| config::Listener {
                        address: old.settings.address,
                        ..l.clone()
                    })
                    .unwrap_or_else(|| config::Listener {
                        tls: new.tls.clone(),
                        ..old.settings.clone()
                    });
                next.push(Bound { settings, ..old });
            }
        } else {
            let wanted = new.effective_listeners();
            // Open what is new first: if that fails, nothing has changed.
            let mut fresh: Vec<Option<TcpListener>> = Vec::new();
            for settings in &wanted {
                if self
                    .listeners
                    .iter()
                    .any(|b| b.settings.address == settings.address)
                {
                    fresh.push(None);
                    continue;
                }
                fresh.push(bind(settings, new.listeners.is_empty(), &self.syslog)?);
            }
            let mut old: Vec<Option<Bound>> = std::mem::take(&mut self.listeners)
                .into_iter()
                .map(Some)
                .collect();
            for (settings, socket) in wanted.into_iter().zip(fresh) {
                let reused = old
                    .iter_mut()
                    .find(|o| {
                        o.as_ref()
                            .is_some_and(|b| b.settings.address == settings.address)
                    })
                    .and_then(Option::take);
                match (reused, socket) {
                    (Some(b), _) => {
                        if b.settings.backlog != settings.backlog {
                            if let Err(e) = net::set_backlog(&b.socket, settings.backlog) {
                                self.syslog.notice(&format!(
                                    "{}: backlog unchanged: {}",
                                    settings.address,
                                    strerror(&e)
                                ));
                            }
                        }
                        next.push(Bound { settings, ..b })
                    }
                    (None, Some(socket)) => {
                        self.syslog
                            .info(&format!("listening on {}", settings.address));
                        next.push(Bound {
                            socket,
                            settings,
                            origin: Origin::Ours,
                        });
                    }
                    (None, None) => {}
                }
            }
            for gone in old.into_iter().flatten() {
                self.syslog
                    .info(&format!("no longer listening on {}", gone.settings.address));
            }
        }
        if new.syslog_socket != self.config.syslog_socket {
            // The socket is shared with the panic hook and kept open in every session; a
            // new one would leave the hook writing to a closed descriptor number.
            self.syslog
                .notice("syslog_socket changed: it takes effect when the daemon restarts");
        }
        self.table.set_limits(limits(&new.daemon));
        self.listeners = next;
        self.config = new;
        Ok(())
    }

    /// Accepts what is waiting on listener `i`, up to [`ACCEPT_BATCH`].
    fn accept_from(&mut self, i: usize) {
        for _ in 0..ACCEPT_BATCH {
            let Some(l) = self.listeners.get(i) else {
                return;
            };
            match l.socket.accept() {
                Ok((stream, addr)) => self.connection(i, stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or memory: the connection stays queued and poll
                    // would report it again at once. Pause instead of spinning.
                    if matches!(
                        e.raw_os_error(),
                        Some(errno::EMFILE)
                            | Some(errno::ENFILE)
                            | Some(errno::ENOBUFS)
                            | Some(errno::ENOMEM)
                    ) {
                        self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    }
                    if due(&mut self.accept_error_logged, Instant::now()) {
                        self.syslog.crit(&format!("accept: {}", strerror(&e)));
                    }
                    return;
                }
            }
        }
    }

    /// One accepted connection: count it, then fork its session or close it.
    fn connection(&mut self, i: usize, stream: TcpStream, addr: SocketAddr) {
        let Some(settings) = self.listeners.get(i).map(|l| l.settings.clone()) else {
            return;
        };
        let peer = addr.ip().to_canonical();
        let now = Instant::now();
        let admitted = if settings.proxy_protocol {
            if !settings.trusts(peer) {
                if self.untrusted_due(peer, now) {
                    self.syslog.notice(&format!(
                        "{peer}: not a trusted proxy for {}, connection refused",
                        settings.address
                    ));
                }
                return;
            }
            self.table.admit_pending(now, peer)
        } else {
            self.table.admit(now, peer)
        };
        let slot = match admitted {
            Ok(slot) => slot,
            Err(refused) => {
                if let Some(line) = refused.log {
                    self.syslog.notice(&line);
                }
                return;
            }
        };
        let tls = match self.tls.session(&settings.tls) {
            Ok(t) => t,
            Err(e) => {
                self.table.cancel(slot);
                if due(&mut self.tls_error_logged, now) {
                    self.syslog.crit(&format!("{peer}: TLS: {e}"));
                }
                return;
            }
        };
        let (ours, theirs) = match net::packet_pair() {
            Ok(p) => p,
            Err(e) => {
                self.table.cancel(slot);
                self.syslog
                    .crit(&format!("{peer}: socketpair: {}", strerror(&e)));
                return;
            }
        };
        match process::fork() {
            Err(e) => {
                self.table.cancel(slot);
                self.syslog.crit(&format!("{peer}: fork: {}", strerror(&e)));
            }
            Ok(Fork::Child) => self.session(stream, theirs, &settings, peer, tls),
            Ok(Fork::Parent(pid)) => {
                drop(theirs);
                // The signature channel is the session's alone.
                drop(tls);
                let _ = ours.set_nonblocking(true);
                self.table.started(slot, pid.as_raw());
                self.sessions.insert(
                    pid.as_raw(),
                    Session {
                        slot,
                        channel: Some(ours),
                        awaiting_source: settings.proxy_protocol,
                        asked_delay: false,
                    },
                );
            }
        }
    }

    /// Whether to log an untrusted peer now: once per [`LOG_INTERVAL`] per address, and
    /// never more than [`MAX_UNTRUSTED_LOGGED`] addresses remembered.
    fn untrusted_due(&mut self, peer: IpAddr, now: Instant) -> bool {
        if self.untrusted_logged.len() >= MAX_UNTRUSTED_LOGGED {
            self.untrusted_logged
                .retain(|_, t| now < *t || now.duration_since(*t) < LOG_INTERVAL);
            if self.untrusted_logged.len() >= MAX_UNTRUSTED_LOGGED {
                return false;
            }
        }
        let mut last = self.untrusted_logged.get(&peer).copied();
        let ok = due(&mut last, now);
        if ok {
            self.untrusted_logged.insert(peer, now);
        }
        ok
    }

    /// Reads what session `pid` sent, and answers.
    fn read_channel(&mut self, pid: i32) {
        let now = Instant::now();
        let Some(session) = self.sessions.get_mut(&pid) else {
            return;
        };
        let Some(channel) = session.channel.as_mut() else {
            return;
        };
        let mut buf = [0u8; MAX_MESSAGE + 1];
        let n = match channel.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        if n == 0 {
            // The session closed its end: it has nothing more to tell.
            session.channel = None;
            return;
        }
        let message = ToDaemon::decode(buf.get(..n).unwrap_or_default());
        let answer = match message {
            Ok(ToDaemon::Source(ip)) if session.awaiting_source => {
                session.awaiting_source = false;
                match self.table.set_source(now, session.slot, ip) {
                    Ok(()) => Some(ToSession::Admit),
                    Err(refused) => {
                        if let Some(line) = refused.log {
                            self.syslog.notice(&line);
                        }
                        Some(ToSession::Refuse)
                    }
                }
            }
            Ok(ToDaemon::LoginFailed) if !session.asked_delay && !session.awaiting_source => {
                session.asked_delay = true;
                Some(ToSession::Delay(self.table.login_failed(now, pid)))
            }
            Ok(ToDaemon::LoginPassed) if !session.awaiting_source => None,
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(m) => format!("{m:?} out of turn"),
                };
                self.syslog.crit(&format!(
                    "session process {pid} sent an invalid message: {why}"
                ));
                session.channel = None;
                return;
            }
        };
        if let (Some(a), Some(c)) = (answer, session.channel.as_mut()) {
            // The session waits for this answer with an empty buffer: it cannot block.
            if c.write_all(&a.encode()).is_err() {
                session.channel = None;
            }
        }
    }

    /// The child of one connection. Never returns.
    fn session(
        &self,
        stream: TcpStream,
        channel: UnixStream,
        settings: &config::Listener,
        peer: IpAddr,
        tls: Option<SessionTls>,
    ) -> ! {
        let code = self.session_inner(stream, channel, settings, peer, tls);
        process::exit_now(code)
    }

    fn session_inner(
        &self,
        stream: TcpStream,
        channel: UnixStream,
        settings: &config::Listener,
        peer: IpAddr,
        tls: Option<SessionTls>,
    ) -> i32 {
        // This process and its children will be confined: never connect(2) again.
        self.syslog.set_reconnect(false);
        // Default signal mask and a process group of its own (SIGTERM at shutdown goes to
        // the session and its pre-auth and verifier processes together).
        if signals::unblock_all().is_err() {
            return 1;
        }
        let _ = process::setsid();
        // systemd's variables are the daemon's: neither a session nor a PAM module may
        // notify on its behalf (single-threaded process, so changing the environment is
        // sound).
        for var in [
            "NOTIFY_SOCKET",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
        ] {
            std::env::remove_var(var);
        }
        // popa3d's layout: the connection on 0 and 1, and (ours) /dev/null on 2.
        if process::dup_onto(stream.as_fd(), 0).is_err()
            || process::dup_onto(stream.as_fd(), 1).is_err()
            || server::to_dev_null(&[2]).is_err()
        {
            return 1;
        }
        let mut channel = SessionEnd::new(channel);
        let mut keep = vec![0, 1, 2, channel.raw_fd()];
        keep.extend(self.syslog.raw_fd());
        keep.extend(tls.as_ref().and_then(SessionTls::raw_fd));
        // The daemon's listeners, signalfd and the other sessions' channels: this
        // process exits with exit_now and never drops the objects that owned them.
        std::mem::forget(stream);
        process::close_other_fds(&keep);

        let mut client = peer;
        if settings.proxy_protocol {
            match read_proxy_header(settings.proxy_timeout) {
                Ok(pop3_proxy::Header::Proxied { source, .. }) => {
                    client = source.ip().to_canonical();
                }
                // A health check, or a transport we do not route on: the proxy itself is
                // the client.
                Ok(pop3_proxy::Header::Local) => {}
                Err(e) => {
                    self.syslog
                        .notice(&format!("{peer}: no valid PROXY header: {e}"));
                    return 1;
                }
            }
            match channel.ask(ToDaemon::Source(client)) {
                Ok(ToSession::Admit) => {}
                _ => return 0,
            }
        }
        self.syslog.info(&format!("Session from {client}"));
        server::run(
            &self.config,
            &self.syslog,
            Context {
                peer: Some(client),
                control: Some(channel),
                tls,
                plaintext_login: settings.tls.allows_plaintext_login(Some(client)),
                ..Context::default()
            },
        )
    }
}

/// Reads the PROXY header from fd 0, giving up after `timeout` in all.
fn read_proxy_header(timeout: Duration) -> Result<pop3_proxy::Header, String> {
    // One deadline for the whole header: a proxy that trickles a byte at a time still
    // has `timeout` in all.
    let mut input = server::DeadlineReader::stdin(timeout).map_err(|e| e.to_string())?;
    pop3_proxy::read_header(&mut input).map_err(|e| e.to_string())
}

/// Whether a rate-limited line is due, and if so, notes that it was written now.
fn due(last: &mut Option<Instant>, now: Instant) -> bool {
    let ok = flood::may_log(*last, now, LOG_INTERVAL);
    if ok {
        *last = Some(now);
    }
    ok
}
