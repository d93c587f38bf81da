//! The Ingress model and its semantic diff: any object of any served version
//! reads or is refused cleanly; an object differs from itself in nothing;
//! and every change goes through the content rules.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_core::ingress::IngressState;
use sentinel_core::ingress::diff::diff;
use sentinel_core::rules::{Context, findings, is_material};
use serde_json::Value;

/// Two objects from one input: a pair `[old, new]`, an audit event's
/// request and response objects, or one object against itself with its
/// annotations dropped.
fn pair(v: &Value) -> Option<(Value, Value)> {
    if let Some([old, new, ..]) = v.as_array().map(Vec::as_slice) {
        return Some((old.clone(), new.clone()));
    }
    if let (Some(req), Some(resp)) = (v.get("requestObject"), v.get("responseObject")) {
        return Some((req.clone(), resp.clone()));
    }
    let object = v.get("requestObject").or_else(|| v.get("responseObject")).unwrap_or(v).clone();
    let mut bare = object.clone();
    if let Some(meta) = bare.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("annotations");
    }
    Some((bare, object))
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let Some((old, new)) = pair(&value) else { return };
    let (Ok(old), Ok(new)) = (IngressState::from_value(&old), IngressState::from_value(&new)) else { return };
    assert!(diff(&new, &new).is_empty(), "an Ingress differs from itself");
    let host_known = |h: &str| h.ends_with(".example.com");
    let external_name = |_: &str| None;
    let ctx = Context { host_known: &host_known, external_name: &external_name };
    for change in diff(&old, &new) {
        let _ = is_material(&change);
        for f in findings(&change, &ctx) {
            assert!(!f.summary.is_empty(), "a finding without words: {:?}", f.rule);
        }
    }
});
