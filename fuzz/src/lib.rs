//! Fuzz target bodies. Each is a plain function of the input bytes that panics on a
//! broken invariant. `fuzz/cargo-fuzz` wraps them for libFuzzer (nightly), and
//! `tests/corpus.rs` runs them over `corpus/<target>/` with stable `cargo test`, so every
//! input a fuzzer found interesting keeps being checked in CI.
#![forbid(unsafe_code)]
#![allow(clippy::panic, clippy::unwrap_used)]

use pop3_mailbox::mbox::{model, Scanner};

/// The command parser and both states' handlers on arbitrary input.
pub fn command_line(data: &[u8]) {
    pop3_proto::fuzz_targets::command_line(data);
}

/// A whole session fed in chunks must answer exactly as when fed at once.
pub fn session_chunks(data: &[u8]) {
    pop3_proto::fuzz_targets::session_chunks(data);
}

/// The mbox parser: the fast scanner, fed in windows whose size comes from the first
/// byte, must agree with the line-by-line model of popa3d's rules, and every message it
/// finds must lie inside the input with a consistent size.
pub fn mbox(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first) + 1;
    let want = model::parse(body);
    let mut s = Scanner::new();
    let mut window = Vec::new();
    let mut fed = 0;
    let got = loop {
        let n = chunk.min(body.len() - fed);
        window.extend_from_slice(&body[fed..fed + n]);
        fed += n;
        let eof = fed == body.len();
        match s.scan(&window, eof) {
            Ok(used) => {
                window.drain(..used);
            }
            Err(e) => break Err(e),
        }
        if eof {
            assert!(window.is_empty(), "scanner left bytes at EOF");
            break Ok(s.into_entries());
        }
        // The scanner may keep only a few bytes of lookahead.
        assert!(
            window.len() <= pop3_mailbox::mbox::scan::MAX_LOOKAHEAD,
            "window grew to {}",
            window.len()
        );
    };
    assert_eq!(got, want, "scanner and model disagree");
    if let Ok(entries) = got {
        let mut prev_end = 0;
        for e in &entries {
            assert!(e.raw_offset >= prev_end && e.raw_offset < e.data_offset);
            assert!(e.data_offset + e.data_len <= e.raw_offset + e.raw_len);
            assert!(e.raw_offset + e.raw_len <= body.len() as u64);
            let data = &body[e.data_offset as usize..(e.data_offset + e.data_len) as usize];
            let lf = data.iter().filter(|&&b| b == b'\n').count() as u64;
            let tail = if data.last() != Some(&b'\n') { 2 } else { 0 };
            assert_eq!(
                e.size,
                e.data_len + lf + tail,
                "size is not the CRLF octet count"
            );
            prev_end = e.raw_offset + e.raw_len;
        }
    }
}

/// The privileged side's decoders of messages from the pre-auth process and the
/// verifier: any input is refused or accepted without panicking, and whatever is accepted
/// re-encodes to exactly the same bytes (so there is one valid encoding per message).
pub fn privsep(data: &[u8]) {
    if let Ok(req) = pop3_privsep::LoginRequest::decode(data) {
        assert_eq!(
            req.encode().as_deref(),
            Some(data),
            "login request re-encodes differently"
        );
    }
    if let Ok(v) = pop3_privsep::Verdict::decode(data) {
        assert_eq!(v.encode(), data, "verdict re-encodes differently");
    }
}

/// The PROXY protocol parser, which the privileged side runs before anything else:
/// arbitrary bytes through `read_header` (over a slice and one byte per read, which must
/// agree), `parse_v1` and `parse_v2` never panic; a header read from a stream consumed
/// exactly the bytes that parse to it, at most the larger limit; and whatever is
/// accepted re-encodes, in both versions, to a header that parses back the same.
pub fn proxy(data: &[u8]) {
    use pop3_proxy::{encode_v1, encode_v2, parse_v1, parse_v2, read_header, Header};

    fn round_trip(h: Header) {
        let v1 = encode_v1(&h);
        assert!(v1.len() <= pop3_proxy::V1_MAX, "v1 encoding too long");
        assert_eq!(parse_v1(&v1), Ok(h), "v1 re-encoding parses differently");
        assert_eq!(
            parse_v2(&encode_v2(&h)),
            Ok(h),
            "v2 re-encoding parses differently"
        );
    }

    struct Drip<'a>(&'a [u8]);
    impl std::io::Read for Drip<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    let mut rest = data;
    let read = read_header(&mut rest);
    let mut drip = Drip(data);
    let dripped = read_header(&mut drip);
    if let Ok(h) = read {
        let used = &data[..data.len() - rest.len()];
        assert!(used.len() <= pop3_proxy::V1_MAX.max(pop3_proxy::V2_MAX));
        let sans_io = if used.starts_with(pop3_proxy::V2_SIGNATURE) {
            parse_v2(used)
        } else {
            parse_v1(used)
        };
        assert_eq!(
            sans_io,
            Ok(h),
            "read_header and the sans-IO parser disagree"
        );
        assert_eq!(dripped.ok(), Some(h), "one byte per read reads differently");
        assert_eq!(drip.0, rest, "one byte per read consumes differently");
        round_trip(h);
    } else {
        assert!(dripped.is_err(), "only one byte per read accepts");
    }
    for h in [parse_v1(data), parse_v2(data)].into_iter().flatten() {
        round_trip(h);
    }
}
