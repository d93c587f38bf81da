//! Function configuration, read and checked once at cold start.

use sentinel_core::policy::{Pattern, Policy};

/// A missing or invalid environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable does not hold a valid value.
    #[error("environment variable {name} is invalid: {message}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        message: String,
    },
}

/// What both functions need.
#[derive(Clone, Debug)]
pub struct Config {
    /// `STATE_TABLE`: baselines, identity records, plans, incidents, learned patterns.
    pub state_table: String,
    /// `ALERTS_TABLE`: one item per alert, for compliance exports.
    pub alerts_table: String,
    /// `ALERT_TOPIC_ARN`: where alerts are published.
    pub topic_arn: String,
    /// `EVIDENCE_BUCKET`: quarantined records and the raw events behind alerts.
    pub evidence_bucket: String,
    /// `HISTORY_TABLE`: one item per alert revision and status change (in
    /// the state table when unset).
    pub history_table: Option<String>,
    /// `CHAT_TOPIC_ARN`: where the chat rendering of each revision goes, if anywhere.
    pub chat_topic_arn: Option<String>,
    /// The policy: `POLICY_TOML` (inline) or defaults, with `CLUSTER_NAME` as the default cluster.
    pub policy: Policy,
}

/// A comma-separated list, trimmed, without empty items.
fn list(value: &str) -> Vec<String> {
    value.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect()
}

