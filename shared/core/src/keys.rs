//! Every store key, built from types in one place.
//!
//! Keys are `|`-separated parts, most general first, so a key prefix is a
//! range of a space (a DynamoDB `begins_with` query, a redb range). Credentials
//! are named by [`Credential`]'s one spelling (`access-key:…`, `session:…`,
//! `user:…`) wherever they appear.

use crate::actor::Credential;
use crate::audit::Kind;

/// An object of the Ingress layer in one cluster: the key of its baseline.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The cluster.
    pub cluster: String,
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    /// The baseline key: `cluster|resource|namespace|name`.
    pub fn baseline(&self) -> String {
        format!("{}|{}|{}|{}", self.cluster, self.kind.resource(), self.namespace, self.name)
    }
}

/// The policy in force for a cluster, as section digests.
pub fn policy_in_force(cluster: &str) -> String {
    format!("policy|{cluster}")
}

/// One revision of an alert in the history: `alert_id|revision`, the
/// revision zero-padded so a prefix scan lists them in order.
pub fn revision(alert_id: &str, revision: u32) -> String {
    format!("{alert_id}|{revision:010}")
}

/// Every revision of an alert.
pub fn revisions(alert_id: &str) -> String {
    format!("{alert_id}|")
}

/// What an index maps to the Ingresses that use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Used<'a> {
    /// A TLS Secret of a namespace.
    Secret(&'a str),
    /// A Service of a namespace.
    Service(&'a str),
}

/// The index of the Ingresses (names) of a namespace that use a Secret or Service.
pub fn users(cluster: &str, namespace: &str, used: Used<'_>) -> String {
    match used {
        Used::Secret(name) => format!("{cluster}|secret|{namespace}|{name}"),
        Used::Service(name) => format!("{cluster}|service|{namespace}|{name}"),
    }
}

/// The index of the Ingresses (baseline keys) that serve a host over TLS.
pub fn tls_host(cluster: &str, host: &str) -> String {
    format!("{cluster}|tls-host|{host}")
}

/// An actor's learned activity in a namespace.
pub fn activity(cluster: &str, actor_key: &str, namespace: &str) -> String {
    format!("{cluster}|{actor_key}|{namespace}")
}

/// An actor's open incident.
pub fn incident(cluster: &str, actor_key: &str) -> String {
    format!("{cluster}|{actor_key}")
}

/// A change plan.
pub fn plan(cluster: &str, namespace: &str, id: &str) -> String {
    format!("{}{id}", plans(cluster, namespace))
}

/// The prefix of every plan of a namespace.
pub fn plans(cluster: &str, namespace: &str) -> String {
    format!("{cluster}|{namespace}|")
}

/// The identity record of an access key (one record: a key is issued once).
pub fn identity(credential: &Credential) -> String {
    credential.to_string()
}

/// One issuance of a session ARN: the same ARN is issued again to whoever
/// assumes the role under the same session name, so each issuance is its own record.
pub fn session_issuance(arn: &str, issued_at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}{}", session_issuances(arn), issued_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// The prefix of every issuance of a session ARN.
pub fn session_issuances(arn: &str) -> String {
    format!("{}|", Credential::Session(arn.to_owned()))
}

/// The credentials obtained with `credential` while its own origin was unknown.
pub fn links(credential: &Credential) -> String {
    format!("links|{credential}")
}

/// The hosts a namespace's Ingresses have served without objection (learned).
pub fn namespace_hosts(cluster: &str, namespace: &str) -> String {
    format!("{cluster}|hosts|{namespace}")
}

/// When the engine first saw a cluster: the learning period runs from here.
pub fn cluster_history(cluster: &str) -> String {
    format!("{cluster}|history")
}

/// When an actor (by its stable name) first changed a cluster's Ingress layer.
pub fn actor_seen(cluster: &str, stable_name: &str) -> String {
    format!("{cluster}|seen|{stable_name}")
}

/// A person's access to a pod's or service account's power (exec, attach,
/// port-forward, debug, token request), by the service account it gives.
pub fn access(cluster: &str, namespace: &str, subject: &str) -> String {
    format!("{cluster}|access|{namespace}|{subject}")
}

/// An alert waiting for CloudTrail to name the origin of its credentials.
pub fn pending(credential: &Credential, alert_id: &str) -> String {
    format!("{}{alert_id}", pending_for(credential))
}

/// The prefix of every alert waiting on one set of credentials.
pub fn pending_for(credential: &Credential) -> String {
    format!("{credential}|")
}

/// Where the raw audit event behind an alert is kept, in the evidence bucket
/// or directory: `events/<cluster>/<audit id>.json` (a cluster of another
/// account, `<account>/<cluster>`, is two folders).
pub fn kept_event(cluster: &str, audit_id: &str) -> String {
    let folders: Vec<String> = cluster.split('/').map(safe_name).collect();
    format!("events/{}/{}.json", folders.join("/"), safe_name(audit_id))
}

/// Where a quarantined record is kept: `quarantine/<id>.json` describes it,
/// `quarantine/<id>.bin` holds its bytes.
pub fn quarantined(id: &str, extension: &str) -> String {
    format!("quarantine/{}.{extension}", safe_name(id))
}

/// A name for an id that came from the input, safe as one path segment of a
/// file or S3 key: kept when plain, else its sha256.
pub fn safe_name(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain { id.to_owned() } else { format!("sha256-{}", crate::bound::sha256(id.as_bytes())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_nest_so_prefixes_are_ranges() {
        let key = Credential::AccessKey("ASIAX".into());
        assert!(pending(&key, "isa-1").starts_with(&pending_for(&key)));
        assert!(plan("prod", "shop", "p1").starts_with(&plans("prod", "shop")));
        assert_eq!(identity(&Credential::Session("arn:s".into())), "session:arn:s");
        let object =
            ObjectKey { cluster: "prod".into(), kind: Kind::Ingress, namespace: "shop".into(), name: "web".into() };
        assert_eq!(object.baseline(), "prod|ingresses|shop|web");
    }

    #[test]
    fn names_from_input_cannot_leave_their_folder() {
        assert_eq!(kept_event("prod", "9a2f-11"), "events/prod/9a2f-11.json");
        assert_eq!(kept_event("222233334444/prod", "9a2f-11"), "events/222233334444/prod/9a2f-11.json");
        assert!(kept_event("../..", "x").starts_with("events/sha256-"), "{}", kept_event("../..", "x"));
        for hostile in ["../../etc/passwd", "a/b", "..", "", "x\ny"] {
            let name = safe_name(hostile);
            assert!(name.starts_with("sha256-") && !name.contains('/'), "{hostile:?} -> {name}");
        }
    }
}
