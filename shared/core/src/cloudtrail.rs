//! CloudTrail: who obtained which credentials, and who touched the pipeline.
//!
//! Two kinds of CloudTrail event matter. Credential issuers (`AssumeRole`,
//! `AssumeRoleWithSAML`, `AssumeRoleWithWebIdentity`, `GetFederationToken`,
//! `GetSessionToken`, console sign-ins) become [`IdentityRecord`]s keyed by
//! the access key and session ARN they issued, which is how an EKS audit
//! event's `user.extra.accessKeyId` is traced to a person or pipeline.
//! Control-plane changes to the audit-log pipeline and to EKS access are
//! signals in their own right (see [`classify`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::IdentityRecord;

/// A CloudTrail event, with the fields the product reads.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailEvent {
    /// Event id.
    #[serde(default, rename = "eventID")]
    pub event_id: String,
    /// When the call was made (`@timestamp` in Logstash re-exports).
    #[serde(alias = "@timestamp")]
    pub event_time: DateTime<Utc>,
    /// Service, e.g. `sts.amazonaws.com`.
    #[serde(default)]
    pub event_source: String,
    /// API action, e.g. `AssumeRole`.
    #[serde(default)]
    pub event_name: String,
    /// `AwsApiCall`, `AwsConsoleSignIn`, `AwsCloudTrailInsight`, …
    #[serde(default)]
    pub event_type: Option<String>,
    /// Region.
    #[serde(default)]
    pub aws_region: Option<String>,
    /// Caller address (or service name).
    #[serde(default, rename = "sourceIPAddress")]
    pub source_ip_address: Option<String>,
    /// Caller user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Who called.
    #[serde(default)]
    pub user_identity: UserIdentity,
    /// Request parameters.
    #[serde(default)]
    pub request_parameters: Option<Value>,
    /// Response elements.
    #[serde(default)]
    pub response_elements: Option<Value>,
    /// Additional data (MFA for sign-ins).
    #[serde(default)]
    pub additional_event_data: Option<Value>,
    /// Set when the call failed.
    #[serde(default)]
    pub error_code: Option<String>,
    /// Account the event was delivered to.
    #[serde(default)]
    pub recipient_account_id: Option<String>,
}

/// The caller of a CloudTrail event.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `IAMUser`, `AssumedRole`, `SAMLUser`, `WebIdentityUser`, `IdentityCenterUser`, `AWSService`, `Root`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Principal id.
    #[serde(default)]
    pub principal_id: Option<String>,
    /// ARN (a session ARN for assumed roles).
    #[serde(default)]
    pub arn: Option<String>,
    /// Account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Access key the call was signed with.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// User name (IAM users, SAML and web-identity users).
    #[serde(default)]
    pub user_name: Option<String>,
    /// The service that called, for `AWSService`.
    #[serde(default)]
    pub invoked_by: Option<String>,
    /// Identity provider, for federated users.
    #[serde(default)]
    pub identity_provider: Option<String>,
    /// Session details, for temporary credentials.
    #[serde(default)]
    pub session_context: Option<SessionContext>,
    /// The IAM Identity Center user behind a call.
    #[serde(default)]
    pub on_behalf_of: Option<OnBehalfOf>,
}

/// Session details of temporary credentials.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// The role or user that issued the session.
    #[serde(default)]
    pub session_issuer: Option<SessionIssuer>,
    /// `sts:SourceIdentity`, carried along role chains.
    #[serde(default)]
    pub source_identity: Option<String>,
    /// MFA and creation date.
    #[serde(default)]
    pub attributes: Option<Value>,
}

/// The issuer of a session.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// `Role` usually.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The role ARN, with its path.
    #[serde(default)]
    pub arn: Option<String>,
    /// The role name.
    #[serde(default)]
    pub user_name: Option<String>,
}

/// The IAM Identity Center user on whose behalf a call was made.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OnBehalfOf {
    /// Identity store user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Identity store.
    #[serde(default)]
    pub identity_store_arn: Option<String>,
}

/// The EKS calls that grant, change or remove access to a cluster.
const ACCESS: &[&str] = &[
    "CreateAccessEntry",
    "AssociateAccessPolicy",
    "UpdateAccessEntry",
    "DeleteAccessEntry",
    "DisassociateAccessPolicy",
];

