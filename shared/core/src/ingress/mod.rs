//! The Ingress model: `networking.k8s.io/v1` and the older `v1beta1` shapes
//! (`extensions` and `networking.k8s.io`), normalised into one.
//!
//! Only what decides where traffic goes and who may send it is kept: class,
//! default backend, rules, TLS and annotations. Server-set fields
//! (`resourceVersion`, `generation`, `managedFields`, `uid`, timestamps,
//! `status`) are never read, so they can never show up as a change.

pub mod annotations;
pub mod cidr;
pub mod diff;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use annotations::{AnnotationKind, classify};

/// A service port, by number or by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServicePort {
    /// A port number.
    Number(i64),
    /// A named port.
    Name(String),
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// Where a path (or the default) sends traffic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Backend {
    /// A Service in the Ingress's namespace.
    Service {
        /// Service name.
        name: String,
        /// Service port, when given.
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<ServicePort>,
    },
    /// Another object (e.g. a storage bucket CRD).
    Resource {
        /// API group of the resource.
        #[serde(skip_serializing_if = "Option::is_none")]
        api_group: Option<String>,
        /// Kind.
        kind: String,
        /// Name.
        name: String,
    },
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service { name, port: Some(port) } => write!(f, "service {name}:{port}"),
            Self::Service { name, port: None } => write!(f, "service {name}"),
            Self::Resource { api_group, kind, name } => {
                write!(f, "{kind}")?;
                if let Some(group) = api_group {
                    write!(f, ".{group}")?;
                }
                write!(f, " {name}")
            }
        }
    }
}

/// One path of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressPath {
    /// The path; absent means every path.
    pub path: Option<String>,
    /// `Exact`, `Prefix` or `ImplementationSpecific`.
    pub path_type: Option<String>,
    /// Where it goes.
    pub backend: Option<Backend>,
}

/// A host rule. A rule without host matches every host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRule {
    /// The host, possibly a wildcard (`*.example.com`); absent for all hosts.
    pub host: Option<String>,
    /// Its paths.
    pub paths: Vec<IngressPath>,
}

/// A TLS block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressTls {
    /// Hosts the certificate serves.
    pub hosts: Vec<String>,
    /// Secret holding the certificate; absent for the controller's default.
    pub secret_name: Option<String>,
}

/// The routing-relevant state of one Ingress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressState {
    /// Namespace, from metadata.
    pub namespace: Option<String>,
    /// Name, from metadata.
    pub name: Option<String>,
    /// `spec.ingressClassName`.
    pub class_name: Option<String>,
    /// The legacy `kubernetes.io/ingress.class` annotation.
    pub class_annotation: Option<String>,
    /// `spec.defaultBackend` (v1) or `spec.backend` (v1beta1).
    pub default_backend: Option<Backend>,
    /// Host rules.
    pub rules: Vec<IngressRule>,
    /// TLS blocks.
    pub tls: Vec<IngressTls>,
    /// All annotations as written, bookkeeping included.
    pub annotations: BTreeMap<String, String>,
}

