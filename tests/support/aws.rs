//! Real AWS APIs for tests: `moto_server` on a free loopback port, the real
//! SDK clients pointed at it, and the real function binaries under the
//! Lambda runtime emulator of `cargo lambda watch`. Each process is stopped
//! (with its children) when its handle drops.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < timeout, "{what} did not listen on 127.0.0.1:{port} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn require(tool: &str) {
    let found =
        std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()));
    assert!(found, "{tool} is not on PATH: run ./scripts/test, which installs it");
}

/// A child process in its own process group, killed with its children on drop.
pub struct Service {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    log: PathBuf,
}

impl Service {
    fn spawn(mut command: Command, port: u16, log: PathBuf, what: &str, timeout: Duration) -> Self {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let service = Self { child, port, log };
        wait_for_port(port, timeout, what);
        service
    }

    /// What the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Dummy credentials and a region for everything that talks to the emulator.
pub const REGION: &str = "eu-west-1";

/// Starts `moto_server` on a free port.
pub fn moto(dir: &Path) -> Service {
    require("moto_server");
    let port = free_port();
    let mut cmd = Command::new("moto_server");
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    Service::spawn(cmd, port, dir.join("moto.log"), "moto_server", Duration::from_secs(60))
}

/// The environment that points a process (a function, the CLI) at the emulator.
pub fn moto_env(moto: &Service) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint(moto)),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
    ]
}

/// The endpoint URL of a moto service.
pub fn endpoint(moto: &Service) -> String {
    format!("http://127.0.0.1:{}", moto.port)
}

