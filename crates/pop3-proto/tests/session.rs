//! Scripted sessions: client bytes in, exact server bytes out, checked against the
//! transcripts measured on the real popa3d (popa3d.md §9). Every script is also run with
//! the client's bytes arriving in reads of every size from 1 to 512 bytes, which must not
//! change a single output byte or action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pop3_proto::fuzz_targets::{
    check_replies, run, run_with, Event, FakeMaildrop, Start, Transcript,
};
use pop3_proto::params::{INPUT_BUFFER, MAX_AUTH_LINE, MAX_LINE};
use pop3_proto::{Action, CloseReason, EmptyListing, Options, Session, Totals};

/// Runs `input` whole, then in every chunk size 1..=512, and returns the transcript
/// after checking that they all agree and that the output is well-formed.
fn script_on(start: Start, maildrop: &FakeMaildrop, input: &[u8]) -> Transcript {
    let whole = run(start, maildrop, input, usize::MAX);
    for chunk in 1..=512 {
        let chunked = run(start, maildrop, input, chunk);
        assert_eq!(chunked, whole, "reads of {chunk} bytes changed the session");
    }
    check_replies(&whole.output).unwrap();
    whole
}

fn script(start: Start, input: &[u8]) -> Transcript {
    script_on(start, &FakeMaildrop::bob(), input)
}

/// Joins reply lines with CRLF, each line terminated.
fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Output of a TRANSACTION script: the PASS reply then `lines`.
fn tx_out(lines: &[&str]) -> Vec<u8> {
    let mut out = b"+OK\r\n".to_vec();
    out.extend(crlf(lines));
    out
}

