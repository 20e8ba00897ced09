#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::scan::{count_lf, Entry, ParseError, Scanner};
use super::uidl::popa3d_uidl;
use super::{model, parse_file, parse_file_split, ParseFailure};

/// Runs the scanner over `data` handed out in windows of at most `chunk` new bytes.
pub fn scan_chunked(data: &[u8], chunk: usize) -> Result<Vec<Entry>, ParseError> {
    let mut s = Scanner::new();
    let mut window: Vec<u8> = Vec::new();
    let mut fed = 0;
    loop {
        let n = chunk.min(data.len() - fed);
        window.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        let eof = fed == data.len();
        let used = s.scan(&window, eof)?;
        window.drain(..used);
        if eof {
            assert!(window.is_empty());
            return Ok(s.into_entries());
        }
    }
}

const BOB: &[u8] = b"From alice@example.org Mon Jan  1 00:00:00 2024
Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000
Date: Mon, 1 Jan 2024 00:00:00 +0000
Message-ID: <one@example.org>
Subject: first

Hello bob.
.leading dot line
..two dots
>From escaped
last line

From carol@example.org Tue Jan  2 00:00:00 2024
Date: Tue, 2 Jan 2024 00:00:00 +0000
Subject: second

body2 line1
body2 line2
body2 line3

";

const APPENDIX_A: &[u8] = b"From alice@example.org Mon Jan  1 00:00:00 2024
Received: from mx.example.org (mx.example.org [192.0.2.1])
\tby mail.example.net with ESMTP id ABC123
\tfor <bob@example.net>; Mon, 1 Jan 2024 00:00:00 +0000
Date: Mon, 1 Jan 2024 00:00:00 +0000
From: Alice <alice@example.org>
To: bob@example.net
Message-ID: <msg1@example.org>
Subject: first

Hello
From the body line
.dot line

From carol@example.org Mon Jan  1 00:01:00 2024
Date: Mon, 1 Jan 2024 00:01:00 +0000
From: Carol <carol@example.org>
Message-ID: <msg2@example.org>
Delivered-To: bob@example.net
Subject: second, no Received

Body two
";

