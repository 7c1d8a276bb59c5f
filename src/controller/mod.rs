//! kube-runtime wiring: the caches, the watches that map Service/EndpointSlice/
//! IngressClass changes to Ingresses, and the run loop.

mod backend;
mod gates;
mod k8s_writes;
mod leader;
mod reconcile;
mod targets;
mod watches;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::Mutex;

use crate::aws::discovery::Discovery;
use crate::aws::inventory::Inventory;
use crate::aws::{self, Aws};
use crate::config::Config;
use crate::k8s::class::ClassFilter;
use crate::k8s::params::IngressClassParams;
use crate::model::{Dependency, GroupId, ObjKey, TargetSource};
use crate::sync::{self, Actual};
use crate::telemetry::{self, Health, Metrics};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Aws(#[from] aws::Error),
    #[error(transparent)]
    Sync(#[from] sync::Error),
    #[error("{0}")]
    NotReady(&'static str),
}

impl Error {
    /// A small fixed set, used as a metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::Aws(_) | Error::Sync(_) => "aws",
            Error::NotReady(_) => "not_ready",
        }
    }

    /// An outage or throttling (of AWS or of the API server) rather than a refusal: the
    /// retry stays fast, as recovery after an outage must take seconds.
    fn is_transient(&self) -> bool {
        match self {
            Error::Kube(kube::Error::Api(status)) => status.code == 429 || status.code >= 500,
            Error::Kube(_) | Error::NotReady(_) => true,
            Error::Aws(e) => e.is_transient(),
            Error::Sync(e) => e.is_transient(),
        }
    }
}

/// What a converged group looked like, so that a resync with nothing new makes no AWS call.
struct Converged {
    desired_hash: u64,
    actual: Actual,
    /// When AWS was last read for this group (drift check).
    verified_at: std::time::Instant,
    /// Each target group of the stack and where its targets come from.
    target_groups: Vec<ConvergedTargetGroup>,
    /// How the targets' security groups let the load balancer in.
    backend: Option<crate::model::BackendRules>,
    /// The shared backend security group, when the load balancer uses it.
    shared_group: Option<String>,
}

struct ConvergedTargetGroup {
    /// The desired name (readiness gates name it).
    name: String,
    arn: String,
    source: TargetSource,
}

pub struct Context {
    client: Client,
    aws: Aws,
    cfg: Config,
    filter: ClassFilter,
    discovery: Discovery,
    inventory: Inventory,
    /// The targets' network interfaces.
    enis: crate::aws::enis::Enis,
    /// The rules on the targets' security groups, for the whole cluster.
    endpoint_rules: sync::endpoint_rules::EndpointRules,
    /// The cluster's shared backend security group.
    backend_sg: sync::backend_sg::BackendGroup,
    /// Network problems already reported, by group (each is reported once while it lasts).
    network_warnings: Mutex<HashMap<GroupId, BTreeSet<String>>>,
    /// Who our Events say reported them (k8s_writes makes a Recorder per note).
    reporter: Reporter,
    ingresses: Store<Ingress>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    classes: Store<IngressClass>,
    nodes: Store<Node>,
    namespaces: Store<Namespace>,
    /// Pods the readiness-gate webhook gave a gate (labelled so).
    gated_pods: Store<Pod>,
    /// `None` when the IngressClassParams CRD is not installed.
    params: Option<Store<IngressClassParams>>,
    converged: Mutex<HashMap<GroupId, Converged>>,
    /// One reconcile per group at a time.
    group_locks: Mutex<HashMap<GroupId, Arc<Mutex<()>>>>,
    /// The last version of each Ingress that built without problems: an Ingress that turns
    /// invalid keeps contributing this version, so it keeps its last good resources.
    last_good: Mutex<HashMap<ObjKey, Arc<Ingress>>>,
    /// Members whose rules AWS refused: (hash of the refused version, when).
    refused: Mutex<HashMap<ObjKey, (u64, std::time::Instant)>>,
    metrics: Arc<Metrics>,
    /// Set once every cache has listed its objects.
    synced: tokio::sync::watch::Receiver<bool>,
    /// The targets fast path's queue.
    targets: targets::TargetQueue,
    /// Ingresses to reconcile in full (the fast path hands a group back here).
    resync: tokio::sync::mpsc::UnboundedSender<ObjectRef<Ingress>>,
    /// Ingresses triggered and not yet reconciled (the work-queue depth).
    queued: std::sync::Mutex<HashSet<ObjectRef<Ingress>>>,
    /// Reconcile failures in a row, by Ingress: the requeue backs off with them.
    failures: std::sync::Mutex<HashMap<ObjKey, u32>>,
    /// Reconcile errors already logged, by Ingress (forgotten once it reconciles).
    logged_errors: telemetry::Repeats,
    /// Problems of an Ingress already logged (forgotten once it builds without any).
    logged_problems: telemetry::Repeats,
}