fn required(name: &'static str, get: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    get(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name))
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (the environment, or a test's map).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut policy = match get("POLICY_TOML").filter(|p| !p.trim().is_empty()) {
            Some(text) => Policy::from_toml(&text)
                .map_err(|e| ConfigError::Invalid { name: "POLICY_TOML", message: e.to_string() })?,
            None => Policy::default(),
        };
        if let Some(cluster) = get("CLUSTER_NAME").filter(|c| !c.is_empty()) {
            policy.cluster = cluster;
        }
        // The stack knows where its audit logs come from (a list: its own
        // cluster's group, and member accounts' EKS groups): anything else is untrusted.
        if let Some(groups) = get("AUDIT_LOG_GROUP").filter(|g| !g.trim().is_empty()) {
            policy.pipeline.log_groups = list(&groups)
                .iter()
                .map(|g| {
                    Pattern::new(g)
                        .map_err(|e| ConfigError::Invalid { name: "AUDIT_LOG_GROUP", message: e.to_string() })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(account) = get("STACK_ACCOUNT").filter(|a| !a.trim().is_empty()) {
            policy.account = Some(account.trim().to_owned());
        }
        if let Some(accounts) = get("SOURCE_ACCOUNTS").filter(|a| !a.trim().is_empty()) {
            policy.pipeline.accounts = list(&accounts);
        }
        // The stack's own resources, watched in CloudTrail whatever the
        // policy says: names it knows exactly, and a prefix for those
        // CloudFormation names after the stack. The policy can add to them,
        // never take them away.
        let names = |name: &'static str| -> Result<Option<Vec<Pattern>>, ConfigError> {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    list(&v)
                        .iter()
                        .map(|p| Pattern::new(p).map_err(|e| ConfigError::Invalid { name, message: e.to_string() }))
                        .collect()
                })
                .transpose()
        };
        if let Some(prefix) = names("PIPELINE_PREFIX")? {
            let starts: Vec<Pattern> =
                prefix.iter().filter_map(|p| Pattern::new(&format!("{}*", p.as_str())).ok()).collect();
            let pipeline = &mut policy.pipeline;
            for list in [&mut pipeline.functions, &mut pipeline.roles, &mut pipeline.rules, &mut pipeline.alarms] {
                list.extend(starts.iter().cloned());
            }
        }
        for (name, field) in [
            ("PIPELINE_BUCKETS", &mut policy.pipeline.buckets),
            ("PIPELINE_KEYS", &mut policy.pipeline.keys),
            ("PIPELINE_TOPICS", &mut policy.pipeline.topics),
            ("PIPELINE_TABLES", &mut policy.pipeline.tables),
        ] {
            if let Some(patterns) = names(name)? {
                field.extend(patterns);
            }
        }
        let topic_arn = required("ALERT_TOPIC_ARN", get)?;
        if !topic_arn.starts_with("arn:") {
            return Err(ConfigError::Invalid {
                name: "ALERT_TOPIC_ARN",
                message: format!("{topic_arn:?} is not an ARN"),
            });
        }
        Ok(Self {
            state_table: required("STATE_TABLE", get)?,
            alerts_table: required("ALERTS_TABLE", get)?,
            evidence_bucket: required("EVIDENCE_BUCKET", get)?,
            history_table: get("HISTORY_TABLE").filter(|v| !v.trim().is_empty()),
            chat_topic_arn: get("CHAT_TOPIC_ARN").filter(|v| !v.trim().is_empty()),
            topic_arn,
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn every_required_variable_is_named_when_missing_or_invalid() {
        let full = [
            ("STATE_TABLE", "s"),
            ("ALERTS_TABLE", "a"),
            ("ALERT_TOPIC_ARN", "arn:aws:sns:eu-west-1:1:t"),
            ("EVIDENCE_BUCKET", "e"),
        ];
        assert!(Config::from_lookup(&lookup(&full)).is_ok());
        for missing in ["STATE_TABLE", "ALERTS_TABLE", "ALERT_TOPIC_ARN", "EVIDENCE_BUCKET"] {
            let vars: Vec<(&str, &str)> = full.iter().copied().filter(|(k, _)| *k != missing).collect();
            let err = Config::from_lookup(&lookup(&vars)).unwrap_err().to_string();
            assert!(err.contains(missing), "{err}");
        }
        let mut bad = full.to_vec();
        bad.push(("POLICY_TOML", "[[windows]]\nname='x'"));
        let err = Config::from_lookup(&lookup(&bad)).unwrap_err().to_string();
        assert!(err.contains("POLICY_TOML") && err.contains("line"), "{err}");
        let mut topic = full.to_vec();
        topic[2] = ("ALERT_TOPIC_ARN", "alerts");
        assert!(Config::from_lookup(&lookup(&topic)).unwrap_err().to_string().contains("ALERT_TOPIC_ARN"));
    }

    #[test]
    fn the_cluster_name_and_the_audit_source_set_the_policy() {
        let vars = [
            ("STATE_TABLE", "s"),
            ("ALERTS_TABLE", "a"),
            ("ALERT_TOPIC_ARN", "arn:x"),
            ("EVIDENCE_BUCKET", "e"),
            ("CLUSTER_NAME", "prod"),
            ("AUDIT_LOG_GROUP", "/aws/eks/prod/cluster"),
            ("SOURCE_ACCOUNTS", "111122223333, 444455556666"),
            ("STACK_ACCOUNT", "111122223333"),
        ];
        let policy = Config::from_lookup(&lookup(&vars)).unwrap().policy;
        assert_eq!(policy.cluster, "prod");
        assert_eq!(policy.account.as_deref(), Some("111122223333"));
        let mut stack = vars.to_vec();
        stack.extend([("PIPELINE_PREFIX", "sentinel-prod-"), ("PIPELINE_BUCKETS", "b1,b2")]);
        stack.push(("POLICY_TOML", "[pipeline]\nfunctions = []\nbuckets = ['audit-archive']"));
        let pipeline = Config::from_lookup(&lookup(&stack)).unwrap().policy.pipeline;
        // The stack's names are watched whatever the policy says; the policy adds its own.
        let any = |list: &[Pattern], name: &str| list.iter().any(|p| p.matches(name));
        assert!(any(&pipeline.functions, "sentinel-prod-AuditIngestFunction-AbC"));
        assert!(any(&pipeline.roles, "sentinel-prod-AuditIngestFunctionRole-XyZ"));
        assert_eq!(pipeline.buckets.iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["audit-archive", "b1", "b2"]);
        assert_eq!(policy.pipeline.accounts, ["111122223333", "444455556666"]);
        assert!(policy.pipeline.log_groups[0].matches("/aws/eks/prod/cluster"));
        assert!(!policy.pipeline.log_groups[0].matches("/aws/eks/other/cluster"));
        // With member accounts: the stack's own group and every EKS cluster's.
        let mut org = vars.to_vec();
        org.push(("AUDIT_LOG_GROUP", "/audit/prod, /aws/eks/*/cluster"));
        let groups = Config::from_lookup(&lookup(&org)).unwrap().policy.pipeline.log_groups;
        assert!(["/audit/prod", "/aws/eks/other/cluster"].iter().all(|g| groups.iter().any(|p| p.matches(g))));
        assert!(!groups.iter().any(|p| p.matches("/aws/lambda/x")));
    }
}