fn login(user: &str, password: &str) -> Event {
    Event::Login {
        user: user.as_bytes().to_vec(),
        password: password.as_bytes().to_vec(),
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- §9.1 -------------------------------------------------------------------------

#[test]
fn greeting_then_eof() {
    let t = script(Start::Authorization, b"");
    assert_eq!(t.output, b"+OK\r\n");
    assert_eq!(t.events, [Event::Close(CloseReason::Eof)]);
}

#[test]
fn greeting_then_quit() {
    let t = script(Start::Authorization, b"QUIT\r\nSTAT\r\n");
    assert_eq!(t.output, b"+OK\r\n+OK\r\n");
    assert_eq!(t.events, [Event::Close(CloseReason::QuitAuthorization)]);
}

// ---- §9.2 -------------------------------------------------------------------------

#[test]
fn pass_hands_over_user_password_and_pipelined_input() {
    let mut s = Session::authorization();
    let input = b"USER bob\r\nPASS wrong pw \r\nSTAT\r\n";
    s.input_space()[..input.len()].copy_from_slice(input);
    s.input_filled(input.len());
    let action = s.poll(&EmptyListing);
    let Action::Login {
        user,
        password,
        pipelined,
    } = action
    else {
        panic!("expected Login, got {action:?}");
    };
    assert_eq!(user, b"bob");
    assert_eq!(password.as_bytes(), b"wrong pw ");
    assert_eq!(format!("{password:?}"), "<redacted>");
    assert_eq!(pipelined, b"STAT\r\n");
    // Greeting and USER reply only: the PASS reply comes from the privileged side.
    assert_eq!(s.output(), b"+OK\r\n+OK\r\n");
    assert_eq!(s.poll(&EmptyListing), Action::Close(CloseReason::Done));
    assert_eq!(s.output(), b"+OK\r\n+OK\r\n");
}

#[test]
fn login_then_quit() {
    let t = script(Start::Authorization, b"USER bob\r\nPASS bobpw\r\nQUIT\r\n");
    assert_eq!(t.output, crlf(&["+OK", "+OK", "+OK", "+OK"]));
    assert_eq!(
        t.events,
        [
            login("bob", "bobpw"),
            Event::Update { deleted: vec![] },
            Event::Close(CloseReason::Done)
        ]
    );
}

#[test]
fn empty_maildrop() {
    let t = script_on(
        Start::Authorization,
        &FakeMaildrop::default(),
        b"USER nopass\r\nPASS anything\r\nSTAT\r\nLIST\r\nUIDL\r\nLAST\r\nRETR 1\r\nTOP 1 0\r\nQUIT\r\n",
    );
    assert_eq!(
        show(&t.output),
        show(&crlf(&[
            "+OK", "+OK", "+OK", "+OK 0 0", "+OK", ".", "+OK", ".", "+OK 0", "-ERR", "-ERR", "+OK"
        ]))
    );
}

// ---- §9.3 -------------------------------------------------------------------------

const BOB_1_WIRE: &[&str] = &[
    "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000",
    "Date: Mon, 1 Jan 2024 00:00:00 +0000",
    "Message-ID: <one@example.org>",
    "Subject: first",
    "",
    "Hello bob.",
    "..leading dot line",
    "...two dots",
    ">From escaped",
    "last line",
];

const BOB_2_WIRE: &[&str] = &[
    "Date: Tue, 2 Jan 2024 00:00:00 +0000",
    "Subject: second",
    "",
    "body2 line1",
    "body2 line2",
    "body2 line3",
];

#[test]
fn transcript_9_3() {
    let t = script(
        Start::Authorization,
        b"USER bob\r\nPASS bobpw\r\nSTAT\r\nLIST\r\nLIST 2\r\nUIDL\r\nUIDL 1\r\n\
TOP 1 2\r\nRETR 1\r\nLAST\r\nQUIT\r\n",
    );
    let mut expected = vec![
        "+OK",
        "+OK",
        "+OK",
        "+OK 2 307",
        "+OK",
        "1 211",
        "2 96",
        ".",
        "+OK 2 96",
        "+OK",
        "1 fed9c3594b4c341c",
        "2 a9ba9d20b213cf39",
        ".",
        "+OK 1 fed9c3594b4c341c",
        "+OK",
    ];
    expected.extend_from_slice(&BOB_1_WIRE[..7]);
    expected.extend_from_slice(&[".", "+OK"]);
    expected.extend_from_slice(BOB_1_WIRE);
    expected.extend_from_slice(&[".", "+OK 1", "+OK"]);
    assert_eq!(show(&t.output), show(&crlf(&expected)));
    assert_eq!(
        t.events,
        [
            login("bob", "bobpw"),
            Event::Retrieve {
                index: 0,
                top: Some(2)
            },
            Event::Retrieve {
                index: 0,
                top: None
            },
            Event::Update { deleted: vec![] },
            Event::Close(CloseReason::Done),
        ]
    );
}

#[test]
fn other_top_results_9_3() {
    let t = script(
        Start::Transaction,
        b"TOP 1 0\r\nTOP 2 1\r\nTOP 2 100\r\nRETR 2\r\n",
    );
    let mut expected = vec!["+OK"];
    expected.extend_from_slice(&BOB_1_WIRE[..5]);
    expected.extend_from_slice(&[".", "+OK"]);
    expected.extend_from_slice(&BOB_2_WIRE[..4]);
    expected.extend_from_slice(&[".", "+OK"]);
    expected.extend_from_slice(BOB_2_WIRE);
    expected.extend_from_slice(&[".", "+OK"]);
    expected.extend_from_slice(BOB_2_WIRE);
    expected.push(".");
    assert_eq!(show(&t.output), show(&tx_out(&expected)));
    assert_eq!(t.events.last(), Some(&Event::Close(CloseReason::Eof)));

    for bad in [
        "TOP 1",
        "TOP 1 0 x",
        "TOP 3 0",
        "TOP 1 -1",
        "TOP 0 1",
        "RETR",
        "RETR 3",
        "RETR 1 x",
    ] {
        let t = script(Start::Transaction, format!("{bad}\r\n").as_bytes());
        assert_eq!(t.output, tx_out(&["-ERR"]), "{bad}");
        assert_eq!(t.events, [Event::Close(CloseReason::Eof)], "{bad}");
    }
}

// ---- §9.5 -------------------------------------------------------------------------

#[test]
fn dele_then_quit_9_5() {
    let t = script(
        Start::Authorization,
        b"USER bob\r\nPASS bobpw\r\nDELE 1\r\nQUIT\r\n",
    );
    assert_eq!(t.output, crlf(&["+OK", "+OK", "+OK", "+OK", "+OK"]));
    assert_eq!(
        t.events,
        [
            login("bob", "bobpw"),
            Event::Update { deleted: vec![0] },
            Event::Close(CloseReason::Done)
        ]
    );
}

#[test]
fn totals_for_the_log_line() {
    let drop = FakeMaildrop::bob();
    let mut s = Session::try_transaction(&drop, b"DELE 1\r\nQUIT\r\n").unwrap();
    assert_eq!(s.poll(&drop), Action::Update { deleted: vec![0] });
    assert_eq!(
        s.totals(),
        Totals {
            deleted: 1,
            deleted_size: 211,
            left: 1,
            left_size: 96
        }
    );
    assert_eq!(s.deleted(), [true, false]);
    // Until the driver reports, the session keeps asking for the update.
    assert_eq!(s.poll(&drop), Action::Update { deleted: vec![0] });
    s.update_done(false);
    assert_eq!(s.poll(&drop), Action::Close(CloseReason::Done));
    assert_eq!(s.output(), b"+OK\r\n+OK\r\n-ERR\r\n");
    s.update_done(true);
    assert_eq!(s.output(), b"+OK\r\n+OK\r\n-ERR\r\n");
}

/// The session of §9.5 ended by EOF: deletion marks, invisibility, LAST and RSET.
#[test]
fn dele_rset_last_then_eof_9_5() {
    let t = script(
        Start::Transaction,
        b"DELE 1\r\nDELE 1\r\nSTAT\r\nLIST\r\nLIST 1\r\nUIDL 1\r\nRETR 1\r\nTOP 1 0\r\n\
UIDL\r\nLAST\r\nRSET\r\nSTAT\r\nLAST\r\nRETR 2\r\nLAST\r\nDELE 1\r\nLAST\r\n",
    );
    let mut expected = vec![
        "+OK",
        "-ERR",
        "+OK 1 96",
        "+OK",
        "2 96",
        ".",
        "-ERR",
        "-ERR",
        "-ERR",
        "-ERR",
        "+OK",
        "2 a9ba9d20b213cf39",
        ".",
        "+OK 1",
        "+OK",
        "+OK 2 307",
        "+OK 0",
        "+OK",
    ];
    expected.extend_from_slice(BOB_2_WIRE);
    expected.extend_from_slice(&[".", "+OK 2", "+OK", "+OK 2"]);
    assert_eq!(show(&t.output), show(&tx_out(&expected)));
    assert_eq!(
        t.events,
        [
            Event::Retrieve {
                index: 1,
                top: None
            },
            Event::Close(CloseReason::Eof)
        ]
    );
}

#[test]
fn last_rules() {
    // TOP leaves LAST alone; RETR and DELE raise it, never lower it.
    let t = script(
        Start::Transaction,
        b"TOP 2 0\r\nLAST\r\nRETR 2\r\nRETR 1\r\nLAST\r\nDELE 1\r\nLAST\r\nRSET\r\nLAST\r\nDELE 1\r\nLAST\r\n",
    );
    let mut expected = vec!["+OK"];
    expected.extend_from_slice(&BOB_2_WIRE[..3]);
    expected.extend_from_slice(&[".", "+OK 0", "+OK"]);
    expected.extend_from_slice(BOB_2_WIRE);
    expected.extend_from_slice(&[".", "+OK"]);
    expected.extend_from_slice(BOB_1_WIRE);
    expected.extend_from_slice(&[".", "+OK 2", "+OK", "+OK 2", "+OK", "+OK 0", "+OK", "+OK 1"]);
    assert_eq!(show(&t.output), show(&tx_out(&expected)));
}

#[test]
fn delete_everything_then_rset() {
    let t = script(
        Start::Transaction,
        b"DELE 2\r\nDELE 1\r\nSTAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nRSET\r\nDELE 2\r\nQUIT\r\n",
    );
    assert_eq!(
        show(&t.output),
        show(&tx_out(&[
            "+OK", "+OK", "+OK 0 0", "+OK", ".", "+OK", ".", "-ERR", "+OK", "+OK", "+OK"
        ]))
    );
    assert_eq!(
        t.events,
        [
            Event::Update { deleted: vec![1] },
            Event::Close(CloseReason::Done)
        ]
    );
}

// ---- §9.6 -------------------------------------------------------------------------

#[test]
fn argument_parsing_9_6() {
    let forty = format!("LIST {}1", "0".repeat(39));
    let forty_one = format!("LIST {}1", "0".repeat(40));
    let rows: &[(&str, &str)] = &[
        ("LIST 4294967297", "-ERR"),
        ("LIST 4294967296", "-ERR"),
        ("LIST 2147483648", "-ERR"),
        ("LIST 99999999999999999999999", "-ERR"),
        ("LIST 0", "-ERR"),
        ("LIST -1", "-ERR"),
        ("LIST +1", "+OK 1 211"),
        ("LIST 01", "+OK 1 211"),
        ("LIST \t1", "+OK 1 211"),
        ("LIST 1 ", "+OK 1 211"),
        ("LIST 1 2", "-ERR"),
        ("LIST  1", "-ERR"),
        ("LIST 3", "-ERR"),
        ("LIST 0x1", "-ERR"),
        ("LIST 1x", "-ERR"),
        (&forty, "+OK 1 211"),
        (&forty_one, "-ERR"),
        ("LIST ", "+OK\r\n1 211\r\n2 96\r\n."),
        ("LIST", "+OK\r\n1 211\r\n2 96\r\n."),
        ("UIDL 2147483647", "-ERR"),
        ("UIDL +2", "+OK 2 a9ba9d20b213cf39"),
        ("UIDL 2 ", "+OK 2 a9ba9d20b213cf39"),
        ("UIDL 4294967297", "-ERR"),
        ("DELE 4294967298", "-ERR"),
        ("RETR -0", "-ERR"),
    ];
    for (command, reply) in rows {
        let t = script(Start::Transaction, format!("{command}\r\n").as_bytes());
        assert_eq!(show(&t.output), show(&tx_out(&[reply])), "{command:?}");
    }
}

// ---- §9.7 -------------------------------------------------------------------------

#[test]
fn unknown_commands_in_authorization_9_7() {
    let name41 = format!("USER {}", "n".repeat(41));
    // popa3d also answers CAPA and AUTH with -ERR; we do not (see capa_* and auth_*).
    let rows: &[&str] = &[
        "APOP bob 0123456789abcdef0123456789abcdef",
        "STLS",
        "STAT",
        "NOOP",
        "RSET",
        "UIDL",
        "TOP 1 1",
        "LIST",
        "",
        "PASS bobpw",
        "USER",
        "USER ",
        "USER bob extra",
        &name41,
        "QUIT now",
        "USER\tbob",
    ];
    for command in rows {
        let t = script(Start::Authorization, format!("{command}\r\n").as_bytes());
        assert_eq!(show(&t.output), "+OK\r\n-ERR\r\n", "{command:?}");
        assert_eq!(t.events, [Event::Close(CloseReason::Eof)], "{command:?}");
    }
}

#[test]
fn one_user_per_session_9_7() {
    let name40 = "n".repeat(40);
    let t = script(
        Start::Authorization,
        format!("USER {name40}\r\nUSER bob\r\nQUIT now\r\nPASS \r\nPASS\r\npass secret\r\n")
            .as_bytes(),
    );
    assert_eq!(
        t.output,
        crlf(&["+OK", "+OK", "-ERR", "-ERR", "-ERR", "-ERR", "+OK"])
    );
    assert_eq!(t.events[0], login(&name40, "secret"));

    let t = script(Start::Authorization, b"USER bob\r\nquit\r\n");
    assert_eq!(t.output, crlf(&["+OK", "+OK", "+OK"]));
    assert_eq!(t.events, [Event::Close(CloseReason::QuitAuthorization)]);
}

#[test]
fn unknown_commands_in_transaction_9_7() {
    // popa3d also answers CAPA with -ERR; we do not (capa_in_transaction).
    let rows: &[(&str, &str)] = &[
        ("USER bob", "-ERR"),
        ("PASS bobpw", "-ERR"),
        ("APOP x y", "-ERR"),
        ("XYZZY", "-ERR"),
        ("NOOP x", "-ERR"),
        ("STAT x", "-ERR"),
        ("RSET x", "-ERR"),
        ("LAST x", "-ERR"),
        ("", "-ERR"),
        ("QUIT x", "-ERR"),
        ("STLS", "-ERR"),
        ("AUTH", "-ERR"),
        ("NOOP", "+OK"),
        ("STAT ", "+OK 2 307"),
        ("LAST", "+OK 0"),
        ("RSET", "+OK"),
        (" STAT", "-ERR"),
    ];
    for (command, reply) in rows {
        let t = script(Start::Transaction, format!("{command}\r\n").as_bytes());
        assert_eq!(show(&t.output), show(&tx_out(&[reply])), "{command:?}");
    }
    let t = script(Start::Transaction, b"QUIT\r\n");
    assert_eq!(t.output, tx_out(&["+OK"]));
}

#[test]
fn keywords_ignore_case_9_7() {
    let t = script(
        Start::Authorization,
        b"user bob\r\npass bobpw\r\nstat\r\nLiSt 2\r\nQuIt\r\n",
    );
    assert_eq!(
        t.output,
        crlf(&["+OK", "+OK", "+OK", "+OK 2 307", "+OK 2 96", "+OK"])
    );
    assert_eq!(t.events[0], login("bob", "bobpw"));
}

#[test]
fn odd_user_names_9_7() {
    let t = script(Start::Authorization, b"USER  \r\nPASS x\r\n");
    assert_eq!(t.output, crlf(&["+OK", "+OK", "+OK"]));
    assert_eq!(t.events[0], login("", "x"));

    let t = script(
        Start::Authorization,
        b"USER\tbob\r\nUSER bob\t\r\nPASS  two  spaces \r\n",
    );
    assert_eq!(t.output, crlf(&["+OK", "-ERR", "+OK", "+OK"]));
    assert_eq!(t.events[0], login("bob\t", " two  spaces "));
}

// ---- §9.8 and the over-long line DEVIATION ------------------------------------------

#[test]
fn long_lines_9_8() {
    let mut input = Vec::new();
    input.extend_from_slice(b"NOOP");
    input.extend_from_slice(&[b'x'; 2996]);
    input.extend_from_slice(b"\r\nUSER bob\r\nPASS bobpw\r\nSTAT\r\nSTAT");
    input.extend_from_slice(&[b' '; 2996]);
    input.extend_from_slice(b"\r\nLIST 1");
    input.extend_from_slice(&[b' '; 2994]);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&[b'X'; 3000]);
    input.extend_from_slice(b"\r\nNOOP\r\nQUIT\r\n");
    let t = script(Start::Authorization, &input);
    assert_eq!(
        show(&t.output),
        show(&crlf(&[
            "+OK",
            "-ERR",
            "+OK",
            "+OK",
            "+OK 2 307",
            "-ERR",
            "-ERR",
            "-ERR",
            "+OK",
            "+OK"
        ]))
    );
    assert_eq!(t.events[0], login("bob", "bobpw"));
    assert_eq!(t.events.len(), 3);
}

#[test]
fn lines_near_the_limit_9_8() {
    let lines = [
        format!("RETR 2{}", " ".repeat(121)),
        format!("RETR 2{}x", " ".repeat(122)),
        format!("NOOP{}", " ".repeat(123)),
        format!("NOOP{}", " ".repeat(124)),
    ];
    for line in &lines {
        let t = script(Start::Transaction, format!("{line}\r\n").as_bytes());
        assert_eq!(t.output, tx_out(&["-ERR"]), "{} bytes", line.len());
    }
}

/// 127 bytes is the longest line run; popa3d would truncate a 128-byte line and run it,
/// we refuse it (DEVIATION) and never run any part of it.
#[test]
fn longest_line_and_one_more() {
    let password = "p".repeat(MAX_LINE - 5);
    for ending in ["\r\n", "\n"] {
        let input = format!("USER bob\r\nPASS {password}{ending}");
        let t = script(Start::Authorization, input.as_bytes());
        assert_eq!(t.events[0], login("bob", &password));
    }
    for ending in ["\r\n", "\n", "\r\r\n"] {
        let input = format!("USER bob\r\nPASS {password}x{ending}QUIT\r\n");
        let t = script(Start::Authorization, input.as_bytes());
        assert_eq!(t.output, crlf(&["+OK", "+OK", "-ERR", "+OK"]), "{ending:?}");
        assert_eq!(t.events, [Event::Close(CloseReason::QuitAuthorization)]);
    }
    // A huge line whose tail is a valid command: the tail is never run.
    let mut input = vec![b'y'; 5000];
    input.extend_from_slice(b" QUIT\r\nNOOP\r\n");
    let t = script(Start::Transaction, &input);
    assert_eq!(t.output, tx_out(&["-ERR", "+OK"]));
    assert_eq!(t.events, [Event::Close(CloseReason::Eof)]);
}

#[test]
fn long_line_cut_by_eof() {
    let t = script(Start::Transaction, &[b'Q'; 4000]);
    assert_eq!(t.output, tx_out(&["-ERR"]));
    assert_eq!(t.events, [Event::Close(CloseReason::Eof)]);
}

// ---- §9.9 -------------------------------------------------------------------------

#[test]
fn nul_and_cr_9_9() {
    let mut input = b"STAT\x00\r\nNO\x00OP\r\nNOOP".to_vec();
    input.extend_from_slice(&[b' '; 200]);
    input.extend_from_slice(b"\x00\r\nNOOP\r\nSTAT\r\r\nST\rAT\r\nSTAT\rNOOP\nSTAT\r\n\x00\n\n");
    let t = script(Start::Transaction, &input);
    assert_eq!(
        show(&t.output),
        show(&tx_out(&[
            "-ERR",
            "-ERR",
            "-ERR",
            "+OK",
            "-ERR",
            "-ERR",
            "-ERR",
            "+OK 2 307",
            "-ERR",
            "-ERR"
        ]))
    );
    let t = script(
        Start::Authorization,
        b"USER b\x00b\r\nUSER bob\r\nPASS a\x00\r\nPASS \x00\r\n\r\n",
    );
    assert_eq!(
        t.output,
        crlf(&["+OK", "-ERR", "+OK", "-ERR", "-ERR", "-ERR"])
    );
    assert_eq!(t.events, [Event::Close(CloseReason::Eof)]);
}

// ---- §9.10 ------------------------------------------------------------------------

#[test]
fn lf_only_terminators_9_10() {
    let t = script(
        Start::Authorization,
        b"USER bob\nPASS bobpw\nSTAT\nLIST\nQUIT\n",
    );
    assert_eq!(
        t.output,
        crlf(&[
            "+OK",
            "+OK",
            "+OK",
            "+OK 2 307",
            "+OK",
            "1 211",
            "2 96",
            ".",
            "+OK"
        ])
    );
}

#[test]
fn partial_last_line_is_run_9_10() {
    let t = script(
        Start::Authorization,
        b"USER bob\r\nPASS bobpw\r\nSTAT\r\nQUIT",
    );
    assert_eq!(t.output, crlf(&["+OK", "+OK", "+OK", "+OK 2 307", "+OK"]));
    assert_eq!(
        t.events,
        [
            login("bob", "bobpw"),
            Event::Update { deleted: vec![] },
            Event::Close(CloseReason::Done)
        ]
    );

    // A password cut by EOF still logs in; the session then sees the EOF.
    let t = script(Start::Authorization, b"USER bob\r\nPASS bob pw");
    assert_eq!(t.output, crlf(&["+OK", "+OK", "+OK"]));
    assert_eq!(
        t.events,
        [login("bob", "bob pw"), Event::Close(CloseReason::Eof)]
    );

    // A RETR cut by EOF is answered, then the session ends.
    let t = script(Start::Transaction, b"RETR 2");
    let mut expected = vec!["+OK"];
    expected.extend_from_slice(BOB_2_WIRE);
    expected.push(".");
    assert_eq!(show(&t.output), show(&tx_out(&expected)));
    assert_eq!(
        t.events,
        [
            Event::Retrieve {
                index: 1,
                top: None
            },
            Event::Close(CloseReason::Eof)
        ]
    );

    // Only a CR right before a LF is dropped, so a CR before EOF stays.
    let t = script(Start::Authorization, b"QUIT\r");
    assert_eq!(t.output, crlf(&["+OK", "-ERR"]));
    assert_eq!(t.events, [Event::Close(CloseReason::Eof)]);

    // EOF right after a LF: nothing more to run.
    let t = script(Start::Transaction, b"NOOP\r\n");
    assert_eq!(t.output, tx_out(&["+OK"]));
}

// ---- pipelining and buffers -------------------------------------------------------

#[test]
fn pipelining_beyond_the_input_buffer() {
    let mut input = b"USER bob\r\nPASS bobpw\r\n".to_vec();
    for _ in 0..400 {
        input.extend_from_slice(b"NOOP\r\nSTAT\r\n");
    }
    input.extend_from_slice(b"QUIT\r\n");
    assert!(input.len() > 4 * INPUT_BUFFER);
    let t = script(Start::Authorization, &input);
    let mut expected = vec!["+OK", "+OK", "+OK"];
    for _ in 0..400 {
        expected.extend_from_slice(&["+OK", "+OK 2 307"]);
    }
    expected.push("+OK");
    assert_eq!(t.output, crlf(&expected));
    assert_eq!(t.events.len(), 3);
}

#[test]
fn pipelined_limit_is_enforced() {
    let drop = FakeMaildrop::bob();
    let too_long = vec![b'\n'; INPUT_BUFFER + 1];
    let err = Session::try_transaction(&drop, &too_long).unwrap_err();
    assert_eq!(err.len, INPUT_BUFFER + 1);
    assert!(err.to_string().contains("1025"));
    let mut s = Session::try_transaction(&drop, &too_long[1..]).unwrap();
    assert!(s.input_space().is_empty());
    assert_eq!(s.poll(&drop), Action::NeedInput);
    assert_eq!(s.output().len(), 5 + 6 * INPUT_BUFFER);
    assert_eq!(s.input_space().len(), INPUT_BUFFER);
}

#[test]
fn login_with_a_full_buffer_passes_every_unread_byte() {
    let mut s = Session::authorization();
    let mut input = b"USER a\r\nPASS b\r\n".to_vec();
    input.resize(INPUT_BUFFER, b'N');
    let space = s.input_space();
    assert_eq!(space.len(), INPUT_BUFFER);
    space.copy_from_slice(&input);
    s.input_filled(usize::MAX); // clamped, not a panic
    let Action::Login { pipelined, .. } = s.poll(&EmptyListing) else {
        panic!("no login");
    };
    assert_eq!(pipelined, &input[16..]);
}

#[test]
fn output_is_consumed_in_pieces() {
    let drop = FakeMaildrop::bob();
    let mut s = Session::try_transaction(&drop, b"STAT\r\n").unwrap();
    assert_eq!(s.poll(&drop), Action::NeedInput);
    assert_eq!(s.output(), b"+OK\r\n+OK 2 307\r\n");
    s.consume_output(3);
    assert_eq!(s.output(), b"\r\n+OK 2 307\r\n");
    s.consume_output(1000);
    assert_eq!(s.output(), b"");
    s.output_mut().clear();
    s.consume_output(1);
    assert_eq!(s.output(), b"");
}

#[test]
fn listing_a_hundred_thousand_messages() {
    let messages = (0..100_000u32)
        .map(|i| {
            (
                format!("S: {i}\n\nb\n").into_bytes(),
                format!("u{i:015}").into_bytes(),
            )
        })
        .collect();
    let drop = FakeMaildrop::new(messages);
    let t = run(
        Start::Transaction,
        &drop,
        b"STAT\r\nDELE 5\r\nLIST\r\nUIDL\r\nLIST 100000\r\n",
        512,
    );
    let text = show(&t.output);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[1], "+OK 100000 1488890");
    assert_eq!(lines[3], "+OK");
    assert_eq!(lines[4], "1 11");
    assert_eq!(lines[8], "6 11");
    assert_eq!(lines[3 + 100_000], ".");
    assert_eq!(lines[4 + 100_000], "+OK");
    assert_eq!(lines[5 + 100_000], "1 u000000000000000");
    assert_eq!(lines[4 + 2 * 100_000], ".");
    assert_eq!(lines[5 + 2 * 100_000], "+OK 100000 15");
    check_replies(&t.output).unwrap();
}

