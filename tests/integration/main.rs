//! Workspace-level integration tests, compiled into one binary.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aws;
mod concurrency;
mod conformance;
mod delivery;
mod faults;
mod framings;
mod history;
mod hostile;
mod identity;
mod lifecycle;
mod manifest;
mod outbox;
mod round_trips;
mod rules;
mod store;
mod tamper;
mod template;
