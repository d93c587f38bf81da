//! Kubernetes manifests: reading them with their lines ([`load`]) and the
//! manifest rules that judge an object on what it is, not on how it changed
//! ([`rules`]). `sentinel check` runs both on files before they ship; the
//! engine runs the rules on every live write, for what the write introduces.

pub mod load;
pub mod rules;

pub use load::{LoadError, Loaded, Manifest, Position, load};
