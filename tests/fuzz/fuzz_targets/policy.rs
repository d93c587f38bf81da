//! The policy: any text reads or is refused with an error that names where;
//! a policy that reads answers every question the engine asks of it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_core::policy::Policy;
use sentinel_core::rules::{RuleId, Severity};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let policy = match Policy::from_toml(text) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let at = chrono::DateTime::from_timestamp(1_714_615_200, 0).unwrap_or_default();
    assert_eq!(policy.sections().len(), 15);
    for ns in ["", "shop", "kube-system"] {
        let _ = policy.window(ns, at);
        let _ = policy.is_sensitive(ns);
        for rule in RuleId::ALL {
            let _ = policy.suppression(*rule, ns, "web", at);
            let _ = policy.severity(*rule, Severity::Medium);
        }
    }
});
