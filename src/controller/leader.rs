//! Leader election on a coordination.k8s.io Lease: of several replicas only the holder
//! reconciles (writes to AWS). The holder renews the lease; a replica that cannot renew
//! within the lease duration stops, and another takes the expired lease over.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
}

/// The last failure of a retry loop: a new one is a warning, the same again (every 2 s
/// while the API server is away) is for debug.
#[derive(Default)]
struct Failure(Option<String>);

impl Failure {
    fn log(&mut self, e: &kube::Error, what: &'static str) {
        let text = e.to_string();
        let error = crate::telemetry::Excerpt(&text);
        if self.0.as_ref() == Some(&text) {
            tracing::debug!(%error, "{what}");
        } else {
            tracing::warn!(%error, "{what}");
        }
        self.0 = Some(text);
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaderElection {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: String, lease_duration: Duration) -> Self {
        LeaderElection { api: Api::namespaced(client, namespace), name: name.to_string(), identity, lease_duration }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How often the leader renews and a candidate tries: client-go's 2 s, sooner for
    /// short leases. A candidate then takes a released lease within 2 s.
    fn retry_period(&self) -> Duration {
        (self.lease_duration / 5).min(Duration::from_secs(2))
    }

    /// Takes or renews the lease; `false` while another replica holds it.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let seconds = self.lease_duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let held_for = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(seconds) as i64);
        let expired = spec.renew_time.as_ref().is_none_or(|r| Timestamp::now().duration_since(r.0) > held_for);
        if holder != self.identity && !holder.is_empty() && !expired {
            return Ok(false);
        }
        if holder != self.identity {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(now);
        // The resourceVersion in `lease` makes a concurrent taker fail with a conflict.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        let mut failure = Failure::default();
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => failure.log(&e, "leader election: reading the lease failed"),
            }
            tokio::time::sleep(self.retry_period()).await;
        }
    }

    /// Renews the lease until a renewal has failed for longer than the lease lasts;
    /// returns then (leadership is lost: the caller must stop writing).
    pub async fn keep(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        let mut failure = Failure::default();
        loop {
            tokio::time::sleep(self.retry_period()).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renewed = tokio::time::Instant::now();
                    failure = Failure::default();
                }
                Ok(false) => return,
                Err(e) => failure.log(&e, "leader election: renewing the lease failed"),
            }
            if last_renewed.elapsed() >= self.lease_duration {
                return;
            }
        }
    }

    /// Gives the lease up, so another replica takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else { return };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if let Err(e) = self.api.replace(&self.name, &PostParams::default(), &lease).await {
            tracing::warn!(error = %crate::telemetry::Excerpt(&e), "leader election: releasing the lease failed");
        }
    }
}
