//! The alert lifecycle: open → acknowledged → resolved, false positive or
//! accepted risk, with who, when and why. Each change is a revision of its
//! own, kept in the history and published with `event` = `status`, so a
//! chat or paging subscriber can follow it. The person an alert names
//! cannot close it; a new signal reopens a closed alert (see
//! [`crate::alert::Alert::merge`]).

use super::{Engine, EngineError};
use crate::actor::Actor;
use crate::alert::{Alert, Status, StatusChange};
use crate::store::{AlertStore, Sink, Store};

/// Who asks for a status change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who the caller is, as authenticated: an IAM ARN (`sts:GetCallerIdentity`) or an OS user.
    pub principal: String,
    /// A name the caller gave (`--as`), kept beside the authenticated one.
    pub on_behalf_of: Option<String>,
}

/// Why a status change was refused.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No such alert.
    #[error("no alert {0}")]
    NotFound(String),
    /// The caller is the person the alert names.
    #[error("{caller} is named by alert {alert_id} and cannot close it")]
    NamedCaller {
        /// The alert.
        alert_id: String,
        /// The caller, as matched.
        caller: String,
    },
    /// The alert has that status already.
    #[error("alert {alert_id} is {status} already")]
    Unchanged {
        /// The alert.
        alert_id: String,
        /// Its status.
        status: &'static str,
    },
    /// The store or the sink failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The names an alert gives its actor, lowercased: the person behind the
/// session, the session and role, the Kubernetes user, and anyone listed as
/// possibly behind a service account.
fn named(actor: &Actor) -> Vec<String> {
    let mut out: Vec<String> = [
        actor.originating_principal.as_deref(),
        actor.iam_arn.as_deref(),
        actor.session_name.as_deref(),
        actor.source_identity.as_deref(),
        Some(actor.kubernetes_username.as_str()),
    ]
    .into_iter()
    .flatten()
    .chain(actor.possible_origins.iter().map(|p| p.principal.as_str()))
    .filter(|n| !n.is_empty())
    .map(str::to_ascii_lowercase)
    .collect();
    // `admin:alice-example.com`-style usernames: the part after the role.
    out.extend(actor.kubernetes_username.split_once(':').map(|(_, u)| u.to_ascii_lowercase()));
    with_local_parts(out)
}

/// Adds the user part of every e-mail-like name (`alice` of
/// `alice@example.com`): refusing a close to a namesake errs on the safe side.
fn with_local_parts(mut names: Vec<String>) -> Vec<String> {
    let locals: Vec<String> = names
        .iter()
        .filter_map(|n| n.rsplit('/').next()?.split_once('@').map(|(user, _)| user.to_owned()))
        .filter(|u| !u.is_empty())
        .collect();
    names.extend(locals);
    names
}

/// The forms a caller may appear under in an alert: the whole principal,
/// its last path part (an IAM user or session name), the `--as` name.
fn forms(caller: &Caller) -> Vec<String> {
    let p = caller.principal.to_ascii_lowercase();
    let mut out = vec![p.clone()];
    out.extend(p.rsplit('/').next().map(str::to_owned));
    out.extend(caller.on_behalf_of.as_deref().map(str::to_ascii_lowercase));
    // Username templates write `alice@example.com` as `alice-example.com`.
    let dashed: Vec<String> = out.iter().map(|f| f.replace('@', "-")).collect();
    out.extend(dashed);
    with_local_parts(out)
}

impl<S: Store + ?Sized> Engine<'_, S> {
    /// Sets an alert's status, as `caller`, for `reason`; records and
    /// publishes the revision that says so.
    pub fn set_status(
        &mut self,
        alert_id: &str,
        status: Status,
        reason: &str,
        caller: &Caller,
        sink: &mut dyn Sink,
    ) -> Result<Alert, LifecycleError> {
        let now = self.clock();
        let Some(record) = self.store.stored_alert(alert_id, now).map_err(EngineError::from)? else {
            return Err(LifecycleError::NotFound(alert_id.to_owned()));
        };
        let alert = &record.value.alert;
        if alert.status == status {
            return Err(LifecycleError::Unchanged { alert_id: alert_id.to_owned(), status: status.as_str() });
        }
        if status.is_closed() {
            let names = named(&alert.actor);
            if let Some(caller) = forms(caller).into_iter().find(|f| names.contains(f)) {
                return Err(LifecycleError::NamedCaller { alert_id: alert_id.to_owned(), caller });
            }
        }
        let change = StatusChange {
            status,
            from: alert.status,
            by: caller.principal.clone(),
            on_behalf_of: caller.on_behalf_of.clone(),
            at: now,
            reason: reason.to_owned(),
        };
        let revised = self.revise(alert_id, now, sink, |a| {
            a.status = status;
            a.status_changes.push(change);
        })?;
        revised.ok_or_else(|| LifecycleError::NotFound(alert_id.to_owned()))
    }
}