#[test]
fn encoder_corner_message_through_a_session() {
    let drop = FakeMaildrop::fuzz();
    let t = script_on(
        Start::Transaction,
        &drop,
        b"RETR 3\r\nTOP 3 1\r\nLIST 3\r\n",
    );
    let expected: &[u8] =
        b"+OK\r\n+OK\r\nX: y\r\n\r\n..\r\n...\r\n..x\r\nnul\0 and cr\r here\r\r\n\
\r\r\nlast without LF\r\n.\r\n+OK\r\nX: y\r\n\r\n..\r\n.\r\n+OK 3 57\r\n";
    assert_eq!(show(&t.output), show(expected));
}

/// A kilobyte of pipelined LISTs must not queue hundreds of listings at once.
#[test]
fn pipelined_output_is_bounded() {
    use pop3_proto::params::OUTPUT_HIGH_WATER;
    let messages = (0..20_000u32)
        .map(|i| (format!("S: {i}\n").into_bytes(), b"u".to_vec()))
        .collect();
    let drop = FakeMaildrop::new(messages);
    let listing_len = {
        let mut s = Session::try_transaction(&drop, b"LIST\r\n").unwrap();
        assert_eq!(s.poll(&drop), Action::NeedInput);
        s.output().len() - 5
    };
    assert!(listing_len > OUTPUT_HIGH_WATER);
    let pipelined = b"LIST\r\n".repeat(INPUT_BUFFER / 6);
    let mut s = Session::try_transaction(&drop, &pipelined).unwrap();
    let mut flushes = 0;
    let mut total = 0;
    loop {
        let action = s.poll(&drop);
        assert!(s.output().len() < OUTPUT_HIGH_WATER + listing_len);
        total += s.output().len();
        let n = s.output().len();
        s.consume_output(n);
        match action {
            Action::Flush => flushes += 1,
            Action::NeedInput => break,
            other => panic!("{other:?}"),
        }
    }
    // One before each LIST but the first.
    assert_eq!(flushes, INPUT_BUFFER / 6 - 1);
    assert_eq!(total, 5 + listing_len * (INPUT_BUFFER / 6));
}

