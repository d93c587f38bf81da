//! A fault-injecting HTTP proxy on loopback, in front of `moto_server`.
//!
//! The functions under test reach AWS through it (`AWS_ENDPOINT_URL`), so
//! every fault arrives the way the real services send it: an error response
//! in the service's own protocol (DynamoDB JSON, SNS query XML, S3 REST XML),
//! a slow answer, a body cut short, a connection reset. A script says which
//! occurrences of which API call fail and how; every other request is
//! forwarded to moto unchanged.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What goes wrong.
#[derive(Clone)]
pub enum Fault {
    /// The service fails (HTTP 5xx).
    Unavailable,
    /// The service throttles.
    Throttled,
    /// The caller may not do this.
    AccessDenied,
    /// The table, topic, bucket or key does not exist.
    Missing,
    /// The answer comes after this long (then the request goes through).
    Latency(Duration),
    /// The response's body is cut off half-way and the connection closed.
    Truncate,
    /// The connection is reset before any response.
    Reset,
    /// The request goes through, then this runs (e.g. kill the function).
    After(Arc<dyn Fn() + Send + Sync>),
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "5xx",
            Self::Throttled => "throttling",
            Self::AccessDenied => "access denied",
            Self::Missing => "resource not found",
            Self::Latency(_) => "latency",
            Self::Truncate => "truncated body",
            Self::Reset => "connection reset",
            Self::After(_) => "kill after the call",
        })
    }
}

/// One line of a script: occurrences `skip+1 ..= skip+times` of `call` get `fault`.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The call, `service:Operation` (e.g. `dynamodb:PutItem`, `sns:Publish`, `s3:GetObject`).
    pub call: String,
    /// Occurrences let through first.
    pub skip: usize,
    /// Occurrences that fail (SDK retries are occurrences too).
    pub times: usize,
    /// How.
    pub fault: Fault,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: BTreeMap<String, usize>,
    injected: Vec<String>,
    /// Every call forwarded and answered: when the request was read, when its answer was ready to write.
    timeline: Vec<(String, Instant, Instant)>,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        // A blocking accept: a connection opened for a concurrent call is
        // served at once, so calls in flight together overlap on the wire
        // too. Dropping the proxy wakes it with a connection of its own.
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(client) = client {
                    let s = Arc::clone(&s);
                    std::thread::spawn(move || serve(client, upstream, &s));
                }
            }
        });
        Self { port, state, stop, thread: Some(thread) }
    }

    /// The endpoint URL for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the script and forgets what was counted.
    pub fn script(&self, rules: Vec<Rule>) {
        let mut state = self.state.lock().expect("proxy state");
        *state = State { rules, ..State::default() };
    }

    /// Replaces the script with one that holds every call the functions
    /// make for `latency`, as a network would: calls made together overlap
    /// on the wire whatever the load on this machine.
    pub fn slow_every_call(&self, latency: Duration) {
        let dynamodb = ["GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "TransactWriteItems", "DeleteItem"];
        let calls = dynamodb
            .map(|op| format!("dynamodb:{op}"))
            .into_iter()
            .chain(["sns:Publish", "s3:PutObject"].map(String::from));
        let rule = |call| Rule { call, skip: 0, times: usize::MAX / 2, fault: Fault::Latency(latency) };
        self.script(calls.map(rule).collect());
    }

    /// How often `call` was made since the last script.
    pub fn calls(&self, call: &str) -> usize {
        self.state.lock().expect("proxy state").seen.get(call).copied().unwrap_or(0)
    }

    /// Every call made since the last script, by name, with how often.
    pub fn all_calls(&self) -> BTreeMap<String, usize> {
        self.state.lock().expect("proxy state").seen.clone()
    }

    /// The calls since the last script as round trips: calls in flight at
    /// the same time are one round trip. In order of their start.
    pub fn round_trips(&self) -> Vec<Vec<String>> {
        let mut calls = self.state.lock().expect("proxy state").timeline.clone();
        calls.sort_by_key(|(_, start, _)| *start);
        let mut trips: Vec<(Vec<String>, Instant)> = Vec::new();
        for (call, start, end) in calls {
            match trips.last_mut() {
                Some((names, until)) if start < *until => {
                    names.push(call);
                    *until = (*until).max(end);
                }
                _ => trips.push((vec![call], end)),
            }
        }
        trips.into_iter().map(|(names, _)| names).collect()
    }

    /// Every fault injected since the last script, as `call #n: fault`.
    pub fn injected(&self) -> Vec<String> {
        self.state.lock().expect("proxy state").injected.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP/1.1 message: its first line, headers and body (de-chunked).
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn write_to(&self, out: &mut impl Write, body_len: usize) -> std::io::Result<()> {
        let mut head = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            let framing = ["content-length", "transfer-encoding", "connection", "keep-alive"];
            if !framing.iter().any(|f| k.eq_ignore_ascii_case(f)) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body[..body_len.min(self.body.len())])?;
        out.flush()
    }
}

