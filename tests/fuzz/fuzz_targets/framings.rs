//! Every delivery framing (CloudWatch Logs envelopes, Lambda and Kinesis
//! events, Firehose, exports, gzip and zlib, JSON lines), in memory and
//! streamed: no panic, every record accounted for, and both paths agree.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_core::decode::{Counts, Decoded, Limits, Options, decode_bytes, decode_reader};

/// Small limits, so a bomb is refused quickly instead of exhausting memory.
fn options() -> Options {
    Options {
        limits: Limits { max_decompressed_bytes: 32 << 20, max_payload_bytes: 8 << 20, max_record_bytes: 1 << 20 },
        report_skipped: false,
    }
}

fn balanced(counts: &Counts, events: u64, failed: u64) {
    assert_eq!(
        counts.records,
        counts.kept + counts.denied + counts.access + counts.skipped.total() + counts.malformed,
        "every record accounted for: {counts:?}"
    );
    assert_eq!(events, counts.kept + counts.denied + counts.access, "every kept record reaches the sink: {counts:?}");
    assert_eq!(failed, counts.malformed + counts.input_errors, "every failure reaches the sink: {counts:?}");
}

fuzz_target!(|data: &[u8]| {
    let (mut events, mut failed) = (0, 0);
    let counts = decode_bytes("fuzz", data, &options(), &mut |d| match d {
        Decoded::Event(_) => events += 1,
        Decoded::Failed(_) => failed += 1,
        _ => {}
    });
    balanced(&counts, events, failed);

    let (mut streamed, mut streamed_failed) = (0, 0);
    if let Ok(c) = decode_reader("fuzz", data, &options(), &mut |d| match d {
        Decoded::Event(_) => streamed += 1,
        Decoded::Failed(_) => streamed_failed += 1,
        _ => {}
    }) {
        balanced(&c, streamed, streamed_failed);
    }
});
