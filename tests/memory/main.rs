//! What decoding holds in memory at once, read from the process's peak
//! resident size (`VmHWM`). A test binary of its own with one test, so that
//! nothing else runs in the process while it measures.

use std::io::Write;

use sentinel_core::decode::{Limits, Options, decode_bytes};

/// The process's peak resident size so far, in bytes.
fn peak_resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().strip_suffix(" kB"));
    kb.and_then(|kb| kb.trim().parse::<u64>().ok()).map_or(0, |kb| kb << 10)
}

#[test]
fn an_input_held_in_memory_is_inflated_at_once_only_up_to_a_payload() {
    // 48 MiB of reads compress to under 1 MiB, as a Kinesis record may hold:
    // written line by line, so the test never holds them either.
    let line = r#"{"kind":"Event","auditID":"x","stage":"ResponseComplete","verb":"get","objectRef":{"resource":"pods","namespace":"shop","name":"web"},"responseStatus":{"code":200}}"#;
    let lines = (48 << 20) / (line.len() + 1);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for _ in 0..lines {
        let written = gzip.write_all(line.as_bytes()).and_then(|()| gzip.write_all(b"\n"));
        assert!(written.is_ok());
    }
    let record = gzip.finish().unwrap_or_default();
    assert!(record.len() < 1 << 20, "{}", record.len());

    let limits = Limits { max_payload_bytes: 4 << 20, max_decompressed_bytes: 64 << 20, ..Limits::default() };
    let options = Options { limits, report_skipped: false };
    let before = peak_resident();
    let counts = decode_bytes("kinesis:1", &record, &options, &mut |_| {});
    let grown = peak_resident().saturating_sub(before);

    assert_eq!(counts.records, lines as u64, "every line is read");
    assert_eq!(counts.input_errors, 0);
    assert!(before > 0, "VmHWM is readable");
    assert!(grown < 24 << 20, "peak resident size grew by {} MiB decoding 48 MiB", grown >> 20);
}
