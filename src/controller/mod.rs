//! kube-runtime wiring: watches, the reconcile of one Ingress's group, finalizer,
//! status and Events.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Mutex;

use crate::aws::discovery::Discovery;
use crate::aws::inventory::Inventory;
use crate::aws::{self, Aws};
use crate::config::Config;
use crate::k8s::class::ClassFilter;
use crate::model::{self, GroupId, ObjKey, Stack};
use crate::sync::{self, Actual};
use crate::telemetry::{self, Health, Metrics};

/// Finalizer of an Ingress that is its own group (LBC's name).
pub const FINALIZER: &str = "ingress.k8s.aws/resources";
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
}

/// What a converged group looked like, so that a resync with nothing new makes no AWS call.
struct Converged {
    desired_hash: u64,
    actual: Actual,
    /// When AWS was last read for this group (drift check).
    verified_at: Instant,
}

pub struct Context {
    client: Client,
    aws: Aws,
    cfg: Config,
    filter: ClassFilter,
    discovery: Discovery,
    inventory: Inventory,
    recorder: Recorder,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    classes: Store<IngressClass>,
    converged: Mutex<HashMap<GroupId, Converged>>,
    metrics: Arc<Metrics>,
    /// Set once every cache has listed its objects.
    synced: Arc<AtomicBool>,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

pub async fn run(cfg: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(telemetry::serve(
        cfg.metrics_bind_address,
        Health {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
    ));

    let aws = Aws::from_env(cfg.aws_region.clone(), metrics.clone()).await;
    let ns = cfg.watch_namespace.as_deref();

    let (services, svc_writer) = reflector::store::<Service>();
    let svc_events = reflector::reflector(
        svc_writer,
        watcher(api::<Service>(&client, ns), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let slice_cfg = watcher::Config::default().labels(SERVICE_NAME_LABEL);
    let slice_events = reflector::reflector(
        slice_writer,
        watcher(api::<EndpointSlice>(&client, ns), slice_cfg),
    )
    .default_backoff()
    .touched_objects();
    let (classes, class_writer) = reflector::store::<IngressClass>();
    let class_events = reflector::reflector(
        class_writer,
        watcher(
            Api::<IngressClass>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();

    let reporter = Reporter {
        controller: "alb-controller".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        aws,
        filter: ClassFilter {
            controller: cfg.controller_name.clone(),
            legacy_class: cfg.ingress_class.clone(),
        },
        discovery: Discovery::new(cfg.aws_vpc_id.clone(), cfg.discovery_ttl),
        inventory: Inventory::new(cfg.cluster_name.clone(), cfg.drift_check_interval),
        recorder: Recorder::new(client.clone(), reporter),
        services: services.clone(),
        slices: slices.clone(),
        classes: classes.clone(),
        converged: Mutex::new(HashMap::new()),
        metrics,
        synced: ready.clone(),
        cfg: cfg.clone(),
    });

    let controller = Controller::new(api::<Ingress>(&client, ns), watcher::Config::default())
        .with_config(
            kube::runtime::controller::Config::default().concurrency(cfg.max_concurrent_reconciles),
        );
    let ingresses = controller.store();
    {
        // The only waiter on each of these stores: a store wakes one waiter, not many.
        // (The Ingress store is waited on by the controller itself.)
        let ready = ready.clone();
        let (services, slices, classes) = (services.clone(), slices.clone(), classes.clone());
        tokio::spawn(async move {
            let synced = async {
                services.wait_until_ready().await?;
                slices.wait_until_ready().await?;
                classes.wait_until_ready().await
            };
            if synced.await.is_ok() {
                tracing::info!("caches synced");
                ready.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    let by_service = {
        let ingresses = ingresses.clone();
        move |svc: ObjKey| -> Vec<ObjectRef<Ingress>> {
            ingresses
                .state()
                .iter()
                .filter(|ing| references_service(ing, &svc))
                .map(|ing| ObjectRef::from_obj(ing.as_ref()))
                .collect()
        }
    };
    let by_service_for_slices = by_service.clone();
    let all_ingresses = ingresses.clone();
    controller
        .watches_stream(svc_events, move |svc: Service| {
            by_service(ObjKey {
                namespace: svc.namespace().unwrap_or_default(),
                name: svc.name_any(),
            })
        })
        .watches_stream(slice_events, move |slice: EndpointSlice| {
            match slice.labels().get(SERVICE_NAME_LABEL) {
                Some(svc) => by_service_for_slices(ObjKey {
                    namespace: slice.namespace().unwrap_or_default(),
                    name: svc.clone(),
                }),
                None => Vec::new(),
            }
        })
        .watches_stream(class_events, move |_class: IngressClass| {
            all_ingresses
                .state()
                .iter()
                .map(|ing| ObjectRef::from_obj(ing.as_ref()))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    tracing::info!("controller shut down");
    Ok(())
}

fn references_service(ing: &Ingress, svc: &ObjKey) -> bool {
    if ing.namespace().as_deref() != Some(svc.namespace.as_str()) {
        return false;
    }
    backend_services(ing).any(|name| name == svc.name)
}

fn backend_services(ing: &Ingress) -> impl Iterator<Item = &str> {
    let spec = ing.spec.as_ref();
    let default = spec
        .and_then(|s| s.default_backend.as_ref())
        .and_then(|b| b.service.as_ref())
        .map(|s| s.name.as_str());
    let paths = spec
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        .filter_map(|p| p.backend.service.as_ref().map(|s| s.name.as_str()));
    default.into_iter().chain(paths)
}

fn error_policy(ing: Arc<Ingress>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(ingress = %ObjectRef::from_obj(ing.as_ref()), error = %err, category = err.category(), "reconcile failed");
    Action::requeue(Duration::from_secs(10 + rand::random_range(0..5)))
}

async fn reconcile(ing: Arc<Ingress>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile_ingress(&ing, &ctx).await;
    let label = match &result {
        Ok(_) => "success",
        Err(e) => e.category(),
    };
    ctx.metrics.reconciled(label, start.elapsed().as_secs_f64());
    if let Err(e) = &result
        && !matches!(e, Error::NotReady(_))
    {
        let reason = if ing.metadata.deletion_timestamp.is_some() {
            "FailedCleanup"
        } else {
            "FailedDeployModel"
        };
        publish(&ctx, &ing, EventType::Warning, reason, e.to_string()).await;
    }
    result
}

async fn publish(ctx: &Context, ing: &Ingress, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &ing.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing event failed");
    }
}

async fn reconcile_ingress(ing: &Ingress, ctx: &Context) -> Result<Action, Error> {
    let key = ObjKey {
        namespace: ing.namespace().unwrap_or_default(),
        name: ing.name_any(),
    };
    let group = GroupId::Implicit {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    };
    let has_finalizer = ing.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = ing.metadata.deletion_timestamp.is_some();
    wait_synced(ctx).await?;
    let classes = ctx.classes.state();
    let ours = ctx.filter.is_ours(ing, classes.iter().map(Arc::as_ref));

    if deleting || !ours {
        if has_finalizer {
            // Never blocked by the Ingress's own configuration: only AWS state matters here.
            sync_group(ctx, &group, None).await?;
            set_finalizer(ctx, ing, false).await?;
            if !deleting {
                patch_status(ctx, ing, None).await?;
            }
            tracing::info!(ingress = %key, "deleted AWS resources and removed finalizer");
        }
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        set_finalizer(ctx, ing, true).await?;
    }

    let (services, endpoint_slices) = load_backends(ctx, ing, &key);
    let subnets = ctx.discovery.subnets(&ctx.aws).await?;
    let built = model::build(&model::Inputs {
        cluster: &ctx.cfg.cluster_name,
        group: group.clone(),
        members: vec![ing],
        services: &services,
        endpoint_slices: &endpoint_slices,
        subnets: &subnets,
    });
    for p in built.problems.iter().chain(&built.warnings) {
        tracing::warn!(ingress = %p.ingress, reason = p.reason, message = %p.message, "problem");
        publish(ctx, ing, EventType::Warning, p.reason, p.message.clone()).await;
    }
    let Some(stack) = built.stack else {
        // Left as it is in AWS until fixed; a fix changes the Ingress and triggers us.
        return Ok(Action::await_change());
    };
    let (dns, changed) = sync_group(ctx, &group, Some(&stack)).await?;
    if let Some(dns) = dns
        && current_hostname(ing) != Some(dns.as_str())
    {
        patch_status(ctx, ing, Some(&dns)).await?;
    }
    if changed {
        publish(
            ctx,
            ing,
            EventType::Normal,
            "SuccessfullyReconciled",
            "Successfully reconciled".into(),
        )
        .await;
    }
    Ok(Action::requeue(ctx.cfg.drift_check_interval))
}

/// A reconcile before the caches hold every Service and EndpointSlice would see
/// missing backends that exist; wait for them.
async fn wait_synced(ctx: &Context) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ctx.synced.load(std::sync::atomic::Ordering::Relaxed) {
        if Instant::now() > deadline {
            return Err(Error::NotReady("caches not synced yet"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The Services an Ingress names, and their EndpointSlices, from the caches.
fn load_backends(
    ctx: &Context,
    ing: &Ingress,
    key: &ObjKey,
) -> (
    BTreeMap<ObjKey, Service>,
    BTreeMap<ObjKey, Vec<EndpointSlice>>,
) {
    let mut services = BTreeMap::new();
    let mut slices = BTreeMap::new();
    for name in backend_services(ing) {
        let svc_key = ObjKey {
            namespace: key.namespace.clone(),
            name: name.to_string(),
        };
        if services.contains_key(&svc_key) {
            continue;
        }
        if let Some(svc) = ctx
            .services
            .get(&ObjectRef::new(name).within(&key.namespace))
        {
            services.insert(svc_key.clone(), svc.as_ref().clone());
        }
        let svc_slices: Vec<EndpointSlice> = ctx
            .slices
            .state()
            .iter()
            .filter(|s| {
                s.namespace().as_deref() == Some(key.namespace.as_str())
                    && s.labels().get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
            })
            .map(|s| s.as_ref().clone())
            .collect();
        slices.insert(svc_key, svc_slices);
    }
    (services, slices)
}

fn stack_hash(stack: &Stack) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    stack.hash(&mut h);
    h.finish()
}

/// Makes AWS match `desired` for the group (`None`: nothing of it remains). Returns the
/// load balancer's DNS name and whether anything new was applied.
async fn sync_group(
    ctx: &Context,
    group: &GroupId,
    desired: Option<&Stack>,
) -> Result<(Option<String>, bool), Error> {
    let target = sync::Target {
        aws: &ctx.aws,
        inventory: &ctx.inventory,
        cluster: &ctx.cfg.cluster_name,
        vpc_id: &ctx.cfg.aws_vpc_id,
    };
    let desired_hash = desired.map(stack_hash);
    // One reconcile per group at a time (kube-runtime serialises per Ingress, and a group
    // is one Ingress for now), so the entry can be taken out while AWS is called.
    let cached = ctx.converged.lock().await.remove(group);
    let fresh = |c: &Converged| c.verified_at.elapsed() < ctx.cfg.drift_check_interval;
    if let Some(c) = cached.as_ref()
        && Some(c.desired_hash) == desired_hash
        && fresh(c)
    {
        let dns = c.actual.dns_name().map(str::to_string);
        ctx.converged
            .lock()
            .await
            .insert(group.clone(), cached.expect("checked"));
        return Ok((dns, false));
    }
    let (actual, verified_at) = match cached {
        Some(c) if fresh(&c) => (c.actual, c.verified_at),
        _ => (sync::read(&target, group).await?, Instant::now()),
    };
    let actual = sync::apply(&target, group, desired, actual).await?;
    let dns = actual.dns_name().map(str::to_string);
    if let Some(desired_hash) = desired_hash {
        ctx.converged.lock().await.insert(
            group.clone(),
            Converged {
                desired_hash,
                actual,
                verified_at,
            },
        );
    }
    Ok((dns, true))
}

fn current_hostname(ing: &Ingress) -> Option<&str> {
    ing.status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .hostname
        .as_deref()
}

async fn patch_status(ctx: &Context, ing: &Ingress, hostname: Option<&str>) -> Result<(), Error> {
    let api: Api<Ingress> =
        Api::namespaced(ctx.client.clone(), &ing.namespace().unwrap_or_default());
    let lb = match hostname {
        Some(h) => json!({"ingress": [{"hostname": h}]}),
        None => json!({"ingress": null}),
    };
    api.patch_status(
        &ing.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"loadBalancer": lb}})),
    )
    .await?;
    Ok(())
}

async fn set_finalizer(ctx: &Context, ing: &Ingress, present: bool) -> Result<(), Error> {
    let api: Api<Ingress> =
        Api::namespaced(ctx.client.clone(), &ing.namespace().unwrap_or_default());
    let mut finalizers: Vec<String> = ing
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_string());
    }
    // resourceVersion makes this fail rather than clobber a concurrent change.
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": ing.resource_version()}});
    match api
        .patch(
            &ing.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 && !present => Ok(()),
        Err(e) => Err(e.into()),
    }
}
