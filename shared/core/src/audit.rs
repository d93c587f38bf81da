//! The Kubernetes audit event (`audit.k8s.io/v1` `Event`), typed.
//!
//! Only events that passed the relevance filter are parsed into this type,
//! so it can afford owned strings and full request/response bodies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One audit event as the API server logged it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Unique id of the request; identical in every stage's record.
    #[serde(default, rename = "auditID")]
    pub audit_id: String,
    /// Audit stage (`ResponseComplete` for finished writes).
    #[serde(default)]
    pub stage: Option<String>,
    /// Audit level (`Metadata`, `Request`, `RequestResponse`).
    #[serde(default)]
    pub level: Option<String>,
    /// The request verb.
    #[serde(default)]
    pub verb: String,
    /// The request URI.
    #[serde(default, rename = "requestURI")]
    pub request_uri: Option<String>,
    /// The authenticated user.
    #[serde(default)]
    pub user: UserInfo,
    /// The user acted as, when the request impersonated someone.
    #[serde(default)]
    pub impersonated_user: Option<UserInfo>,
    /// Client addresses, nearest proxy last.
    #[serde(default, rename = "sourceIPs")]
    pub source_ips: Vec<String>,
    /// The client's user agent (client-controlled: treat as data).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The object acted on.
    #[serde(default)]
    pub object_ref: ObjectRef,
    /// The response status.
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    /// When the API server received the request.
    #[serde(default)]
    pub request_received_timestamp: Option<DateTime<Utc>>,
    /// When the API server reached this stage.
    #[serde(default)]
    pub stage_timestamp: Option<DateTime<Utc>>,
    /// The `audit.k8s.io/v1beta1` event time, kept for old logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Audit annotations (authorization decision and reason, truncation).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The request body: the object for create/update, the patch document for patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_object: Option<Value>,
    /// The response body: the object as stored after the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_object: Option<Value>,
}

/// An authenticated (or impersonated) user.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserInfo {
    /// Kubernetes username, e.g. `system:serviceaccount:ns:name` or a templated IAM name.
    #[serde(default)]
    pub username: String,
    /// User id; for IAM principals `aws-iam-authenticator:<account>:<AROA…|AIDA…>`.
    #[serde(default)]
    pub uid: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Extra attributes; every value is a list (usually of one).
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The first value of an `extra` attribute.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// The IAM ARN the request authenticated as (an `assumed-role` session ARN for roles).
    pub fn arn(&self) -> Option<&str> {
        self.extra("arn")
    }

    /// The IAM ARN without role path, as the authenticator maps it.
    pub fn canonical_arn(&self) -> Option<&str> {
        self.extra("canonicalArn")
    }

    /// The IAM role session name (`EKSGetTokenAuth` says nothing about the person).
    pub fn session_name(&self) -> Option<&str> {
        self.extra("sessionName")
    }

    /// The access key id of the signing credentials: the join key into CloudTrail.
    pub fn access_key_id(&self) -> Option<&str> {
        self.extra("accessKeyId")
    }

    /// The IAM principal id (`AROA…:session` for roles).
    pub fn principal_id(&self) -> Option<&str> {
        self.extra("principalId").or_else(|| self.extra("sigs.k8s.io/aws-iam-authenticator/principalId"))
    }

    /// The pod a service-account token was bound to.
    pub fn pod_name(&self) -> Option<&str> {
        self.extra("authentication.kubernetes.io/pod-name")
    }
}

/// The object a request acted on.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Plural resource name, e.g. `ingresses`.
    #[serde(default)]
    pub resource: String,
    /// Namespace; absent for cluster-scoped objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name; absent for collection requests.
    #[serde(default)]
    pub name: Option<String>,
    /// Object uid.
    #[serde(default)]
    pub uid: Option<String>,
    /// API group; absent for the core group.
    #[serde(default)]
    pub api_group: Option<String>,
    /// API version.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Resource version the request named.
    #[serde(default)]
    pub resource_version: Option<String>,
    /// Subresource, e.g. `status`.
    #[serde(default)]
    pub subresource: Option<String>,
}

impl ObjectRef {
    /// `namespace/name`, or just the name for cluster-scoped objects.
    pub fn key(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            (None, Some(name)) => name.clone(),
            (Some(ns), None) => format!("{ns}/*"),
            (None, None) => "*".to_owned(),
        }
    }
}

/// The response status of a request.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ResponseStatus {
    /// HTTP status code.
    #[serde(default)]
    pub code: Option<u16>,
    /// `Success` or `Failure` (only on failures, usually).
    #[serde(default)]
    pub status: Option<String>,
    /// Machine-readable reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
}

impl AuditEvent {
    /// The best time for the event: when the response completed, else when the request arrived.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.stage_timestamp.or(self.request_received_timestamp).or(self.timestamp)
    }

    /// The object as it is after this write, where the record carries it:
    /// the response body, or for create/update the request body.
    /// `None` for deletes, for patches logged without a response body, and
    /// for metadata-only records.
    pub fn object_after(&self) -> Option<&Value> {
        let is_object = |v: &&Value| v.get("kind").and_then(Value::as_str) != Some("Status");
        match self.verb.as_str() {
            "delete" | "deletecollection" => None,
            "patch" => self.response_object.as_ref().filter(is_object),
            _ => self.response_object.as_ref().filter(is_object).or(self.request_object.as_ref().filter(is_object)),
        }
    }
}

