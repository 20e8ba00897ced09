//! The AUTHORIZATION state (RFC 1939 §4): USER, PASS and QUIT, nothing else.
//!
//! This state runs in popa3d's unprivileged, chrooted child, so it must never check a
//! password itself: PASS only hands the pair to the caller ([`crate::Action::Login`]),
//! and the reply to PASS comes from whoever checks it.

use crate::command::{parse_authorization, AuthCommand};
use crate::password::Password;
use crate::reply;
use crate::session::Step;

/// Runs one command line. `user` is the name accepted by USER, if any.
pub(crate) fn handle_line(user: &mut Option<Vec<u8>>, line: &[u8], out: &mut Vec<u8>) -> Step {
    match parse_authorization(line) {
        Ok(AuthCommand::User(name)) => handle_user(user, name, out),
        Ok(AuthCommand::Pass(secret)) => handle_pass(user, secret, out),
        Ok(AuthCommand::Quit) => {
            reply::ok(out);
            Step::QuitAuthorization
        }
        Err(_) => {
            reply::err(out);
            Step::Continue
        }
    }
}

/// popa3d accepts one USER per session and offers no way to take it back, so a second
/// USER fails and the first name stays.
fn handle_user(user: &mut Option<Vec<u8>>, name: &[u8], out: &mut Vec<u8>) -> Step {
    if user.is_some() {
        reply::err(out);
    } else {
        *user = Some(name.to_vec());
        reply::ok(out);
    }
    Step::Continue
}

/// No reply here: popa3d's child sends nothing after PASS, the privileged side answers
/// once it has checked the password and loaded the maildrop.
fn handle_pass(user: &mut Option<Vec<u8>>, secret: &[u8], out: &mut Vec<u8>) -> Step {
    match user.take() {
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
