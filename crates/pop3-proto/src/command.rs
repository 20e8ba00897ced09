//! Command parsing: one command line in, a typed command or a [`ParseError`] out.
//!
//! Both states share popa3d's grammar (spec §3.2): the keyword runs to the first space
//! (0x20 only) and is matched case-insensitively against the state's own table; the
//! parameter string is the rest, or none if the rest is empty. Every error is answered
//! with a bare `-ERR`, so the variants exist for tests and readers, never for the wire.
//!
//! To add a command: add a variant to the state's enum, an arm to its `parse_*`
//! function, and a handler; the compiler then points at every match to complete.
//! Semantic checks (is message n there, was USER given) belong to the handlers.

use crate::params::MAX_ARG;

/// Why a line is not a valid command for the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The keyword (possibly empty) is not in this state's table.
    UnknownCommand,
    /// A required argument is absent, or longer than [`MAX_ARG`] bytes, which popa3d
    /// treats as absent.
    MissingArgument,
    /// Something follows the last argument the command takes.
    ExtraArgument,
    /// Not something C's `strtol(arg, &end, 10)` consumes whole into 0..=`i32::MAX`.
    BadNumber,
}

/// Commands of the AUTHORIZATION state (RFC 1939 §4, §7).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthCommand<'a> {
    /// `USER name`: the one argument, at most [`MAX_ARG`] bytes, possibly empty.
    User(&'a [u8]),
    /// `PASS secret`: the whole non-empty parameter string, spaces included.
    Pass(&'a [u8]),
    Quit,
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `STLS` (RFC 2595 §4): no arguments.
    Stls,
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4; bare `AUTH` is the old
    /// mechanism listing Outlook still sends). The mechanism is as typed, not yet
    /// upper-cased; the initial response is never empty (`=` stands for an empty one).
    Auth {
        mechanism: Option<&'a [u8]>,
        initial: Option<&'a [u8]>,
    },
}

/// Commands of the TRANSACTION state (RFC 1939 §5, §7; LAST from RFC 1460). Numbers
/// are as typed: 1-based message numbers, not yet checked against the maildrop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TransCommand {
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    /// Message number, then the number of body lines.
    Top(u32, u32),
    Dele(u32),
    Noop,
    Rset,
    Last,
    Quit,
    /// `CAPA` (RFC 2449 §5), which TRANSACTION answers too.
    Capa,
}

/// Keyword and parameter string of a line.
fn split(line: &[u8]) -> (&[u8], Params<'_>) {
    match memchr::memchr(b' ', line) {
        Some(at) => {
            let keyword = line.get(..at).unwrap_or_default();
            let rest = line.get(at + 1..).unwrap_or_default();
            (keyword, Params::new(rest))
        }
        None => (line, Params { rest: None }),
    }
}

/// The longest keyword we know; anything longer cannot match.
const KEYWORD_MAX: usize = 4;

/// The keyword upper-cased into a fixed buffer, or `None` if it is too long to be one.
fn keyword(word: &[u8]) -> Option<([u8; KEYWORD_MAX], usize)> {
    if word.len() > KEYWORD_MAX {
        return None;
    }
    let mut upper = [0u8; KEYWORD_MAX];
    for (dst, src) in upper.iter_mut().zip(word) {
        *dst = src.to_ascii_uppercase();
    }
    Some((upper, word.len()))
}

/// Parses a line received in the AUTHORIZATION state.
pub(crate) fn parse_authorization(line: &[u8]) -> Result<AuthCommand<'_>, ParseError> {
    let (word, mut params) = split(line);
    let (upper, len) = keyword(word).ok_or(ParseError::UnknownCommand)?;
    let command = match upper.get(..len).unwrap_or_default() {
        b"USER" => AuthCommand::User(params.next().ok_or(ParseError::MissingArgument)?),
        // The password is the rest of the line, unsplit and without the 40-byte limit.
        b"PASS" => {
            return params
                .rest
                .map(AuthCommand::Pass)
                .ok_or(ParseError::MissingArgument)
        }
        b"QUIT" => AuthCommand::Quit,
        b"CAPA" => AuthCommand::Capa,
        b"STLS" => AuthCommand::Stls,
        b"AUTH" => return parse_auth(params.rest),
        _ => return Err(ParseError::UnknownCommand),
    };
    params.end()?;
    Ok(command)
}

