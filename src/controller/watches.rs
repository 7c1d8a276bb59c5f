//! The watches behind the caches. Each is re-established within seconds after it breaks,
//! and says whether its cache is in sync, for /readyz and for reconciles.
//!
//! kube-runtime's `default_backoff()` waits up to 30 s plus as much jitter between attempts
//! and resets only after 120 s without an error; the `Controller` then backs off again, on
//! all its trigger streams at once, for every error one of them yields. After a 30 s API
//! server outage that left Ingress changes unread for minutes. Here a broken watch retries
//! after at most [`MAX_RETRY`] (plus jitter) and the Controller never sees an error.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// The first retry after a failure; each further one waits twice as long, up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// A failure this long after the previous one starts the backoff again from [`FIRST_RETRY`].
const BACKOFF_RESET: Duration = Duration::from_secs(30);

/// Whether every watch has listed its objects since it last failed.
pub struct Readiness {
    /// One flag per watch: in sync.
    synced: Mutex<Vec<bool>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl Readiness {
    pub fn new() -> Arc<Readiness> {
        Arc::new(Readiness { synced: Mutex::new(Vec::new()), ready: tokio::sync::watch::channel(false).0 })
    }

    /// True while every watch is in sync.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Forgets every watch (they have ended): not ready until new ones have listed.
    pub fn reset(&self) {
        self.synced.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.ready.send_replace(false);
    }

    /// A new watch, not in sync yet; returns its index.
    fn register(&self) -> usize {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        synced.push(false);
        self.ready.send_replace(false);
        synced.len() - 1
    }

    fn set(&self, watch: usize, in_sync: bool) {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(flag) = synced.get_mut(watch) else { return };
        *flag = in_sync;
        let all = synced.iter().all(|s| *s);
        self.ready.send_if_modified(|ready| std::mem::replace(ready, all) != all);
    }
}

/// The delay before the `failures`-th retry in a row (1-based): doubling from
/// [`FIRST_RETRY`] up to [`MAX_RETRY`], with up to 20 % jitter either way.
fn retry_delay(failures: u32) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_RETRY).mul_f64(rand::random_range(0.8..1.2))
}

/// A watcher that starts over with a fresh list after every failure, after a short backoff.
/// kube's watcher resumes from its last resourceVersion when it can, and then nothing tells
/// that it has recovered; a fresh list ends with `InitDone`, which marks the cache in sync.
fn relisting<K>(api: Api<K>, config: watcher::Config) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    struct State<K> {
        api: Api<K>,
        config: watcher::Config,
        inner: BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>,
        failures: u32,
        last_failure: Option<Instant>,
        /// Set after a failure: wait this long, then list again.
        retry_in: Option<Duration>,
    }
    let inner = watcher(api.clone(), config.clone()).boxed();
    let state = State { api, config, inner, failures: 0, last_failure: None, retry_in: None };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(delay) = s.retry_in.take() {
                tokio::time::sleep(delay).await;
                s.inner = watcher(s.api.clone(), s.config.clone()).boxed();
            }
            match s.inner.next().await {
                Some(Err(e)) => {
                    if s.last_failure.is_some_and(|at| at.elapsed() > BACKOFF_RESET) {
                        s.failures = 0;
                    }
                    s.failures += 1;
                    s.last_failure = Some(Instant::now());
                    s.retry_in = Some(retry_delay(s.failures));
                    return Some((Err(e), s));
                }
                Some(Ok(event)) => return Some((Ok(event), s)),
                // A watcher never ends; should it, list again.
                None => s.retry_in = Some(FIRST_RETRY),
            }
        }
    })
}

/// Watches `api` into the cache `writer` feeds (objects slimmed by `slim`), marking the
/// watch out of sync in `readiness` while it is broken. Yields each event (after the cache
/// has it); failures are logged here and never reach the caller.
pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    readiness: &Arc<Readiness>,
    kind: &'static str,
) -> impl Stream<Item = watcher::Event<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let readiness = readiness.clone();
    let index = readiness.register();
    // A new failure is a warning; the same one again (each retry while the API server is
    // away) is for debug.
    let mut last_failure: Option<String> = None;
    reflector::reflector(writer, relisting(api, config).modify(super::slim)).filter_map(move |event| {
        let event = match event {
            Ok(event) => {
                if matches!(event, watcher::Event::InitDone) {
                    readiness.set(index, true);
                    last_failure = None;
                }
                Some(event)
            }
            Err(e) => {
                readiness.set(index, false);
                let text = e.to_string();
                let error = crate::telemetry::Excerpt(&text);
                if last_failure.as_ref() == Some(&text) {
                    tracing::debug!(kind, %error, "watch failed again; listing again shortly");
                } else {
                    tracing::warn!(kind, %error, "watch failed; listing again shortly");
                }
                last_failure = Some(text);
                None
            }
        };
        futures::future::ready(event)
    })
}

/// The objects of a watch's events that say an object changed (as kube's `touched_objects`).
pub fn touched<K: Send + 'static>(
    events: impl Stream<Item = watcher::Event<K>> + Send + 'static,
) -> impl Stream<Item = K> + Send + 'static {
    events.filter_map(|event| {
        futures::future::ready(match event {
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) | watcher::Event::Delete(obj) => Some(obj),
            watcher::Event::Init | watcher::Event::InitDone => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_come_within_seconds_however_long_the_outage() {
        let secs = |failures| retry_delay(failures).as_secs_f64();
        assert!((0.4..=0.6).contains(&secs(1)), "{}", secs(1));
        assert!((1.6..=2.4).contains(&secs(3)), "{}", secs(3));
        for failures in [5, 10, 40, u32::MAX] {
            assert!((4.0..=6.0).contains(&secs(failures)), "{failures}: {}", secs(failures));
        }
    }

    #[test]
    fn ready_only_when_every_watch_is_in_sync() {
        let readiness = Readiness::new();
        let rx = readiness.subscribe();
        let (a, b) = (readiness.register(), readiness.register());
        assert!(!*rx.borrow());
        readiness.set(a, true);
        assert!(!*rx.borrow(), "one watch has not listed yet");
        readiness.set(b, true);
        assert!(*rx.borrow());
        readiness.set(a, false);
        assert!(!*rx.borrow(), "a broken watch makes it not ready");
        readiness.set(a, true);
        assert!(*rx.borrow());
        readiness.reset();
        assert!(!*rx.borrow(), "watches of a new term have not listed yet");
        let c = readiness.register();
        readiness.set(c, true);
        assert!(*rx.borrow());
    }
}