fn listing(data: &[u8]) -> Vec<(u64, String)> {
    scan_chunked(data, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| {
            (
                e.size,
                String::from_utf8(popa3d_uidl(&e.digest).to_vec()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn popa3d_measured_sizes_and_uidls() {
    // research/popa3d.md §9.3 and features.md Appendix A, measured on the real binary.
    assert_eq!(
        listing(BOB),
        vec![
            (211, "fed9c3594b4c341c".into()),
            (96, "a9ba9d20b213cf39".into())
        ]
    );
    assert_eq!(
        listing(APPENDIX_A),
        vec![
            (339, "5799e1dc4014bc05".into()),
            (176, "0c59bbe867e3dbaf".into())
        ]
    );
}

#[test]
fn edge_cases() {
    // Last line without LF: popa3d says 41, RETR sends 42; we say 42.
    let e = scan_chunked(b"From x\nSubject: x\n\nbody without final newline", 7).unwrap();
    assert_eq!(e[0].size, 42);
    assert!(e[0].unterminated);
    // A message made only of a blank line: size 2.
    let e = scan_chunked(b"From x\n\nFrom y\nA: b\n", 3).unwrap();
    assert_eq!((e[0].size, e[0].data_len), (2, 1));
    assert_eq!(e.len(), 2);
    // CRLF mbox: one message.
    let e = scan_chunked(b"From a\r\nS: 1\r\n\r\nx\r\n\r\nFrom c\r\nS: 2\r\n", 5).unwrap();
    assert_eq!(e.len(), 1);
    // Rejections.
    assert_eq!(
        scan_chunked(b"\nFrom x\nA\n", 4),
        Err(ParseError::NoFromLine)
    );
    assert_eq!(scan_chunked(b"no from\n", 4), Err(ParseError::NoFromLine));
    assert_eq!(
        scan_chunked(b"From x\nFrom y\nA\n", 4),
        Err(ParseError::EmptyMessage(7))
    );
    assert_eq!(
        scan_chunked(b"From x\n", 4),
        Err(ParseError::TruncatedFromLine(0))
    );
    assert_eq!(
        scan_chunked(b"From x", 4),
        Err(ParseError::TruncatedFromLine(0))
    );
    assert_eq!(
        scan_chunked(b"From x\nA\n\nFrom y", 4),
        Err(ParseError::TruncatedFromLine(10))
    );
    // Two blank lines at the end: only one is the separator.
    let e = scan_chunked(b"From x\nA: b\n\nbody\n\n\n", 2).unwrap();
    assert_eq!(e[0].data_len, b"A: b\n\nbody\n\n".len() as u64);
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&[u8]] = &[
    b"From a@b Mon Jan  1 00:00:00 2024\n",
    b"From \n",
    b"From",
    b"From ",
    b"from x\n",
    b" From y\n",
    b">From z\n",
    b"\n",
    b"\n",
    b"\n",
    b"\r\n",
    b"Received: from x\n",
    b"RECEIVED: y\n",
    b"\tcontinued\n",
    b" cont\n",
    b"Date: d\n",
    b"DATE: e\n",
    b"Message-ID: <m>\n",
    b"message-id: <n>\n",
    b"Delivered-To: t\n",
    b"X-Delivery-ID: 1\n",
    b"x-delivery-id: 2\n",
    b"Subject: s\n",
    b"body line\n",
    b".\n",
    b"..dots\n",
    b"a\0nul\n",
    b"no newline",
    b"X-Delivery-I",
    b"Received",
];

fn random_mbox(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    if rng.below(10) != 0 {
        v.extend_from_slice(PIECES[0]);
    }
    for _ in 0..rng.below(40) {
        v.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        if rng.below(50) == 0 {
            // A long line, to cross window boundaries in odd places.
            v.extend(std::iter::repeat_n(b'x', rng.below(3000)));
        }
    }
    v
}

#[test]
fn scanner_matches_model_on_random_input_and_chunkings() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for round in 0..3000 {
        let data = random_mbox(&mut rng);
        let want = model::parse(&data);
        for chunk in [1, 2, 3, 5, 7, 13, 14, 15, 64, 1000, usize::MAX] {
            let got = scan_chunked(&data, chunk);
            assert_eq!(
                got,
                want,
                "round {round} chunk {chunk} input {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
}

#[test]
fn parse_file_reads_exactly_len_and_detects_shrinking() {
    let dir = std::env::temp_dir().join(format!("mbox-parse-{}", std::process::id()));
    std::fs::write(&dir, BOB).unwrap();
    let f = std::fs::File::open(&dir).unwrap();
    let all = parse_file(&f, BOB.len() as u64).ok().unwrap();
    assert_eq!(all.len(), 2);
    // A prefix ending after message 1's separator parses as that one message.
    let first_len = all[1].raw_offset;
    let one = parse_file(&f, first_len).ok().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0], all[0]);
    assert!(parse_file(&f, BOB.len() as u64 + 1).is_err());
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn count_lf_agrees_with_naive() {
    let mut rng = Rng(7);
    for _ in 0..200 {
        let n = rng.below(5000);
        let v: Vec<u8> = (0..n)
            .map(|_| if rng.below(9) == 0 { b'\n' } else { b'a' })
            .collect();
        assert_eq!(count_lf(&v), v.iter().filter(|&&b| b == b'\n').count());
    }
    let all = vec![b'\n'; 100_000];
    assert_eq!(count_lf(&all), 100_000);
}

/// Splitting a mailbox at a boundary and parsing the halves must give exactly what one
/// pass gives, errors included.
#[test]
fn split_parse_equals_single_pass() {
    let path = std::env::temp_dir().join(format!("mbox-split-{}", std::process::id()));
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let mut splits = 0;
    for round in 0..400 {
        let mut data = random_mbox(&mut rng);
        // Make boundaries likely near the middle.
        if round % 2 == 0 {
            data.extend_from_slice(b"\n\nFrom m Mon Jan  1 00:00:00 2024\nA: b\n\nx\n");
            let tail = random_mbox(&mut rng);
            data.extend_from_slice(&tail);
        }
        std::fs::write(&path, &data).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let want = model::parse(&data);
        let got = match parse_file_split(&f, data.len() as u64, 1) {
            Ok(e) => Ok(e),
            Err(ParseFailure::Format(e)) => Err(e),
            Err(ParseFailure::Io(e)) => panic!("{e}"),
        };
        assert_eq!(
            got,
            want,
            "round {round}: {:?}",
            String::from_utf8_lossy(&data)
        );
        if data.len() > 10 && super::scan::find_boundary(&data[data.len() / 2 - 2..]).is_some() {
            splits += 1;
        }
    }
    assert!(splits > 100, "only {splits} inputs were actually split");
    std::fs::remove_file(&path).unwrap();
}