/// A resource of the pipeline or of the product, as the policy names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A log group carrying audit logs.
    LogGroup,
    /// A CloudTrail trail.
    Trail,
    /// One of the product's Lambda functions.
    Function,
    /// One of the product's SNS topics.
    Topic,
    /// One of the product's DynamoDB tables.
    Table,
    /// A bucket that feeds the product or keeps its evidence.
    Bucket,
    /// One of the product's KMS keys.
    Key,
    /// One of the product's EventBridge rules or schedules.
    Rule,
    /// One of the product's CloudWatch alarms.
    Alarm,
    /// One of the product's IAM roles.
    Role,
}

impl Target {
    fn noun(self) -> &'static str {
        match self {
            Self::LogGroup => "log group",
            Self::Trail => "trail",
            Self::Function => "function",
            Self::Topic => "topic",
            Self::Table => "table",
            Self::Bucket => "bucket",
            Self::Key => "KMS key",
            Self::Rule => "EventBridge rule",
            Self::Alarm => "alarm",
            Self::Role => "role",
        }
    }
}

/// A call that can blind the pipeline: its service, the name prefixes that
/// match it, what it acts on, and the request parameters naming that.
type Watch = (&'static str, &'static [&'static str], Target, &'static [&'static str]);

/// Calls that can blind the pipeline. Names match by prefix, so versioned
/// API names (`RemovePermission20150331v2`) are caught too.
const TAMPER: &[Watch] = &[
    (
        "logs",
        &[
            "DeleteSubscriptionFilter",
            "PutSubscriptionFilter",
            "DeleteLogGroup",
            "DeleteLogStream",
            "PutRetentionPolicy",
            "DeleteRetentionPolicy",
            "DisassociateKmsKey",
        ],
        Target::LogGroup,
        &["logGroupName"],
    ),
    (
        "cloudtrail",
        &["StopLogging", "DeleteTrail", "PutEventSelectors", "UpdateTrail", "PutInsightSelectors"],
        Target::Trail,
        &["name", "trailName"],
    ),
    (
        "lambda",
        &[
            "UpdateFunction",
            "DeleteFunction",
            "PutFunctionConcurrency",
            "DeleteFunctionConcurrency",
            "DeleteEventSourceMapping",
            "UpdateEventSourceMapping",
            "RemovePermission",
            "AddPermission",
            "PutFunctionEventInvokeConfig",
            "UpdateFunctionEventInvokeConfig",
            "DeleteFunctionEventInvokeConfig",
        ],
        Target::Function,
        &["functionName"],
    ),
    (
        "sns",
        &["DeleteTopic", "SetTopicAttributes", "Unsubscribe", "RemovePermission"],
        Target::Topic,
        &["topicArn", "subscriptionArn"],
    ),
    (
        "dynamodb",
        &[
            "DeleteTable",
            "UpdateTable",
            "UpdateTimeToLive",
            "UpdateContinuousBackups",
            "PutResourcePolicy",
            "DeleteResourcePolicy",
        ],
        Target::Table,
        &["tableName", "resourceArn"],
    ),
    (
        "s3",
        &[
            "PutBucketNotification",
            "DeleteBucket",
            "PutBucketLifecycle",
            "PutBucketPolicy",
            "DeleteBucketPolicy",
            "PutBucketVersioning",
            "PutBucketLogging",
            "PutBucketEncryption",
            "DeleteBucketEncryption",
            "PutObjectLockConfiguration",
            "PutBucketReplication",
        ],
        Target::Bucket,
        &["bucketName"],
    ),
    (
        "kms",
        &["DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "DisableKeyRotation", "CreateGrant", "RevokeGrant"],
        Target::Key,
        &["keyId"],
    ),
    (
        "events",
        &["DisableRule", "DeleteRule", "RemoveTargets", "PutRule", "PutTargets"],
        Target::Rule,
        &["name", "rule"],
    ),
    ("scheduler", &["DeleteSchedule", "UpdateSchedule"], Target::Rule, &["name"]),
    (
        "monitoring",
        &["DeleteAlarms", "DisableAlarmActions", "PutMetricAlarm", "SetAlarmState"],
        Target::Alarm,
        &["alarmNames", "alarmName"],
    ),
    (
        "iam",
        &[
            "PutRolePolicy",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "DeleteRolePolicy",
            "UpdateAssumeRolePolicy",
            "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary",
            "DeleteRole",
        ],
        Target::Role,
        &["roleName"],
    ),
];

/// True if the decoder should keep an event of this name.
pub fn watched(name: &str) -> bool {
    ISSUERS.contains(&name)
        || ACCESS.contains(&name)
        || name == "UpdateClusterConfig"
        || TAMPER.iter().any(|(_, names, _, _)| names.iter().any(|p| name.starts_with(p)))
}

/// Events that issue credentials.
pub const ISSUERS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleForPodIdentity",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetFederationToken",
    "GetSessionToken",
    "ConsoleLogin",
];

/// What a CloudTrail event means to the product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// It issued credentials.
    Issuer,
    /// It changed the audit-log pipeline (or the product itself): what, in words.
    Tampering(String),
    /// It granted, changed or removed EKS cluster access.
    AccessChange(String),
    /// Nothing the product acts on.
    Other,
}

/// The names of the product's own resources and of the pipeline, from policy.
pub trait PipelineNames {
    /// True if a log group carries EKS audit logs (or the product's logs).
    fn log_group(&self, name: &str) -> bool;
    /// True if a resource of `target`'s kind, named (or identified by ARN) `name`, is watched.
    fn watches(&self, target: Target, name: &str) -> bool;
}

fn param<'a>(e: &'a CloudTrailEvent, key: &str) -> Option<&'a str> {
    e.request_parameters.as_ref()?.get(key)?.as_str()
}

