//! CloudTrail inputs (log files, arrays and lines of records, EventBridge
//! events, subscription envelopes): every record accounted for, and what the
//! engine asks of each kept record answers without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_core::cloudtrail::{caller, classify, issued, parse_expiration, percent_decode};
use sentinel_core::decode::{Decoded, Options, decode_cloudtrail_bytes};
use sentinel_core::policy::Pipeline;

fuzz_target!(|data: &[u8]| {
    let pipeline = Pipeline::default();
    let (mut kept, mut failed) = (0, 0);
    let counts = decode_cloudtrail_bytes("fuzz", data, &Options::default(), &mut |d| match d {
        Decoded::CloudTrail(r) => {
            kept += 1;
            let _ = classify(&r.event, &pipeline);
            let _ = issued(&r.event);
            let _ = caller(&r.event);
        }
        Decoded::Failed(_) => failed += 1,
        _ => {}
    });
    assert_eq!(
        counts.records,
        counts.kept + counts.denied + counts.access + counts.skipped.total() + counts.malformed,
        "every record accounted for: {counts:?}"
    );
    assert_eq!(kept, counts.kept, "{counts:?}");
    assert_eq!(failed, counts.malformed + counts.input_errors, "{counts:?}");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_expiration(text);
        let _ = percent_decode(text);
    }
});