impl Context {
    /// The lock that makes reconciles of one group take turns.
    async fn group_lock(&self, group: &GroupId) -> Arc<Mutex<()>> {
        self.group_locks.lock().await.entry(group.clone()).or_default().clone()
    }

    /// Records Ingresses as triggered (the work-queue depth).
    fn enqueue(&self, refs: &[ObjectRef<Ingress>]) {
        let mut queued = targets::lock(&self.queued);
        queued.extend(refs.iter().cloned());
        self.metrics.queue_depth("ingresses", queued.len());
    }

    /// The cached Ingresses that `wanted` picks, recorded as triggered.
    fn trigger(&self, wanted: impl Fn(&Ingress) -> bool) -> Vec<ObjectRef<Ingress>> {
        let refs: Vec<_> = self.ingresses.state().iter().filter(|i| wanted(i)).map(|i| ObjectRef::from_obj(i.as_ref())).collect();
        self.enqueue(&refs);
        refs
    }

    fn started(&self, ing: &ObjectRef<Ingress>) {
        let mut queued = targets::lock(&self.queued);
        queued.remove(ing);
        self.metrics.queue_depth("ingresses", queued.len());
    }
}

/// The EndpointSlices of each of `services`, from the cache, in one pass over it.
fn slices_of(ctx: &Context, services: &BTreeSet<ObjKey>) -> BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>> {
    let mut out: BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>> = services.iter().map(|k| (k.clone(), Vec::new())).collect();
    for slice in ctx.slices.state() {
        let Some(service) = slice.labels().get(SERVICE_NAME_LABEL) else { continue };
        let key = ObjKey { namespace: slice.namespace().unwrap_or_default(), name: service.clone() };
        if let Some(list) = out.get_mut(&key) {
            list.push(slice);
        }
    }
    out
}

/// Caches keep what the controller reads: managed fields and kubectl's copy of the last
/// applied object are most of an object's bytes, and never read.
fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

pub async fn run(cfg: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    // Every watch registers itself: not ready until each has listed, nor while one is broken.
    let readiness = watches::Readiness::new();
    tokio::spawn(telemetry::serve(cfg.metrics_bind_address, Health { metrics: metrics.clone(), ready: readiness.subscribe() }));

    // Every replica serves the webhook: it reads what it needs when asked.
    if let (Some(cert), Some(key)) = (cfg.webhook_cert_file.clone(), cfg.webhook_key_file.clone()) {
        let hook = Arc::new(crate::webhook::Webhook {
            client: client.clone(),
            filter: ClassFilter { controller: cfg.controller_name.clone(), legacy_class: cfg.ingress_class.clone() },
            cluster: cfg.cluster_name.clone(),
            default_target_type: cfg.default_target_type,
        });
        let addr = cfg.webhook_bind_address;
        tokio::spawn(async move {
            if let Err(e) = crate::webhook::serve(addr, &cert, &key, hook).await {
                tracing::error!(error = %telemetry::Excerpt(&e), "the readiness-gate webhook stopped");
            }
        });
    }
    // With several replicas only the Lease holder goes on; the others wait here.
    let election = cfg.leader_elect.then(|| {
        let namespace =
            cfg.leader_election_namespace.clone().or_else(|| std::env::var("POD_NAMESPACE").ok()).unwrap_or_else(|| "kube-system".into());
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| format!("alb-controller-{}", rand::random::<u32>()));
        Arc::new(leader::LeaderElection::new(
            client.clone(),
            &namespace,
            &cfg.leader_election_id,
            identity,
            cfg.leader_election_lease_duration,
        ))
    });
    loop {
        if let Some(e) = &election {
            tracing::info!(identity = e.identity(), "waiting to become the leader");
            tokio::select! {
                _ = e.acquire() => tracing::info!(identity = e.identity(), "became the leader"),
                _ = shutdown_signal() => return Ok(()),
            }
        }
        // A lease lost (a renewal failed for as long as the lease lasts, e.g. while the API
        // server was down) stops every write; this replica then stands again at once,
        // and takes its own lease back as soon as the API server answers, rather than
        // exiting and waiting to be restarted.
        match lead(&cfg, &client, &metrics, &readiness, election.clone()).await {
            Led::LostLease => readiness.reset(),
            Led::ShutDown => return Ok(()),
        }
    }
}

