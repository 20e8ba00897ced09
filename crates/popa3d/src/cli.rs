//! popa3d's command line (research/popa3d.md §5), plus `-c FILE` and `-h`/`--help`.
//!
//! Parsed like glibc's `getopt(argc, argv, "DFVc:h")`: options may be clustered (`-DV`),
//! `-c` takes the rest of its word or the next word (`-cFILE`, `-c FILE`), `--` ends
//! the options, and options are found after operands too (glibc permutes). `-V` and `-h`
//! act when they are reached, so `-V -D` is a version request and `-V -x` is not an
//! error, as in popa3d. Any operand is an error once all options are read.
//!
//! This module must never print: in inetd mode standard output is the client's socket.
//! [`parse`] returns what to do, and the binary prints and exits.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::syslog::escape;

/// What `-V` prints (popa3d prints `popa3d version 1.0.3 (2012/08/15)`): the popa3d
/// release we are compatible with, then ours.
pub const VERSION: &str = concat!(
    "popa3d version 1.0.3 (popa3d-rs ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// popa3d's usage line (`Usage: %s [-D] [-V]`) with our `-F` and `-c FILE`.
pub const USAGE: &str = "Usage: popa3d [-D [-F]] [-V] [-c FILE]";

/// What `-h` and `--help` print, ending in a newline.
pub const HELP: &str = "\
Usage: popa3d [-D [-F]] [-V] [-c FILE]
popa3d-rs: a POP3 server compatible with Openwall popa3d 1.0.3.

With no option, popa3d serves one POP3 session on its standard input and output, as
started by inetd, xinetd, socat or a systemd socket unit with Accept=yes. It must be
started as root: it confines the unauthenticated session in a chroot as the user
popa3d, and serves mail as the user who logged in.

  -c FILE     read settings from FILE (TOML); without it, popa3d's defaults apply
  -D          run as a standalone daemon: listen (default: port 110 on IPv4 and IPv6,
              or [[listener]] addresses, or the sockets systemd passes), limit sessions
              per source, network and in total, fork a session per connection; SIGHUP
              re-reads FILE (and the TLS certificates and keys), SIGTERM stops
              accepting and lets sessions finish
  -F          with -D: stay in the foreground (implied under systemd)
  -V          print the version and exit
  -h, --help  print this help and exit

TLS (implicit on port 995, STLS on 110) is set up in FILE: tls, tls_cert, tls_key.
Settings, defaults and examples: docs/configuration.md; deployment (inetd,
standalone, systemd, HAProxy, TLS): docs/deployment.md.
";

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// No `-D`: one session on standard input and output.
    Inetd { config: Option<PathBuf> },
    /// `-D`: the standalone daemon; `-F`: in the foreground.
    Standalone {
        config: Option<PathBuf>,
        foreground: bool,
    },
    /// `-V`: print [`VERSION`] to standard output, exit 0.
    Version,
    /// `-h` or `--help`: print [`HELP`] to standard output, exit 0.
    Help,
}

/// A command line that is not understood. Its `Display` is the whole message for
/// standard error (two lines, without a final newline): getopt's complaint, then
/// [`USAGE`]. The exit status is 1, as popa3d's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsageError {
    /// An option letter we do not have, as getopt reports it.
    InvalidOption(u8),
    /// A long option other than `--help`, as getopt_long reports it.
    UnrecognizedOption(OsString),
    /// `-c` as the last word.
    MissingArgument(u8),
    /// `-F` without `-D`.
    ForegroundWithoutDaemon,
    /// A word that is not an option. (popa3d prints only the usage line for it.)
    UnexpectedArgument(OsString),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Words from the command line are escaped: they go to a terminal.
        match self {
            UsageError::InvalidOption(c) => {
                write!(f, "popa3d: invalid option -- '{}'", escape(&[*c], 1))?
            }
            UsageError::UnrecognizedOption(o) => write!(
                f,
                "popa3d: unrecognized option '{}'",
                escape(o.as_bytes(), 64)
            )?,
            UsageError::MissingArgument(c) => write!(
                f,
                "popa3d: option requires an argument -- '{}'",
                escape(&[*c], 1)
            )?,
            UsageError::ForegroundWithoutDaemon => write!(
                f,
                "popa3d: -F needs -D (inetd mode is always in the foreground)"
            )?,
            UsageError::UnexpectedArgument(a) => write!(
                f,
                "popa3d: unexpected argument '{}'",
                escape(a.as_bytes(), 64)
            )?,
        }
        write!(f, "\n{USAGE}")
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name (`std::env::args_os().skip(1)`).
pub fn parse(args: &[OsString]) -> Result<Command, UsageError> {
    let mut standalone = false;
    let mut foreground = false;
    let mut config: Option<PathBuf> = None;
    let mut operand: Option<&OsString> = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let bytes = word.as_bytes();
        if bytes == b"--" {
            operand = operand.or(words.next());
            break;
        }
        if bytes == b"--help" {
            return Ok(Command::Help);
        }
        if bytes.starts_with(b"--") {
            return Err(UsageError::UnrecognizedOption(word.clone()));
        }
        // An operand: "-" alone is one too, as for getopt.
        let Some(letters) = bytes.strip_prefix(b"-").filter(|l| !l.is_empty()) else {
            operand = operand.or(Some(word));
            continue;
        };
        for (i, &letter) in letters.iter().enumerate() {
            match letter {
                b'D' => standalone = true,
                b'F' => foreground = true,
                b'V' => return Ok(Command::Version),
                b'h' => return Ok(Command::Help),
                b'c' => {
                    let rest = letters.get(i + 1..).unwrap_or_default();
                    let file = if rest.is_empty() {
                        words
                            .next()
                            .map(OsString::as_os_str)
                            .ok_or(UsageError::MissingArgument(b'c'))?
                    } else {
                        OsStr::from_bytes(rest)
                    };
                    config = Some(PathBuf::from(file));
                    break;
                }
                other => return Err(UsageError::InvalidOption(other)),
            }
        }
    }
    if let Some(word) = operand {
        return Err(UsageError::UnexpectedArgument(word.clone()));
    }
    if foreground && !standalone {
        return Err(UsageError::ForegroundWithoutDaemon);
    }
    Ok(if standalone {
        Command::Standalone { config, foreground }
    } else {
        Command::Inetd { config }
    })
}