/// Parses a line received in the TRANSACTION state.
pub(crate) fn parse_transaction(line: &[u8]) -> Result<TransCommand, ParseError> {
    let (word, mut params) = split(line);
    let (upper, len) = keyword(word).ok_or(ParseError::UnknownCommand)?;
    let command = match upper.get(..len).unwrap_or_default() {
        b"STAT" => TransCommand::Stat,
        b"LIST" => TransCommand::List(params.optional_number()?),
        b"UIDL" => TransCommand::Uidl(params.optional_number()?),
        b"RETR" => TransCommand::Retr(params.number()?),
        b"TOP" => {
            let msg = params.number()?;
            TransCommand::Top(msg, params.number()?)
        }
        b"DELE" => TransCommand::Dele(params.number()?),
        b"NOOP" => TransCommand::Noop,
        b"RSET" => TransCommand::Rset,
        b"LAST" => TransCommand::Last,
        b"QUIT" => TransCommand::Quit,
        b"CAPA" => TransCommand::Capa,
        _ => return Err(ParseError::UnknownCommand),
    };
    params.end()?;
    Ok(command)
}

/// AUTH's parameters: up to two, split at single spaces like every other command's,
/// but without the 40-byte cap (a PLAIN initial response is longer). One trailing space
/// is tolerated, as elsewhere.
fn parse_auth(rest: Option<&[u8]>) -> Result<AuthCommand<'_>, ParseError> {
    let Some(rest) = rest else {
        return Ok(AuthCommand::Auth {
            mechanism: None,
            initial: None,
        });
    };
    let (mechanism, initial) = match memchr::memchr(b' ', rest) {
        Some(at) => (
            rest.get(..at).unwrap_or_default(),
            rest.get(at + 1..).filter(|r| !r.is_empty()),
        ),
        None => (rest, None),
    };
    if mechanism.is_empty() {
        return Err(ParseError::MissingArgument);
    }
    let initial = match initial {
        Some(r) => match memchr::memchr(b' ', r) {
            // "x " is "x"; anything after that space is a third argument.
            Some(at) if at + 1 == r.len() => r.get(..at),
            Some(_) => return Err(ParseError::ExtraArgument),
            None => Some(r),
        },
        None => None,
    };
    if initial.is_some_and(<[u8]>::is_empty) {
        return Err(ParseError::MissingArgument);
    }
    Ok(AuthCommand::Auth {
        mechanism: Some(mechanism),
        initial,
    })
}

/// What is left of the parameter string; `None` once nothing follows.
struct Params<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Params<'a> {
    fn new(rest: &'a [u8]) -> Params<'a> {
        Params {
            rest: if rest.is_empty() { None } else { Some(rest) },
        }
    }

    /// The next argument: up to the next single space, which is consumed. A space with
    /// nothing after it ends the parameters (so one trailing space is tolerated), and
    /// two spaces in a row give an empty argument, as in popa3d.
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let (arg, after) = match memchr::memchr(b' ', rest) {
            Some(at) => (
                rest.get(..at).unwrap_or_default(),
                rest.get(at + 1..).unwrap_or_default(),
            ),
            None => (rest, &[][..]),
        };
        *self = Params::new(after);
        // RFC 1939 §3 caps arguments at 40 characters; popa3d makes a longer one absent.
        if arg.len() > MAX_ARG {
            None
        } else {
            Some(arg)
        }
    }

    fn number(&mut self) -> Result<u32, ParseError> {
        parse_number(self.next().ok_or(ParseError::MissingArgument)?)
    }

    /// An argument that may be left out (LIST, UIDL); if given it must be valid.
    fn optional_number(&mut self) -> Result<Option<u32>, ParseError> {
        match self.rest {
            None => Ok(None),
            Some(_) => self.number().map(Some),
        }
    }

    fn end(&self) -> Result<(), ParseError> {
        match self.rest {
            None => Ok(()),
            Some(_) => Err(ParseError::ExtraArgument),
        }
    }
}

