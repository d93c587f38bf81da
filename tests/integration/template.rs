//! The SAM template, read as data: the subscription filter carries exactly
//! the events the engine acts on, within CloudWatch Logs' 1,024 characters;
//! the dead-man and failure alarms exist, each with a parameter, and go to
//! the operations topic under its own key; every role holds only the calls
//! the code makes; both alert tables are exported every day into the
//! evidence bucket, kept under lifecycle and Object Lock; member accounts
//! reach the stack through a destination only they may subscribe to, with
//! the same filter; and no resource depends on itself.

use std::collections::{BTreeMap, BTreeSet};

use sentinel_core::audit::Kind;
use serde_json::{Value, json};

/// The template as JSON, short-form tags spelled out (`!Ref X` is `{"Ref": "X"}`,
/// `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`).
fn template() -> Value {
    read_template("infra/template.yaml")
}

fn read_template(path: &str) -> Value {
    let text = std::fs::read_to_string(sentinel_tests::aws::workspace().join(path)).unwrap();
    cfn(&serde_norway::from_str(&text).unwrap())
}

fn cfn(v: &serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => json!(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => json!(s),
        Y::Sequence(items) => Value::Array(items.iter().map(cfn).collect()),
        Y::Mapping(m) => Value::Object(
            m.iter().map(|(k, v)| (k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned), cfn(v))).collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = cfn(&t.value);
            match name {
                "Ref" => json!({"Ref": inner}),
                "GetAtt" => {
                    let parts: Vec<Value> = match inner.as_str() {
                        Some(s) => s.splitn(2, '.').map(|p| json!(p)).collect(),
                        None => inner.as_array().cloned().unwrap_or_default(),
                    };
                    json!({"Fn::GetAtt": parts})
                }
                other => json!({format!("Fn::{other}"): inner}),
            }
        }
    }
}

fn resources(t: &Value) -> &serde_json::Map<String, Value> {
    t["Resources"].as_object().unwrap()
}

fn filter_pattern() -> String {
    let t = template();
    t["Resources"]["AuditSubscription"]["Properties"]["FilterPattern"].as_str().unwrap().to_owned()
}

/// A CloudWatch Logs JSON filter pattern, evaluated: `{ … }` around `&&`,
/// `||`, parentheses and `$.path = "value"` terms, `*` matching any run of characters.
fn matches(pattern: &str, event: &Value) -> bool {
    let inner = pattern.trim().strip_prefix('{').and_then(|p| p.strip_suffix('}')).expect("a JSON filter pattern");
    let tokens = tokenize(inner);
    let mut pos = 0;
    let result = or(&tokens, &mut pos, event);
    assert_eq!(pos, tokens.len(), "the whole pattern parses");
    result
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\n' => {}
            '(' | ')' => out.push(c.to_string()),
            '&' | '|' => {
                chars.next();
                out.push(format!("{c}{c}"));
            }
            '"' => {
                let mut v = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    v.push(c);
                }
                out.push(format!("\"{v}"));
            }
            _ => {
                let mut v = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n == ' ' || n == ')' {
                        break;
                    }
                    v.push(n);
                    chars.next();
                }
                out.push(v);
            }
        }
    }
    out
}

fn or(t: &[String], pos: &mut usize, e: &Value) -> bool {
    let mut v = and(t, pos, e);
    while t.get(*pos).is_some_and(|x| x == "||") {
        *pos += 1;
        v |= and(t, pos, e);
    }
    v
}

fn and(t: &[String], pos: &mut usize, e: &Value) -> bool {
    let mut v = term(t, pos, e);
    while t.get(*pos).is_some_and(|x| x == "&&") {
        *pos += 1;
        v &= term(t, pos, e);
    }
    v
}

fn term(t: &[String], pos: &mut usize, e: &Value) -> bool {
    if t[*pos] == "(" {
        *pos += 1;
        let v = or(t, pos, e);
        assert_eq!(t[*pos], ")");
        *pos += 1;
        return v;
    }
    let (path, op, value) = (&t[*pos], &t[*pos + 1], &t[*pos + 2]);
    *pos += 3;
    assert_eq!(op, "=");
    let pointer = path.strip_prefix("$.").unwrap().replace('.', "/");
    let actual = e.pointer(&format!("/{pointer}")).and_then(Value::as_str).unwrap_or_default();
    glob(value.strip_prefix('"').unwrap(), actual)
}

fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, rest)) => {
            value.starts_with(head) && (0..=value.len() - head.len()).any(|i| glob(rest, &value[head.len() + i..]))
        }
    }
}

fn event(verb: &str, resource: &str, subresource: Option<&str>) -> Value {
    let mut e = json!({"verb": verb, "objectRef": {"resource": resource, "namespace": "shop", "name": "x"}});
    if let Some(s) = subresource {
        e["objectRef"]["subresource"] = json!(s);
    }
    e
}

#[test]
fn the_subscription_filter_carries_every_judged_write_and_access_event_and_fits() {
    let pattern = filter_pattern();
    assert!(pattern.len() <= 1024, "{} characters", pattern.len());
    for kind in Kind::ALL {
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert!(matches(&pattern, &event(verb, kind.resource(), None)), "{verb} {}", kind.resource());
        }
    }
    for (verb, resource, sub) in [
        ("create", "pods", "exec"),
        ("get", "pods", "exec"),
        ("create", "pods", "attach"),
        ("create", "pods", "portforward"),
        ("patch", "pods", "ephemeralcontainers"),
        ("create", "serviceaccounts", "token"),
    ] {
        assert!(matches(&pattern, &event(verb, resource, Some(sub))), "{verb} {resource}/{sub}");
    }
    // The flood stays out: reads, watches, leases, events, pods.
    for (verb, resource) in [
        ("get", "ingresses"),
        ("watch", "ingresses"),
        ("list", "services"),
        ("update", "leases"),
        ("create", "events"),
        ("patch", "pods"),
        ("update", "deployments"),
    ] {
        assert!(!matches(&pattern, &event(verb, resource, None)), "{verb} {resource}");
    }
}

#[test]
fn the_functions_learn_the_audit_source_and_the_evidence_bucket() {
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    for var in [
        "EVIDENCE_BUCKET",
        "AUDIT_LOG_GROUP",
        "SOURCE_ACCOUNTS",
        "STATE_TABLE",
        "ALERTS_TABLE",
        "HISTORY_TABLE",
        "ALERT_TOPIC_ARN",
        "CHAT_TOPIC_ARN",
    ] {
        assert!(!env[var].is_null(), "{var}");
    }
    let mapping = &t["Resources"]["AuditStreamMapping"]["Properties"];
    assert_eq!(mapping["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));
    assert_eq!(mapping["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert!(mapping["MaximumRetryAttempts"].as_u64().is_some_and(|n| n > 0));
    assert!(!mapping["DestinationConfig"]["OnFailure"].is_null());
}

/// Every logical id a value refers to (`Ref`, `Fn::GetAtt`, `${X}` and `${X.Attr}` in `Fn::Sub`).
fn references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("Ref", Value::String(id)) => {
                        out.insert(id.clone());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        out.extend(parts.first().and_then(Value::as_str).map(str::to_owned));
                    }
                    ("Fn::Sub", sub) => {
                        let (text, vars) = match sub {
                            Value::Array(a) => (a[0].as_str().unwrap_or_default(), a.get(1)),
                            other => (other.as_str().unwrap_or_default(), None),
                        };
                        for part in text.split("${").skip(1) {
                            let name = part.split(['}', '.']).next().unwrap_or_default();
                            out.insert(name.to_owned());
                        }
                        if let Some(vars) = vars {
                            references(vars, out);
                        }
                    }
                    _ => references(x, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, out)),
        _ => {}
    }
}

/// What each resource waits for before CloudFormation can create it. A
/// function also waits for its role (its `Policies`) and the globals; an S3
/// event source makes the bucket wait for the function.
fn dependencies(t: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let res = resources(t);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, r) in res {
        let mut d = BTreeSet::new();
        references(&r["Properties"], &mut d);
        match &r["DependsOn"] {
            Value::String(s) => {
                d.insert(s.clone());
            }
            Value::Array(a) => d.extend(a.iter().filter_map(|x| x.as_str().map(str::to_owned))),
            _ => {}
        }
        if r["Type"] == "AWS::Serverless::Function" {
            references(&t["Globals"]["Function"], &mut d);
            for event in r["Properties"]["Events"].as_object().into_iter().flat_map(|e| e.values()) {
                if event["Type"] == "S3" {
                    let mut bucket = BTreeSet::new();
                    references(&event["Properties"]["Bucket"], &mut bucket);
                    for b in bucket {
                        deps.entry(b).or_default().insert(id.clone());
                    }
                }
            }
        }
        d.retain(|x| res.contains_key(x));
        deps.entry(id.clone()).or_default().extend(d);
    }
    deps
}

