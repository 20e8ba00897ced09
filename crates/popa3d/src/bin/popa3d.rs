//! `popa3d`: the POP3 server, with popa3d's command line. See `popa3d --help`,
//! docs/configuration.md and docs/privsep.md.
//!
//! In inetd mode fds 0, 1 and 2 are all the client's socket: nothing may be printed
//! there. Problems are logged to syslog, and also printed when stderr is a terminal
//! (someone running it by hand).
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::sync::Arc;

use popa3d::cli::{self, Command};
use popa3d::config::Config;
use popa3d::syslog::Syslog;

/// Reports a start-up failure where a human may see it, then exits 1. In inetd mode
/// stderr is the client's socket unless it is a terminal; the daemon's is the
/// administrator's (a terminal, systemd's journal).
fn die(syslog: Option<&Syslog>, msg: &str) -> ! {
    if let Some(s) = syslog {
        s.log(popa3d::messages::Level::Crit, msg);
    }
    if std::io::stderr().is_terminal() || DAEMON.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("popa3d: {msg}");
    }
    std::process::exit(1);
}

/// Set once `-D` is parsed: stderr is not a client's.
static DAEMON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sends fd 2 to /dev/null and panic messages to syslog (CRIT), so that nothing meant
/// for an administrator is ever written to the client.
fn quiet_stderr_and_panics(syslog: &Arc<Syslog>) {
    let _ = popa3d::server::to_dev_null(&[2]);
    // The hook uses the socket opened before any fork: a confined process may not open
    // another.
    let syslog = Arc::clone(syslog);
    std::panic::set_hook(Box::new(move |info| {
        syslog.log(
            popa3d::messages::Level::Crit,
            &format!("internal error: {info}"),
        );
    }));
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let config_path = match command {
        Command::Version => {
            println!("{}", cli::VERSION);
            return;
        }
        Command::Help => {
            print!("{}", cli::HELP);
            return;
        }
        Command::Standalone { config, foreground } => {
            DAEMON.store(true, std::sync::atomic::Ordering::Relaxed);
            (config, Some(foreground))
        }
        Command::Inetd { config } => (config, None),
    };
    let (config_path, daemon) = config_path;
    let config = match &config_path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                let syslog = Syslog::open(&Config::default().syslog_socket);
                die(Some(&syslog), &e.to_string());
            }
        },
        None => Config::default(),
    };
    let syslog = Arc::new(Syslog::open(&config.syslog_socket));
    for warning in config.warnings() {
        syslog.notice(&warning);
    }
    if pop3_sys::privileges::euid() != 0 {
        die(
            Some(&syslog),
            "must be started as root: it switches to the popa3d user before reading a byte from \
             the client and to the mail user after login (see docs/privsep.md)",
        );
    }
    pop3_sys::process::set_umask(0o077);
    if let Some(foreground) = daemon {
        standalone(config, config_path, foreground, syslog);
    }
    // From here on stderr is the client's socket (inetd puts it on 0, 1 and 2): a panic
    // message must never reach it. Panics abort in release builds; log them instead.
    quiet_stderr_and_panics(&syslog);
    // Nothing inherited beyond the client socket and the syslog socket may reach the
    // pre-auth process.
    let mut keep = vec![0, 1, 2];
    keep.extend(syslog.raw_fd());
    pop3_sys::process::close_other_fds(&keep);
    std::process::exit(popa3d::server::inetd(&config, &syslog));
}

/// `popa3d -D`: checks what can be checked while the terminal is still there (the
/// unprivileged user, the listeners), goes into the background unless told not to, and
/// runs the daemon.
fn standalone(
    config: Config,
    config_path: Option<std::path::PathBuf>,
    foreground: bool,
    syslog: Arc<Syslog>,
) -> ! {
    use pop3_sys::process;
    // popa3d's start-up check: without its user no session could run.
    match pop3_sys::privileges::lookup_user(&config.user) {
        Ok(Some(_)) => {}
        Ok(None) => die(
            Some(&syslog),
            &format!("getpwnam(\"{}\"): No such user", config.user),
        ),
        Err(e) => die(
            Some(&syslog),
            &format!("getpwnam(\"{}\"): {e}", config.user),
        ),
    }
    let foreground = foreground || popa3d::systemd::under_systemd();
    let listeners = match popa3d::daemon::open_listeners(&config, &syslog) {
        Ok(l) if l.is_empty() => die(Some(&syslog), "no address to listen on"),
        Ok(l) => l,
        Err(e) => die(Some(&syslog), &e.to_string()),
    };
    let mut keep = vec![0, 1, 2];
    keep.extend(listeners.iter().map(|l| l.raw_fd()));
    keep.extend(syslog.raw_fd());
    process::close_other_fds(&keep);
    if let Err(e) = std::env::set_current_dir("/") {
        die(Some(&syslog), &format!("chdir: {e}"));
    }
    // The key holder (docs/privsep.md) is the daemon's child, so that the daemon sees it
    // end; the daemon itself never reads a key file. A missing or mismatched key must
    // still reach the terminal with exit status 1, so in the background the parent
    // waits until the child has started it.
    let start_tls = |syslog: &Syslog| match popa3d::tls::DaemonTls::start(&config) {
        Ok(t) => t,
        Err(e) => die(Some(syslog), &e.to_string()),
    };
    let tls = if foreground {
        start_tls(&syslog)
    } else {
        // popa3d: fork, the parent exits 0, the child leads a new session; here the
        // parent exits once the child says it is ready (its errors are its own to print).
        let (ready_rx, ready_tx) = match process::pipe() {
            Ok(p) => p,
            Err(e) => die(Some(&syslog), &format!("pipe: {e}")),
        };
        match process::fork() {
            Ok(process::Fork::Parent(child)) => {
                drop(ready_tx);
                let mut said = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::fs::File::from(ready_rx), &mut said);
                if said == b"ready" {
                    process::exit_now(0);
                }
                let _ = process::wait(child);
                process::exit_now(1);
            }
            Ok(process::Fork::Child) => {
                drop(ready_rx);
                let _ = process::setsid();
                let tls = start_tls(&syslog);
                let _ = std::io::Write::write_all(&mut std::fs::File::from(ready_tx), b"ready");
                tls
            }
            Err(e) => die(Some(&syslog), &format!("fork: {e}")),
        }
    };
    // Standard input and output are nobody's; stderr and panics go to syslog.
    let _ = popa3d::server::to_dev_null(&[0, 1]);
    quiet_stderr_and_panics(&syslog);
    let options = popa3d::daemon::Options {
        config_path,
        foreground,
    };
    match popa3d::daemon::Daemon::new(config, options, Arc::clone(&syslog), listeners, tls) {
        Ok(d) => std::process::exit(d.run()),
        Err(e) => {
            syslog.crit(&format!("signalfd: {e}"));
            std::process::exit(1);
        }
    }
}