/// popa3d's number rule: `strtol(arg, &end, 10)` must consume the whole argument, not
/// overflow, and give 0..=`i32::MAX` (it is stored in a C `int`). strtol's quirks follow:
/// leading C whitespace (never a space here, spaces split arguments), an optional sign,
/// leading zeros, and `-0` is 0. Overflow is an error, never a wrap-around, so
/// `LIST 4294967297` does not alias message 1.
pub(crate) fn parse_number(arg: &[u8]) -> Result<u32, ParseError> {
    let mut digits = arg;
    while let [b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r', rest @ ..] = digits {
        digits = rest;
    }
    let negative = match digits {
        [b'-', rest @ ..] => {
            digits = rest;
            true
        }
        [b'+', rest @ ..] => {
            digits = rest;
            false
        }
        _ => false,
    };
    if digits.is_empty() {
        return Err(ParseError::BadNumber);
    }
    let mut value: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return Err(ParseError::BadNumber);
        }
        // Saturating keeps "too big" sticky over 40 digits without overflow.
        value = value
            .saturating_mul(10)
            .saturating_add(u64::from(byte - b'0'));
    }
    if negative && value != 0 {
        return Err(ParseError::BadNumber);
    }
    match u32::try_from(value) {
        Ok(n) if n <= i32::MAX as u32 => Ok(n),
        _ => Err(ParseError::BadNumber),
    }
}

#[cfg(test)]
mod tests {
    use super::ParseError::{BadNumber, ExtraArgument, MissingArgument, UnknownCommand};
    use super::{parse_authorization, parse_number, parse_transaction, AuthCommand, TransCommand};
    use super::{ParseError, TransCommand::*};

    fn zeros_then_one(width: usize) -> String {
        format!("{}1", "0".repeat(width - 1))
    }