/// Says what an event means. Failed calls mean nothing.
pub fn classify(e: &CloudTrailEvent, names: &dyn PipelineNames) -> Meaning {
    if e.error_code.is_some() {
        return Meaning::Other;
    }
    let service = e.event_source.trim_end_matches(".amazonaws.com");
    let name = e.event_name.as_str();
    if ISSUERS.contains(&name) && matches!(service, "sts" | "signin" | "eks-auth") {
        return Meaning::Issuer;
    }
    let tamper = |what: String| Meaning::Tampering(what);
    match (service, name) {
        ("eks", "UpdateClusterConfig") => {
            let disabled: Vec<String> = e
                .request_parameters
                .as_ref()
                .and_then(|p| p.pointer("/logging/clusterLogging"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c.get("enabled").and_then(Value::as_bool) == Some(false))
                .flat_map(|c| c.get("types").and_then(Value::as_array).cloned().unwrap_or_default())
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            if disabled.iter().any(|t| t == "audit") {
                tamper(format!(
                    "EKS control-plane audit logging disabled on cluster {}",
                    param(e, "name").unwrap_or("?")
                ))
            } else {
                Meaning::Other
            }
        }
        ("eks", name) if ACCESS.contains(&name) => {
            let principal = param(e, "principalArn").map(percent_decode).unwrap_or_default();
            let policy = param(e, "policyArn").unwrap_or("");
            Meaning::AccessChange(format!(
                "{name} on cluster {} for {}{}",
                param(e, "name").unwrap_or("?"),
                if principal.is_empty() { "?" } else { &principal },
                if policy.is_empty() { String::new() } else { format!(" ({policy})") }
            ))
        }
        (service, name) => {
            let Some((_, _, target, keys)) =
                TAMPER.iter().find(|(svc, names, _, _)| *svc == service && names.iter().any(|p| name.starts_with(p)))
            else {
                return Meaning::Other;
            };
            // The targets the call names (an alarm call names a list of them).
            let named: Vec<String> = keys
                .iter()
                .filter_map(|k| e.request_parameters.as_ref()?.get(*k))
                .flat_map(|v| match v {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                })
                .map(|s| percent_decode(&s))
                .collect();
            let hit: Vec<&str> = named.iter().map(String::as_str).filter(|n| names.watches(*target, n)).collect();
            if hit.is_empty() {
                return Meaning::Other;
            }
            let mut what = format!("{name} on {} {}", target.noun(), hit.join(", "));
            if *target == Target::Function
                && e.request_parameters.as_ref().is_some_and(|p| p.get("environment").is_some())
            {
                what.push_str(": its environment, where the policy lives, changed");
            }
            tamper(what)
        }
    }
}

/// Decodes `%XX` escapes (EKS `AssociateAccessPolicy` logs its principal ARN URL-encoded).
pub fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The credentials an issuer event handed out: (access key id, session ARN, expiry).
pub fn issued(e: &CloudTrailEvent) -> (Option<String>, Option<String>, Option<DateTime<Utc>>) {
    let r = e.response_elements.as_ref();
    let text = |p: &str| r.and_then(|r| r.pointer(p)).and_then(Value::as_str).map(str::to_owned);
    let key = text("/credentials/accessKeyId");
    let session = text("/assumedRoleUser/arn").or_else(|| text("/federatedUser/arn")).or_else(|| {
        // A console sign-in of an assumed role: the session is the caller itself.
        (e.event_name == "ConsoleLogin").then(|| e.user_identity.arn.clone()).flatten()
    });
    // Pod Identity gives the expiry as epoch seconds; STS as text.
    let expiry = text("/credentials/expiration").and_then(|s| parse_expiration(&s)).or_else(|| {
        r.and_then(|r| r.pointer("/credentials/expiration"))
            .and_then(Value::as_i64)
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
    });
    (key, session, expiry)
}

/// CloudTrail writes credential expiry as `Aug 2, 2024, 8:45:00 AM` (UTC).
pub fn parse_expiration(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = s.parse::<DateTime<Utc>>() {
        return Some(t);
    }
    ["%b %d, %Y, %I:%M:%S %p", "%b %d, %Y %I:%M:%S %p"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc())
}

/// Where a caller's chain leads, as far as the event itself says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The origin is known from the event alone.
    Origin(String),
    /// The caller used temporary credentials issued earlier: look up their record.
    Session {
        /// The access key the caller signed with.
        access_key_id: Option<String>,
        /// The caller's session ARN.
        session_arn: Option<String>,
    },
}

