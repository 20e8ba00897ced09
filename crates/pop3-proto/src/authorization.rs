//! The AUTHORIZATION state (RFC 1939 §4): USER, PASS and QUIT as popa3d has them, plus
//! CAPA (RFC 2449) and AUTH PLAIN (RFC 5034).
//!
//! This state runs in popa3d's unprivileged, chrooted child, so it must never check a
//! password itself: PASS and AUTH PLAIN only hand the pair to the caller
//! ([`crate::Action::Login`]), and the reply comes from whoever checks it. Both ways
//! in end in the same action, so the privileged side cannot tell them apart.

use crate::capability::{self, Options, MECHANISMS};
use crate::command::{parse_authorization, AuthCommand};
use crate::password::Password;
use crate::reply;
use crate::sasl::{self, PlainError};
use crate::session::Step;

/// RFC 3206 `[AUTH]`: the connection's policy, not a syntax error, refuses the login.
const PLAINTEXT_REFUSED: &[u8] = b"-ERR [AUTH] Plaintext authentication disallowed without TLS\r\n";
/// RFC 5034 §4: `*` cancels the exchange with a negative reply.
const CANCELLED: &[u8] = b"-ERR Authentication cancelled\r\n";
const UNSUPPORTED: &[u8] = b"-ERR Unsupported authentication mechanism\r\n";
/// Not base64, not a PLAIN message, or over the USER/PASS limits: no credentials were
/// presented, so no `[AUTH]` (RFC 3206 §4 keeps it for credential problems).
const MALFORMED: &[u8] = b"-ERR Invalid authentication response\r\n";
const AUTHZID_REFUSED: &[u8] = b"-ERR [AUTH] Authorization identity must be the user\r\n";
/// RFC 2595 §4: the positive reply to STLS, after which the client starts the TLS
/// handshake at once.
const BEGIN_TLS: &[u8] = b"+OK Begin TLS negotiation\r\n";
/// The empty server challenge of PLAIN (RFC 5034 §4: `+` SP base64, here empty).
const CONTINUE: &[u8] = b"+ \r\n";

/// Per-session AUTHORIZATION data.
#[derive(Default)]
pub(crate) struct Authorization {
    /// The name accepted by USER, if any.
    user: Option<Vec<u8>>,
    /// `AUTH PLAIN` was answered with `+ `: the next line is the client's response.
    sasl_pending: bool,
}

impl Authorization {
    /// Whether `line` may exceed [`crate::params::MAX_LINE`] (up to [`crate::params::MAX_AUTH_LINE`]):
    /// only a SASL response and an `AUTH` command, whose initial response a 127-byte
    /// line cannot hold.
    pub(crate) fn accepts_long(&self, line: &[u8]) -> bool {
        self.sasl_pending
            || line
                .get(..5)
                .is_some_and(|head| head.eq_ignore_ascii_case(b"AUTH "))
    }

    /// Runs one command line; `None` is a line refused before parsing (too long, or
    /// holding a NUL), which gets a bare `-ERR` and also ends a pending SASL exchange.
    pub(crate) fn handle_line(
        &mut self,
        line: Option<&[u8]>,
        options: &Options,
        out: &mut Vec<u8>,
    ) -> Step {
        if std::mem::take(&mut self.sasl_pending) {
            return match line {
                Some(b"*") => {
                    out.extend_from_slice(CANCELLED);
                    Step::Continue
                }
                Some(response) => plain_response(response, out),
                None => {
                    out.extend_from_slice(MALFORMED);
                    Step::Continue
                }
            };
        }
        let Some(line) = line else {
            reply::err(out);
            return Step::Continue;
        };
        match parse_authorization(line) {
            Ok(AuthCommand::User(_) | AuthCommand::Pass(_)) if !options.plaintext_login => {
                out.extend_from_slice(PLAINTEXT_REFUSED);
                Step::Continue
            }
            Ok(AuthCommand::User(name)) => self.handle_user(name, out),
            Ok(AuthCommand::Pass(secret)) => self.handle_pass(secret, out),
            Ok(AuthCommand::Quit) => {
                reply::ok(out);
                Step::QuitAuthorization
            }
            Ok(AuthCommand::Capa) => {
                capability::write_capa(options, true, out);
                Step::Continue
            }
            // Only where offered, and only before a login has started: RFC 2595 §4
            // allows STLS in AUTHORIZATION, and a USER given in plaintext must not carry
            // over into the TLS session.
            Ok(AuthCommand::Stls) if options.stls && self.user.is_none() => {
                out.extend_from_slice(BEGIN_TLS);
                Step::StartTls
            }
            Ok(AuthCommand::Stls) => {
                reply::err(out);
                Step::Continue
            }
            Ok(AuthCommand::Auth { mechanism, initial }) => {
                self.handle_auth(mechanism, initial, options, out)
            }
            Err(_) => {
                reply::err(out);
                Step::Continue
            }
        }
    }

    /// popa3d accepts one USER per session and offers no way to take it back, so a
    /// second USER fails and the first name stays.
    fn handle_user(&mut self, name: &[u8], out: &mut Vec<u8>) -> Step {
        if self.user.is_some() {
            reply::err(out);
        } else {
            self.user = Some(name.to_vec());
            reply::ok(out);
        }
        Step::Continue
    }

    /// No reply here: popa3d's child sends nothing after PASS, the privileged side
    /// answers once it has checked the password and loaded the maildrop.
    fn handle_pass(&mut self, secret: &[u8], out: &mut Vec<u8>) -> Step {
        match self.user.take() {
            Some(user) => Step::Login {
                user,
                password: Password::new(secret.to_vec()),
            },
            None => {
                reply::err(out);
                Step::Continue
            }
        }
    }

    /// Bare `AUTH` lists the mechanisms (the pre-RFC 5034 discovery Outlook sends);
    /// `AUTH PLAIN` without an initial response gets an empty challenge.
    fn handle_auth(
        &mut self,
        mechanism: Option<&[u8]>,
        initial: Option<&[u8]>,
        options: &Options,
        out: &mut Vec<u8>,
    ) -> Step {
        let Some(mechanism) = mechanism else {
            reply::ok(out);
            if options.plaintext_login {
                out.extend_from_slice(MECHANISMS);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
            return Step::Continue;
        };
        if self.user.is_some() {
            // USER has started a login; as with a second USER, no way back.
            reply::err(out);
            return Step::Continue;
        }
        if !mechanism.eq_ignore_ascii_case(MECHANISMS) {
            out.extend_from_slice(UNSUPPORTED);
            return Step::Continue;
        }
        if !options.plaintext_login {
            out.extend_from_slice(PLAINTEXT_REFUSED);
            return Step::Continue;
        }
        match initial {
            // RFC 5034 §4: "=" is an initial response of zero length.
            Some(b"=") => plain_response(b"", out),
            Some(response) => plain_response(response, out),
            None => {
                out.extend_from_slice(CONTINUE);
                self.sasl_pending = true;
                Step::Continue
            }
        }
    }
}

/// A PLAIN response: a login exactly like USER and PASS, or one `-ERR`.
fn plain_response(response: &[u8], out: &mut Vec<u8>) -> Step {
    match sasl::decode_plain(response) {
        Ok((user, password)) => Step::Login { user, password },
        Err(PlainError::Authzid) => {
            out.extend_from_slice(AUTHZID_REFUSED);
            Step::Continue
        }
        Err(
            PlainError::Base64(_) | PlainError::Shape | PlainError::Empty | PlainError::TooLong,
        ) => {
            out.extend_from_slice(MALFORMED);
            Step::Continue
        }
    }
}