/// SDK configuration for the emulator.
pub async fn sdk(moto: &Service) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint(moto))
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// Creates the state, alerts and history tables as the SAM template defines them.
pub async fn create_tables(sdk: &aws_config::SdkConfig, state: &str, alerts: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType,
    };
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |n: &str| {
        AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
    client
        .create_table()
        .table_name(state)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    // The outbox: a sparse index of alerts whose latest revision is unpublished.
    let outbox = GlobalSecondaryIndex::builder()
        .index_name(sentinel_aws::OUTBOX_INDEX)
        .key_schema(key("outbox", KeyType::Hash))
        .key_schema(key("outbox_at", KeyType::Range))
        .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
        .build()
        .unwrap();
    client
        .create_table()
        .table_name(alerts)
        .attribute_definitions(attr("alert_id"))
        .attribute_definitions(attr("outbox"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("outbox_at")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .key_schema(key("alert_id", KeyType::Hash))
        .global_secondary_indexes(outbox)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    client
        .create_table()
        .table_name(HISTORY_TABLE)
        .attribute_definitions(attr("alert_id"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("revision")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .key_schema(key("alert_id", KeyType::Hash))
        .key_schema(key("revision", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// The history table's name in every test.
pub const HISTORY_TABLE: &str = "history";

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the function binaries under `cargo lambda watch` with `env`.
pub fn watch(dir: &Path, env: &[(&str, String)]) -> Service {
    watch_instances(dir, env, 1)
}

/// [`watch`], with up to `instances` instances of a function at once (as
/// Lambda runs concurrent invocations in separate execution environments).
pub fn watch_instances(dir: &Path, env: &[(&str, String)], instances: usize) -> Service {
    require("cargo-lambda");
    let port = free_port();
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace()).args(["lambda", "watch", "-A", "127.0.0.1", "-P", &port.to_string()]);
    cmd.args(["--concurrency", &instances.to_string()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Service::spawn(cmd, port, dir.join("watch.log"), "cargo lambda watch", Duration::from_secs(120))
}

/// How long an invocation may take before it counts as failed.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Invokes a function through the emulator; returns its JSON response.
pub fn invoke(watch: &Service, function: &str, payload: &serde_json::Value, dir: &Path) -> serde_json::Value {
    try_invoke(watch, function, payload, dir, INVOKE_TIMEOUT)
        .unwrap_or_else(|e| panic!("invoke {function} failed: {e}\n--- watch log ---\n{}", watch.log()))
}

/// Invokes a function through the emulator: its JSON response, or the error
/// it failed with (a function that does not answer within `timeout` failed).
pub fn try_invoke(
    watch: &Service,
    function: &str,
    payload: &serde_json::Value,
    dir: &Path,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let file = dir.join(format!("{function}-event.json"));
    std::fs::write(&file, payload.to_string()).unwrap();
    let mut child = Command::new("cargo")
        .current_dir(workspace())
        .args(["lambda", "invoke", function, "-A", "127.0.0.1", "-P", &watch.port.to_string(), "--data-file"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo lambda invoke runs");
    // A function that died mid-invocation never answers the emulator: Lambda
    // would fail the invocation (Runtime.ExitError) and retry it.
    let start = Instant::now();
    while child.try_wait().expect("invoke status").is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("Runtime.ExitError: no answer within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("invoke output");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// moto with the product's two tables (`state`, `alerts`), and a runtime to
/// drive the SDK from synchronous test code.
pub struct Emulator {
    /// The moto server.
    pub moto: Service,
    /// Runs the SDK's futures.
    pub rt: tokio::runtime::Runtime,
    /// SDK configuration pointing at moto.
    pub sdk: aws_config::SdkConfig,
}

impl Emulator {
    /// Starts moto (logging into `dir`) and creates the tables.
    pub fn start(dir: &Path) -> Self {
        let moto = moto(dir);
        let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let sdk = rt.block_on(sdk(&moto));
        rt.block_on(create_tables(&sdk, "state", "alerts"));
        Self { moto, rt, sdk }
    }

    /// The engine's store on the emulated tables.
    pub fn store(&self) -> sentinel_aws::DynamoStore {
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        sentinel_aws::DynamoStore::new(client, "state", "alerts", self.rt.handle().clone())
            .with_history_table(HISTORY_TABLE)
    }

    /// An S3 client on the emulator (path-style addressing).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk).force_path_style(true).build())
    }

    /// The rest of the stack as the template makes it: the alert topic with
    /// a queue subscribed (what a subscriber receives), and the audit-export,
    /// CloudTrail and evidence buckets.
    pub fn stack(&self) -> Stack {
        use aws_sdk_sqs::types::QueueAttributeName;
        let (sns, sqs, s3) = (aws_sdk_sns::Client::new(&self.sdk), aws_sdk_sqs::Client::new(&self.sdk), self.s3());
        self.rt.block_on(async {
            let topic = sns.create_topic().name("alerts").send().await.unwrap().topic_arn.unwrap();
            let url = sqs.create_queue().queue_name("alerts").send().await.unwrap().queue_url.unwrap();
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap();
            let arn = attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
            sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(arn).send().await.unwrap();
            // An e-mail subscriber too: it gets the text rendering.
            sns.subscribe().topic_arn(&topic).protocol("email").endpoint("security@example.com").send().await.unwrap();
            for bucket in ["audit-exports", "trail", "evidence"] {
                s3.create_bucket()
                    .bucket(bucket)
                    .create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            Stack { topic, queue: Queue { client: sqs.clone(), url } }
        })
    }

    /// Every message published to `topic`, as SNS received it (moto's record
    /// of sent notifications): (message, subject, message attributes).
    pub fn published(&self, topic: &str) -> Vec<(String, String, serde_json::Value)> {
        let url = format!("{}/moto-api/data.json", endpoint(&self.moto));
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
                &url,
            ])
            .output()
            .expect("python3 runs");
        let data: serde_json::Value = serde_json::from_slice(&out.stdout).expect("moto's state");
        data["sns"]["Topic"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["arn"] == topic)
            .flat_map(|t| t["sent_notifications"].as_array().cloned().unwrap_or_default())
            .map(|n| {
                (
                    n[1].as_str().unwrap_or_default().to_owned(),
                    n[2].as_str().unwrap_or_default().to_owned(),
                    n[3].clone(),
                )
            })
            .collect()
    }

    /// Forgets every resource and item (moto's reset), then makes the tables again.
    pub fn reset(&self) {
        let url = format!("{}/moto-api/reset", endpoint(&self.moto));
        let status = Command::new("python3")
            .args(["-c", "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='POST'))", &url])
            .status()
            .expect("python3 runs");
        assert!(status.success(), "moto reset");
        self.rt.block_on(create_tables(&self.sdk, "state", "alerts"));
    }
}

/// The stack's topic and a queue subscribed to it.
pub struct Stack {
    /// The alert topic's ARN.
    pub topic: String,
    /// The subscribed queue.
    pub queue: Queue,
}

/// The environment the functions need beside the emulator's: the stack's names.
pub fn function_env(topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STATE_TABLE", "state".to_owned()),
        ("ALERTS_TABLE", "alerts".to_owned()),
        ("ALERT_TOPIC_ARN", topic.to_owned()),
        ("EVIDENCE_BUCKET", "evidence".to_owned()),
        ("HISTORY_TABLE", HISTORY_TABLE.to_owned()),
    ]
}

/// The functions' environment with every AWS call through `proxy` (an
/// endpoint in front of moto), for the cluster `prod`.
pub fn proxied_env(moto: &Service, proxy: &str, topic: &str) -> Vec<(&'static str, String)> {
    let mut env = moto_env(moto);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.extend([("AWS_ENDPOINT_URL", proxy.to_owned()), ("CLUSTER_NAME", "prod".to_owned())]);
    env.extend(function_env(topic));
    env
}

/// Registers CI's change plan for the namespace `shop` of the cluster `prod`.
pub fn plan_ci_for_prod(store: &dyn sentinel_core::store::Store) {
    use sentinel_core::store::Plans;
    let mut plan = crate::engine::ci_plan("shop");
    plan.cluster = "prod".into();
    store.put_plan(&plan, "2024-01-01T00:00:00Z".parse().unwrap()).unwrap();
}

/// A queue subscribed to the alert topic.
pub struct Queue {
    /// The client.
    pub client: aws_sdk_sqs::Client,
    /// Its URL.
    pub url: String,
}

impl Queue {
    /// Every message waiting, as SNS notifications (a short poll that drains the queue).
    pub async fn drain(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let got = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// An S3 `ObjectCreated:Put` notification for one object, shaped as S3 sends
/// it (the shape of `samples/powertools-lambda-python/s3Event.json`); the
/// key is form-URL-encoded as S3 encodes it.
pub fn s3_notification(
    bucket: &str,
    encoded_key: &str,
    version_id: Option<&str>,
    etag: Option<&str>,
) -> serde_json::Value {
    let mut object = serde_json::json!({"key": encoded_key, "size": 1, "sequencer": "0C0F6F405D6ED209E1"});
    if let Some(v) = version_id {
        object["versionId"] = serde_json::json!(v);
    }
    if let Some(e) = etag {
        object["eTag"] = serde_json::json!(e);
    }
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2024-05-03T03:00:05.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"},
        "requestParameters": {"sourceIPAddress": "192.0.2.1"},
        "responseElements": {"x-amz-request-id": "D82B88E5F771F645"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "sentinel",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3I5XTEXAMAI3E"},
                          "arn": format!("arn:aws:s3:::{bucket}")},
               "object": object}
    }]})
}
