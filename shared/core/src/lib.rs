//! The Ingress Sentinel engine.
//!
//! It finds the few EKS audit events that change the Ingress layer in whatever
//! form AWS delivers them, and says what changed by meaning. It depends on no
//! AWS SDK and no async runtime: adapters (Lambda functions, the CLI) feed it
//! bytes and act on what it returns.
//!
//! ```
//! use sentinel_core::decode::{decode_bytes, Decoded, Options};
//!
//! let line = br#"{"kind":"Event","auditID":"a1","stage":"ResponseComplete","verb":"delete",
//! "user":{"username":"alice"},"objectRef":{"resource":"ingresses","namespace":"shop",
//! "name":"web","apiGroup":"networking.k8s.io","apiVersion":"v1"},"responseStatus":{"code":200}}"#;
//! let one_line: Vec<u8> = line.iter().copied().filter(|b| *b != b'\n').collect();
//! let mut kept = Vec::new();
//! let counts = decode_bytes("example", &one_line, &Options::default(), &mut |d| {
//!     if let Decoded::Event(record) = d { kept.push(record) }
//! });
//! assert_eq!(counts.kept, 1);
//! assert_eq!(kept[0].event.object_ref.name.as_deref(), Some("web"));
//! ```

pub mod actor;
pub mod alert;
pub mod audit;
pub mod baseline;
pub mod bound;
pub mod cloudtrail;
pub mod decode;
pub mod engine;
pub mod fault;
pub mod filter;
pub mod ingress;
pub mod keys;
pub mod manifest;
pub mod pattern;
pub mod plan;
pub mod policy;
pub mod rules;
pub mod store;
pub mod text;

pub use audit::AuditEvent;
pub use ingress::{IngressState, diff::Change};
