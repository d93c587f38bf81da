//! Who really did it: CloudTrail identity records, role chains, federation,
//! late CloudTrail, impersonation, service accounts, pipeline tampering and
//! cluster-access changes.

use std::fs;
use std::io::Read;

use sentinel_core::actor::Credential;
use sentinel_core::alert::{IdentityStatus, Revised};
use sentinel_core::decode::{Decoded, Options, decode_cloudtrail_bytes};
use sentinel_core::rules::RuleId;
use sentinel_core::store::Identities;
use sentinel_tests::cloudtrail as ct;
use sentinel_tests::engine::*;
use sentinel_tests::samples_dir;
use serde_json::{Value, json};

const POLICY: &str = r#"
cluster = "prod"
require_plans = false
[[actors]]
name = "platform"
namespaces = ["shop"]
originating_principal = "bob@example.com"
[[actors]]
name = "ci"
iam_role_arn = "arn:aws:iam::111122223333:role/Deploy"
[identity]
unresolved_grace = "15m"
"#;

fn eks_token(key: &str) -> Value {
    iam_user("Admin", "EKSGetTokenAuth", key)
}

fn widened() -> Value {
    let mut o = storefront();
    o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"] = json!("0.0.0.0/0");
    o
}

fn audit_history(key: &str) -> Vec<Value> {
    vec![
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write("w", "update", "ingresses", "shop", "web", "2024-05-02T02:10:00Z", eks_token(key), Some(&widened())),
    ]
}

fn decode_trail(
    bytes: &[u8],
) -> (Vec<sentinel_core::decode::CloudTrailRecord>, sentinel_core::decode::Counts, Vec<String>) {
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    let counts = decode_cloudtrail_bytes("trail", bytes, &Options::default(), &mut |d| match d {
        Decoded::CloudTrail(r) => records.push(*r),
        Decoded::Failed(e) => errors.push(e.to_string()),
        other => panic!("unexpected {other:?}"),
    });
    (records, counts, errors)
}

fn origin_of(h: &Harness, key: &str) -> Option<String> {
    origin_at(h, key, "2024-05-02T00:00:00Z")
}

fn origin_at(h: &Harness, key: &str, time: &str) -> Option<String> {
    h.store
        .identity(
            &sentinel_core::keys::identity(&sentinel_core::actor::Credential::AccessKey(key.to_string())),
            time.parse().unwrap(),
        )
        .unwrap()
        .and_then(|r| r.value.originating_principal)
}

/// The acceptance case: an `EKSGetTokenAuth` session widens an allowlist;
/// CloudTrail shows its key was issued to an IAM Identity Center user.
#[test]
fn the_person_behind_eks_get_token_auth_is_named() {
    let trail = [ct::sso("sso-1", "2024-05-02T02:05:00Z", "alice@example.com", "ASIASSOKEY")];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&audit_history("ASIASSOKEY"), &trail);
    let alert = h.sink.alerts()[0].clone();
    assert_eq!(alert.actor.originating_principal.as_deref(), Some("alice@example.com"));
    assert_eq!(alert.identity_status, IdentityStatus::Resolved);
    assert_eq!(alert.actor_key, "alice@example.com");
    assert_eq!(h.sink.rules(), [RuleId::AllowlistWidened, RuleId::UnapprovedActor]);
}

#[test]
fn a_late_origin_that_is_approved_withdraws_the_unapproved_actor_signal() {
    let trail = [ct::sso("sso-1", "2024-05-02T02:05:00Z", "bob@example.com", "ASIABOB")];
    let mut h = Harness::with_policy(POLICY);
    h.feed(&audit_history("ASIABOB"));
    assert!(h.sink.rules().contains(&RuleId::UnapprovedActor));
    h.feed_both(&[], &trail);
    let alert = h.sink.alerts()[0].clone();
    assert_eq!(alert.actor.originating_principal.as_deref(), Some("bob@example.com"));
    assert_eq!(alert.signals.iter().map(|s| s.rule).collect::<Vec<_>>(), [RuleId::AllowlistWidened]);
}