/// How a term as the leader (the whole run, without leader election) ended.
enum Led {
    LostLease,
    ShutDown,
}

/// Builds the caches and runs the controller until shutdown or, with leader election,
/// until the lease is lost; every write has stopped when it returns.
async fn lead(
    cfg: &Config,
    client: &Client,
    metrics: &Arc<Metrics>,
    readiness: &Arc<watches::Readiness>,
    election: Option<Arc<leader::LeaderElection>>,
) -> Led {
    let ready_rx = readiness.subscribe();
    let lost = Arc::new(AtomicBool::new(false));
    // The stop condition runs as its own task: the controller wants a Sync future.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    {
        let (election, lost) = (election.clone(), lost.clone());
        tokio::spawn(async move {
            match election {
                Some(e) => tokio::select! {
                    _ = e.keep() => {
                        tracing::error!("lost the leader lease: stopping every write");
                        lost.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ = shutdown_signal() => {}
                },
                None => shutdown_signal().await,
            }
            let _ = stop_tx.send(true);
        });
    }
    let stop = {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stopped| *stopped).await;
        }
    };

    let budget = crate::aws::budget::Budget::new(|class| cfg.aws_budget(class));
    let aws = Aws::from_env(cfg.aws_region.clone(), metrics.clone(), budget).await;
    let ns = cfg.watch_namespace.as_deref();

    let (services, svc_writer) = reflector::store::<Service>();
    let svc_events =
        watches::touched(watches::watch(api::<Service>(client, ns), watcher::Config::default(), svc_writer, readiness, "Service"));
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let slice_cfg = watcher::Config::default().labels(SERVICE_NAME_LABEL);
    let slice_events =
        watches::touched(watches::watch(api::<EndpointSlice>(client, ns), slice_cfg, slice_writer, readiness, "EndpointSlice"));
    let (classes, class_writer) = reflector::store::<IngressClass>();
    let class_events = watches::touched(watches::watch(
        Api::<IngressClass>::all(client.clone()),
        watcher::Config::default(),
        class_writer,
        readiness,
        "IngressClass",
    ));

    // Nodes matter only for `instance` targets: their provider ID, labels and readiness.
    let (nodes, node_writer) = reflector::store::<Node>();
    // Status heartbeats are dropped here; deletions always pass.
    let mut node_seen: HashMap<String, u64> = HashMap::new();
    let relevant = move |event: &watcher::Event<Node>| {
        let pass = match event {
            watcher::Event::Apply(n) | watcher::Event::InitApply(n) => {
                let h = node_relevance(n);
                node_seen.insert(n.name_any(), h) != Some(h)
            }
            watcher::Event::Delete(n) => {
                node_seen.remove(&n.name_any());
                true
            }
            watcher::Event::Init | watcher::Event::InitDone => true,
        };
        futures::future::ready(pass)
    };
    let node_watch = watches::watch(Api::<Node>::all(client.clone()), watcher::Config::default(), node_writer, readiness, "Node");
    let node_events = watches::touched(node_watch.filter(relevant));

    let (gated_pods, pod_writer) = reflector::store::<Pod>();
    let pod_cfg = watcher::Config::default().labels(&format!("{}=true", crate::webhook::GATED_LABEL));
    let pod_events = watches::touched(watches::watch(api::<Pod>(client, ns), pod_cfg, pod_writer, readiness, "Pod"));
    let (namespaces, ns_writer) = reflector::store::<Namespace>();
    let ns_events = watches::touched(watches::watch(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        ns_writer,
        readiness,
        "Namespace",
    ));
    // IngressClassParams are optional: without the CRD, classes simply have none.
    let params_api = Api::<IngressClassParams>::all(client.clone());
    let (params, params_events) = match params_api.list(&kube::api::ListParams::default().limit(1)).await {
        Ok(_) => {
            let (store, writer) = reflector::store::<IngressClassParams>();
            let events = watches::touched(watches::watch(params_api, watcher::Config::default(), writer, readiness, "IngressClassParams"));
            (Some(store), Some(events))
        }
        Err(e) => {
            tracing::warn!(error = %telemetry::Excerpt(&e), "IngressClassParams CRD not available; IngressClasses will be used without parameters");
            (None, None)
        }
    };

    let (ingresses, ing_writer) = reflector::store::<Ingress>();
    let ing_events =
        watches::touched(watches::watch(api::<Ingress>(client, ns), watcher::Config::default(), ing_writer, readiness, "Ingress"));
    let (resync, resync_rx) = tokio::sync::mpsc::unbounded_channel();

    let reporter = Reporter { controller: "alb-controller".into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context {
        client: client.clone(),
        aws,
        filter: ClassFilter { controller: cfg.controller_name.clone(), legacy_class: cfg.ingress_class.clone() },
        discovery: Discovery::new(cfg.aws_vpc_id.clone(), cfg.discovery_ttl),
        inventory: Inventory::new(cfg.cluster_name.clone(), cfg.aws_vpc_id.clone(), cfg.drift_check_interval),
        enis: crate::aws::enis::Enis::new(cfg.aws_vpc_id.clone(), cfg.discovery_ttl),
        endpoint_rules: sync::endpoint_rules::EndpointRules::new(
            cfg.cluster_name.clone(),
            cfg.aws_vpc_id.clone(),
            cfg.drift_check_interval,
        ),
        backend_sg: sync::backend_sg::BackendGroup::new(cfg.cluster_name.clone(), cfg.backend_security_group.clone()),
        network_warnings: Mutex::new(HashMap::new()),
        reporter,
        ingresses: ingresses.clone(),
        services: services.clone(),
        slices: slices.clone(),
        classes: classes.clone(),
        nodes: nodes.clone(),
        namespaces: namespaces.clone(),
        gated_pods: gated_pods.clone(),
        params: params.clone(),
        converged: Mutex::new(HashMap::new()),
        group_locks: Mutex::new(HashMap::new()),
        last_good: Mutex::new(HashMap::new()),
        refused: Mutex::new(HashMap::new()),
        metrics: metrics.clone(),
        synced: ready_rx,
        cfg: cfg.clone(),
        targets: targets::TargetQueue::default(),
        resync,
        queued: std::sync::Mutex::new(HashSet::new()),
        failures: std::sync::Mutex::new(HashMap::new()),
        logged_errors: telemetry::Repeats::default(),
        logged_problems: telemetry::Repeats::default(),
    });

    // Endpoints, gated pods and nodes change targets only: the fast path takes them.
    let dependencies = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let slices = slice_events.filter_map(|slice: EndpointSlice| {
                let service = slice
                    .labels()
                    .get(SERVICE_NAME_LABEL)
                    .map(|svc| ObjKey { namespace: slice.namespace().unwrap_or_default(), name: svc.clone() });
                futures::future::ready(service.map(Dependency::Service))
            });
            let pods = pod_events.map(|p: Pod| Dependency::Pods(p.namespace().unwrap_or_default()));
            let nodes = node_events.map(|_: Node| Dependency::Nodes);
            let mut changes = std::pin::pin!(futures::stream::select(slices, futures::stream::select(pods, nodes)));
            while let Some(dependency) = changes.next().await {
                ctx.targets.changed(dependency);
            }
        })
    };
    let fast_path = tokio::spawn(targets::run(ctx.clone(), stop_rx));
    let gates = tokio::spawn(gates::flip(ctx.clone()));

    let ingress_events = {
        let ctx = ctx.clone();
        ing_events.map(move |ing: Ingress| {
            ctx.enqueue(&[ObjectRef::from_obj(&ing)]);
            Ok::<_, watcher::Error>(ing)
        })
    };
    let resyncs = {
        let ctx = ctx.clone();
        futures::stream::unfold(resync_rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) }).map(move |r| {
            ctx.enqueue(std::slice::from_ref(&r));
            r
        })
    };
    let (for_services, for_classes, for_namespaces, for_params) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone());
    let reconcile = |ing: Arc<Ingress>, ctx: Arc<Context>| {
        ctx.started(&ObjectRef::from_obj(ing.as_ref()));
        reconcile::reconcile(ing, ctx)
    };
    Controller::for_stream(ingress_events, ingresses)
        .with_config(
            kube::runtime::controller::Config::default().concurrency(cfg.max_concurrent_reconciles).debounce(cfg.reconcile_debounce),
        )
        .watches_stream(svc_events.map(Ok), move |svc: Service| {
            let key = ObjKey { namespace: svc.namespace().unwrap_or_default(), name: svc.name_any() };
            for_services.trigger(|ing| references_service(ing, &key))
        })
        .watches_stream(class_events.map(Ok), move |_class: IngressClass| for_classes.trigger(|_| true))
        // Labels decide IngressClassParams namespaceSelector.
        .watches_stream(ns_events.map(Ok), move |ns: Namespace| {
            let name = ns.name_any();
            for_namespaces.trigger(|ing| ing.namespace().as_deref() == Some(name.as_str()))
        })
        .watches_stream(
            params_events.map(|events| events.map(Ok).boxed()).unwrap_or_else(|| futures::stream::empty().boxed()),
            move |_p: IngressClassParams| for_params.trigger(|_| true),
        )
        .reconcile_on(resyncs)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| {
            // A trigger for an Ingress deleted meanwhile never starts a reconcile.
            if let Err(kube::runtime::controller::Error::ObjectNotFound(gone)) = result {
                let mut gone_ref = ObjectRef::<Ingress>::new(&gone.name);
                gone_ref.namespace = gone.namespace;
                ctx.started(&gone_ref);
            }
            futures::future::ready(())
        })
        .await;
    // In-flight target updates finish too.
    let _ = fast_path.await;
    // Their watches go with them (a next term starts its own).
    for task in [dependencies, gates] {
        task.abort();
        let _ = task.await;
    }
    if lost.load(std::sync::atomic::Ordering::Relaxed) {
        return Led::LostLease;
    }
    // In-flight reconciles have finished: hand the lease over at once.
    if let Some(e) = &election {
        e.release().await;
    }
    tracing::info!("controller shut down");
    Led::ShutDown
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

