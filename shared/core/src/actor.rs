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
    /// The person or pipeline behind the session, from CloudTrail.
    pub originating_principal: Option<String>,
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
        Self {
            kubernetes_username: username,
            groups: user.groups.clone(),
            iam_arn: user.arn().map(str::to_owned),
            role_arn: user.canonical_arn().map(str::to_owned).or_else(|| user.arn().and_then(role_of_session_arn)),
            access_key_id: user.access_key_id().map(str::to_owned),
            session_name: user.session_name().map(str::to_owned),
            source_identity: None,
            originating_principal: None,
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
    /// the session (or, for a session name that says nothing, its access
    /// key), else the Kubernetes user.
    pub fn key(&self, generic_session: impl Fn(&str) -> bool) -> String {
        if let Some(origin) = &self.originating_principal {
            return origin.clone();
        }
        let generic = self.session_name.as_deref().is_some_and(&generic_session);
        match (&self.iam_arn, &self.access_key_id) {
            (Some(_), Some(key)) if generic => Credential::AccessKey(key.clone()).to_string(),
            (Some(arn), _) => arn.clone(),
            (None, Some(key)) => Credential::AccessKey(key.clone()).to_string(),
            (None, None) => self.kubernetes_username.clone(),
        }
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// What CloudTrail says about a set of credentials: who obtained them, how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// The person or pipeline at the origin of the chain.
    pub originating_principal: String,
    /// `sts:SourceIdentity`, if set.
    pub source_identity: Option<String>,
    /// The CloudTrail event that issued the credentials (e.g. `AssumeRoleWithSAML`).
    pub issued_by: String,
    /// When they were issued.
    pub issued_at: Option<DateTime<Utc>>,
    /// Address the issuing call came from.
    pub source_ip: Option<String>,
    /// Whether MFA was used, where CloudTrail says.
    pub mfa: Option<bool>,
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
    fn the_key_of_a_generic_session_is_its_access_key() {
        let actor = Actor {
            kubernetes_username: "admin:EKSGetTokenAuth".into(),
            iam_arn: Some("arn:aws:sts::1:assumed-role/Admin/EKSGetTokenAuth".into()),
            access_key_id: Some("ASIAKEY".into()),
            session_name: Some("EKSGetTokenAuth".into()),
            ..Actor::default()
        };
        assert_eq!(actor.key(|s| s == "EKSGetTokenAuth"), "access-key:ASIAKEY");
        assert_eq!(actor.key(|_| false), "arn:aws:sts::1:assumed-role/Admin/EKSGetTokenAuth");
        let origin = Actor { originating_principal: Some("alice@example.com".into()), ..actor };
        assert_eq!(origin.key(|_| true), "alice@example.com");
    }
}