#[test]
fn cloudtrail_fed_after_the_audit_log_gives_the_same_final_alert() {
    let trail = [ct::sso("sso-1", "2024-05-02T02:05:00Z", "alice@example.com", "ASIASSOKEY")];
    let mut together = Harness::with_policy(POLICY);
    together.feed_both(&audit_history("ASIASSOKEY"), &trail);
    let mut late = Harness::with_policy(POLICY);
    late.feed(&audit_history("ASIASSOKEY"));
    let first = late.sink.alerts()[0].clone();
    assert_eq!(first.identity_status, IdentityStatus::Pending, "the alert says the actor is not resolved yet");
    assert!(first.signals.iter().any(|s| s.rule == RuleId::UnapprovedActor));
    late.feed_both(&[], &trail);
    let (mut a, mut b) = (together.sink.alerts()[0].clone(), late.sink.alerts()[0].clone());
    assert_eq!(b.alert_id, first.alert_id, "enriched under the same id");
    assert!(b.revision > first.revision);
    assert_eq!(b.revised_for, Revised::Identity, "the late revision named the person");
    // Revision numbers and what each revision was for follow the order of arrival.
    (a.revision, b.revision) = (0, 0);
    b.revised_for = a.revised_for;
    assert_eq!(a, b);
}

#[test]
fn identity_unresolved_fires_only_after_the_grace_period_and_a_late_record_still_settles_it() {
    let mut h = Harness::with_policy(POLICY);
    let mut later = storefront();
    later["metadata"]["name"] = json!("other");
    h.feed(&audit_history("ASIAUNKNOWN"));
    assert!(!h.sink.rules().contains(&RuleId::IdentityUnresolved), "within the grace period");
    // Time moves on (another event 20 minutes later).
    h.feed(&[write("x", "create", "ingresses", "shop", "other", "2024-05-02T02:30:00Z", ci(), Some(&later))]);
    let alert = h.sink.alerts()[0].clone();
    assert_eq!(alert.identity_status, IdentityStatus::Unresolved);
    assert!(h.sink.rules().contains(&RuleId::IdentityUnresolved));
    // CloudTrail arrives very late: the origin is named, the unresolved signal goes.
    h.feed_both(&[], &[ct::sso("sso-9", "2024-05-02T02:05:00Z", "alice@example.com", "ASIAUNKNOWN")]);
    let alert = h.sink.alerts()[0].clone();
    assert_eq!(alert.identity_status, IdentityStatus::Resolved);
    assert!(!alert.signals.iter().any(|s| s.rule == RuleId::IdentityUnresolved));
}

#[test]
fn role_chains_two_and_three_deep_lead_to_the_iam_user() {
    let bob = ct::iam_user("bob");
    let trail = [
        ct::assume_role("a1", "2024-05-02T01:00:00Z", bob, "RoleA", "bob-a", "ASIAK1"),
        ct::assume_role(
            "a2",
            "2024-05-02T01:01:00Z",
            ct::session("RoleA", "bob-a", "ASIAK1"),
            "RoleB",
            "hop-b",
            "ASIAK2",
        ),
        ct::assume_role(
            "a3",
            "2024-05-02T01:02:00Z",
            ct::session("RoleB", "hop-b", "ASIAK2"),
            "Admin",
            "EKSGetTokenAuth",
            "ASIAK3",
        ),
    ];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&[], &trail);
    let bob = format!("arn:aws:iam::{}:user/bob", ct::ACCOUNT);
    assert_eq!(origin_of(&h, "ASIAK2").as_deref(), Some(bob.as_str()), "two deep");
    assert_eq!(origin_of(&h, "ASIAK3").as_deref(), Some(bob.as_str()), "three deep");
}

