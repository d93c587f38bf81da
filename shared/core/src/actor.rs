//! Who made a change: the Kubernetes user, the IAM session behind it, and,
//! where CloudTrail says, the person or pipeline behind that session.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;

/// The actor of an audit event, as far as it is known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Kubernetes username (of the impersonator, when impersonating).
    pub kubernetes_username: String,
    /// Kubernetes groups.
    pub groups: Vec<String>,
    /// IAM ARN the request authenticated as (an assumed-role session ARN for roles).
    pub iam_arn: Option<String>,
    /// The IAM role, without path (`arn:aws:iam::ACCOUNT:role/NAME`), for roles.
    pub role_arn: Option<String>,
    /// Access key id of the signing credentials.
    pub access_key_id: Option<String>,
    /// IAM role session name.
    pub session_name: Option<String>,
    /// `sts:SourceIdentity` of the session, from CloudTrail.
    pub source_identity: Option<String>,
    /// The person or pipeline behind the session, from CloudTrail (an IAM
    /// user or the root user is its own origin).
    pub originating_principal: Option<String>,
    /// The account the origin belongs to, when CloudTrail says (it differs
    /// from the session's when the chain crossed accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originating_account: Option<String>,
    /// People who may be behind a service account's change: they exec'd into
    /// its pod or requested a token for it shortly before. Evidence, never an
    /// origin: they stay out of `originating_principal` and the actor key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub possible_origins: Vec<PossibleOrigin>,
    /// `namespace:name` for service accounts.
    pub service_account: Option<String>,
    /// The pod a service-account token was bound to.
    pub pod_name: Option<String>,
    /// Client addresses.
    pub source_ips: Vec<String>,
    /// Client user agent (client-controlled).
    pub user_agent: Option<String>,
    /// The user acted as, when impersonating.
    pub impersonated_user: Option<String>,
}

impl Actor {
    /// The actor as the audit event names it.
    pub fn from_event(event: &AuditEvent) -> Self {
        let user = &event.user;
        let username = user.username.clone();
        let service_account = username.strip_prefix("system:serviceaccount:").map(str::to_owned);
        let iam_arn = user.arn().map(str::to_owned);
        Self {
            kubernetes_username: username,
            groups: user.groups.clone(),
            role_arn: user
                .canonical_arn()
                .map(str::to_owned)
                .filter(|a| a.contains(":role/"))
                .or_else(|| user.arn().and_then(role_of_session_arn)),
            access_key_id: user.access_key_id().map(str::to_owned),
            session_name: user.session_name().map(str::to_owned).filter(|s| !s.is_empty()),
            source_identity: None,
            // IAM users and the root user sign with their own long-term keys: they are the origin.
            originating_principal: iam_arn.as_deref().filter(|a| is_own_origin(a)).map(str::to_owned),
            originating_account: None,
            possible_origins: Vec::new(),
            iam_arn,
            service_account,
            pod_name: user.pod_name().map(str::to_owned),
            source_ips: event.source_ips.clone(),
            user_agent: event.user_agent.clone(),
            impersonated_user: event.impersonated_user.as_ref().map(|u| u.username.clone()),
        }
    }

    /// True if the request was signed with IAM credentials.
    pub fn is_iam(&self) -> bool {
        self.iam_arn.is_some() || self.access_key_id.is_some()
    }

    /// True for workloads (service accounts, control-plane components) rather than people.
    pub fn is_machine(&self) -> bool {
        self.service_account.is_some()
            || self.kubernetes_username.starts_with("system:")
            || self.kubernetes_username.starts_with("eks:")
    }

    /// The key that groups one actor's signals: the origin when known, else
    /// the access key (one person's credentials), else a session ARN whose
    /// name is specific, else the Kubernetes user. Never a shared session
    /// ARN: two people using one role under one session name are two actors.
    pub fn key(&self, generic_session: impl Fn(&str) -> bool) -> String {
        if let Some(origin) = &self.originating_principal {
            return origin.clone();
        }
        let specific = self.session_name.as_deref().is_some_and(|s| !generic_session(s));
        match (&self.access_key_id, &self.iam_arn) {
            (Some(key), _) => Credential::AccessKey(key.clone()).to_string(),
            (None, Some(arn)) if specific => Credential::Session(arn.clone()).to_string(),
            _ => self.kubernetes_username.clone(),
        }
    }

    /// A name for the actor that lasts: the origin, else the IAM role, else
    /// the service account or Kubernetes user. Whether an actor is new to a
    /// cluster is judged by it (an access key is new every hour).
    pub fn stable_name(&self) -> String {
        self.originating_principal
            .clone()
            .or_else(|| self.role_arn.clone())
            .or_else(|| self.service_account.as_ref().map(|sa| format!("serviceaccount:{sa}")))
            .unwrap_or_else(|| self.kubernetes_username.clone())
    }

    /// A short human name: origin, else session, else username, else IAM ARN.
    pub fn display(&self) -> &str {
        self.originating_principal
            .as_deref()
            .or(self.session_name.as_deref().filter(|_| self.iam_arn.is_some()))
            .or(Some(self.kubernetes_username.as_str()).filter(|u| !u.is_empty()))
            .or(self.iam_arn.as_deref())
            .unwrap_or("unknown actor")
    }