/// A workload named by its service account, and how it got AWS credentials.
fn workload(namespace: &str, service_account: &str, how: &str) -> String {
    format!("serviceaccount {namespace}/{service_account} ({how})")
}

/// The value of a session tag in an `AssumeRole`'s request (Pod Identity sets them).
fn session_tag<'a>(e: &'a CloudTrailEvent, key: &str) -> Option<&'a str> {
    e.request_parameters
        .as_ref()?
        .get("tags")?
        .as_array()?
        .iter()
        .find(|t| t.get("key").and_then(Value::as_str) == Some(key))?
        .get("value")?
        .as_str()
}

/// Who is behind the caller of `e`, from the event alone.
pub fn caller(e: &CloudTrailEvent) -> Caller {
    let u = &e.user_identity;
    // EKS Pod Identity: the agent asks for credentials on a pod's behalf; the
    // workload, named by its service account, is the origin.
    if e.event_name == "AssumeRoleForPodIdentity" {
        let subject = e.response_elements.as_ref().and_then(|r| r.get("subject"));
        let field = |k: &str| subject.and_then(|s| s.get(k)).and_then(Value::as_str).unwrap_or("?");
        let cluster = param(e, "clusterName").unwrap_or("?");
        return Caller::Origin(workload(
            field("namespace"),
            field("serviceAccount"),
            &format!("EKS Pod Identity on {cluster}"),
        ));
    }
    let source_identity = u
        .session_context
        .as_ref()
        .and_then(|c| c.source_identity.clone())
        .or_else(|| param(e, "sourceIdentity").map(str::to_owned));
    if let Some(si) = source_identity {
        return Caller::Origin(si);
    }
    let kind = u.kind.as_deref().unwrap_or_default();
    match kind {
        "IAMUser" | "Root" => {
            Caller::Origin(u.arn.clone().or_else(|| u.user_name.clone()).unwrap_or_else(|| "unknown IAM user".into()))
        }
        "SAMLUser" | "WebIdentityUser" => {
            // IAM Identity Center permission sets arrive as SAML through the
            // AWSSSO provider, with the person as the session name.
            let sso = param(e, "principalArn").is_some_and(|p| p.contains("AWSSSO"));
            let name = if sso { param(e, "roleSessionName").map(str::to_owned) } else { None };
            // IRSA: a pod's service-account token traded at the cluster's OIDC provider.
            let irsa = u.user_name.as_deref().and_then(|n| n.strip_prefix("system:serviceaccount:")).and_then(|sa| {
                let (ns, name) = sa.split_once(':')?;
                let provider = u.identity_provider.as_deref().unwrap_or_default();
                provider.contains("oidc.eks.").then(|| workload(ns, name, "IRSA"))
            });
            Caller::Origin(
                irsa.or(name).or_else(|| u.user_name.clone()).unwrap_or_else(|| "unknown federated user".into()),
            )
        }
        "IdentityCenterUser" => Caller::Origin(
            u.on_behalf_of
                .as_ref()
                .and_then(|o| o.user_id.clone())
                .map(|id| format!("identitycenter:{id}"))
                .or_else(|| u.user_name.clone())
                .unwrap_or_else(|| "unknown Identity Center user".into()),
        ),
        "AWSService" => {
            let service = u.invoked_by.clone().or_else(|| e.source_ip_address.clone()).unwrap_or_default();
            if service == "pods.eks.amazonaws.com"
                && let (Some(ns), Some(sa)) =
                    (session_tag(e, "kubernetes-namespace"), session_tag(e, "kubernetes-service-account"))
            {
                let cluster = session_tag(e, "eks-cluster-name").unwrap_or("?");
                return Caller::Origin(workload(ns, sa, &format!("EKS Pod Identity on {cluster}")));
            }
            let session = param(e, "roleSessionName").map(|s| format!(" ({s})")).unwrap_or_default();
            Caller::Origin(format!("{service}{session}"))
        }
        "AssumedRole" | "FederatedUser" => {
            // An Identity Center role session names the person in its session name.
            let issuer =
                u.session_context.as_ref().and_then(|c| c.session_issuer.as_ref()).and_then(|i| i.arn.as_deref());
            if issuer.is_some_and(|a| a.contains("/aws-reserved/sso.amazonaws.com/"))
                && let Some(person) = u.arn.as_deref().and_then(|a| a.rsplit('/').next())
            {
                return Caller::Origin(person.to_owned());
            }
            Caller::Session { access_key_id: u.access_key_id.clone(), session_arn: u.arn.clone() }
        }
        _ => Caller::Origin(
            u.user_name.clone().or_else(|| u.arn.clone()).unwrap_or_else(|| format!("unknown {kind} caller")),
        ),
    }
}