#[test]
fn a_chain_link_that_arrives_late_is_followed_at_resolution() {
    // The second hop is logged before the first: its origin is only the first session.
    let trail = [
        ct::assume_role(
            "a2",
            "2024-05-02T01:01:00Z",
            ct::session("RoleA", "bob-a", "ASIAK1"),
            "Admin",
            "EKSGetTokenAuth",
            "ASIAK2",
        ),
        ct::assume_role("a1", "2024-05-02T01:03:00Z", ct::iam_user("bob"), "RoleA", "bob-a", "ASIAK1"),
    ];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&[], &trail);
    let link = h
        .store
        .identity(
            &sentinel_core::keys::identity(&Credential::AccessKey("ASIAK2".into())),
            "2024-05-02T02:00:00Z".parse().unwrap(),
        )
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(link.originating_principal, None, "the origin is not known yet");
    assert_eq!(link.via, Some(Credential::AccessKey("ASIAK1".into())), "the link to follow");
    h.feed(&audit_history("ASIAK2"));
    assert_eq!(
        h.sink.alerts()[0].actor.originating_principal.as_deref(),
        Some(format!("arn:aws:iam::{}:user/bob", ct::ACCOUNT).as_str())
    );
}

#[test]
fn web_identity_and_source_identity_name_the_origin() {
    let trail = [ct::web_identity(
        "w1",
        "2024-05-02T01:00:00Z",
        "repo:acme/shop:ref:refs/heads/main",
        "token.actions.githubusercontent.com",
        "Deploy",
        "ASIAGHA",
    )];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&[], &trail);
    assert_eq!(origin_of(&h, "ASIAGHA").as_deref(), Some("repo:acme/shop:ref:refs/heads/main"));
}

#[test]
fn the_iam_user_guide_examples_resolve() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cloudtrail");
    for (file, key, origin) in [
        ("iam-guide-role-chaining.json", "ASIAWHOJDLGPOEXAMPLE", "JohnDoe"),
        ("iam-guide-saml.json", "AKIAIOSFODNN7EXAMPLE", "MySAMLUser"),
        ("iam-guide-web-identity.json", "ASIACQRSTUVWRAOEXAMPLE", "MyWebIdentityUser"),
    ] {
        let record = fs::read_to_string(dir.join(file)).unwrap();
        let mut h = Harness::with_policy(POLICY);
        let value: Value = serde_json::from_str(&record).unwrap();
        let time = value["eventTime"].as_str().unwrap().to_owned();
        h.feed_both(&[], &[value]);
        assert_eq!(origin_at(&h, key, &time).as_deref(), Some(origin), "{file}");
    }
}

#[test]
fn stratus_red_team_detonations_decode_and_tampering_is_caught() {
    let dir = samples_dir().join("stratus-red-team/detonation-logs");
    let mut files: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut records, mut kept) = (0, 0);
    let mut trail = Vec::new();
    for f in &files {
        let (r, counts, errors) = decode_trail(&fs::read(f).unwrap());
        assert!(errors.is_empty(), "{}: {errors:?}", f.display());
        records += counts.records;
        kept += counts.kept;
        trail.extend(r);
    }
    // Kept: the issuers, the trail changes and the role trust change (watched for the stack's roles).
    assert_eq!((files.len(), records, kept), (14, 72, 18));
    let names: Vec<&str> = trail.iter().map(|r| r.event.event_name.as_str()).collect();
    for name in ["AssumeRole", "ConsoleLogin", "StopLogging", "DeleteTrail", "PutEventSelectors", "GetFederationToken"]
    {
        assert!(names.contains(&name), "{name}");
    }
    trail.sort_by_key(|r| r.event.event_time);
    let policy = sentinel_core::policy::Policy::from_toml(POLICY).unwrap();
    let store = sentinel_core::store::MemoryStore::new();
    let mut sink = Collect::default();
    sentinel_core::engine::Engine::new(&policy, &store).run(&[], &trail, &mut sink).unwrap();
    let tampering: Vec<String> = sink
        .alerts()
        .iter()
        .flat_map(|a| a.signals.iter().filter(|s| s.rule == RuleId::PipelineTampering).map(|s| s.summary.clone()))
        .collect();
    assert_eq!(tampering.len(), 3, "{tampering:?}");
    assert!(tampering.iter().any(|s| s.starts_with("StopLogging on trail")));
    // An AssumeRole with credentials becomes an identity record.
    let assume = trail
        .iter()
        .find(|r| {
            r.event.event_name == "AssumeRole"
                && r.event.response_elements.as_ref().is_some_and(|e| e.get("credentials").is_some())
        })
        .unwrap();
    let key = assume.event.response_elements.as_ref().unwrap()["credentials"]["accessKeyId"].as_str().unwrap();
    let found = store
        .identity(
            &sentinel_core::keys::identity(&sentinel_core::actor::Credential::AccessKey(key.to_string())),
            assume.event.event_time,
        )
        .unwrap();
    assert!(found.is_some(), "identity record for {key}");
}

