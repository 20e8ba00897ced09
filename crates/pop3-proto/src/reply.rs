//! Reply encoding. Every status line is appended whole, so that a driver flushing the
//! output buffer at any moment never splits one reply into several writes (popa3d
//! flushes each status line in one piece).
//!
//! Replies never contain client input (STYLE: never echo), only fixed words and numbers.

pub(crate) fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

pub(crate) fn err(out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR\r\n");
}

/// `+OK a b\r\n`, the STAT, LIST n and multi-line LIST shapes.
pub(crate) fn ok_numbers(out: &mut Vec<u8>, a: u64, b: u64) {
    out.extend_from_slice(b"+OK ");
    number_pair(out, a, b);
}

/// `a b\r\n`, one LIST data line.
pub(crate) fn number_pair(out: &mut Vec<u8>, a: u64, b: u64) {
    number(out, a);
    out.push(b' ');
    number(out, b);
    out.extend_from_slice(b"\r\n");
}

/// `+OK n\r\n` (LAST).
pub(crate) fn ok_number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"+OK ");
    number(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `n uidl\r\n`, one UIDL data line.
pub(crate) fn number_word(out: &mut Vec<u8>, n: u64, word: &[u8]) {
    number(out, n);
    out.push(b' ');
    out.extend_from_slice(word);
    out.extend_from_slice(b"\r\n");
}

/// Decimal digits of `n`, without allocating: multi-line LIST and UIDL write one line per
/// message, and a maildrop may hold millions.
pub(crate) fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut used = 0;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        used += 1;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(digits.len() - used..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_print_like_printf() {
        for n in [0, 1, 9, 10, 99, 100, 211, 4294967295, u64::MAX] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
