//! Manifests as `sentinel check` reads them (YAML or JSON, many documents,
//! anchors and merge keys): any text loads or is refused with a place, every
//! position lies inside the text, and every object goes through the
//! manifest rules.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_core::manifest::load;
use sentinel_core::manifest::rules::{Env, object};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // YAML breaks lines at `\n`, `\r\n` and a lone `\r`.
    let lines = text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count() + 2;
    let loaded = load("fuzz.yaml", text);
    for e in &loaded.errors {
        assert!(e.at.line <= lines, "an error past the end: {e}");
    }
    let env = Env::bare();
    for m in &loaded.objects {
        assert!(m.at.line <= lines);
        for l in object(m.kind(), m.namespace(), m.name(), &m.object, &env) {
            let at = m.position(&l.locus.pointer(&m.object));
            assert!(at.line <= lines, "a finding past the end: {at:?}");
        }
    }
});