/// Reads the one file of a zip archive (stored or deflated).
fn unzip_single(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..4], b"PK\x03\x04", "a zip local file header");
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
    let (method, size) = (u16_at(8), u32_at(18));
    let start = 30 + u16_at(26) + u16_at(28);
    let data = &bytes[start..start + size];
    match method {
        0 => data.to_vec(),
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut out).unwrap();
            out
        }
        m => panic!("zip method {m}"),
    }
}

#[test]
fn otrf_instance_profile_key_is_traced_to_ec2() {
    let zip = fs::read(samples_dir().join("otrf-security-datasets/ec2_proxy_s3_exfiltration.zip")).unwrap();
    let (trail, counts, errors) = decode_trail(&unzip_single(&zip));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!((counts.records, counts.kept), (103, 5));
    let policy = sentinel_core::policy::Policy::from_toml(POLICY).unwrap();
    let store = sentinel_core::store::MemoryStore::new();
    let mut sink = Collect::default();
    sentinel_core::engine::Engine::new(&policy, &store).run(&[], &trail, &mut sink).unwrap();
    let at = trail[0].event.event_time;
    let record = store
        .identity(
            &sentinel_core::keys::identity(&sentinel_core::actor::Credential::AccessKey("ASIA5FLZVX4OPVKKVBMX".into())),
            at,
        )
        .unwrap()
        .expect("the instance-profile key");
    let origin = record.value.originating_principal.unwrap();
    assert!(origin.starts_with("ec2.amazonaws.com (i-"), "{origin}");
}

#[test]
fn cloudtrail_arrives_in_every_delivery_form() {
    let record = ct::sso("sso-1", "2024-05-02T02:05:00Z", "alice@example.com", "ASIASSOKEY");
    let noise = json!({"eventVersion": "1.09", "eventTime": "2024-05-02T02:06:00Z", "eventSource": "s3.amazonaws.com",
                       "eventName": "GetObject", "userIdentity": {"type": "AWSService"}});
    let eventbridge = json!({"version": "0", "id": "e", "detail-type": "AWS API Call via CloudTrail",
                             "source": "aws.sts", "detail": record});
    let digest = json!({"awsAccountId": ct::ACCOUNT, "digestStartTime": "2024-05-02T01:00:00Z", "digestEndTime": "x"});
    let file = ct::log_file(&[record.clone(), noise.clone()]);
    let gz = sentinel_tests::gzip(file.as_bytes());
    let cw = sentinel_tests::lambda_logs_event(&sentinel_tests::envelope(&[record.clone(), noise.clone()]));
    for (name, bytes) in [
        ("S3 log file", gz),
        ("JSON array", serde_json::to_vec(&json!([record, noise])).unwrap()),
        ("lines", format!("{record}\n{noise}\n").into_bytes()),
        ("EventBridge", eventbridge.to_string().into_bytes()),
        ("CloudWatch Logs", cw.into_bytes()),
    ] {
        let (records, counts, errors) = decode_trail(&bytes);
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert_eq!(records.len(), 1, "{name}");
        assert_eq!(records[0].event.event_name, "AssumeRoleWithSAML", "{name}");
        assert_eq!(counts.records, counts.kept + counts.skipped.total(), "{name}");
    }
    let (records, counts, _) = decode_trail(digest.to_string().as_bytes());
    assert_eq!((records.len(), counts.skipped.not_audit_event), (0, 1), "digest files are skipped");
    // A truncated file keeps the records before the damage and says where it broke.
    let cut = &ct::log_file(&[
        ct::sso("a", "2024-05-02T02:05:00Z", "x", "K1"),
        ct::sso("b", "2024-05-02T02:05:00Z", "y", "K2"),
    ])[..1400];
    let (records, counts, errors) = decode_trail(cut.as_bytes());
    assert_eq!((records.len(), counts.input_errors), (1, 1));
    assert!(errors[0].starts_with("trail: Records[1]: invalid JSON"), "{errors:?}");
}

