//! AWS clients and the one path every AWS call goes through: each attempt waits for the
//! call budget's tokens (aws/budget.rs), is counted by service/operation/outcome, retried on
//! throttling and 5xx with jittered backoff, errors classified by SDK error code (never by
//! message text).

pub mod budget;
pub mod discovery;
pub mod enis;
pub mod inventory;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use backon::{ExponentialBuilder, Retryable};

use crate::telemetry::Metrics;
use budget::{Budget, Class};

/// Why an AWS call failed, reduced to what callers decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Throttled,
    ServerError,
    ClientError,
    TransportError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Throttled => "throttled",
            Outcome::ServerError => "server_error",
            Outcome::ClientError => "client_error",
            Outcome::TransportError => "transport_error",
        }
    }
    fn retryable(self) -> bool {
        matches!(self, Outcome::Throttled | Outcome::ServerError | Outcome::TransportError)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("AWS {service}:{operation} failed ({}): {message}", code.as_deref().unwrap_or("no error code"))]
    Api { service: &'static str, operation: &'static str, outcome: Outcome, code: Option<String>, message: String },
    #[error("building an AWS request: {0}")]
    Build(String),
    #[error("AWS returned an unexpected response to {operation}: {what}")]
    Response { operation: &'static str, what: String },
}

impl Error {
    /// The SDK error code, e.g. `LoadBalancerNotFound`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
    pub fn is_code(&self, codes: &[&str]) -> bool {
        self.code().is_some_and(|c| codes.contains(&c))
    }
    /// A refusal of the request itself (4xx, not throttling): repeating it cannot help.
    pub fn is_client_error(&self) -> bool {
        self.outcome() == Outcome::ClientError
    }
    /// Throttling, a 5xx or a broken connection that outlasted the call's own retries:
    /// AWS may well answer the same request a little later.
    pub fn is_transient(&self) -> bool {
        self.outcome().retryable()
    }
    fn outcome(&self) -> Outcome {
        match self {
            Error::Api { outcome, .. } => *outcome,
            _ => Outcome::ClientError,
        }
    }
}

impl From<aws_smithy_types::error::operation::BuildError> for Error {
    fn from(e: aws_smithy_types::error::operation::BuildError) -> Self {
        Error::Build(e.to_string())
    }
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
];

fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    service: &'static str,
    operation: &'static str,
    err: &SdkError<E, HttpResponse>,
) -> Error {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let outcome = match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Outcome::TransportError,
        _ if code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c)) || status == Some(429) => Outcome::Throttled,
        _ if status.is_some_and(|s| s >= 500) => Outcome::ServerError,
        SdkError::ResponseError(_) => Outcome::TransportError,
        _ => Outcome::ClientError,
    };
    let message =
        err.message().map(str::to_owned).unwrap_or_else(|| aws_smithy_types::error::display::DisplayErrorContext(err).to_string());
    Error::Api { service, operation, outcome, code, message }
}

/// The SDK clients plus the budgeted, counting, retrying call path.
#[derive(Clone)]
pub struct Aws {
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub acm: aws_sdk_acm::Client,
    metrics: Arc<Metrics>,
    budget: Arc<Budget>,
    backoff: ExponentialBuilder,
}

impl Aws {
    /// Clients from the standard AWS configuration chain (env, profile, IRSA, Pod Identity);
    /// `AWS_ENDPOINT_URL` is honoured by the SDK itself.
    pub async fn from_env(region: Option<String>, metrics: Arc<Metrics>, budget: Arc<Budget>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            // Retries happen in `call`, so that every attempt is counted once.
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        let sdk = loader.load().await;
        metrics.watch_budget(budget.clone());
        Aws {
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            acm: aws_sdk_acm::Client::new(&sdk),
            metrics,
            budget,
            backoff: ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(10))
                .with_max_times(6),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs one AWS operation: every attempt waits for its tokens of the call budget and is
    /// counted; throttling/5xx/transport failures are retried with jittered exponential backoff.
    pub async fn call<T, E, Fut, F>(&self, service: &'static str, operation: &'static str, mut f: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let metrics = &self.metrics;
        let budget = &self.budget;
        let class = Class::of(service, operation);
        let attempt = || {
            // The SDK's future sends nothing until it is polled, after the budget's wait.
            let fut = f();
            async move {
                if let Some(class) = class {
                    let grant = budget.acquire(class).await;
                    if let Some(waited_for) = grant.waited_for {
                        metrics.aws_budget_waited(waited_for.name(), grant.wait);
                    }
                }
                match fut.await {
                    Ok(v) => {
                        metrics.aws_call(service, operation, Outcome::Success.as_str());
                        tracing::debug!(%operation, "AWS call");
                        Ok(v)
                    }
                    Err(e) => {
                        let err = classify(service, operation, &e);
                        metrics.aws_call(service, operation, err.outcome().as_str());
                        Err(err)
                    }
                }
            }
        };
        attempt
            .retry(self.backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &Error| e.outcome().retryable())
            .notify(|e: &Error, after: Duration| tracing::debug!(error = %crate::telemetry::Excerpt(e), ?after, "retrying AWS call"))
            .await
    }
}

/// An EC2 Describe filter.
pub fn ec2_filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name(name).set_values(Some(values.into_iter().map(Into::into).collect())).build()
}

/// ELBv2 tags as a map.
pub fn elbv2_tags_to_map(tags: &[aws_sdk_elasticloadbalancingv2::types::Tag]) -> crate::model::Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// Pages through a Marker/NextToken style API, stopping on a repeated marker
/// (LocalStack can hand back the same marker forever).
pub async fn paginate<T, Fut, F>(mut page: F) -> Result<Vec<T>, Error>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), Error>>,
{
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut marker = None;
    loop {
        let (batch, next) = page(marker.take()).await?;
        items.extend(batch);
        match next {
            Some(m) if !m.is_empty() && seen.insert(m.clone()) => marker = Some(m),
            _ => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paginate_stops_on_repeated_marker() {
        let mut calls = 0;
        let items = paginate(|_m| {
            calls += 1;
            async move { Ok::<_, Error>((vec![1], Some("same".to_string()))) }
        })
        .await
        .unwrap();
        assert_eq!(items, vec![1, 1]);
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn paginate_follows_markers_until_none() {
        let pages = [Some("a"), Some("b"), None];
        let mut i = 0;
        let items = paginate(|_m| {
            let next = pages[i].map(str::to_string);
            i += 1;
            async move { Ok::<_, Error>((vec![i], next)) }
        })
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);
    }
}
