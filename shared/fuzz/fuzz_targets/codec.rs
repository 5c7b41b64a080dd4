//! The packet codec over arbitrary bytes with small limits: decoding at once and in chunks
//! agree, every frame re-encodes to the bytes it came from, decoded packets become typed
//! requests/responses that survive a round trip, and text lines go through the admin parser.
//! Input: three selector bytes (packet limit, line limit, chunk size), then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/props/mod.rs"]
mod props;

fuzz_target!(|data: &[u8]| props::check_codec(data));