#[test]
fn disabling_audit_logging_is_pipeline_tampering_and_enabling_it_is_not() {
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(
        &[],
        &[ct::cluster_logging("u1", "2024-05-02T02:00:00Z", ct::iam_user("mallory"), "prod", &["audit", "api"], false)],
    );
    assert_eq!(h.sink.rules(), [RuleId::PipelineTampering]);
    let alert = h.sink.alerts()[0].clone();
    assert_eq!(alert.cluster, "prod");
    assert_eq!(alert.severity, sentinel_core::rules::Severity::Critical);
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(
        &[],
        &[
            ct::cluster_logging("u2", "2024-05-02T02:00:00Z", ct::iam_user("ops"), "prod", &["audit"], true),
            ct::cluster_logging("u3", "2024-05-02T02:01:00Z", ct::iam_user("ops"), "prod", &["scheduler"], false),
        ],
    );
    assert!(h.sink.published.is_empty());
}

#[test]
fn cluster_admin_access_granted_is_critical_and_a_failed_call_is_nothing() {
    let grant = ct::associate_access_policy(
        "g1",
        "2024-05-02T02:00:00Z",
        ct::iam_user("mallory"),
        "prod",
        "arn:aws:iam::111122223333:role/Backdoor",
        "AmazonEKSClusterAdminPolicy",
    );
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&[], std::slice::from_ref(&grant));
    assert_eq!(h.sink.rules(), [RuleId::AccessChanged]);
    let signal = &h.sink.alerts()[0].signals[0];
    assert_eq!(signal.severity, sentinel_core::rules::Severity::Critical);
    assert!(signal.summary.contains("arn:aws:iam::111122223333:role/Backdoor"), "URL-decoded: {}", signal.summary);
    let mut failed = grant;
    failed["errorCode"] = json!("AccessDeniedException");
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&[], &[failed]);
    assert!(h.sink.published.is_empty());
}

#[test]
fn an_access_grant_and_an_ingress_change_by_the_same_origin_are_one_incident() {
    let trail = [
        ct::associate_access_policy(
            "g1",
            "2024-05-02T02:00:00Z",
            ct::iam_user("mallory"),
            "prod",
            "arn:aws:iam::111122223333:role/Admin",
            "AmazonEKSClusterAdminPolicy",
        ),
        ct::assume_role("a1", "2024-05-02T02:01:00Z", ct::iam_user("mallory"), "Admin", "EKSGetTokenAuth", "ASIAMAL"),
    ];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&audit_history("ASIAMAL"), &trail);
    let alerts = h.sink.alerts();
    assert_eq!(alerts.len(), 1, "{:#?}", alerts.iter().map(|a| &a.title).collect::<Vec<_>>());
    let rules: Vec<RuleId> = alerts[0].signals.iter().map(|s| s.rule).collect();
    assert!(rules.contains(&RuleId::AccessChanged) && rules.contains(&RuleId::AllowlistWidened), "{rules:?}");
    assert_eq!(alerts[0].actor.originating_principal.as_deref(), Some("arn:aws:iam::111122223333:user/mallory"));
}

#[test]
fn impersonation_shows_both_users() {
    let mut e = write("i", "update", "ingresses", "shop", "web", "2024-05-02T02:10:00Z", mallory(), Some(&widened()));
    e["impersonatedUser"] =
        json!({"username": "system:serviceaccount:argocd:argocd-application-controller", "groups": []});
    let mut h = Harness::with_policy(POLICY);
    h.feed(&[write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())), e]);
    let actor = &h.sink.alerts()[0].actor;
    assert_eq!(actor.kubernetes_username, "admin:mallory-example.com");
    assert_eq!(actor.impersonated_user.as_deref(), Some("system:serviceaccount:argocd:argocd-application-controller"));
}