fn cycle(deps: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in deps.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, deps, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    deps.keys().find_map(|n| visit(n, deps, &mut Vec::new(), &mut done))
}

#[test]
fn no_resource_waits_for_itself() {
    let t = template();
    assert_eq!(cycle(&dependencies(&t)), None);
    // The check finds the cycle a bucket that notifies a function makes when
    // the function's role names the bucket.
    let mut looped = t.clone();
    looped["Resources"]["AuditIngestFunction"]["Properties"]["Policies"][0]["Statement"][0]["Resource"] =
        json!({"Fn::GetAtt": ["AuditExportBucket", "Arn"]});
    let found = cycle(&dependencies(&looped)).expect("a cycle");
    assert!(found.contains(&"AuditExportBucket".to_owned()) && found.contains(&"AuditIngestFunction".to_owned()));
}

fn alarms(t: &Value) -> Vec<(&String, &Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(id, r)| (id, &r["Properties"]))
        .collect()
}

/// The metric an alarm watches: its name and dimensions, directly or in its metric math.
fn watched(alarm: &Value) -> Vec<(String, Value)> {
    match alarm["Metrics"].as_array() {
        Some(metrics) => metrics
            .iter()
            .filter(|m| !m["MetricStat"].is_null())
            .map(|m| {
                let metric = &m["MetricStat"]["Metric"];
                (metric["MetricName"].as_str().unwrap().to_owned(), metric["Dimensions"].clone())
            })
            .collect(),
        None => vec![(alarm["MetricName"].as_str().unwrap().to_owned(), alarm["Dimensions"].clone())],
    }
}

fn dimension<'a>(dimensions: &'a Value, name: &str) -> Option<&'a Value> {
    dimensions.as_array()?.iter().find(|d| d["Name"] == name).map(|d| &d["Value"])
}

