//! A fault-injecting HTTP proxy in front of LocalStack, one per test (its own port, its own
//! rules), so parallel tests never see each other's faults. The controller is pointed at it
//! with `AWS_ENDPOINT_URL`; the test's own SDK clients keep talking to LocalStack directly.
//!
//! Faults are chosen per operation (ELBv2 and EC2 name it in the form body's `Action=`, ACM
//! in the `X-Amz-Target` header) by rules the test sets and changes while it runs: "the next
//! N calls of CreateSecurityGroup: served, reply lost", or "every operation: 20 % mixed
//! faults" from a seeded RNG (the calls of concurrent reconciles interleave differently
//! from run to run, so which call gets which fault still varies). What was injected is counted per operation, so a test can
//! assert that the fault really happened.
//!
//! The proxy runs on its own thread and runtime: it keeps serving while the test's
//! (current-thread) runtime is busy elsewhere.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What happens to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 400 with the service's throttling error (`Throttling`, `RequestLimitExceeded`,
    /// `ThrottlingException`); not forwarded.
    Throttle,
    /// 500 with the service's internal error; not forwarded.
    Status500,
    /// 503 with the service's unavailable error; not forwarded.
    Status503,
    /// The connection is closed without a response; not forwarded.
    Reset,
    /// Forwarded after this delay.
    Delay(Duration),
    /// Forwarded and served, then answered with a 500 instead of the reply.
    ServedReply500,
    /// Forwarded and served, then the connection is closed instead of the reply.
    ServedReplyReset,
}

impl Fault {
    /// The transient faults mixed faults draw from (delays of one second)...
    pub const TRANSIENT: [Fault; 5] =
        [Fault::Throttle, Fault::Status500, Fault::Status503, Fault::Reset, Fault::Delay(Duration::from_secs(1))];
    /// ...and the lost replies, drawn as often as all of those together: they are the
    /// faults that need more than a retry.
    pub const LOST_REPLY: [Fault; 2] = [Fault::ServedReply500, Fault::ServedReplyReset];

    /// The kind's name in the counts.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::Reset => "reset",
            Fault::Delay(_) => "delay",
            Fault::ServedReply500 => "served-reply-500",
            Fault::ServedReplyReset => "served-reply-reset",
        }
    }

    /// Whether the request reaches LocalStack.
    fn forwards(self) -> bool {
        matches!(self, Fault::Delay(_) | Fault::ServedReply500 | Fault::ServedReplyReset)
    }
}

enum Effect {
    Fault(Fault),
    /// Each call gets a fault with this probability: half of the time one of
    /// [`Fault::LOST_REPLY`], else one of [`Fault::TRANSIENT`].
    Mixed(f64),
}

struct Rule {
    /// `None`: every operation.
    operation: Option<String>,
    effect: Effect,
    /// Calls it still applies to (`None`: until cleared).
    remaining: Option<u32>,
}

#[derive(Default)]
struct Counts {
    /// Calls seen, by operation.
    calls: BTreeMap<String, u64>,
    /// Faults injected, by operation and kind.
    injected: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// When each call arrived, by operation, in order.
    arrivals: BTreeMap<String, Vec<Instant>>,
}

struct State {
    rules: Vec<Rule>,
    rng: StdRng,
    counts: Counts,
}

impl State {
    /// The fault for one call of `operation` (the first rule that matches decides), counted.
    fn decide(&mut self, operation: &str) -> Option<Fault> {
        *self.counts.calls.entry(operation.to_string()).or_default() += 1;
        self.counts.arrivals.entry(operation.to_string()).or_default().push(Instant::now());
        let i = self.rules.iter().position(|r| r.operation.as_deref().is_none_or(|op| op == operation))?;
        let rule = &mut self.rules[i];
        let fault = match rule.effect {
            Effect::Fault(f) => Some(f),
            Effect::Mixed(rate) => self.rng.random_bool(rate).then(|| {
                let kinds: &[Fault] = if self.rng.random_bool(0.5) { &Fault::LOST_REPLY } else { &Fault::TRANSIENT };
                kinds[self.rng.random_range(0..kinds.len())]
            }),
        };
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                self.rules.remove(i);
            }
        }
        if let Some(f) = fault {
            *self.counts.injected.entry(operation.to_string()).or_default().entry(f.kind()).or_default() += 1;
        }
        fault
    }
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free port of 127.0.0.1.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_end_matches('/').strip_prefix("http://").expect("upstream is an http:// URL").to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State { rules: Vec::new(), rng: StdRng::seed_from_u64(0), counts: Counts::default() }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("fault proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let (state, upstream) = (shared.clone(), upstream.clone());
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |req| handle(state.clone(), upstream.clone(), req));
                            // A connection closed on purpose (a reset fault) ends here with an error.
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        FaultProxy { addr, state, stop: Some(stop) }
    }

    /// The endpoint to give the controller (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The next `n` calls of `operation` get `fault`.
    pub fn next(&self, operation: &str, n: u32, fault: Fault) {
        self.state().rules.push(Rule { operation: Some(operation.into()), effect: Effect::Fault(fault), remaining: Some(n) });
    }

    /// Every call of `operation` gets `fault`, until [`FaultProxy::clear`].
    pub fn always(&self, operation: &str, fault: Fault) {
        self.state().rules.push(Rule { operation: Some(operation.into()), effect: Effect::Fault(fault), remaining: None });
    }

    /// Every call of every operation gets a fault with probability `rate` (half of them lost
    /// replies, the rest transient), drawn from an RNG seeded with `seed`, until
    /// [`FaultProxy::clear`].
    pub fn mixed(&self, rate: f64, seed: u64) {
        let mut state = self.state();
        state.rng = StdRng::seed_from_u64(seed);
        state.rules.push(Rule { operation: None, effect: Effect::Mixed(rate), remaining: None });
    }

    /// Removes every rule: from now on every call is forwarded untouched.
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// Calls of `operation` seen so far, faulted or not.
    pub fn calls(&self, operation: &str) -> u64 {
        self.state().counts.calls.get(operation).copied().unwrap_or(0)
    }

    /// Faults injected into calls of `operation`, of every kind.
    pub fn injected(&self, operation: &str) -> u64 {
        self.state().counts.injected.get(operation).map(|k| k.values().sum()).unwrap_or(0)
    }

    /// Faults injected, by kind, over every operation.
    pub fn injected_by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for kinds in self.state().counts.injected.values() {
            for (kind, n) in kinds {
                *out.entry(*kind).or_default() += n;
            }
        }
        out
    }

    /// When the calls of `operation` arrived, in order (faulted or not).
    pub fn arrivals(&self, operation: &str) -> Vec<Instant> {
        self.state().counts.arrivals.get(operation).cloned().unwrap_or_default()
    }

    /// Calls seen, summed over every operation.
    pub fn calls_total(&self) -> u64 {
        self.state().counts.calls.values().sum()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The service's error for a fault, shaped as its protocol shapes errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// EC2's query protocol (`<Response><Errors>…`).
    Ec2,
    /// The AWS query protocol (`<ErrorResponse>…`), ELBv2.
    Query,
    /// AWS JSON 1.1 (`X-Amz-Target`), ACM.
    Json,
}