#[test]
fn a_service_account_is_named_as_a_workload_not_a_person() {
    let mut h = Harness::with_policy(POLICY);
    h.feed(&[
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write(
            "s",
            "update",
            "ingresses",
            "shop",
            "web",
            "2024-05-02T02:10:00Z",
            service_account("ci", "runner"),
            Some(&widened()),
        ),
    ]);
    let alert = h.sink.alerts()[0].clone();
    assert_eq!(alert.actor.service_account.as_deref(), Some("ci:runner"));
    assert_eq!(alert.actor.pod_name.as_deref(), Some("runner-0"));
    assert_eq!(alert.identity_status, IdentityStatus::Kubernetes);
    assert!(alert.actor.is_machine());
}

/// A change by `user` at night to the storefront CI created.
fn widened_by(user: Value, time: &str) -> Vec<Value> {
    vec![
        write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
        write("w", "update", "ingresses", "shop", "web", time, user, Some(&widened())),
    ]
}

/// The alert about the widening `w`.
fn widening(h: &Harness) -> sentinel_core::alert::Alert {
    h.sink
        .alerts()
        .into_iter()
        .find(|a| a.audit_ids.contains(&"w".to_owned()))
        .cloned()
        .expect("an alert on the widening")
}

/// An IAM user signing with a long-term key, as EKS logs it.
fn long_term_user(arn: &str, key: &str, session_name: Option<&str>) -> Value {
    let mut extra = json!({"accessKeyId": [key], "arn": [arn], "canonicalArn": [arn], "principalId": ["AIDAEXAMPLE"]});
    if let Some(s) = session_name {
        extra["sessionName"] = json!([s]);
    }
    json!({"username": arn.rsplit('/').next().unwrap(), "uid": "aws-iam-authenticator:111122223333:AIDAEXAMPLE",
           "groups": ["system:authenticated"], "extra": extra})
}

#[test]
fn an_iam_user_or_the_root_user_is_its_own_origin_without_cloudtrail() {
    let bob = format!("arn:aws:iam::{}:user/ops/bob", ct::ACCOUNT);
    // EKS logs an IAM user with an empty session name, or none at all.
    for session in [Some(""), None] {
        let mut h = Harness::with_policy(POLICY);
        h.feed(&widened_by(long_term_user(&bob, "AKIABOBLONGTERM", session), "2024-05-02T02:10:00Z"));
        // Time passes beyond the grace period: nothing waits for CloudTrail.
        let mut later = storefront();
        later["metadata"]["name"] = json!("later");
        h.feed(&[write("x", "create", "ingresses", "shop", "later", "2024-05-02T03:00:00Z", ci(), Some(&later))]);
        let alert = widening(&h);
        assert_eq!(alert.actor.originating_principal.as_deref(), Some(bob.as_str()), "{session:?}");
        assert_eq!(alert.identity_status, IdentityStatus::Resolved);
        assert!(!h.sink.rules().contains(&RuleId::IdentityUnresolved), "{session:?}");
    }
    let root = format!("arn:aws:iam::{}:root", ct::ACCOUNT);
    let mut h = Harness::with_policy(POLICY);
    h.feed(&widened_by(long_term_user(&root, "ASIAROOTCONSOLE", None), "2024-05-02T02:10:00Z"));
    assert_eq!(widening(&h).actor.originating_principal.as_deref(), Some(root.as_str()));
}

#[test]
fn identity_center_through_a_jump_role_to_the_eks_role_names_the_person() {
    let sso_role = "AWSReservedSSO_Admin_0123456789abcdef";
    let trail = [
        ct::sso("s1", "2024-05-02T01:00:00Z", "carol@example.com", "ASIACAROLSSO"),
        ct::assume_role(
            "j1",
            "2024-05-02T01:01:00Z",
            ct::session(sso_role, "carol@example.com", "ASIACAROLSSO"),
            "Jump",
            "jump",
            "ASIACAROLJUMP",
        ),
        ct::assume_role(
            "e1",
            "2024-05-02T01:02:00Z",
            ct::session("Jump", "jump", "ASIACAROLJUMP"),
            "Admin",
            "EKSGetTokenAuth",
            "ASIACAROLEKS",
        ),
    ];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&widened_by(eks_token("ASIACAROLEKS"), "2024-05-02T02:10:00Z"), &trail);
    let alert = widening(&h);
    assert_eq!(alert.actor.originating_principal.as_deref(), Some("carol@example.com"));
    assert_eq!(alert.actor_key, "carol@example.com");
}

