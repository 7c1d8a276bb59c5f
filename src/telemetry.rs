//! Logging, the metrics registry, and the /metrics /healthz /readyz server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    // Colours only on a terminal: logs collected from a file or a pipe stay plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// At most this many bytes of any one value or error text go into a log line: user input
/// (an annotation value) can be 100 kB or more, and errors quote it.
pub const MAX_LOGGED: usize = 300;

/// Displays at most [`MAX_LOGGED`] bytes of a value (cut on a character boundary, marked
/// with `…`), without formatting the rest of it.
pub struct Excerpt<'a, T: ?Sized>(pub &'a T);

impl<T: std::fmt::Display + ?Sized> std::fmt::Display for Excerpt<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Bounded { text: String::new(), cut: false };
        // Fails only where the text was cut, which stops the formatting there.
        let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{}", self.0));
        f.write_str(&out.text)?;
        if out.cut { f.write_str("…") } else { Ok(()) }
    }
}

struct Bounded {
    text: String,
    cut: bool,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = MAX_LOGGED - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&s[..end]);
        self.cut = true;
        Err(std::fmt::Error)
    }
}

/// Which errors are worth a warning: an object's error the first time, and again only
/// when it changes or, while it lasts, after a backoff (as its requeue backs off), so a
/// bad object retried over and over does not log at retry speed. Repeats in between
/// are for debug.
#[derive(Default)]
pub struct Repeats {
    /// By object, by hash of the message.
    seen: Mutex<HashMap<String, HashMap<u64, Repeat>>>,
}

/// When an error may be a warning again, and the interval it waits then.
type Repeat = (Instant, Duration);

/// The interval after an error's first warning; it doubles with each repeat, up to [`REPEAT_MAX`].
const REPEAT_FIRST: Duration = Duration::from_secs(30);
const REPEAT_MAX: Duration = Duration::from_secs(10 * 60);
/// Past this many objects the memory starts again (repeats then warn once more).
const REPEAT_OBJECTS: usize = 4096;

impl Repeats {
    /// True when `message` about `object` should be a warning now (and records it).
    pub fn warn_now(&self, object: &str, message: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        message.hash(&mut h);
        let key = h.finish();
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= REPEAT_OBJECTS && !seen.contains_key(object) {
            seen.clear();
        }
        let messages = seen.entry(object.to_string()).or_default();
        match messages.get_mut(&key) {
            Some((due, _)) if now < *due => false,
            Some((due, interval)) => {
                *interval = (*interval * 2).min(REPEAT_MAX);
                *due = now + *interval;
                true
            }
            None => {
                messages.insert(key, (now + REPEAT_FIRST, REPEAT_FIRST));
                true
            }
        }
    }

    /// The object is fine again: its next error is a warning at once.
    pub fn forget(&self, object: &str) {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).remove(object);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsCallLabels {
    service: &'static str,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    change: &'static str,
}

/// Every metric the controller exports. Labels come from small fixed sets only.
pub struct Metrics {
    registry: Registry,
    aws_calls: Family<AwsCallLabels, Counter>,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    targets: Family<DirectionLabels, Counter>,
    queue_depth: Family<QueueLabels, Gauge>,
    target_updates: Family<ResultLabels, Counter>,
    budget_tokens: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
    budget_waits: Family<BudgetLabels, Counter>,
    budget_wait_seconds: Family<BudgetLabels, Counter<f64, AtomicU64>>,
    /// The call budget whose levels `budget_tokens` shows, read at every scrape.
    budget: OnceLock<Arc<crate::aws::budget::Budget>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("alb_controller");
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        registry.register("aws_api_calls", "AWS API calls by service, operation and outcome", aws_calls.clone());
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register("reconcile_duration_seconds", "Reconcile duration", reconcile_duration.clone());
        let targets = Family::<DirectionLabels, Counter>::default();
        registry.register("targets_changed", "Targets registered or deregistered", targets.clone());
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "workqueue_depth",
            "Work waiting: Ingresses triggered and not yet reconciled (queue=ingresses), groups with endpoint changes not yet applied (queue=target_groups)",
            queue_depth.clone(),
        );
        let target_updates = Family::<ResultLabels, Counter>::default();
        registry.register(
            "target_updates",
            "Groups whose targets the endpoint fast path brought up to date, by result",
            target_updates.clone(),
        );
        let budget_tokens = Family::<BudgetLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "aws_budget_tokens",
            "Tokens in each bucket of the AWS call budget (below zero: calls are waiting for that many)",
            budget_tokens.clone(),
        );
        let budget_waits = Family::<BudgetLabels, Counter>::default();
        registry.register("aws_budget_waits", "AWS calls that waited for a token, by the bucket waited for", budget_waits.clone());
        let budget_wait_seconds = Family::<BudgetLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "aws_budget_wait_seconds",
            "Time AWS calls waited for tokens, by the bucket waited for",
            budget_wait_seconds.clone(),
        );
        Metrics {
            registry,
            aws_calls,
            reconciles,
            reconcile_duration,
            targets,
            queue_depth,
            target_updates,
            budget_tokens,
            budget_waits,
            budget_wait_seconds,
            budget: OnceLock::new(),
        }
    }
}

