//! `gearmand::http::function_name`, the percent-decoding of a request path into a function
//! name, over arbitrary input:
//! - arbitrary UTF-8 paths never panic and never grow;
//! - a path without `%` is the name itself, leading slashes removed;
//! - any byte string, percent-encoded byte by byte (mixing `%2f` and `%2F`, leaving safe
//!   characters raw), decodes back to exactly those bytes.
#![no_main]

use gearmand::http::function_name;
use libfuzzer_sys::fuzz_target;

fn hex(nibble: u8, upper: bool) -> char {
    let c = char::from_digit(u32::from(nibble), 16).expect("a nibble is a hex digit");
    if upper {
        c.to_ascii_uppercase()
    } else {
        c
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        let name = function_name(path);
        let trimmed = path.trim_start_matches('/');
        assert!(name.len() <= trimmed.len(), "decoding grew {path:?}");
        if !path.contains('%') {
            assert_eq!(&name[..], trimmed.as_bytes());
        }
    }

    // Encode `data` as a path: safe ASCII raw unless the byte's position says otherwise,
    // everything else (and always '%' and '/') as %XX.
    let mut path = String::from("/");
    for (i, &b) in data.iter().enumerate() {
        let safe = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if safe && i % 3 != 0 {
            path.push(char::from(b));
        } else {
            path.push('%');
            path.push(hex(b >> 4, i % 2 == 0));
            path.push(hex(b & 0xf, i % 2 == 1));
        }
    }
    assert_eq!(&function_name(&path)[..], data, "decoding {path:?}");
});