/// What of a Node can change its targets: provider ID, labels, readiness.
fn node_relevance(node: &Node) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    node.spec.as_ref().and_then(|s| s.provider_id.as_ref()).hash(&mut h);
    node.metadata.labels.hash(&mut h);
    let ready =
        node.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready")).map(|c| &c.status);
    ready.hash(&mut h);
    node.metadata.deletion_timestamp.is_some().hash(&mut h);
    h.finish()
}

fn references_service(ing: &Ingress, svc: &ObjKey) -> bool {
    if ing.namespace().as_deref() != Some(svc.namespace.as_str()) {
        return false;
    }
    backend_services(ing).any(|name| name == svc.name)
}

/// Every Service an Ingress routes to: its backends and the Services its forward
/// actions name.
fn backend_services(ing: &Ingress) -> impl Iterator<Item = String> {
    let actions = crate::k8s::annotations::action_services(ing.annotations());
    crate::k8s::service_backends(ing).into_iter().map(|b| b.service).chain(actions)
}

fn error_policy(ing: Arc<Ingress>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjKey { namespace: ing.namespace().unwrap_or_default(), name: ing.name_any() };
    let failures = {
        let mut failures = targets::lock(&ctx.failures);
        let count = failures.entry(key.clone()).or_default();
        *count = count.saturating_add(1);
        *count
    };
    let text = err.to_string();
    let (error, category) = (telemetry::Excerpt(&text), err.category());
    if ctx.logged_errors.warn_now(&key.to_string(), &text) {
        tracing::warn!(ingress = %key, %error, category, failures, "reconcile failed");
    } else {
        tracing::debug!(ingress = %key, %error, category, failures, "reconcile failed again");
    }
    Action::requeue(retry_after(failures, err.is_transient()))
}