    /// The credentials themselves, known without CloudTrail: the access key,
    /// else the session ARN, else the Kubernetes user. Alert ids derive from
    /// them, so an alert keeps its id when CloudTrail later names the origin.
    pub fn credential(&self) -> Credential {
        match (&self.access_key_id, &self.iam_arn) {
            (Some(key), _) => Credential::AccessKey(key.clone()),
            (None, Some(arn)) => Credential::Session(arn.clone()),
            (None, None) => Credential::User(self.kubernetes_username.clone()),
        }
    }
}

/// A set of credentials, named the one way every store key and actor key uses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// An AWS access key id (`ASIA…` temporary, `AKIA…` long-term).
    AccessKey(String),
    /// An assumed-role session ARN.
    Session(String),
    /// A Kubernetes user without IAM credentials.
    User(String),
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AccessKey(key) => write!(f, "access-key:{key}"),
            Self::Session(arn) => write!(f, "session:{arn}"),
            Self::User(name) => write!(f, "user:{name}"),
        }
    }
}

/// True for ARNs that are their own origin: an IAM user or the root user.
pub fn is_own_origin(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("iam"), Some(_), Some(_), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    resource == "root" || resource.starts_with("user/")
}

/// The account of an ARN.
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` → `arn:aws:iam::ACCOUNT:role/NAME`.
pub fn role_of_session_arn(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (partition, service, _region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if service != "sts" {
        return None;
    }
    let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// A person who may be behind a service account's change, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PossibleOrigin {
    /// The person (their origin if resolved, else their Kubernetes user).
    pub principal: String,
    /// What they did that gives them the service account's power.
    pub via: String,
    /// When.
    pub time: DateTime<Utc>,
    /// The audit event of it.
    pub audit_id: String,
}

/// What CloudTrail says about a set of credentials: who obtained them, how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// The person or pipeline at the origin of the chain; `None` while the
    /// credentials that obtained these are not traced yet (see `via`).
    pub originating_principal: Option<String>,
    /// The account the origin belongs to.
    #[serde(default)]
    pub origin_account: Option<String>,
    /// The credentials the issuing call was signed with, while their own
    /// origin is unknown: the link a later record completes.
    #[serde(default)]
    pub via: Option<Credential>,
    /// The session ARN issued, if any.
    #[serde(default)]
    pub session_arn: Option<String>,
    /// `sts:SourceIdentity`, if set.
    pub source_identity: Option<String>,
    /// The CloudTrail event that issued the credentials (e.g. `AssumeRoleWithSAML`).
    pub issued_by: String,
    /// When they were issued.
    pub issued_at: Option<DateTime<Utc>>,
    /// When they stop working.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Address the issuing call came from.
    pub source_ip: Option<String>,
    /// Whether MFA was used, where CloudTrail says.
    pub mfa: Option<bool>,
}

impl IdentityRecord {
    /// True if the credentials were live at `time` (issued, not yet expired).
    pub fn live_at(&self, time: DateTime<Utc>) -> bool {
        self.issued_at.is_none_or(|i| i <= time) && self.expires_at.is_none_or(|x| time <= x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_arns_map_to_their_role() {
        assert_eq!(
            role_of_session_arn("arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com").as_deref(),
            Some("arn:aws:iam::111122223333:role/Admin")
        );
        assert_eq!(role_of_session_arn("arn:aws:iam::111122223333:user/bob"), None);
    }

    #[test]
    fn iam_users_and_root_are_their_own_origin() {
        assert!(is_own_origin("arn:aws:iam::111122223333:user/ops/bob"));
        assert!(is_own_origin("arn:aws:iam::111122223333:root"));
        assert!(!is_own_origin("arn:aws:sts::111122223333:assumed-role/Admin/x"));
        assert!(!is_own_origin("arn:aws:iam::111122223333:role/Admin"));
        assert_eq!(account_of("arn:aws:iam::444455556666:user/bob"), Some("444455556666"));
    }

    #[test]
    fn the_key_of_a_generic_session_is_its_access_key() {
        let actor = Actor {
            kubernetes_username: "admin:EKSGetTokenAuth".into(),
            iam_arn: Some("arn:aws:sts::1:assumed-role/Admin/EKSGetTokenAuth".into()),
            access_key_id: Some("ASIAKEY".into()),
            session_name: Some("EKSGetTokenAuth".into()),
            ..Actor::default()
        };
        assert_eq!(actor.key(|s| s == "EKSGetTokenAuth"), "access-key:ASIAKEY");
        // Even a telling session name is chosen by whoever assumes the role: the key decides.
        assert_eq!(actor.key(|_| false), "access-key:ASIAKEY");
        let keyless = Actor { access_key_id: None, ..actor.clone() };
        assert_eq!(keyless.key(|_| false), "session:arn:aws:sts::1:assumed-role/Admin/EKSGetTokenAuth");
        assert_eq!(keyless.key(|_| true), "admin:EKSGetTokenAuth");
        let origin = Actor { originating_principal: Some("alice@example.com".into()), ..actor };
        assert_eq!(origin.key(|_| true), "alice@example.com");
    }
}
