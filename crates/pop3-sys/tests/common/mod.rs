//! The scenario harness of pop3-sys's process and sandbox tests.
//!
//! libtest runs every test on a thread of its own (even with `--test-threads=1`), so a
//! test process is never single-threaded: pop3-sys refuses to fork it and `confine`
//! refuses to confine it. Each #[test] therefore re-executes its test binary with
//! [`ENV`] set to a scenario's name ([`run_scenario`]); a function in `.init_array` sees
//! the variable, runs `crate::dispatch(name)` before libtest's `main` has started any
//! thread, and exits with 0 (pass) or 1 (fail, reason on stderr).
#![allow(dead_code)]

use std::process::{Command, Stdio};

use pop3_sys::process::exit_now;

pub const ENV: &str = "POP3_SYS_SCENARIO";

pub type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
pub(crate) use ensure;

pub fn ok<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

#[used]
#[link_section = ".init_array"]
static SCENARIO_HOOK: extern "C" fn() = scenario_hook;

extern "C" fn scenario_hook() {
    let Some(name) = std::env::var_os(ENV) else {
        return;
    };
    match crate::dispatch(name.to_str().unwrap_or("")) {
        Ok(()) => exit_now(0),
        Err(why) => {
            eprintln!("FAILED: {why}");
            exit_now(1)
        }
    }
}

/// Runs scenario `name` in a fresh copy of this test binary and fails with its reason.
pub fn run_scenario(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ENV, name)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "scenario {name}: {}\n{stderr}",
        out.status
    );
}
