//! RETR/TOP encoding (popa3d.md §4.5): fixed cases from the measured transcripts, every
//! split point of a few inputs, and a byte-at-a-time reference model compared on many
//! generated messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pop3_proto::fuzz_targets::{BOB_1, BOB_2};
use pop3_proto::MessageEncoder;

/// Encodes `pieces` one after another (stopping where TOP is done), then finishes.
fn encode_pieces(top: Option<u32>, pieces: &[&[u8]]) -> Vec<u8> {
    let mut encoder = MessageEncoder::new(top);
    let mut out = Vec::new();
    for piece in pieces {
        let before = out.len();
        let used = encoder.encode(piece, &mut out);
        assert!(used <= piece.len());
        assert!(out.len() - before <= 2 * used, "more than doubled");
        if encoder.is_done() {
            break;
        }
        assert_eq!(used, piece.len(), "stopped before TOP was done");
    }
    encoder.finish(&mut out);
    out
}

fn encode(top: Option<u32>, input: &[u8]) -> Vec<u8> {
    encode_pieces(top, &[input])
}

/// The spec, one byte at a time.
fn reference(top: Option<u32>, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line_start = true;
    let mut counting = false;
    let mut remaining = top.map(|k| u64::from(k) + 1);
    for &byte in input {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        if byte == b'\n' {
            out.extend_from_slice(b"\r\n");
            if let Some(remaining) = remaining.as_mut() {
                if line_start {
                    counting = true;
                }
                if counting {
                    *remaining -= 1;
                    if *remaining == 0 {
                        line_start = true;
                        break;
                    }
                }
            }
            line_start = true;
        } else {
            out.push(byte);
            line_start = false;
        }
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every way of cutting `input` into three pieces gives the whole-input result.
fn assert_split_independent(top: Option<u32>, input: &[u8]) {
    let whole = encode(top, input);
    assert_eq!(
        show(&whole),
        show(&reference(top, input)),
        "{top:?} {:?}",
        show(input)
    );
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let pieces = [&input[..i], &input[i..j], &input[j..]];
            assert_eq!(
                encode_pieces(top, &pieces),
                whole,
                "split at {i} and {j} of {:?}",
                show(input)
            );
        }
    }
}

#[test]
fn byte_stuffing() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"\n", b"\r\n.\r\n"),
        (b".\n", b"..\r\n.\r\n"),
        (b"..\n", b"...\r\n.\r\n"),
        (b"a.b\n.\n", b"a.b\r\n..\r\n.\r\n"),
        (b"x\n.", b"x\r\n..\r\n.\r\n"),
        (b".x", b"..x\r\n.\r\n"),
        (b"abc", b"abc\r\n.\r\n"),
        (b"nul\0\n\0\n", b"nul\0\r\n\0\r\n.\r\n"),
        (b"lone\rcr\n\r", b"lone\rcr\r\n\r\r\n.\r\n"),
        (b"crlf\r\n.dot\r\n", b"crlf\r\r\n..dot\r\r\n.\r\n"),
        (b"\r\n", b"\r\r\n.\r\n"),
        (b"a\n\n\nb\n", b"a\r\n\r\n\r\nb\r\n.\r\n"),
        (b" .not first\n", b" .not first\r\n.\r\n"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            show(&encode(None, input)),
            show(expected),
            "{:?}",
            show(input)
        );
    }
}

#[test]
fn retr_of_the_9_3_messages() {
    let expected = crlf(&[
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
        ".",
    ]);
    assert_eq!(show(&encode(None, BOB_1)), show(&expected));
    // RETR sends LIST size plus one byte per stuffed dot, plus the terminator.
    assert_eq!(encode(None, BOB_1).len(), 211 + 2 + 3);
    assert_eq!(encode(None, BOB_2).len(), 96 + 3);
}

#[test]
fn top_of_the_9_3_messages() {
    let headers_1 = [
        "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000",
        "Date: Mon, 1 Jan 2024 00:00:00 +0000",
        "Message-ID: <one@example.org>",
        "Subject: first",
        "",
    ];
    let mut top_1_2 = headers_1.to_vec();
    top_1_2.extend_from_slice(&["Hello bob.", "..leading dot line", "."]);
    assert_eq!(show(&encode(Some(2), BOB_1)), show(&crlf(&top_1_2)));

    let mut top_1_0 = headers_1.to_vec();
    top_1_0.push(".");
    assert_eq!(show(&encode(Some(0), BOB_1)), show(&crlf(&top_1_0)));

    let mut top_1_1 = headers_1.to_vec();
    top_1_1.extend_from_slice(&["Hello bob.", "."]);
    assert_eq!(show(&encode(Some(1), BOB_1)), show(&crlf(&top_1_1)));

    let top_2_1 = crlf(&[
        "Date: Tue, 2 Jan 2024 00:00:00 +0000",
        "Subject: second",
        "",
        "body2 line1",
        ".",
    ]);
    assert_eq!(show(&encode(Some(1), BOB_2)), show(&top_2_1));
    assert_eq!(encode(Some(100), BOB_2), encode(None, BOB_2));
    assert_eq!(encode(Some(3), BOB_2), encode(None, BOB_2));
    assert_eq!(encode(Some(u32::MAX), BOB_1), encode(None, BOB_1));
}