fn error_response(protocol: Protocol, status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let (content_type, body) = match protocol {
        Protocol::Ec2 => (
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
            ),
        ),
        Protocol::Query => (
            "text/xml",
            format!(
                "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                if status < 500 { "Sender" } else { "Receiver" }
            ),
        ),
        Protocol::Json => ("application/x-amz-json-1.1", format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}")),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "fault-proxy")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn injected_error(protocol: Protocol, fault: Fault) -> Response<Full<Bytes>> {
    match (fault, protocol) {
        (Fault::Throttle, Protocol::Ec2) => error_response(protocol, 400, "RequestLimitExceeded", "Request limit exceeded."),
        (Fault::Throttle, Protocol::Query) => error_response(protocol, 400, "Throttling", "Rate exceeded"),
        (Fault::Throttle, Protocol::Json) => error_response(protocol, 400, "ThrottlingException", "Rate exceeded"),
        (Fault::Status503, Protocol::Ec2) => error_response(protocol, 503, "Unavailable", "The server is overloaded."),
        (Fault::Status503, _) => error_response(protocol, 503, "ServiceUnavailable", "Service is unavailable."),
        (_, Protocol::Ec2) => error_response(protocol, 500, "InternalError", "An internal error has occurred."),
        (_, _) => error_response(protocol, 500, "InternalFailure", "An internal error has occurred."),
    }
}

/// The connection is closed without a response.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

/// (operation, protocol) of a request: `X-Amz-Target: CertificateManager.ListCertificates`,
/// or `Action=…` in the form body (or the query string); EC2 is told by its signing scope.
fn operation_of(parts: &hyper::http::request::Parts, body: &[u8]) -> (String, Protocol) {
    if let Some(target) = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return (target.rsplit('.').next().unwrap_or(target).to_string(), Protocol::Json);
    }
    let auth = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let protocol = if auth.contains("/ec2/aws4_request") { Protocol::Ec2 } else { Protocol::Query };
    let form = String::from_utf8_lossy(body);
    let query = parts.uri.query().unwrap_or("");
    let action = form.split('&').chain(query.split('&')).find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("unknown");
    (action.to_string(), protocol)
}

async fn handle(state: Arc<Mutex<State>>, upstream: String, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let (operation, protocol) = operation_of(&parts, &body);
    let fault = lock(&state).decide(&operation);
    match fault {
        Some(Fault::Reset) => return Err(Dropped),
        Some(f) if !f.forwards() => return Ok(injected_error(protocol, f)),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let reply = forward(&upstream, parts, body).await;
    match fault {
        Some(Fault::ServedReply500) => Ok(injected_error(protocol, Fault::Status500)),
        Some(Fault::ServedReplyReset) => Err(Dropped),
        // LocalStack unreachable: the caller sees what it would see without the proxy.
        _ => reply.map_err(|_| Dropped),
    }
}

/// Sends the request to LocalStack on a connection of its own; returns the whole reply.
async fn forward(upstream: &str, parts: hyper::http::request::Parts, body: Bytes) -> Result<Response<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(upstream).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = Request::builder().method(parts.method).uri(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str()) {
            req = req.header(name, value);
        }
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let reply = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = reply.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let mut out = Response::builder().status(parts.status);
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str()) {
            out = out.header(name, value);
        }
    }
    out.body(Full::new(body)).map_err(|e| e.to_string())
}

/// Headers that describe one connection or one framing, not the message: hyper writes its own.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(name, "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "upgrade" | "proxy-connection" | "te")
}
