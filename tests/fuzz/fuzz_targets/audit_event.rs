//! One audit event record: the byte-level prefilter (and its status-write
//! test) never drops a record the full parse would keep (a drop would be a
//! silent loss), and the event
//! parser never panics on what the prefilter lets through.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_core::decode::{Decoded, Options, decode_bytes};
use sentinel_core::filter::{Header, Verdict, judge, other_subresource, prefilter};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = serde_json::from_slice::<Header<'_>>(data)
        && !matches!(judge(&header), Verdict::Skip(_))
    {
        assert!(prefilter(data, false), "the prefilter dropped a record the parse keeps");
        assert!(!other_subresource(data, false), "a kept record was taken for a status write");
        // The same record inside a JSON string (an envelope's `message`).
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(quoted) = serde_json::to_string(text)
        {
            let inner = &quoted.as_bytes()[1..quoted.len() - 1];
            assert!(prefilter(inner, true), "the escaped prefilter dropped a record the parse keeps");
            assert!(!other_subresource(inner, true), "a kept escaped record was taken for a status write");
        }
    }
    let mut line = data.to_vec();
    line.push(b'\n');
    decode_bytes("fuzz", &line, &Options::default(), &mut |d| {
        if let Decoded::Event(e) = d {
            // What the engine reads of every kept event.
            let _ = (e.time(), e.event.object_ref.namespace.as_deref(), e.event.user.username.len());
        }
    });
});
