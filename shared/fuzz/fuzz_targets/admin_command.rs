//! `admin::parse(line, terminator_len)` over arbitrary lines: it closes exactly on more than
//! five tokens, commands re-parse from their canonical line, and error replies are well-formed
//! lines that the client-side parser reads back. Input: one selector byte (bit 0: `\n` or
//! `\r\n`), then the line.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/props/mod.rs"]
mod props;

fuzz_target!(|data: &[u8]| props::check_admin_input(data));
