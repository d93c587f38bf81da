//! Annotation keys and source-range values as written in annotations: any
//! text classifies and parses; an address set survives a round trip through
//! its networks, contains itself, and less itself is empty.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_core::ingress::annotations::classify;
use sentinel_core::ingress::cidr::{AddressSet, SourceRanges};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = classify(text);
    let ranges = SourceRanges::parse(text);
    let set = ranges.addresses();
    let again = AddressSet::from_networks(&set.to_networks());
    assert!(set.contains(&again) && again.contains(&set), "a round trip changed {text:?}");
    assert!(set.contains(&set));
    assert!(set.difference(&set).is_empty());
    assert!(AddressSet::everything().contains(&set));
});