/// A request verb, as far as the engine tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// `create`.
    Create,
    /// `update`.
    Update,
    /// `patch`.
    Patch,
    /// `delete`.
    Delete,
    /// `deletecollection`.
    DeleteCollection,
    /// Anything else (reads, watches): never a change.
    Other,
}

impl Verb {
    /// The verbs that change objects.
    pub const WRITES: [Verb; 5] = [Self::Create, Self::Update, Self::Patch, Self::Delete, Self::DeleteCollection];

    /// Reads a verb as the API server writes it.
    pub fn parse(verb: &str) -> Self {
        match verb {
            "create" => Self::Create,
            "update" => Self::Update,
            "patch" => Self::Patch,
            "delete" => Self::Delete,
            "deletecollection" => Self::DeleteCollection,
            _ => Self::Other,
        }
    }

    /// The verb as the API server writes it (`other` for the rest).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
            Self::Other => "other",
        }
    }

    /// True for `delete` and `deletecollection`.
    pub fn is_delete(self) -> bool {
        matches!(self, Self::Delete | Self::DeleteCollection)
    }

    /// What the write did to the object, for summaries.
    pub fn past(self) -> &'static str {
        match self {
            Self::Create => "created",
            Self::Delete | Self::DeleteCollection => "deleted",
            _ => "changed",
        }
    }
}

/// The kinds of object that make up the Ingress layer, by their audit
/// `objectRef.resource` and the API groups they count in (`""` is the core group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `networking.k8s.io` (or the old `extensions`) Ingress.
    #[serde(rename = "ingresses")]
    Ingress,
    /// IngressClass: which controller serves a class.
    #[serde(rename = "ingressclasses")]
    IngressClass,
    /// Service: a route target, possibly an ExternalName.
    #[serde(rename = "services")]
    Service,
    /// Secret: tracked when an Ingress's TLS uses it.
    #[serde(rename = "secrets")]
    Secret,
    /// ConfigMap: tracked when it configures the ingress controller.
    #[serde(rename = "configmaps")]
    ConfigMap,
    /// Gateway API Gateway.
    #[serde(rename = "gateways")]
    Gateway,
    /// Gateway API HTTPRoute.
    #[serde(rename = "httproutes")]
    HttpRoute,
    /// Gateway API GRPCRoute.
    #[serde(rename = "grpcroutes")]
    GrpcRoute,
    /// Gateway API TLSRoute.
    #[serde(rename = "tlsroutes")]
    TlsRoute,
    /// Gateway API ReferenceGrant: which namespaces may route into this one.
    #[serde(rename = "referencegrants")]
    ReferenceGrant,
}

impl Kind {
    /// Every tracked kind.
    pub const ALL: [Kind; 10] = [
        Self::Ingress,
        Self::IngressClass,
        Self::Service,
        Self::Secret,
        Self::ConfigMap,
        Self::Gateway,
        Self::HttpRoute,
        Self::GrpcRoute,
        Self::TlsRoute,
        Self::ReferenceGrant,
    ];

    /// The plural resource name of audit events.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Ingress => "ingresses",
            Self::IngressClass => "ingressclasses",
            Self::Service => "services",
            Self::Secret => "secrets",
            Self::ConfigMap => "configmaps",
            Self::Gateway => "gateways",
            Self::HttpRoute => "httproutes",
            Self::GrpcRoute => "grpcroutes",
            Self::TlsRoute => "tlsroutes",
            Self::ReferenceGrant => "referencegrants",
        }
    }

    /// The API groups the resource counts in.
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Self::Ingress => &["networking.k8s.io", "extensions"],
            Self::IngressClass => &["networking.k8s.io"],
            Self::Service | Self::Secret | Self::ConfigMap => &[""],
            Self::Gateway | Self::HttpRoute | Self::GrpcRoute | Self::TlsRoute | Self::ReferenceGrant => {
                &["gateway.networking.k8s.io"]
            }
        }
    }

    /// The `kind` a manifest writes, e.g. `HTTPRoute`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingress => "Ingress",
            Self::IngressClass => "IngressClass",
            Self::Service => "Service",
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
            Self::Gateway => "Gateway",
            Self::HttpRoute => "HTTPRoute",
            Self::GrpcRoute => "GRPCRoute",
            Self::TlsRoute => "TLSRoute",
            Self::ReferenceGrant => "ReferenceGrant",
        }
    }

    /// The tracked kind a manifest's `kind` names, if tracked.
    pub fn from_name(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == kind)
    }

    /// The kind of a plural resource name, if tracked.
    pub fn from_resource(resource: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.resource() == resource)
    }
}

impl ObjectRef {
    /// The tracked kind of the object, if it is one.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_resource(&self.resource)
    }
}

impl AuditEvent {
    /// The request verb.
    pub fn verb(&self) -> Verb {
        Verb::parse(&self.verb)
    }

    /// The object's `resourceVersion` after the write, from the response body
    /// (a request body carries the version the client read, not the new one).
    /// `None` when not logged or not a number (it is opaque to clients, but
    /// an etcd revision on every API server EKS runs).
    pub fn resource_version(&self) -> Option<u64> {
        let body = self.response_object.as_ref()?;
        if body.get("kind").and_then(Value::as_str) == Some("Status") {
            return None;
        }
        body.pointer("/metadata/resourceVersion")?.as_str()?.parse().ok()
    }
}