    /// §9.6, the TRANSACTION rows of §9.7, §9.9 lines that reach the parser, plus the
    /// strtol corners of §3.2.
    #[test]
    fn transaction_table() {
        let forty = format!("LIST {}", zeros_then_one(40));
        let forty_one = format!("LIST {}", zeros_then_one(41));
        let noop123 = format!("NOOP{}", " ".repeat(123));
        let retr127 = format!("RETR 2{}", " ".repeat(121));
        let cases: &[(&[u8], Result<TransCommand, ParseError>)] = &[
            // §9.6
            (b"LIST 4294967297", Err(BadNumber)),
            (b"LIST 4294967296", Err(BadNumber)),
            (b"LIST 2147483648", Err(BadNumber)),
            (b"LIST 2147483647", Ok(List(Some(2147483647)))),
            (b"LIST 99999999999999999999999", Err(BadNumber)),
            (b"LIST 0", Ok(List(Some(0)))),
            (b"LIST -1", Err(BadNumber)),
            (b"LIST +1", Ok(List(Some(1)))),
            (b"LIST 01", Ok(List(Some(1)))),
            (b"LIST \t1", Ok(List(Some(1)))),
            (b"LIST 1 ", Ok(List(Some(1)))),
            (b"LIST 1 2", Err(ExtraArgument)),
            (b"LIST  1", Err(BadNumber)),
            (b"LIST 3", Ok(List(Some(3)))),
            (b"LIST 0x1", Err(BadNumber)),
            (b"LIST 1x", Err(BadNumber)),
            (forty.as_bytes(), Ok(List(Some(1)))),
            (forty_one.as_bytes(), Err(MissingArgument)),
            (b"LIST ", Ok(List(None))),
            (b"LIST", Ok(List(None))),
            // strtol corners
            (b"LIST -0", Ok(List(Some(0)))),
            (b"LIST +", Err(BadNumber)),
            (b"LIST -", Err(BadNumber)),
            (b"LIST +-1", Err(BadNumber)),
            (b"LIST \t", Err(BadNumber)),
            (b"LIST 1\t", Err(BadNumber)),
            (b"LIST \x0b\x0c\r1", Ok(List(Some(1)))),
            (b"LIST -\t1", Err(BadNumber)),
            (b"LIST  ", Err(BadNumber)),
            // §9.7 TRANSACTION, except CAPA (RFC 2449)
            (b"CAPA", Ok(Capa)),
            (b"capa ", Ok(Capa)),
            (b"CAPA x", Err(ExtraArgument)),
            (b"AUTH", Err(UnknownCommand)),
            (b"AUTH PLAIN", Err(UnknownCommand)),
            (b"USER bob", Err(UnknownCommand)),
            (b"PASS bobpw", Err(UnknownCommand)),
            (b"APOP x y", Err(UnknownCommand)),
            (b"XYZZY", Err(UnknownCommand)),
            (b"NOOP x", Err(ExtraArgument)),
            (b"STAT x", Err(ExtraArgument)),
            (b"RSET x", Err(ExtraArgument)),
            (b"LAST x", Err(ExtraArgument)),
            (b"QUIT x", Err(ExtraArgument)),
            (b"", Err(UnknownCommand)),
            (b"NOOP", Ok(Noop)),
            (b"STAT ", Ok(Stat)),
            (b"LAST", Ok(Last)),
            (b"QUIT", Ok(Quit)),
            (b"RSET", Ok(Rset)),
            (b"stat", Ok(Stat)),
            (b"QuIt", Ok(Quit)),
            (b" STAT", Err(UnknownCommand)),
            (b"STAT\t", Err(UnknownCommand)),
            // §9.8 (lines within the length limit)
            (noop123.as_bytes(), Err(ExtraArgument)),
            (retr127.as_bytes(), Err(ExtraArgument)),
            // §9.9: CRs that survive line assembly
            (b"STAT\r", Err(UnknownCommand)),
            (b"ST\rAT", Err(UnknownCommand)),
            (b"STAT\rNOOP", Err(UnknownCommand)),
            // §9.3
            (b"TOP 1 2", Ok(Top(1, 2))),
            (b"TOP 1", Err(MissingArgument)),
            (b"TOP 1 0 x", Err(ExtraArgument)),
            (b"TOP 3 0", Ok(Top(3, 0))),
            (b"TOP 1 -1", Err(BadNumber)),
            (b"TOP 1 -0", Ok(Top(1, 0))),
            (b"TOP 0 1", Ok(Top(0, 1))),
            (b"TOP  1 1", Err(BadNumber)),
            (b"TOP 1  1", Err(BadNumber)),
            (b"TOP 1 1 ", Ok(Top(1, 1))),
            (b"RETR", Err(MissingArgument)),
            (b"RETR ", Err(MissingArgument)),
            (b"RETR 3", Ok(Retr(3))),
            (b"RETR 1 x", Err(ExtraArgument)),
            (b"DELE 1", Ok(Dele(1))),
            (b"DELE", Err(MissingArgument)),
            (b"UIDL", Ok(Uidl(None))),
            (b"UIDL 1", Ok(Uidl(Some(1)))),
            (b"uidl 1 1", Err(ExtraArgument)),
            (b"TOPS 1 1", Err(UnknownCommand)),
            (b"LISTX", Err(UnknownCommand)),
        ];
        for (line, expected) in cases {
            assert_eq!(
                &parse_transaction(line),
                expected,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// The AUTHORIZATION rows of §9.7, §9.8 and §3.3.
    #[test]
    fn authorization_table() {
        let name40 = "n".repeat(40);
        let user40 = format!("USER {name40}");
        let user41 = format!("USER {}", "n".repeat(41));
        let noop_x = format!("NOOP{}", "x".repeat(100));
        let long_ir = format!("AUTH PLAIN {}", "A".repeat(300));
        fn auth<'a>(
            mechanism: Option<&'a [u8]>,
            initial: Option<&'a [u8]>,
        ) -> Result<AuthCommand<'a>, ParseError> {
            Ok(AuthCommand::Auth { mechanism, initial })
        }
        let cases: &[(&[u8], Result<AuthCommand<'_>, ParseError>)] = &[
            (b"CAPA", Ok(AuthCommand::Capa)),
            (b"Capa ", Ok(AuthCommand::Capa)),
            (b"CAPA x", Err(ExtraArgument)),
            (b"AUTH", auth(None, None)),
            (b"auth ", auth(None, None)),
            (b"AUTH PLAIN", auth(Some(b"PLAIN"), None)),
            (b"AUTH plain ", auth(Some(b"plain"), None)),
            (b"AUTH PLAIN =", auth(Some(b"PLAIN"), Some(b"="))),
            (
                b"AUTH PLAIN AGJvYgBib2Jwdw==",
                auth(Some(b"PLAIN"), Some(b"AGJvYgBib2Jwdw==")),
            ),
            (b"AUTH PLAIN abcd ", auth(Some(b"PLAIN"), Some(b"abcd"))),
            (b"AUTH PLAIN abcd x", Err(ExtraArgument)),
            (b"AUTH PLAIN abcd  ", Err(ExtraArgument)),
            (b"AUTH PLAIN  ", Err(MissingArgument)),
            (b"AUTH  PLAIN", Err(MissingArgument)),
            (b"AUTH LOGIN", auth(Some(b"LOGIN"), None)),
            (b"AUTHX", Err(UnknownCommand)),
            (
                long_ir.as_bytes(),
                auth(Some(b"PLAIN"), long_ir.as_bytes().get(11..)),
            ),
            (
                b"APOP bob 0123456789abcdef0123456789abcdef",
                Err(UnknownCommand),
            ),
            (b"STLS", Ok(AuthCommand::Stls)),
            (b"stls ", Ok(AuthCommand::Stls)),
            (b"STLS x", Err(ExtraArgument)),
            (b"STAT", Err(UnknownCommand)),
            (b"NOOP", Err(UnknownCommand)),
            (b"RSET", Err(UnknownCommand)),
            (b"UIDL", Err(UnknownCommand)),
            (b"TOP 1 1", Err(UnknownCommand)),
            (b"", Err(UnknownCommand)),
            (b"USER", Err(MissingArgument)),
            (b"USER ", Err(MissingArgument)),
            (b"USER bob extra", Err(ExtraArgument)),
            (user41.as_bytes(), Err(MissingArgument)),
            (user40.as_bytes(), Ok(AuthCommand::User(name40.as_bytes()))),
            (b"USER bob", Ok(AuthCommand::User(b"bob"))),
            (b"USER bob ", Ok(AuthCommand::User(b"bob"))),
            (b"user bob", Ok(AuthCommand::User(b"bob"))),
            (b"USER  ", Ok(AuthCommand::User(b""))),
            (b"USER  x", Err(ExtraArgument)),
            (b"USER bob\t", Ok(AuthCommand::User(b"bob\t"))),
            (b"USER\tbob", Err(UnknownCommand)),
            (b"QUIT now", Err(ExtraArgument)),
            (b"QUIT", Ok(AuthCommand::Quit)),
            (b"quit", Ok(AuthCommand::Quit)),
            (b"QUIT ", Ok(AuthCommand::Quit)),
            (b"PASS", Err(MissingArgument)),
            (b"PASS ", Err(MissingArgument)),
            (b"PASS  ", Ok(AuthCommand::Pass(b" "))),
            (b"pass bobpw", Ok(AuthCommand::Pass(b"bobpw"))),
            (b"PASS a b  c ", Ok(AuthCommand::Pass(b"a b  c "))),
            (noop_x.as_bytes(), Err(UnknownCommand)),
        ];
        for (line, expected) in cases {
            assert_eq!(
                &parse_authorization(line),
                expected,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn long_password_is_not_capped_at_forty() {
        let line = format!("PASS {}", "p".repeat(100));
        assert_eq!(
            parse_authorization(line.as_bytes()),
            Ok(AuthCommand::Pass("p".repeat(100).as_bytes()))
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0"), Ok(0));
        assert_eq!(parse_number(b"2147483647"), Ok(2147483647));
        assert_eq!(parse_number(b"+2147483647"), Ok(2147483647));
        assert_eq!(parse_number(b"2147483648"), Err(BadNumber));
        assert_eq!(parse_number(b"-2147483648"), Err(BadNumber));
        assert_eq!(parse_number(b"18446744073709551617"), Err(BadNumber));
        assert_eq!(parse_number(b""), Err(BadNumber));
        assert_eq!(parse_number(b"1 "), Err(BadNumber));
        assert_eq!(parse_number(b"\x001"), Err(BadNumber));
    }
}