#[test]
fn identity_center_on_behalf_of_names_the_identity_store_user() {
    let trail = [ct::assume_role(
        "i1",
        "2024-05-02T01:00:00Z",
        ct::identity_center_user("94482488-3041-7026-18f3-be45837cd0e4"),
        "Admin",
        "EKSGetTokenAuth",
        "ASIAONBEHALF",
    )];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&widened_by(eks_token("ASIAONBEHALF"), "2024-05-02T02:10:00Z"), &trail);
    assert_eq!(
        widening(&h).actor.originating_principal.as_deref(),
        Some("identitycenter:94482488-3041-7026-18f3-be45837cd0e4")
    );
}

#[test]
fn get_session_token_and_get_federation_token_lead_to_the_iam_user() {
    let carol = format!("arn:aws:iam::{}:user/carol", ct::ACCOUNT);
    let dan = format!("arn:aws:iam::{}:user/dan", ct::ACCOUNT);
    let trail = [
        ct::get_session_token("g1", "2024-05-02T01:00:00Z", "carol", "ASIACAROLMFA"),
        ct::get_federation_token("f1", "2024-05-02T01:00:00Z", "dan", "partner-portal", "ASIAFEDERATED"),
    ];
    // Session-token credentials authenticate to EKS as the user itself.
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&widened_by(long_term_user(&carol, "ASIACAROLMFA", Some("")), "2024-05-02T02:10:00Z"), &trail);
    assert_eq!(widening(&h).actor.originating_principal.as_deref(), Some(carol.as_str()));
    assert_eq!(origin_of(&h, "ASIACAROLMFA").as_deref(), Some(carol.as_str()));
    // A federated user's credentials lead back to the IAM user who asked for them.
    let federated = format!("arn:aws:sts::{}:federated-user/partner-portal", ct::ACCOUNT);
    let user = json!({"username": "partner-portal", "groups": ["system:authenticated"],
                      "extra": {"accessKeyId": ["ASIAFEDERATED"], "arn": [federated], "sessionName": ["partner-portal"]}});
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&widened_by(user, "2024-05-02T02:10:00Z"), &trail);
    assert_eq!(widening(&h).actor.originating_principal.as_deref(), Some(dan.as_str()));
}

#[test]
fn a_cross_account_chain_names_the_origin_with_its_account() {
    let trail = [ct::assume_role(
        "x1",
        "2024-05-02T01:00:00Z",
        ct::iam_user_in("444455556666", "erin"),
        "Admin",
        "EKSGetTokenAuth",
        "ASIACROSS",
    )];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&widened_by(eks_token("ASIACROSS"), "2024-05-02T02:10:00Z"), &trail);
    let alert = widening(&h);
    assert_eq!(alert.actor.originating_principal.as_deref(), Some("arn:aws:iam::444455556666:user/erin"));
    assert_eq!(alert.actor.originating_account.as_deref(), Some("444455556666"));
    assert!(alert.to_text().contains("(account 444455556666)"));
}

#[test]
fn irsa_and_eks_pod_identity_credentials_are_named_as_workloads() {
    let trail = [
        ct::irsa("r1", "2024-05-02T01:00:00Z", "shop", "deployer", "Deploy", "ASIAIRSA"),
        ct::pod_identity("p1", "2024-05-02T01:00:00Z", "prod", "shop", "syncer", "ASIAPODID"),
    ];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(&[], &trail);
    assert_eq!(origin_of(&h, "ASIAIRSA").as_deref(), Some("serviceaccount shop/deployer (IRSA)"));
    assert_eq!(origin_of(&h, "ASIAPODID").as_deref(), Some("serviceaccount shop/syncer (EKS Pod Identity on prod)"));
}