/// When an Ingress whose reconcile failed `failures` times in a row is tried again: 10 s
/// after the first failure, doubling (jittered) up to 5 minutes when AWS refused what it
/// was asked (repeating it fast cannot help), up to 20 s when AWS or the API server was
/// unavailable or throttling (recovery after an outage is seconds, not minutes).
fn retry_after(failures: u32, transient: bool) -> Duration {
    const FIRST: Duration = Duration::from_secs(10);
    let max = if transient { Duration::from_secs(20) } else { Duration::from_secs(300) };
    let doubled = FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(max).mul_f64(rand::random_range(1.0..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_reconcile_is_retried_ever_later_up_to_five_minutes() {
        let secs = |failures| retry_after(failures, false).as_secs_f64();
        assert!((10.0..=12.0).contains(&secs(1)), "{}", secs(1));
        assert!((20.0..=24.0).contains(&secs(2)), "{}", secs(2));
        for failures in [6, 10, 100, u32::MAX] {
            assert!((300.0..=360.0).contains(&secs(failures)), "{failures}: {}", secs(failures));
        }
    }

    #[test]
    fn an_outage_is_retried_within_seconds_however_long_it_lasted() {
        for failures in [1, 2, 6, 100, u32::MAX] {
            let secs = retry_after(failures, true).as_secs_f64();
            assert!((10.0..=24.0).contains(&secs), "{failures}: {secs}");
        }
    }
}
