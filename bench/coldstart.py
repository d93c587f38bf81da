"""Cold start of the audit-ingest bootstrap beside a minimal lambda_runtime one.

Each run starts a bootstrap as Lambda does: a fresh process pointed at a
Runtime API (here one on loopback, answering as Lambda's does), with its
configuration in the environment and AWS behind AWS_ENDPOINT_URL (moto).
Measured per run:

- ready: from just before the process is started to its first
  `GET /runtime/invocation/next` (the runtime built, audit-ingest's AWS
  clients and configuration too);
- first event: from that request's answer (a CloudWatch Logs subscription
  event with Ingress writes that open alerts) to the function's response,
  its DynamoDB, SNS and S3 calls against moto included.

Usage: coldstart.py AUDIT_INGEST MINIMAL [RUNS]. Prints the medians, the
best runs and the ratio of the two bootstraps' ready times.
"""

import base64
import gzip
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import boto3

REGION = "eu-west-1"
TOPIC = "alerts"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {seconds} s")


def ingress_write(i, name):
    """An update of an Ingress that opens its allowlist to the internet, by a person."""
    obj = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": str(100 + i),
                     "annotations": {"nginx.ingress.kubernetes.io/allowlist-source-range": "0.0.0.0/0"}},
        "spec": {"ingressClassName": "nginx",
                 "rules": [{"host": f"{name}.example.com", "http": {"paths": [
                     {"path": "/", "pathType": "Prefix",
                      "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    }
    arn = "arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com"
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": f"cold-{i}-7c1d-4e2f-9a3b", "stage": "ResponseComplete",
        "requestURI": f"/apis/networking.k8s.io/v1/namespaces/shop/ingresses/{name}", "verb": "update",
        "user": {"username": arn, "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLEID",
                 "groups": ["system:authenticated"],
                 "extra": {"accessKeyId": ["ASIAEXAMPLEKEY"], "arn": [arn],
                           "canonicalArn": ["arn:aws:iam::111122223333:role/Admin"],
                           "sessionName": ["alice@example.com"]}},
        "sourceIPs": ["192.0.2.10"], "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3978b2a",
        "objectRef": {"resource": "ingresses", "namespace": "shop", "name": name,
                      "apiGroup": "networking.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": obj, "responseObject": obj,
        "requestReceivedTimestamp": f"2024-05-01T02:0{i}:00.000000Z",
        "stageTimestamp": f"2024-05-01T02:0{i}:00.100000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }


def subscription_event():
    """Three audit events, two of them Ingress writes that open alerts."""
    read = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "cold-read",
            "stage": "ResponseComplete", "verb": "get", "user": {"username": "system:node:ip-10-0-0-1"},
            "objectRef": {"resource": "configmaps", "namespace": "kube-system", "name": "kube-proxy"},
            "responseStatus": {"code": 200}, "requestReceivedTimestamp": "2024-05-01T02:00:00.000000Z",
            "stageTimestamp": "2024-05-01T02:00:00.010000Z"}
    events = [read, ingress_write(1, "web"), ingress_write(2, "api")]
    envelope = {
        "messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/eks/prod/cluster",
        "logStream": "kube-apiserver-audit-0a1b2c3d4e5f", "subscriptionFilters": ["ingress-sentinel"],
        "logEvents": [{"id": f"3791{i:06}", "timestamp": 1714528800000 + i, "message": json.dumps(e)}
                      for i, e in enumerate(events)],
    }
    data = base64.b64encode(gzip.compress(json.dumps(envelope, separators=(",", ":")).encode())).decode()
    return json.dumps({"awslogs": {"data": data}}).encode()


class RuntimeApi:
    """Lambda's Runtime API on loopback, for one invocation per process."""

    def __init__(self, event):
        self.event = event
        self.lock = threading.Condition()
        self.ready_at = None
        self.answered_at = None
        self.done_at = None
        self.error = None
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                with api.lock:
                    first = api.ready_at is None
                    if first:
                        api.ready_at = time.perf_counter()
                if not first:
                    # One invocation per process: the next one never comes.
                    time.sleep(3600)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(api.event)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", "00000000-0000-0000-0000-000000000001")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:eu-west-1:111122223333:function:audit-ingest")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000001")
                self.end_headers()
                self.wfile.write(api.event)
                self.wfile.flush()
                with api.lock:
                    api.answered_at = time.perf_counter()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with api.lock:
                    api.done_at = time.perf_counter()
                    if not self.path.endswith("/response"):
                        api.error = body.decode(errors="replace")
                    api.lock.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # The bootstrap is killed while it waits for its second event.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, seconds=60):
        with self.lock:
            self.lock.wait_for(lambda: self.done_at is not None, timeout=seconds)


def stack(endpoint):
    """The tables, topic and bucket audit-ingest writes to, as the template defines them."""
    # Everything from the run before goes: the first event opens its alerts every time.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
    kw = {"endpoint_url": endpoint, "region_name": REGION}
    ddb = boto3.client("dynamodb", **kw)
    s, n = "S", "N"
    ddb.create_table(TableName="state", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": s},
                                           {"AttributeName": "sk", "AttributeType": s}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    ddb.create_table(TableName="alerts", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "alert_id", "AttributeType": s},
                                           {"AttributeName": "outbox", "AttributeType": s},
                                           {"AttributeName": "outbox_at", "AttributeType": n}],
                     KeySchema=[{"AttributeName": "alert_id", "KeyType": "HASH"}],
                     GlobalSecondaryIndexes=[{"IndexName": "outbox",
                                              "KeySchema": [{"AttributeName": "outbox", "KeyType": "HASH"},
                                                            {"AttributeName": "outbox_at", "KeyType": "RANGE"}],
                                              "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    ddb.create_table(TableName="history", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "alert_id", "AttributeType": s},
                                           {"AttributeName": "revision", "AttributeType": n}],
                     KeySchema=[{"AttributeName": "alert_id", "KeyType": "HASH"},
                                {"AttributeName": "revision", "KeyType": "RANGE"}])
    topic = boto3.client("sns", **kw).create_topic(Name=TOPIC)["TopicArn"]
    boto3.client("s3", **kw).create_bucket(Bucket="evidence",
                                           CreateBucketConfiguration={"LocationConstraint": REGION})
    return topic


def run_once(binary, env, event):
    api = RuntimeApi(event)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.port}")
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        api.wait()
    finally:
        proc.kill()
        _, err = proc.communicate()
        api.server.shutdown()
    if api.done_at is None or api.error is not None:
        raise SystemExit(f"{binary} did not answer: {api.error}\n{err.decode(errors='replace')[-2000:]}")
    return (api.ready_at - started) * 1000, (api.done_at - api.answered_at) * 1000


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    ingest, minimal = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        base = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": "audit-ingest", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/audit-ingest",
            "STATE_TABLE": "state", "ALERTS_TABLE": "alerts", "HISTORY_TABLE": "history",
            "EVIDENCE_BUCKET": "evidence", "CLUSTER_NAME": "prod", "RUST_LOG": "warn",
        }
        for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            if name in os.environ:
                base[name] = os.environ[name]
        event = subscription_event()
        results = {"audit-ingest": [], "minimal": []}
        # Interleaved, so both see the same machine.
        for _ in range(runs):
            base["ALERT_TOPIC_ARN"] = stack(endpoint)
            results["audit-ingest"].append(run_once(ingest, base, event))
            results["minimal"].append(run_once(minimal, base, event))
    finally:
        moto.kill()
        moto.wait()
    print(f"cold start, {runs} runs each (median, best), loopback Runtime API, AWS on moto")
    for name, rows in results.items():
        ready = [r for r, _ in rows]
        first = [f for _, f in rows]
        print(f"  {name:13} ready {statistics.median(ready):6.1f} ms (best {min(ready):5.1f})"
              f"   first event {statistics.median(first):6.1f} ms (best {min(first):5.1f})")
    ratio = statistics.median(r for r, _ in results["audit-ingest"]) / statistics.median(
        r for r, _ in results["minimal"])
    print(f"  ready, audit-ingest / minimal: {ratio:.2f}x")
    sizes = {name: os.path.getsize(path) for name, path in (("audit-ingest", ingest), ("minimal", minimal))}
    print("  binary size: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