#[test]
fn top_stops_right_after_the_last_line() {
    let mut encoder = MessageEncoder::new(Some(1));
    let mut out = Vec::new();
    let input = b"H: v\n\nline 1\nline 2\n";
    assert_eq!(encoder.encode(input, &mut out), 13);
    assert!(encoder.is_done());
    assert_eq!(encoder.encode(b"more\n", &mut out), 0);
    encoder.finish(&mut out);
    assert_eq!(out, b"H: v\r\n\r\nline 1\r\n.\r\n");

    let mut retr = MessageEncoder::new(None);
    assert_eq!(retr.encode(input, &mut Vec::new()), input.len());
    assert!(!retr.is_done());
}

#[test]
fn top_without_a_separator_sends_everything() {
    for k in [0, 1, 5] {
        // No empty line at all.
        assert_eq!(
            encode(Some(k), b"A: b\nC: d\nbody\n"),
            b"A: b\r\nC: d\r\nbody\r\n.\r\n"
        );
        // CRLF-format: "\r\n" lines are not the separator.
        let crlf_message = b"A: b\r\n\r\nbody 1\r\nbody 2\r\n";
        assert_eq!(encode(Some(k), crlf_message), encode(None, crlf_message));
    }
    // A message starting with its separator (only a blank line).
    assert_eq!(encode(Some(0), b"\n"), b"\r\n.\r\n");
    assert_eq!(encode(Some(0), b"\nbody\n"), b"\r\n.\r\n");
    // The separator's CRLF only counts when it is a bare LF at a line start.
    assert_eq!(encode(Some(0), b"H: v\n\n\n\n"), b"H: v\r\n\r\n.\r\n");
    assert_eq!(
        encode(Some(2), b"H: v\n\n\n\nx\n"),
        b"H: v\r\n\r\n\r\n\r\n.\r\n"
    );
    // Body lines without a final LF.
    assert_eq!(
        encode(Some(5), b"H: v\n\nlast"),
        b"H: v\r\n\r\nlast\r\n.\r\n"
    );
}

#[test]
fn every_split_point() {
    let inputs: &[&[u8]] = &[
        b".a\n..\n\n.\nb\r\nc\r",
        b"H: v\r\n\n.x\n\0\n\n.",
        b"\n\n.\n",
        b"A: b\nC: d\n\n.1\n2\n.3",
    ];
    for input in inputs {
        for top in [None, Some(0), Some(1), Some(2), Some(3)] {
            assert_split_independent(top, input);
        }
    }
    for top in [None, Some(0), Some(2)] {
        assert_split_independent(top, BOB_2);
    }
}

/// Generated messages from a small alphabet that hits every rule, compared with the
/// reference in many chunkings.
#[test]
fn matches_the_reference_model() {
    let alphabet = b"..\n\n\r\0aZ ";
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (next() % 80) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let top = match next() % 4 {
            0 => None,
            _ => Some((next() % 4) as u32),
        };
        let expected = reference(top, &input);
        for size in [1, 2, 3, 7, 64] {
            let pieces: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(
                show(&encode_pieces(top, &pieces)),
                show(&expected),
                "{top:?} size {size} {:?}",
                show(&input)
            );
        }
    }
}

#[test]
fn large_message_in_retr_sized_chunks() {
    let mut input = b"Subject: long\n\n".to_vec();
    for i in 0..20_000 {
        input.extend_from_slice(
            format!(
                "{}line {i} of a long message body\n",
                if i % 7 == 0 { "." } else { "" }
            )
            .as_bytes(),
        );
    }
    let pieces: Vec<&[u8]> = input.chunks(32 * 1024).collect();
    assert_eq!(encode_pieces(None, &pieces), reference(None, &input));
    assert_eq!(
        encode_pieces(Some(10_000), &pieces),
        reference(Some(10_000), &input)
    );
}