/// An object body that is not an Ingress of a known shape.
#[derive(Debug, thiserror::Error)]
#[error("not an Ingress: {0}")]
pub struct ModelError(#[from] serde_json::Error);

impl IngressState {
    /// Reads an Ingress object of any served version.
    pub fn from_value(object: &Value) -> Result<Self, ModelError> {
        let raw = raw::Ingress::deserialize(object)?;
        Ok(raw.into_state())
    }

    /// The effective class: the field, else the legacy annotation.
    pub fn class(&self) -> Option<&str> {
        self.class_name.as_deref().or(self.class_annotation.as_deref())
    }

    /// Annotations by canonical setting key (aliases folded), bookkeeping and
    /// the class annotation (modelled as the class) left out.
    pub fn settings(&self) -> BTreeMap<&str, (&str, &str)> {
        let mut out = BTreeMap::new();
        for (key, value) in &self.annotations {
            let c = classify(key);
            if matches!(c.kind, AnnotationKind::Bookkeeping | AnnotationKind::Class) {
                continue;
            }
            out.insert(c.setting, (key.as_str(), value.as_str()));
        }
        out
    }

    /// Every host named by a rule (`None` for a rule without host).
    pub fn hosts(&self) -> impl Iterator<Item = Option<&str>> {
        self.rules.iter().map(|r| r.host.as_deref())
    }

    /// Every backend: the default and each path's.
    pub fn backends(&self) -> impl Iterator<Item = &Backend> {
        self.default_backend
            .iter()
            .chain(self.rules.iter().flat_map(|r| r.paths.iter().filter_map(|p| p.backend.as_ref())))
    }
}

/// The wire shapes, as lenient as the API server's own decoding.
mod raw {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    pub struct Ingress {
        metadata: Metadata,
        spec: Spec,
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Metadata {
        name: Option<String>,
        namespace: Option<String>,
        annotations: Option<BTreeMap<String, String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Spec {
        ingress_class_name: Option<String>,
        default_backend: Option<RawBackend>,
        /// v1beta1's name for the default backend.
        backend: Option<RawBackend>,
        rules: Option<Vec<Rule>>,
        tls: Option<Vec<Tls>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Rule {
        host: Option<String>,
        http: Option<Http>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Http {
        paths: Option<Vec<Path>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Path {
        path: Option<String>,
        path_type: Option<String>,
        backend: Option<RawBackend>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct RawBackend {
        service: Option<ServiceRef>,
        resource: Option<TypedRef>,
        /// v1beta1.
        service_name: Option<String>,
        /// v1beta1: int or string.
        service_port: Option<ServicePort>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct ServiceRef {
        name: String,
        port: Option<Port>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Port {
        number: Option<i64>,
        name: Option<String>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct TypedRef {
        api_group: Option<String>,
        kind: String,
        name: String,
    }

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Tls {
        hosts: Option<Vec<String>>,
        secret_name: Option<String>,
    }

    impl RawBackend {
        fn into_backend(self) -> Option<Backend> {
            if let Some(service) = self.service {
                let port = service.port.and_then(|p| match (p.number, p.name) {
                    (Some(n), _) => Some(ServicePort::Number(n)),
                    (None, Some(name)) => Some(ServicePort::Name(name)),
                    (None, None) => None,
                });
                return Some(Backend::Service { name: service.name, port });
            }
            if let Some(r) = self.resource {
                return Some(Backend::Resource { api_group: r.api_group, kind: r.kind, name: r.name });
            }
            self.service_name.map(|name| Backend::Service { name, port: self.service_port })
        }
    }

    impl Ingress {
        pub fn into_state(self) -> IngressState {
            let annotations = self.metadata.annotations.unwrap_or_default();
            let spec = self.spec;
            IngressState {
                namespace: self.metadata.namespace,
                name: self.metadata.name,
                class_name: spec.ingress_class_name,
                class_annotation: annotations.get("kubernetes.io/ingress.class").cloned(),
                default_backend: spec.default_backend.or(spec.backend).and_then(RawBackend::into_backend),
                rules: spec
                    .rules
                    .unwrap_or_default()
                    .into_iter()
                    .map(|rule| IngressRule {
                        host: rule.host.filter(|h| !h.is_empty()),
                        paths: rule
                            .http
                            .and_then(|h| h.paths)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|p| IngressPath {
                                path: p.path.filter(|p| !p.is_empty()),
                                path_type: p.path_type,
                                backend: p.backend.and_then(RawBackend::into_backend),
                            })
                            .collect(),
                    })
                    .collect(),
                tls: spec
                    .tls
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| IngressTls { hosts: t.hosts.unwrap_or_default(), secret_name: t.secret_name })
                    .collect(),
                annotations,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_and_v1beta1_normalise_to_the_same_state() {
        let v1 = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
            "spec": {
                "ingressClassName": "nginx",
                "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
                "rules": [{"host": "shop.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}
                ]}}],
                "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
            }
        });
        let beta = json!({
            "apiVersion": "extensions/v1beta1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "9", "generation": 4},
            "spec": {
                "ingressClassName": "nginx",
                "backend": {"serviceName": "fallback", "servicePort": 80},
                "rules": [{"host": "shop.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"serviceName": "web", "servicePort": "http"}}
                ]}}],
                "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
            },
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}
        });
        let a = IngressState::from_value(&v1).unwrap();
        let b = IngressState::from_value(&beta).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.default_backend,
            Some(Backend::Service { name: "fallback".into(), port: Some(ServicePort::Number(80)) })
        );
        assert_eq!(a.rules[0].paths[0].backend.as_ref().map(ToString::to_string).as_deref(), Some("service web:http"));
    }

    #[test]
    fn class_comes_from_the_field_or_the_legacy_annotation() {
        let legacy = json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "alb"}}});
        assert_eq!(IngressState::from_value(&legacy).unwrap().class(), Some("alb"));
        let both = json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "alb"}},
                          "spec": {"ingressClassName": "nginx"}});
        assert_eq!(IngressState::from_value(&both).unwrap().class(), Some("nginx"));
    }

    #[test]
    fn resource_backends_and_null_fields_are_read() {
        let v = json!({"metadata": {"annotations": null}, "spec": {"rules": [{"http": {"paths": [
            {"path": "/static", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "assets"}}}
        ]}}], "tls": null}});
        let s = IngressState::from_value(&v).unwrap();
        assert_eq!(s.rules[0].host, None);
        assert_eq!(s.backends().next().map(ToString::to_string).as_deref(), Some("Bucket.k8s.example.com assets"));
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_an_error() {
        assert!(IngressState::from_value(&json!({"spec": {"rules": "everything"}})).is_err());
    }
}