/// The identity record an issuer event creates: `origin` when the caller's
/// origin is known (with its account), else the caller's credentials to follow later.
pub fn record(
    e: &CloudTrailEvent,
    origin: Option<(String, Option<String>)>,
    via: Option<crate::actor::Credential>,
) -> IdentityRecord {
    let (_, session, expires_at) = issued(e);
    let mfa = e
        .additional_event_data
        .as_ref()
        .and_then(|d| d.get("MFAUsed"))
        .and_then(Value::as_str)
        .map(|v| v.eq_ignore_ascii_case("yes"))
        .or_else(|| {
            e.user_identity
                .session_context
                .as_ref()
                .and_then(|c| c.attributes.as_ref())
                .and_then(|a| a.get("mfaAuthenticated"))
                .and_then(Value::as_str)
                .map(|v| v == "true")
        });
    let (originating_principal, origin_account) = match origin {
        Some((o, account)) => (Some(o), account),
        None => (None, None),
    };
    IdentityRecord {
        originating_principal,
        origin_account,
        via,
        session_arn: session,
        source_identity: param(e, "sourceIdentity").map(str::to_owned),
        issued_by: e.event_name.clone(),
        issued_at: Some(e.event_time),
        expires_at,
        source_ip: e.source_ip_address.clone(),
        mfa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudtrail_expirations_parse() {
        assert_eq!(parse_expiration("Aug 2, 2024, 8:45:00 AM"), "2024-08-02T08:45:00Z".parse().ok());
        assert_eq!(parse_expiration("Oct 2, 2019, 11:12:29 PM"), "2019-10-02T23:12:29Z".parse().ok());
        assert_eq!(parse_expiration("2024-08-02T08:45:00Z"), "2024-08-02T08:45:00Z".parse().ok());
        assert_eq!(parse_expiration("soon"), None);
    }

    #[test]
    fn url_encoded_principals_decode() {
        assert_eq!(percent_decode("arn%3Aaws%3Aiam%3A%3A1%3Arole%2FAdmin"), "arn:aws:iam::1:role/Admin");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