#[test]
fn the_dead_man_and_failure_alarms_exist_each_with_a_parameter() {
    let t = template();
    let all = alarms(&t);
    let find = |metric: &str, dim: &str, value: &Value| -> &Value {
        all.iter()
            .find(|(_, a)| watched(a).iter().any(|(m, d)| m == metric && dimension(d, dim) == Some(value)))
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no alarm on {metric} for {dim} = {value}"))
    };
    let function = |id: &str| json!({"Ref": id});
    // The stack's own cluster's group: the first of the trusted groups.
    let audit_group = &t["Globals"]["Function"]["Environment"]["Variables"]["AUDIT_LOG_GROUP"]["Fn::Join"][1][0];
    // Silence: missing data is the failure, so it breaches.
    let silent = find("IncomingLogEvents", "LogGroupName", audit_group);
    for (id, alarm) in [
        ("audit log", silent),
        ("audit-ingest", find("Invocations", "FunctionName", &function("AuditIngestFunction"))),
        ("identity-ingest", find("Invocations", "FunctionName", &function("IdentityIngestFunction"))),
        ("outbox-sweep", find("Invocations", "FunctionName", &function("OutboxSweepFunction"))),
    ] {
        assert_eq!(alarm["TreatMissingData"], "breaching", "{id}");
        assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold", "{id}");
        assert!(alarm["EvaluationPeriods"]["Ref"].is_string(), "{id}: silence is a parameter");
    }
    // Failures of every function.
    for f in ["AuditIngestFunction", "IdentityIngestFunction", "OutboxSweepFunction"] {
        for metric in ["Errors", "Throttles"] {
            find(metric, "FunctionName", &function(f));
        }
    }
    for f in ["AuditIngestFunction", "IdentityIngestFunction"] {
        find("AsyncEventsDropped", "FunctionName", &function(f));
    }
    find("QuarantinedRecords", "Function", &function("AuditIngestFunction"));
    find("QuarantinedRecords", "Function", &function("IdentityIngestFunction"));
    find("ApproximateNumberOfMessagesVisible", "QueueName", &json!({"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}));
    find("IteratorAge", "FunctionName", &function("AuditIngestFunction"));
    // The subscription's own delivery, by its filter's name.
    let filter = &resources(&t)["AuditSubscription"]["Properties"]["FilterName"];
    assert!(!filter.is_null(), "the subscription filter is named");
    for metric in ["DeliveryErrors", "DeliveryThrottling"] {
        let alarm = find(metric, "FilterName", filter);
        let (_, dims) = &watched(alarm)[0];
        assert_eq!(dimension(dims, "LogGroupName"), Some(audit_group), "{metric}");
    }
    // Each threshold (or silence) is a parameter with a default.
    let params = t["Parameters"].as_object().unwrap();
    for (id, alarm) in &all {
        let tuned = [&alarm["Threshold"], &alarm["EvaluationPeriods"]]
            .iter()
            .filter_map(|v| v["Ref"].as_str())
            .map(|p| params.get(p).unwrap_or_else(|| panic!("{id}: no parameter {p}")))
            .collect::<Vec<_>>();
        assert!(!tuned.is_empty(), "{id} has no parameter");
        assert!(tuned.iter().all(|p| !p["Default"].is_null()), "{id}: a parameter without a default");
    }
}

#[test]
fn alarms_go_to_the_operations_topic_under_its_own_key() {
    let t = template();
    let res = resources(&t);
    assert_eq!(res["OpsTopic"]["Properties"]["KmsMasterKeyId"], json!({"Ref": "OpsKey"}));
    assert_eq!(res["AlertTopic"]["Properties"]["KmsMasterKeyId"], json!({"Ref": "DataKey"}));
    for (id, alarm) in alarms(&t) {
        assert_eq!(alarm["AlarmActions"], json!([{"Ref": "OpsTopic"}]), "{id}");
        // Named after the stack, so the product watches it in CloudTrail.
        let name = alarm["AlarmName"]["Fn::Sub"].as_str().unwrap_or_default();
        assert!(name.starts_with("${AWS::StackName}-"), "{id}: {name}");
    }
    // CloudWatch may use the operations key to publish.
    let key = res["OpsKey"]["Properties"]["KeyPolicy"]["Statement"].as_array().unwrap();
    assert!(key.iter().any(|s| s["Principal"]["Service"].to_string().contains("cloudwatch.amazonaws.com")));
}

#[test]
fn every_call_that_can_blind_the_pipeline_reaches_identity_ingest_and_the_sweep_runs_every_minute() {
    let t = template();
    let res = resources(&t);
    let events = &res["IdentityIngestFunction"]["Properties"]["Events"]["PipelineCalls"]["Properties"];
    let sources = events["Pattern"]["source"].as_array().unwrap();
    for s in [
        "aws.s3",
        "aws.kms",
        "aws.lambda",
        "aws.events",
        "aws.sns",
        "aws.cloudwatch",
        "aws.iam",
        "aws.logs",
        "aws.dynamodb",
        "aws.eks",
        "aws.cloudtrail",
        "aws.sts",
    ] {
        assert!(sources.contains(&json!(s)), "{s}");
    }
    assert!(!events["DeadLetterConfig"].is_null(), "undelivered calls are kept");
    let sweep = &res["OutboxSweepFunction"]["Properties"];
    assert_eq!(sweep["Events"]["EveryMinute"]["Properties"]["Schedule"], "rate(1 minute)");
    assert_eq!(sweep["ReservedConcurrentExecutions"], 1, "one sweep at a time");
    // The outbox index is the one the code queries.
    let index = &res["AlertsTable"]["Properties"]["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"], sentinel_aws::OUTBOX_INDEX);
    // The stack's names reach the functions, so the policy cannot unwatch them.
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    for var in ["PIPELINE_PREFIX", "PIPELINE_TABLES", "PIPELINE_TOPICS", "PIPELINE_KEYS", "PIPELINE_BUCKETS"] {
        assert!(!env[var].is_null(), "{var}");
    }
}

/// Each role holds only the calls its code makes, on named resources.
#[test]
fn every_function_role_holds_only_the_calls_the_code_makes() {
    let allowed = [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:DeleteItem",
        "sns:Publish",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "sqs:SendMessage",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:ListShards",
    ];
    let t = template();
    let mut functions = 0;
    for (id, r) in resources(&t).iter().filter(|(_, r)| r["Type"] == "AWS::Serverless::Function") {
        functions += 1;
        let policies = r["Properties"]["Policies"].as_array().unwrap();
        for p in policies {
            let statements = p["Statement"].as_array().unwrap_or_else(|| panic!("{id}: a SAM policy template {p}"));
            let mut flat = Vec::new();
            for s in statements {
                // A conditional statement: both branches are checked.
                match s.get("Fn::If").and_then(Value::as_array) {
                    Some(branches) => flat.extend(branches[1..].iter().filter(|b| b.get("Ref").is_none())),
                    None => flat.push(s),
                }
            }
            for s in flat {
                let actions: Vec<&str> = match &s["Action"] {
                    Value::String(a) => vec![a.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    other => panic!("{id}: {other}"),
                };
                for a in actions {
                    assert!(allowed.contains(&a), "{id}: {a} is not called by the code");
                }
                assert_ne!(s["Resource"], "*", "{id}: every statement names its resource");
            }
        }
    }
    assert_eq!(functions, 3);
}

#[test]
fn both_alert_tables_are_exported_daily_into_the_locked_evidence_bucket() {
    let t = template();
    let r = resources(&t);
    let history = &r["HistoryTable"]["Properties"];
    let keys: Vec<&str> =
        history["KeySchema"].as_array().unwrap().iter().filter_map(|k| k["AttributeName"].as_str()).collect();
    assert_eq!(keys, ["alert_id", "revision"], "one item per revision");
    assert_eq!(r["HistoryTable"]["DeletionPolicy"], "Retain");
    for table in ["AlertsTable", "HistoryTable"] {
        // ExportTableToPointInTime needs point-in-time recovery.
        assert_eq!(r[table]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    }

    let mut exported = BTreeMap::new();
    for (id, s) in r.iter().filter(|(_, s)| s["Type"] == "AWS::Scheduler::Schedule") {
        let target = &s["Properties"]["Target"];
        assert!(target["Arn"].to_string().contains("aws-sdk:dynamodb:exportTableToPointInTime"), "{id}");
        assert!(s["Properties"]["ScheduleExpression"].as_str().unwrap().starts_with("cron("), "{id}: daily");
        assert!(!target["DeadLetterConfig"]["Arn"].is_null(), "{id}: a failed export is kept");
        let sub = target["Input"]["Fn::Sub"].as_array().unwrap();
        let input: Value = serde_json::from_str(sub[0].as_str().unwrap()).unwrap();
        assert_eq!(input["ExportFormat"], "DYNAMODB_JSON", "{id}: the layout sentinel report reads");
        assert_eq!(input["S3Bucket"], "${EvidenceBucket}", "{id}");
        let table = sub[1]["Table"]["Fn::GetAtt"][0].as_str().unwrap().to_owned();
        exported.insert(table, input["S3Prefix"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        exported,
        BTreeMap::from([
            ("AlertsTable".to_owned(), "exports/alerts".to_owned()),
            ("HistoryTable".to_owned(), "exports/history".to_owned())
        ])
    );

    let role = &r["ExportRole"]["Properties"];
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"].as_array().unwrap();
    let s3 = statements.iter().find(|s| s["Action"].to_string().contains("s3:PutObject")).unwrap();
    assert_eq!(s3["Resource"]["Fn::Sub"], "${EvidenceBucket.Arn}/exports/*", "the exports write only their prefix");

    let bucket = &r["EvidenceBucket"]["Properties"];
    assert_eq!(bucket["ObjectLockEnabled"], true);
    let lock = &bucket["ObjectLockConfiguration"]["Fn::If"];
    assert_eq!(lock[0], "HasEvidenceLock");
    assert_eq!(lock[1]["Rule"]["DefaultRetention"]["Days"]["Ref"], "EvidenceLockDays");
    let rules = bucket["LifecycleConfiguration"]["Rules"].as_array().unwrap();
    let exports = rules.iter().find(|r| r["Prefix"] == "exports/").unwrap();
    assert_eq!(exports["Transitions"][0]["StorageClass"], "GLACIER_IR");
    assert_eq!(exports["ExpirationInDays"]["Ref"], "ExportRetentionDays");
    // Evidence expiry must not reach the exports, which are kept for years.
    assert!(rules.iter().all(|r| r["Prefix"].is_string()), "every lifecycle rule is scoped to its prefix");
}

#[test]
fn the_chat_topic_exists_only_when_asked_for_and_every_function_may_publish_to_it() {
    let t = template();
    let r = resources(&t);
    assert_eq!(r["ChatTopic"]["Condition"], "HasChat");
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(env["CHAT_TOPIC_ARN"]["Fn::If"][0], "HasChat");
    for (id, f) in r.iter().filter(|(_, f)| f["Type"] == "AWS::Serverless::Function") {
        let statements = f["Properties"]["Policies"][0]["Statement"].as_array().unwrap();
        let publish = statements.iter().find(|s| s["Action"] == "sns:Publish").unwrap();
        assert!(publish["Resource"].to_string().contains("ChatTopic"), "{id}");
    }
}

#[test]
fn member_accounts_subscribe_through_a_destination_only_they_may_use_with_the_same_filter() {
    let t = template();
    let destination = &t["Resources"]["AuditDestination"];
    assert_eq!(destination["Condition"], "CrossAccount");
    assert_eq!(destination["Properties"]["TargetArn"], json!({"Fn::GetAtt": ["AuditStream", "Arn"]}));
    // The policy names exactly the member accounts, and only lets them subscribe.
    let policy = &destination["Properties"]["DestinationPolicy"]["Fn::Sub"];
    let text = policy[0].as_str().unwrap();
    assert!(
        text.contains(r#""Principal":{"AWS":["${Members}"]}"#)
            && text.contains(r#""Action":"logs:PutSubscriptionFilter""#)
    );
    assert_eq!(policy[1]["Members"], json!({"Fn::Join": ["\",\"", {"Ref": "MemberAccounts"}]}));
    // Members need the stream: a rule refuses them with direct delivery.
    let rule = &t["Rules"]["MembersDeliverThroughKinesis"];
    assert_eq!(rule["Assertions"][0]["Assert"], json!({"Fn::Equals": [{"Ref": "AuditDelivery"}, "Kinesis"]}));
    // Their events are trusted (accounts and log groups), and named by account.
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(env["STACK_ACCOUNT"], json!({"Ref": "AWS::AccountId"}));
    assert!(env["SOURCE_ACCOUNTS"].to_string().contains("MemberAccounts"), "{}", env["SOURCE_ACCOUNTS"]);
    assert!(env["AUDIT_LOG_GROUP"].to_string().contains("/aws/eks/*/cluster"), "{}", env["AUDIT_LOG_GROUP"]);
    // The member template sends exactly what the stack's own subscription sends.
    let member = read_template("infra/member-account.yaml");
    let subscription = &member["Resources"]["AuditSubscription"]["Properties"];
    assert_eq!(subscription["FilterPattern"].as_str(), Some(filter_pattern().as_str()));
    assert_eq!(subscription["DestinationArn"], json!({"Ref": "DestinationArn"}));
}