// ---- Extensions: CAPA (RFC 2449), AUTH PLAIN (RFC 5034), response codes -----------

/// [`script`] with engine options, in every chunk size too.
fn script_with(start: Start, options: Options, input: &[u8]) -> Transcript {
    let drop = FakeMaildrop::bob();
    let whole = run_with(start, options, &drop, input, usize::MAX);
    for chunk in 1..=512 {
        let chunked = run_with(start, options, &drop, input, chunk);
        assert_eq!(chunked, whole, "reads of {chunk} bytes changed the session");
    }
    check_replies(&whole.output).unwrap();
    whole
}

fn no_plaintext() -> Options {
    let mut o = Options::default();
    o.plaintext_login = false;
    o
}

const CAPA_AUTH: &[&str] = &[
    "+OK",
    "TOP",
    "UIDL",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "PIPELINING",
    "USER",
    "SASL PLAIN",
    "IMPLEMENTATION popa3d-rs",
    ".",
];
const CAPA_TX: &[&str] = &[
    "+OK",
    "TOP",
    "UIDL",
    "RESP-CODES",
    "AUTH-RESP-CODE",
    "PIPELINING",
    "IMPLEMENTATION popa3d-rs",
    ".",
];

/// Base64 of `raw`, for building PLAIN responses.
fn b64(raw: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in raw.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &b)| a | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            s.push(if i <= c.len() {
                ABC[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

#[test]
fn capa_in_authorization_does_not_change_state() {
    let t = script(
        Start::Authorization,
        b"CAPA\r\nUSER bob\r\ncapa\r\nPASS bobpw\r\nCAPA\r\nQUIT\r\n",
    );
    let mut want = crlf(&["+OK"]);
    want.extend(crlf(CAPA_AUTH));
    want.extend(crlf(&["+OK"]));
    want.extend(crlf(CAPA_AUTH));
    want.extend(crlf(&["+OK"])); // the PASS reply, after the login
    want.extend(crlf(CAPA_TX));
    want.extend(crlf(&["+OK"]));
    assert_eq!(show(&t.output), show(&want));
    assert_eq!(t.events[0], login("bob", "bobpw"));
    assert_eq!(t.events[1], Event::Update { deleted: vec![] });
    // CAPA with an argument is a syntax error, as for any command without one.
    let t = script(Start::Authorization, b"CAPA x\r\n");
    assert_eq!(t.output, crlf(&["+OK", "-ERR"]));
}

#[test]
fn capa_in_transaction() {
    let t = script(Start::Transaction, b"CAPA\r\nDELE 1\r\nCAPA\r\nSTAT\r\n");
    let mut want = crlf(&["+OK"]);
    want.extend(crlf(CAPA_TX));
    want.extend(crlf(&["+OK"]));
    want.extend(crlf(CAPA_TX));
    want.extend(crlf(&["+OK 1 96"]));
    assert_eq!(show(&t.output), show(&want));
}

#[test]
fn capa_follows_the_options() {
    let t = script_with(Start::Authorization, no_plaintext(), b"CAPA\r\n");
    let want: Vec<&str> = ["+OK"]
        .into_iter()
        .chain(CAPA_AUTH.iter().copied())
        .filter(|l| *l != "USER" && *l != "SASL PLAIN")
        .collect();
    assert_eq!(show(&t.output), show(&crlf(&want)));

    let mut o = Options::default();
    o.stls = true;
    o.implementation = "x y";
    let t = script_with(Start::Authorization, o, b"CAPA\r\n");
    assert_eq!(
        show(&t.output),
        show(&crlf(&[
            "+OK",
            "+OK",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "USER",
            "SASL PLAIN",
            "STLS",
            "IMPLEMENTATION x y",
            "."
        ]))
    );
    // Never STLS, USER or SASL after login.
    let t = script_with(Start::Transaction, o, b"CAPA\r\n");
    assert_eq!(
        show(&t.output),
        show(&tx_out(&[
            "+OK",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "IMPLEMENTATION x y",
            "."
        ]))
    );
    // A text that would break the framing is left out rather than sent.
    o.implementation = "a\r\n.";
    let t = script_with(Start::Transaction, o, b"CAPA\r\n");
    assert_eq!(
        show(&t.output),
        show(&tx_out(&[
            "+OK",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "."
        ]))
    );
}

#[test]
fn pipelined_capa_then_login() {
    // All in one segment, as PIPELINING allows; replies strictly in order.
    let t = script(
        Start::Authorization,
        b"CAPA\r\nUSER bob\r\nPASS bobpw\r\nCAPA\r\nSTAT\r\nQUIT\r\n",
    );
    let mut want = crlf(&["+OK"]);
    want.extend(crlf(CAPA_AUTH));
    want.extend(crlf(&["+OK", "+OK"]));
    want.extend(crlf(CAPA_TX));
    want.extend(crlf(&["+OK 2 307", "+OK"]));
    assert_eq!(show(&t.output), show(&want));
}

#[test]
fn bare_auth_lists_mechanisms() {
    let t = script(
        Start::Authorization,
        b"AUTH\r\nauth \r\nUSER bob\r\nAUTH\r\n",
    );
    assert_eq!(
        t.output,
        crlf(&["+OK", "+OK", "PLAIN", ".", "+OK", "PLAIN", ".", "+OK", "+OK", "PLAIN", "."])
    );
    let t = script_with(Start::Authorization, no_plaintext(), b"AUTH\r\n");
    assert_eq!(t.output, crlf(&["+OK", "+OK", "."]));
    // Not a TRANSACTION command.
    let t = script(Start::Transaction, b"AUTH\r\nAUTH PLAIN\r\n");
    assert_eq!(t.output, tx_out(&["-ERR", "-ERR"]));
}

#[test]
fn auth_plain_with_continuation_logs_in_like_pass() {
    let resp = b64(b"\0bob\0bobpw");
    let input = format!("AUTH PLAIN\r\n{resp}\r\nSTAT\r\nQUIT\r\n");
    let t = script(Start::Authorization, input.as_bytes());
    assert_eq!(t.output, crlf(&["+OK", "+ ", "+OK", "+OK 2 307", "+OK"]));
    assert_eq!(t.events[0], login("bob", "bobpw"));
    // The same action, with the pipelined bytes, as USER/PASS gives.
    let mut s = Session::authorization();
    let input = format!("auth plain\r\n{resp}\r\nSTAT\r\n");
    s.input_space()[..input.len()].copy_from_slice(input.as_bytes());
    s.input_filled(input.len());
    let Action::Login {
        user,
        password,
        pipelined,
    } = s.poll(&EmptyListing)
    else {
        panic!("no login");
    };
    assert_eq!(user, b"bob");
    assert_eq!(password.as_bytes(), b"bobpw");
    assert_eq!(pipelined, b"STAT\r\n");
    assert_eq!(s.output(), b"+OK\r\n+ \r\n");
}

#[test]
fn auth_plain_with_initial_response() {
    let input = format!("AUTH PLAIN {}\r\nQUIT\r\n", b64(b"bob\0bob\0pass word"));
    let t = script(Start::Authorization, input.as_bytes());
    assert_eq!(t.output, crlf(&["+OK", "+OK", "+OK"]));
    assert_eq!(t.events[0], login("bob", "pass word"));
    // "=" is an empty initial response: not a PLAIN message.
    let t = script(Start::Authorization, b"AUTH PLAIN =\r\nQUIT\r\n");
    assert_eq!(
        t.output,
        crlf(&["+OK", "-ERR Invalid authentication response", "+OK"])
    );
}

#[test]
fn auth_plain_longest_credentials_fit() {
    // A 40-byte user twice and a 122-byte password: 272 base64 characters, more than
    // MAX_LINE, both as an initial response and as a continuation line.
    let (user, pw) = ("u".repeat(40), "p".repeat(122));
    let resp = b64(format!("{user}\0{user}\0{pw}").as_bytes());
    assert!(resp.len() > MAX_LINE);
    for input in [
        format!("AUTH PLAIN {resp}\r\n"),
        format!("AUTH PLAIN\r\n{resp}\r\n"),
    ] {
        let t = script(Start::Authorization, input.as_bytes());
        assert_eq!(t.events[0], login(&user, &pw), "{input:?}");
    }
    // One byte more of password is over PASS's limit.
    let resp = b64(format!("\0{user}\0{pw}p").as_bytes());
    let t = script(
        Start::Authorization,
        format!("AUTH PLAIN {resp}\r\n").as_bytes(),
    );
    assert_eq!(
        t.output,
        crlf(&["+OK", "-ERR Invalid authentication response"])
    );
    assert_eq!(t.events, [Event::Close(CloseReason::Eof)]);
}

#[test]
fn auth_line_limits() {
    // Only AUTH lines and SASL responses get the longer limit.
    let long_ir = format!("AUTH PLAIN {}", "A".repeat(MAX_AUTH_LINE - 11));
    assert_eq!(long_ir.len(), MAX_AUTH_LINE);
    let t = script(Start::Authorization, format!("{long_ir}\r\n").as_bytes());
    assert_eq!(
        t.output,
        crlf(&["+OK", "-ERR Invalid authentication response"])
    );
    let t = script(
        Start::Authorization,
        format!("{long_ir}A\r\nQUIT\r\n").as_bytes(),
    );
    assert_eq!(t.output, crlf(&["+OK", "-ERR", "+OK"]));
    let long_resp = "A".repeat(MAX_AUTH_LINE + 1);
    let t = script(
        Start::Authorization,
        format!("AUTH PLAIN\r\n{long_resp}\r\nQUIT\r\n").as_bytes(),
    );
    // The over-long response ends the exchange; QUIT is a command again.
    assert_eq!(
        t.output,
        crlf(&["+OK", "+ ", "-ERR Invalid authentication response", "+OK"])
    );
    let long_user = format!("USER {}", "u".repeat(MAX_LINE));
    let t = script(Start::Authorization, format!("{long_user}\r\n").as_bytes());
    assert_eq!(t.output, crlf(&["+OK", "-ERR"]));
    let long_noop = format!("NOOP {}", "A".repeat(200));
    let t = script(
        Start::Transaction,
        format!("{long_noop}\r\nAUTH {long_noop}\r\n").as_bytes(),
    );
    assert_eq!(t.output, tx_out(&["-ERR", "-ERR"]));
}

#[test]
fn auth_cancel_and_errors() {
    let good = b64(b"\0bob\0bobpw");
    let rows: &[(String, &str)] = &[
        ("AUTH PLAIN\r\n*".into(), "+ |-ERR Authentication cancelled"),
        (
            "AUTH LOGIN".into(),
            "-ERR Unsupported authentication mechanism",
        ),
        (
            "AUTH CRAM-MD5".into(),
            "-ERR Unsupported authentication mechanism",
        ),
        (
            "AUTH PLAINX".into(),
            "-ERR Unsupported authentication mechanism",
        ),
        ("AUTH PLAIN x y".into(), "-ERR"),
        ("AUTH  PLAIN".into(), "-ERR"),
        (
            format!("AUTH PLAIN {}", b64(b"alice\0bob\0bobpw")),
            "-ERR [AUTH] Authorization identity must be the user",
        ),
        (
            format!("AUTH PLAIN\r\n{}", b64(b"alice\0bob\0bobpw")),
            "+ |-ERR [AUTH] Authorization identity must be the user",
        ),
        (
            format!("AUTH PLAIN {}", b64(b"bob\0bobpw")),
            "-ERR Invalid authentication response",
        ),
        (
            format!("AUTH PLAIN {}", b64(b"\0bob\0")),
            "-ERR Invalid authentication response",
        ),
        (
            format!("AUTH PLAIN {}", b64(b"\0\0bobpw")),
            "-ERR Invalid authentication response",
        ),
        (
            format!("AUTH PLAIN {}", b64(&[b'\0'; 3])),
            "-ERR Invalid authentication response",
        ),
        (
            format!("AUTH PLAIN {}", &good[..good.len() - 1]),
            "-ERR Invalid authentication response",
        ),
        (
            format!("AUTH PLAIN\r\n{} ", good),
            "+ |-ERR Invalid authentication response",
        ),
        (
            format!("AUTH PLAIN\r\n {}", good),
            "+ |-ERR Invalid authentication response",
        ),
        (
            "AUTH PLAIN\r\n".into(),
            "+ |-ERR Invalid authentication response",
        ),
        (
            "AUTH PLAIN\r\nQUIT".into(),
            "+ |-ERR Invalid authentication response",
        ),
        (
            "AUTH PLAIN\r\nAG\0=".into(),
            "+ |-ERR Invalid authentication response",
        ),
        (
            "AUTH PLAIN *".into(),
            "-ERR Invalid authentication response",
        ),
        (format!("USER bob\r\nAUTH PLAIN {good}"), "+OK|-ERR"),
    ];
    for (lines, replies) in rows {
        // After each: QUIT still works, so the exchange is over and nothing logged in.
        let t = script(
            Start::Authorization,
            format!("{lines}\r\nQUIT\r\n").as_bytes(),
        );
        let mut want = vec!["+OK"];
        want.extend(replies.split('|'));
        want.push("+OK");
        assert_eq!(show(&t.output), show(&crlf(&want)), "{lines:?}");
        assert_eq!(
            t.events,
            [Event::Close(CloseReason::QuitAuthorization)],
            "{lines:?}"
        );
    }
    // A retry after a failed exchange works.
    let t = script(
        Start::Authorization,
        format!("AUTH PLAIN\r\n*\r\nAUTH PLAIN {good}\r\n").as_bytes(),
    );
    assert_eq!(
        t.output,
        crlf(&["+OK", "+ ", "-ERR Authentication cancelled", "+OK"])
    );
    assert_eq!(t.events[0], login("bob", "bobpw"));
}

#[test]
fn plaintext_refused_without_tls() {
    let refused = "-ERR [AUTH] Plaintext authentication disallowed without TLS";
    let good = b64(b"\0bob\0bobpw");
    let input = format!(
        "USER bob\r\nPASS bobpw\r\nAUTH PLAIN\r\nAUTH PLAIN {good}\r\nAUTH LOGIN\r\nQUIT\r\n"
    );
    let t = script_with(Start::Authorization, no_plaintext(), input.as_bytes());
    assert_eq!(
        show(&t.output),
        show(&crlf(&[
            "+OK",
            refused,
            refused,
            refused,
            refused,
            "-ERR Unsupported authentication mechanism",
            "+OK"
        ]))
    );
    assert_eq!(t.events, [Event::Close(CloseReason::QuitAuthorization)]);
}

fn stls_offered() -> Options {
    let mut o = Options::default();
    o.stls = true;
    o
}

#[test]
fn stls_answers_then_drops_everything_pipelined_behind_it() {
    // The STARTTLS injection: commands sent in the same segment as STLS must never run.
    for input in [
        &b"STLS\r\nCAPA\r\n"[..],
        b"STLS\r\nUSER bob\r\nPASS secret\r\n",
        b"stls\r\nQUIT\r\n",
    ] {
        // script_with runs every read size from 1 to 512 bytes.
        let t = script_with(Start::Authorization, stls_offered(), input);
        assert_eq!(
            show(&t.output),
            show(b"+OK\r\n+OK Begin TLS negotiation\r\n"),
            "{}",
            show(input)
        );
        assert_eq!(t.events, vec![Event::StartTls], "{}", show(input));
    }
    // The engine itself: the buffered rest is gone, and the session is over.
    let mut s = Session::authorization_with(stls_offered());
    let space = s.input_space();
    let input = b"STLS\r\nUSER bob\r\n";
    space[..input.len()].copy_from_slice(input);
    s.input_filled(input.len());
    assert_eq!(s.poll(&EmptyListing), Action::StartTls);
    assert_eq!(s.poll(&EmptyListing), Action::Close(CloseReason::Done));
    assert_eq!(s.input_space().len(), pop3_proto::params::INPUT_BUFFER);
}

#[test]
fn stls_only_where_offered_and_before_user() {
    // Not offered (no TLS on this listener, or TLS already running): -ERR.
    let t = script(Start::Authorization, b"STLS\r\nQUIT\r\n");
    assert_eq!(show(&t.output), show(b"+OK\r\n-ERR\r\n+OK\r\n"));
    // After USER: a name given in plaintext must not carry over into TLS.
    let t = script_with(
        Start::Authorization,
        stls_offered(),
        b"USER bob\r\nSTLS\r\nQUIT\r\n",
    );
    assert_eq!(show(&t.output), show(b"+OK\r\n+OK\r\n-ERR\r\n+OK\r\n"));
    // With an argument: -ERR, like every command given one it does not take.
    let t = script_with(Start::Authorization, stls_offered(), b"STLS x\r\nQUIT\r\n");
    assert_eq!(show(&t.output), show(b"+OK\r\n-ERR\r\n+OK\r\n"));
    // Never in TRANSACTION.
    let t = script_with(Start::Transaction, stls_offered(), b"STLS\r\nQUIT\r\n");
    assert!(show(&t.output).contains("-ERR"), "{}", show(&t.output));
    assert!(!t.events.contains(&Event::StartTls));
}

#[test]
fn authorization_after_tls_sends_no_greeting() {
    let mut s = Session::authorization_after_tls(Options::default());
    assert!(s.output().is_empty());
    let space = s.input_space();
    space[..6].copy_from_slice(b"CAPA\r\n");
    s.input_filled(6);
    assert_eq!(s.poll(&EmptyListing), Action::NeedInput);
    let out = show(s.output());
    assert!(out.starts_with("+OK\r\nTOP\r\n"), "{out}");
    assert!(!out.contains("STLS"), "{out}");
}
