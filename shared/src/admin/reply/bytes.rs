//! Byte-level helpers shared by the reply envelope and the listing lines: line splitting,
//! strict decimal parsing, and `printf`-compatible output of strings and integers.

use bytes::BufMut;

/// Iterates over complete `\n`-terminated lines, each with its `\n`.
pub(super) struct LineIter<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        let end = rest.iter().position(|&b| b == b'\n')? + 1;
        self.pos += end;
        Some(&rest[..end])
    }
}

/// Drops one trailing `\n`.
pub(super) fn strip_lf(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Drops one trailing `\n`, then one trailing `\r`.
pub(super) fn trim_line(line: &[u8]) -> &[u8] {
    let line = strip_lf(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits what follows `ERR ` into the code and the (possibly empty) text.
pub(super) fn split_error(rest: &[u8]) -> (String, String) {
    let (code, text) = split_once(rest, b' ').unwrap_or((rest, b""));
    (lossy(code), lossy(text))
}

pub(super) fn split_once(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == sep)?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

/// Strict decimal: one or more ASCII digits, nothing else.
pub(super) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

pub(super) fn parse_i64(digits: &[u8]) -> Option<i64> {
    match digits {
        [b'-', rest @ ..] => parse_u64(rest).and_then(|n| 0i64.checked_sub_unsigned(n)),
        _ => parse_u64(digits).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Writes `bytes` the way `printf("%s")` would: up to the first NUL.
pub(super) fn put_c_string(out: &mut impl BufMut, bytes: &[u8]) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    out.put_slice(&bytes[..end]);
}

// itoa writes the same digits as `printf("%" PRIu64)` / `%" PRId64` (no padding, `-` for
// negatives, i64::MIN included) without going through `fmt`.
pub(super) fn put_u64(out: &mut impl BufMut, n: u64) {
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

pub(super) fn put_i64(out: &mut impl BufMut, n: i64) {
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

pub(super) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::reply::Reply;

    #[test]
    fn renders_into_bytes_mut() {
        let mut out = bytes::BytesMut::new();
        Reply::Ok.render(&mut out);
        put_i64(&mut out, -12);
        put_u64(&mut out, u64::MAX);
        assert_eq!(&out[..], b"OK\r\n-1218446744073709551615");
    }

    #[test]
    fn integers_match_display() {
        // The digits the hand-written formatter produced, which were those of `Display`.
        for n in [0, 1, 9, 10, 4_294_967_295, u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        for n in [0, -1, 37, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_i64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