/// An access event: `verb` on a pod's `subresource` (or a service account's token) by `user`.
fn access(id: &str, time: &str, user: Value, resource: &str, name: &str, subresource: &str, verb: &str) -> Value {
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": id,
           "stage": "ResponseStarted", "verb": verb, "user": user, "sourceIPs": ["192.0.2.7"],
           "userAgent": "kubectl/v1.31.0", "requestURI": format!("/api/v1/namespaces/shop/{resource}/{name}/{subresource}"),
           "objectRef": {"resource": resource, "namespace": "shop", "name": name, "subresource": subresource, "apiVersion": "v1"},
           "responseStatus": {"metadata": {}, "code": 101},
           "requestReceivedTimestamp": time, "stageTimestamp": time})
}

#[test]
fn a_person_who_execs_into_a_pod_is_named_as_possible_origin_of_its_service_account() {
    let alice = iam_user("Admin", "alice@example.com", "ASIAALICE");
    // kubectl 1.30+ streams exec over WebSockets: audited as `get`.
    for verb in ["create", "get"] {
        let mut h = Harness::with_policy(POLICY);
        let events = [
            write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
            access("e1", "2024-05-02T02:00:00Z", alice.clone(), "pods", "deployer-0", "exec", verb),
            write(
                "w",
                "update",
                "ingresses",
                "shop",
                "web",
                "2024-05-02T02:10:00Z",
                service_account("shop", "deployer"),
                Some(&widened()),
            ),
        ];
        h.feed(&events);
        let alert = widening(&h);
        assert_eq!(alert.identity_status, IdentityStatus::Inferred, "{verb}");
        assert_eq!(alert.actor.originating_principal, None, "never the origin");
        assert_eq!(alert.actor_key, "system:serviceaccount:shop:deployer", "never the incident key");
        let possible = &alert.actor.possible_origins;
        assert_eq!(possible.len(), 1, "{verb}");
        assert_eq!(possible[0].principal, "admin:alice-example.com");
        assert!(possible[0].via.contains("exec into pod shop/deployer-0"));
        assert_eq!(possible[0].audit_id, "e1");
    }
}

#[test]
fn a_token_requested_for_a_service_account_names_the_person_while_it_lives() {
    let alice = iam_user("Admin", "alice@example.com", "ASIAALICE");
    let mut token = access("t1", "2024-05-02T01:00:00Z", alice, "serviceaccounts", "deployer", "token", "create");
    token["responseStatus"] = json!({"metadata": {}, "code": 201});
    token["requestObject"] = json!({"kind": "TokenRequest", "spec": {"expirationSeconds": 3600}});
    let trail = [ct::sso("sso-1", "2024-05-02T00:55:00Z", "alice@example.com", "ASIAALICE")];
    let mut h = Harness::with_policy(POLICY);
    h.feed_both(
        &[
            write("c", "create", "ingresses", "shop", "web", "2024-05-01T10:00:00Z", ci(), Some(&storefront())),
            token,
            write(
                "w",
                "update",
                "ingresses",
                "shop",
                "web",
                "2024-05-02T01:30:00Z",
                service_account("shop", "deployer"),
                Some(&widened()),
            ),
        ],
        &trail,
    );
    let alert = widening(&h);
    assert_eq!(alert.actor.possible_origins[0].principal, "alice@example.com", "named by CloudTrail's origin");
    assert!(alert.actor.possible_origins[0].via.contains("token"));
    // After the token expired, a write by the service account names nobody.
    let mut again = widened();
    again["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] = json!("/x");
    h.feed(&[write(
        "w2",
        "update",
        "ingresses",
        "shop",
        "web",
        "2024-05-02T03:00:00Z",
        service_account("shop", "deployer"),
        Some(&again),
    )]);
    let later = h.sink.alerts().into_iter().find(|a| a.audit_ids.contains(&"w2".to_owned())).cloned().unwrap();
    assert_ne!(later.alert_id, alert.alert_id, "a later incident");
    assert!(later.actor.possible_origins.is_empty(), "{:?}", later.actor.possible_origins);
    assert_eq!(later.identity_status, IdentityStatus::Kubernetes);
}
