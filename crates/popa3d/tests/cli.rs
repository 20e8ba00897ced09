//! popa3d's command line, getopt-style, table-driven.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use popa3d::cli::{parse, Command, UsageError, HELP, USAGE, VERSION};

fn args(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

fn inetd(config: Option<&str>) -> Command {
    Command::Inetd {
        config: config.map(PathBuf::from),
    }
}

fn standalone(config: Option<&str>) -> Command {
    Command::Standalone {
        config: config.map(PathBuf::from),
        foreground: false,
    }
}

fn foreground(config: Option<&str>) -> Command {
    Command::Standalone {
        config: config.map(PathBuf::from),
        foreground: true,
    }
}

#[test]
fn accepted_command_lines() {
    let cases: &[(&[&str], Command)] = &[
        (&[], inetd(None)),
        (&["-D"], standalone(None)),
        (&["-D", "-F"], foreground(None)),
        (&["-FD"], foreground(None)),
        (&["-DFc", "/etc/p.toml"], foreground(Some("/etc/p.toml"))),
        (
            &["-F", "-c", "/etc/p.toml", "-D"],
            foreground(Some("/etc/p.toml")),
        ),
        (&["-D", "-D"], standalone(None)),
        (&["-V"], Command::Version),
        // -V acts when getopt reaches it, whatever follows (popa3d: `-V -D`).
        (&["-V", "-D"], Command::Version),
        (&["-D", "-V"], Command::Version),
        (&["-DV"], Command::Version),
        (&["-VD"], Command::Version),
        (&["-V", "-x"], Command::Version),
        (&["-V", "extra"], Command::Version),
        // getopt permutes: options after an operand are still read first.
        (&["extra", "-V"], Command::Version),
        (&["-h"], Command::Help),
        (&["--help"], Command::Help),
        (&["-Dh"], Command::Help),
        (&["-h", "-V"], Command::Help),
        (&["-c", "/etc/popa3d.toml"], inetd(Some("/etc/popa3d.toml"))),
        (&["-c/etc/popa3d.toml"], inetd(Some("/etc/popa3d.toml"))),
        (
            &["-D", "-c", "/etc/p.toml"],
            standalone(Some("/etc/p.toml")),
        ),
        (
            &["-c", "/etc/p.toml", "-D"],
            standalone(Some("/etc/p.toml")),
        ),
        (&["-Dc", "/etc/p.toml"], standalone(Some("/etc/p.toml"))),
        (&["-Dc/etc/p.toml"], standalone(Some("/etc/p.toml"))),
        // -c's argument is taken whole, even when it looks like an option.
        (&["-c", "-V"], inetd(Some("-V"))),
        (&["-c", "--"], inetd(Some("--"))),
        (&["-cD"], inetd(Some("D"))),
        (&["-c", "relative.toml"], inetd(Some("relative.toml"))),
        (&["-c", ""], inetd(Some(""))),
        // The last -c wins, as with getopt.
        (&["-c", "/a", "-c", "/b"], inetd(Some("/b"))),
        // "--" ends the options.
        (&["--"], inetd(None)),
        (&["-D", "--"], standalone(None)),
    ];
    for (words, want) in cases {
        assert_eq!(parse(&args(words)).as_ref(), Ok(want), "{words:?}");
    }
}

#[test]
fn refused_command_lines() {
    let cases: &[(&[&str], UsageError, &str)] = &[
        (
            &["-x"],
            UsageError::InvalidOption(b'x'),
            "popa3d: invalid option -- 'x'",
        ),
        (
            &["-Dx"],
            UsageError::InvalidOption(b'x'),
            "popa3d: invalid option -- 'x'",
        ),
        (
            &["-v"],
            UsageError::InvalidOption(b'v'),
            "popa3d: invalid option -- 'v'",
        ),
        (
            &["-d"],
            UsageError::InvalidOption(b'd'),
            "popa3d: invalid option -- 'd'",
        ),
        (
            &["-x", "-V"],
            UsageError::InvalidOption(b'x'),
            "popa3d: invalid option -- 'x'",
        ),
        (
            &["extra", "-x"],
            UsageError::InvalidOption(b'x'),
            "popa3d: invalid option -- 'x'",
        ),
        (
            &["-c"],
            UsageError::MissingArgument(b'c'),
            "popa3d: option requires an argument -- 'c'",
        ),
        (
            &["-F"],
            UsageError::ForegroundWithoutDaemon,
            "popa3d: -F needs -D (inetd mode is always in the foreground)",
        ),
        (
            &["-Dc"],
            UsageError::MissingArgument(b'c'),
            "popa3d: option requires an argument -- 'c'",
        ),
        (
            &["--version"],
            UsageError::UnrecognizedOption("--version".into()),
            "popa3d: unrecognized option '--version'",
        ),
        (
            &["--help=me"],
            UsageError::UnrecognizedOption("--help=me".into()),
            "popa3d: unrecognized option '--help=me'",
        ),
        (
            &["extra"],
            UsageError::UnexpectedArgument("extra".into()),
            "popa3d: unexpected argument 'extra'",
        ),
        (
            &["-"],
            UsageError::UnexpectedArgument("-".into()),
            "popa3d: unexpected argument '-'",
        ),
        (
            &["-D", "a", "b"],
            UsageError::UnexpectedArgument("a".into()),
            "popa3d: unexpected argument 'a'",
        ),
        (
            &["--", "-V"],
            UsageError::UnexpectedArgument("-V".into()),
            "popa3d: unexpected argument '-V'",
        ),
        (
            &["-c", "/etc/p.toml", "/etc/q.toml"],
            UsageError::UnexpectedArgument("/etc/q.toml".into()),
            "popa3d: unexpected argument '/etc/q.toml'",
        ),
        (
            &["-\u{1b}[2J"],
            UsageError::InvalidOption(0x1b),
            "popa3d: invalid option -- '\\x1b'",
        ),
        (
            &["a\nb"],
            UsageError::UnexpectedArgument("a\nb".into()),
            "popa3d: unexpected argument 'a\\x0ab'",
        ),
    ];
    for (words, want, first_line) in cases {
        let got = parse(&args(words));
        assert_eq!(got.as_ref(), Err(want), "{words:?}");
        assert_eq!(
            want.to_string(),
            format!("{first_line}\nUsage: popa3d [-D [-F]] [-V] [-c FILE]"),
            "{words:?}"
        );
    }
}

#[test]
fn non_utf8_arguments() {
    let c = parse(&[
        OsString::from("-c"),
        OsString::from_vec(b"/etc/\xff.toml".to_vec()),
    ]);
    assert_eq!(
        c,
        Ok(Command::Inetd {
            config: Some(PathBuf::from(OsString::from_vec(
                b"/etc/\xff.toml".to_vec()
            )))
        })
    );
    let e = parse(&[OsString::from_vec(b"-\xff".to_vec())]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "popa3d: invalid option -- '\\xff'\nUsage: popa3d [-D [-F]] [-V] [-c FILE]"
    );
    let e = parse(&[OsString::from_vec(b"\xfe".to_vec())]).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("popa3d: unexpected argument '\\xfe'\n"));
}

#[test]
fn texts() {
    assert_eq!(
        VERSION,
        format!(
            "popa3d version 1.0.3 (popa3d-rs {})",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(USAGE, "Usage: popa3d [-D [-F]] [-V] [-c FILE]");
    assert!(HELP.starts_with(USAGE));
    assert!(HELP.ends_with('\n'));
    for option in [
        "-c FILE",
        "-D",
        "-F",
        "-V",
        "-h, --help",
        "docs/configuration.md",
        "docs/deployment.md",
    ] {
        assert!(HELP.contains(option), "{option}");
    }
}
