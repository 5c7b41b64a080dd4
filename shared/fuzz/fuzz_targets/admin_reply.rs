//! The tool-side reply parsers over arbitrary server output: `Reply::parse` in each shape,
//! and `FunctionStatus`, `FunctionPriorityStatus`, `WorkerInfo`, `JobInfo`, `UniqueJob` and
//! `StatsReport` on its lines. What parses renders to bytes that parse back to it. Input: one
//! selector byte (reply shape), then the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/props/mod.rs"]
mod props;

fuzz_target!(|data: &[u8]| props::check_reply_input(data));