/// Reads one message; `None` at a clean end of the stream. `until_close`:
/// a response without framing headers ends when the connection closes.
fn read_message(reader: &mut impl BufRead, until_close: bool) -> std::io::Result<Option<Message>> {
    let mut start = String::new();
    if reader.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut message = Message { start: start.trim_end().to_owned(), headers, body: Vec::new() };
    let chunked = message.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if n == 0 {
                let mut end = String::new();
                while reader.read_line(&mut end)? > 2 {
                    end.clear();
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            message.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = message.header("content-length").and_then(|n| n.parse::<usize>().ok()) {
        message.body = vec![0; n];
        reader.read_exact(&mut message.body)?;
    } else if until_close && !message.start.contains(" 204 ") && !message.start.contains(" 304 ") {
        reader.read_to_end(&mut message.body)?;
    }
    Ok(Some(message))
}

/// `service:Operation` of a request.
fn call_of(request: &Message) -> String {
    if let Some(target) = request.header("x-amz-target") {
        let service = if target.starts_with("DynamoDB") { "dynamodb" } else { "other" };
        return format!("{service}:{}", target.rsplit('.').next().unwrap_or(target));
    }
    let body = String::from_utf8_lossy(&request.body);
    if let Some(action) = body.split('&').find_map(|p| p.strip_prefix("Action=")) {
        return format!("sns:{action}");
    }
    let mut parts = request.start.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let has_key = path.trim_start_matches('/').split_once('/').is_some_and(|(_, k)| !k.is_empty());
    match (method, has_key) {
        ("GET", true) => "s3:GetObject".into(),
        ("PUT", true) => "s3:PutObject".into(),
        ("HEAD", true) => "s3:HeadObject".into(),
        (m, _) => format!("s3:{m}"),
    }
}

/// The service's own error response.
fn error_response(call: &str, fault: &Fault) -> Message {
    let service = call.split(':').next().unwrap_or("");
    let (status, code) = match (service, fault) {
        ("dynamodb", Fault::Unavailable) => (500, "InternalServerError"),
        ("dynamodb", Fault::Throttled) => (400, "ThrottlingException"),
        ("dynamodb", Fault::AccessDenied) => (400, "AccessDeniedException"),
        ("dynamodb", _) => (400, "ResourceNotFoundException"),
        ("sns", Fault::Unavailable) => (500, "InternalError"),
        ("sns", Fault::Throttled) => (400, "Throttling"),
        ("sns", Fault::AccessDenied) => (403, "AuthorizationError"),
        ("sns", _) => (404, "NotFound"),
        (_, Fault::Unavailable) => (500, "InternalError"),
        (_, Fault::Throttled) => (503, "SlowDown"),
        (_, Fault::AccessDenied) => (403, "AccessDenied"),
        (_, _) => (404, "NoSuchKey"),
    };
    let (content_type, body) = match service {
        "dynamodb" => (
            "application/x-amz-json-1.0",
            format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected by the test proxy"}}"#),
        ),
        "sns" => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>test</RequestId></ErrorResponse>"
            ),
        ),
        _ => (
            "application/xml",
            format!("<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"),
        ),
    };
    let reason = if status >= 500 { "Service Unavailable" } else { "Bad Request" };
    Message {
        start: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("x-amzn-ErrorType".into(), code.into()),
            ("x-amzn-RequestId".into(), "test".into()),
        ],
        body: body.into_bytes(),
    }
}

fn forward(request: &Message, upstream: u16) -> std::io::Result<Message> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut forwarded =
        Message { start: request.start.clone(), headers: request.headers.clone(), body: request.body.clone() };
    forwarded.headers.push(("Connection".into(), "close".into()));
    forwarded.write_to(&mut up, usize::MAX)?;
    let mut reader = BufReader::new(up);
    read_message(&mut reader, true)?.ok_or_else(|| std::io::Error::other("moto closed without a response"))
}

fn serve(client: TcpStream, upstream: u16, state: &Mutex<State>) {
    let _ = client.set_nonblocking(false);
    let Ok(reader) = client.try_clone() else { return };
    let mut reader = BufReader::new(reader);
    let mut client = client;
    while let Ok(Some(request)) = read_message(&mut reader, false) {
        let call = call_of(&request);
        let fault = {
            let Ok(mut s) = state.lock() else { return };
            let n = {
                let seen = s.seen.entry(call.clone()).or_insert(0);
                *seen += 1;
                *seen
            };
            let fault =
                s.rules.iter().find(|r| r.call == call && n > r.skip && n <= r.skip + r.times).map(|r| r.fault.clone());
            if let Some(f) = &fault {
                s.injected.push(format!("{call} #{n}: {f:?}"));
            }
            fault
        };
        let started = Instant::now();
        // The call ends when its answer is about to be written, not after:
        // the function may read the answer and send its next call before
        // this thread runs again, and that call must not seem to overlap.
        let relay = |client: &mut TcpStream| {
            let answer = forward(&request, upstream)?;
            if let Ok(mut s) = state.lock() {
                s.timeline.push((call.clone(), started, Instant::now()));
            }
            answer.write_to(client, usize::MAX)
        };
        let result = match fault {
            None => relay(&mut client),
            Some(Fault::Latency(d)) => {
                std::thread::sleep(d);
                relay(&mut client)
            }
            Some(Fault::Truncate) => {
                let _ = forward(&request, upstream).and_then(|r| r.write_to(&mut client, r.body.len() / 2));
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            Some(Fault::Reset) => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            Some(Fault::After(hook)) => {
                let answer = forward(&request, upstream);
                hook();
                answer.and_then(|r| r.write_to(&mut client, usize::MAX))
            }
            Some(f) => error_response(&call, &f).write_to(&mut client, usize::MAX),
        };
        if result.is_err() {
            return;
        }
    }
}