impl Metrics {
    pub fn aws_call(&self, service: &'static str, operation: &'static str, outcome: &'static str) {
        self.aws_calls.get_or_create(&AwsCallLabels { service, operation, outcome }).inc();
    }

    pub fn reconciled(&self, result: &'static str, seconds: f64) {
        self.reconciles.get_or_create(&ResultLabels { result }).inc();
        self.reconcile_duration.observe(seconds);
    }

    pub fn target_update(&self, result: &'static str) {
        self.target_updates.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn queue_depth(&self, queue: &'static str, depth: usize) {
        self.queue_depth.get_or_create(&QueueLabels { queue }).set(depth as i64);
    }

    pub fn targets_changed(&self, change: &'static str, count: usize) {
        self.targets.get_or_create(&DirectionLabels { change }).inc_by(count as u64);
    }

    /// Shows this budget's bucket levels from now on.
    pub fn watch_budget(&self, budget: Arc<crate::aws::budget::Budget>) {
        let _ = self.budget.set(budget);
    }

    /// One AWS call waited `wait` for a token of `class`.
    pub fn aws_budget_waited(&self, class: &'static str, wait: Duration) {
        self.budget_waits.get_or_create(&BudgetLabels { class }).inc();
        self.budget_wait_seconds.get_or_create(&BudgetLabels { class }).inc_by(wait.as_secs_f64());
    }

    pub fn encode(&self) -> String {
        if let Some(budget) = self.budget.get() {
            for (class, tokens) in budget.levels() {
                self.budget_tokens.get_or_create(&BudgetLabels { class: class.name() }).set(tokens);
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Shared state of the HTTP endpoints.
#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// True once every cache has listed its objects.
    pub ready: tokio::sync::watch::Receiver<bool>,
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], h.metrics.encode())
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if *h.ready.borrow() { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "caches not synced") }
}

pub async fn serve(addr: SocketAddr, health: Health) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics /healthz /readyz");
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_excerpts_are_bounded() {
        assert_eq!(Excerpt("short").to_string(), "short");
        assert_eq!(Excerpt(&"x".repeat(MAX_LOGGED)).to_string().len(), MAX_LOGGED, "exactly the limit is kept whole");
        let long = format!("annotation alb.ingress.kubernetes.io/tags: {}", "é".repeat(50_000));
        let cut = Excerpt(&long).to_string();
        assert!(cut.len() <= MAX_LOGGED + '…'.len_utf8() && cut.ends_with('…'), "{}", cut.len());
        assert!(cut.starts_with("annotation alb.ingress.kubernetes.io/tags: é"));
        // Pieces written one by one (as an error's Display does) are cut as well.
        let error = std::io::Error::other(long);
        assert!(Excerpt(&error).to_string().len() <= MAX_LOGGED + '…'.len_utf8());
    }

    #[test]
    fn a_repeated_error_warns_once_until_it_changes_or_the_object_recovers() {
        let repeats = Repeats::default();
        assert!(repeats.warn_now("ns/a", "bad scheme"));
        assert!(!repeats.warn_now("ns/a", "bad scheme"), "a repeat within the interval");
        assert!(repeats.warn_now("ns/b", "bad scheme"), "another object");
        assert!(repeats.warn_now("ns/a", "bad tags"), "another error");
        assert!(!repeats.warn_now("ns/a", "bad scheme"), "the first error is still known");
        repeats.forget("ns/a");
        assert!(repeats.warn_now("ns/a", "bad scheme"), "after a recovery");
    }
}
