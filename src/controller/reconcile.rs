//! The reconcile of one Ingress: it brings every group the Ingress is in, or has left,
//! to its desired state. The unit of work is the group: one group = one ALB.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use super::k8s_writes::{patch_status, publish, set_finalizer};
use super::{Context, Converged, ConvergedTargetGroup, Error, backend_services};
use crate::k8s::annotations::PREFIX;
use crate::k8s::grouping::{self, ClusterObjects};
use crate::k8s::params::{IngressClassParams, IngressClassParamsSpec};
use crate::model::{self, GroupId, ObjKey, Stack};
use crate::sync;

/// Finalizer of an Ingress that is its own group (LBC's name).
pub const FINALIZER: &str = "ingress.k8s.aws/resources";
/// Finalizer prefix of an Ingress in an explicit group (LBC's name).
const GROUP_FINALIZER_PREFIX: &str = "group.ingress.k8s.aws/";
/// Finalizer of an ALB Gateway (LBC's name).
pub const GATEWAY_FINALIZER: &str = "gateway.k8s.aws/alb";

fn finalizer_of(group: &GroupId) -> String {
    match group {
        GroupId::Implicit { .. } => FINALIZER.to_string(),
        GroupId::Explicit(name) => format!("{GROUP_FINALIZER_PREFIX}{name}"),
        GroupId::Gateway { .. } => GATEWAY_FINALIZER.to_string(),
    }
}

fn key_of(ing: &Ingress) -> ObjKey {
    ObjKey { namespace: ing.namespace().unwrap_or_default(), name: ing.name_any() }
}

impl ClusterObjects for Context {
    fn classes(&self) -> Vec<Arc<IngressClass>> {
        self.classes.state()
    }
    fn params(&self, name: &str) -> Option<Arc<IngressClassParams>> {
        self.params.as_ref()?.get(&ObjectRef::new(name))
    }
    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces.get(&ObjectRef::new(namespace)).and_then(|n| n.metadata.labels.clone()).unwrap_or_default()
    }
}

fn class_params(ctx: &Context, ing: &Ingress) -> Option<Result<IngressClassParamsSpec, String>> {
    grouping::class_params(ctx, &ctx.filter, ing)
}

fn group_of(ctx: &Context, ing: &Ingress) -> Result<GroupId, String> {
    grouping::group_of(ctx, &ctx.filter, ing)
}

/// The groups an Ingress's finalizers say it has resources in.
pub(super) fn groups_of_finalizers(ing: &Ingress) -> Vec<(String, GroupId)> {
    ing.finalizers()
        .iter()
        .filter_map(|f| {
            if f == FINALIZER {
                Some((f.clone(), GroupId::Implicit { namespace: ing.namespace().unwrap_or_default(), name: ing.name_any() }))
            } else {
                f.strip_prefix(GROUP_FINALIZER_PREFIX).map(|g| (f.clone(), GroupId::Explicit(g.to_string())))
            }
        })
        .collect()
}

pub async fn reconcile(ing: Arc<Ingress>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile_ingress(&ing, &ctx).await;
    let label = match &result {
        Ok(_) => "success",
        Err(e) => e.category(),
    };
    ctx.metrics.reconciled(label, start.elapsed().as_secs_f64());
    if result.is_ok() {
        let key = key_of(&ing);
        ctx.logged_errors.forget(&key.to_string());
        super::targets::lock(&ctx.failures).remove(&key);
    }
    if let Err(e) = &result
        && !matches!(e, Error::NotReady(_))
    {
        let reason = if ing.metadata.deletion_timestamp.is_some() { "FailedCleanup" } else { "FailedDeployModel" };
        publish(&ctx, &ing, EventType::Warning, reason, e.to_string()).await;
    }
    result
}

fn is_active(ctx: &Context, ing: &Ingress) -> bool {
    grouping::is_active(ctx, &ctx.filter, ing)
}

async fn reconcile_ingress(ing: &Ingress, ctx: &Context) -> Result<Action, Error> {
    wait_synced(ctx).await?;
    let mut ing = ing.clone();
    let current = if is_active(ctx, &ing) {
        match group_of(ctx, &ing) {
            Ok(g) => Some(g),
            Err(message) => {
                publish(ctx, &ing, EventType::Warning, "FailedBuildModel", message).await;
                return Ok(Action::await_change());
            }
        }
    } else {
        None
    };
    if let Some(group) = &current {
        // Before any AWS resource exists for it.
        ing = set_finalizer(ctx, &ing, &finalizer_of(group), true).await?;
        reconcile_group(ctx, group).await?;
    }
    // Groups this Ingress left (or all of them, when it is deleted or no longer ours):
    // resync them without it, then let it go. Never blocked by its own configuration.
    for (finalizer, group) in groups_of_finalizers(&ing) {
        if Some(&group) != current.as_ref() {
            reconcile_group(ctx, &group).await?;
            ing = set_finalizer(ctx, &ing, &finalizer, false).await?;
            if current.is_none() && ing.metadata.deletion_timestamp.is_none() {
                patch_status(ctx, &ing, None, &[]).await?;
            }
            tracing::info!(ingress = %key_of(&ing), %group, "released the Ingress from its group");
        }
    }
    if current.is_none() {
        ctx.last_good.lock().await.remove(&key_of(&ing));
        return Ok(Action::await_change());
    }
    // Jittered, so converged groups do not all re-read AWS at the same moment.
    let jitter = rand::random_range(1.0..1.2);
    Ok(Action::requeue(ctx.cfg.drift_check_interval.mul_f64(jitter)))
}

/// A reconcile before the caches hold every Service and EndpointSlice would see
/// missing backends that exist; wait for them.
pub(super) async fn wait_synced(ctx: &Context) -> Result<(), Error> {
    let mut synced = ctx.synced.clone();
    match tokio::time::timeout(Duration::from_secs(60), synced.wait_for(|ready| *ready)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(Error::NotReady("caches not synced yet")),
    }
}

/// The active Ingresses of a group, in name order.
pub(super) fn members_of(ctx: &Context, group: &GroupId) -> Vec<Arc<Ingress>> {
    let mut members: Vec<Arc<Ingress>> =
        ctx.ingresses.state().into_iter().filter(|i| is_active(ctx, i) && group_of(ctx, i).as_ref() == Ok(group)).collect();
    members.sort_by_key(|i| key_of(i));
    members
}

/// Brings one group's ALB to what its current members ask for.
async fn reconcile_group(ctx: &Context, group: &GroupId) -> Result<(), Error> {
    let lock = ctx.group_lock(group).await;
    let _guard = lock.lock().await;

    let members = members_of(ctx, group);
    if members.is_empty() {
        ctx.targets.forget(group);
        sync_group(ctx, group, None).await?;
        return Ok(());
    }

    let (services, endpoint_slices) = load_backends(ctx, &members);
    let nodes = ctx.nodes.state();
    let gated_pods = super::gates::waiting_pods(ctx);
    let params: BTreeMap<ObjKey, Result<IngressClassParamsSpec, String>> =
        members.iter().filter_map(|m| Some((key_of(m), class_params(ctx, m)?))).collect();
    let subnets = ctx.discovery.subnets(&ctx.aws).await?;
    let certificates =
        if members.iter().any(|m| may_need_certificates(m)) { ctx.discovery.certificates(&ctx.aws).await? } else { Vec::new() };
    let security_groups = if members.iter().any(|m| m.annotations().contains_key(&format!("{PREFIX}security-groups"))) {
        ctx.discovery.security_groups(&ctx.aws).await?
    } else {
        Vec::new()
    };
    let secrets = auth_secrets(ctx, &members, &services).await?;
    let build = |members: &[Arc<Ingress>]| {
        model::build(&model::Inputs {
            cluster: &ctx.cfg.cluster_name,
            group: group.clone(),
            members: members.iter().map(Arc::as_ref).collect(),
            services: &services,
            endpoint_slices: &endpoint_slices,
            subnets: &subnets,
            certificates: &certificates,
            security_groups: &security_groups,
            secrets: &secrets,
            nodes: &nodes,
            options: ctx.cfg.model_options(),
            gated_pods: &gated_pods,
            params: &params,
        })
    };
    let built = build(&members);
    let mut bad: BTreeSet<ObjKey> = built.problems.iter().map(|p| p.ingress.clone()).collect();
    // Members whose rules AWS refused, unchanged since: left out as if they had problems.
    let mut refused = refused_members(ctx, &members).await;
    bad.extend(refused.iter().cloned());
    let by_key: HashMap<ObjKey, &Arc<Ingress>> = members.iter().map(|m| (key_of(m), m)).collect();
    let flagged: BTreeSet<&ObjKey> = built.problems.iter().chain(&built.warnings).map(|p| &p.ingress).collect();
    for m in members.iter().map(|m| key_of(m)).filter(|k| !flagged.contains(k)) {
        ctx.logged_problems.forget(&m.to_string());
    }
    for p in built.problems.iter().chain(&built.warnings) {
        let message = crate::telemetry::Excerpt(&p.message);
        if ctx.logged_problems.warn_now(&p.ingress.to_string(), &p.message) {
            tracing::warn!(ingress = %p.ingress, reason = p.reason, %message, "problem");
        } else {
            tracing::debug!(ingress = %p.ingress, reason = p.reason, %message, "problem again");
        }
        if let Some(ing) = by_key.get(&p.ingress) {
            publish(ctx, ing, EventType::Warning, p.reason, p.message.clone()).await;
        }
    }
    let mut previous_good: HashMap<ObjKey, Arc<Ingress>> = HashMap::new();
    {
        let mut last_good = ctx.last_good.lock().await;
        for m in members.iter().filter(|m| !bad.contains(&key_of(m))) {
            if let Some(prev) = last_good.insert(key_of(m), m.clone()) {
                previous_good.insert(key_of(m), prev);
            }
        }
    }
    // When AWS refuses one member's rule, that member is left out (keeping its last good
    // version, if it has one; altogether if AWS refuses that too) and the others are
    // synced again without it.
    let mut dropped: BTreeSet<ObjKey> = BTreeSet::new();
    let (dns, changed, remarks, stack, contributing) = loop {
        let mut contributing = contributing_members(ctx, &members, &bad, &refused).await;
        contributing.retain(|m| !dropped.contains(&key_of(m)));
        let same = contributing.len() == members.len() && contributing.iter().zip(&members).all(|(a, b)| Arc::ptr_eq(a, b));
        let stack = if same { built.stack.clone() } else { build(&contributing).stack };
        let Some(stack) = stack else {
            // Left as it is in AWS until fixed; a fix changes an Ingress and triggers us.
            return Ok(());
        };
        // Before AWS is called: an endpoint change from now on marks the group, and is
        // applied once this sync ends.
        ctx.targets.follow(group, stack.target_groups.iter().flat_map(|tg| tg.source.dependencies()).collect());
        match sync_group(ctx, group, Some(&stack)).await {
            Ok((dns, changed, remarks)) => break (dns, changed, remarks, stack, contributing),
            Err(Error::Sync(sync::Error::RuleRefused { ingress, .. })) if refused.contains(&ingress) && !dropped.contains(&ingress) => {
                tracing::warn!(ingress = %ingress, "AWS refused the last good version of a refused member too; syncing the group without it");
                dropped.insert(ingress);
            }
            Err(Error::Sync(sync::Error::RuleRefused { ingress, source }))
                if by_key.contains_key(&ingress) && !refused.contains(&ingress) =>
            {
                let ing = by_key[&ingress];
                let e = sync::Error::RuleRefused { ingress: ingress.clone(), source };
                tracing::warn!(ingress = %ingress, error = %crate::telemetry::Excerpt(&e), "AWS refused a rule of one member; syncing the group without it");
                publish(ctx, ing, EventType::Warning, "FailedDeployModel", e.to_string()).await;
                ctx.refused.lock().await.insert(ingress.clone(), (content_hash(ing), Instant::now()));
                let mut last_good = ctx.last_good.lock().await;
                match previous_good.remove(&ingress) {
                    Some(prev) => drop(last_good.insert(ingress.clone(), prev)),
                    None => drop(last_good.remove(&ingress)),
                }
                bad.insert(ingress.clone());
                refused.insert(ingress);
            }
            Err(e) => return Err(e),
        }
    };
    for r in &remarks {
        tracing::warn!(ingress = %r.ingress, reason = r.reason, message = %crate::telemetry::Excerpt(&r.message), "remark");
        if let Some(ing) = by_key.get(&r.ingress) {
            publish(ctx, ing, EventType::Warning, r.reason, r.message.clone()).await;
        }
    }
    let in_alb: BTreeSet<ObjKey> = contributing.iter().map(|m| key_of(m)).collect();
    let ports: Vec<i32> = stack.listeners.iter().map(|l| l.port).collect();
    for m in members.iter().filter(|m| in_alb.contains(&key_of(m))) {
        patch_status(ctx, m, dns.as_deref(), &ports).await?;
        if changed && !bad.contains(&key_of(m)) {
            publish(ctx, m, EventType::Normal, "SuccessfullyReconciled", "Successfully reconciled".into()).await;
        }
    }
    Ok(())
}

/// What of an Ingress AWS's refusal of its rules depends on: its annotations and spec.
fn content_hash(ing: &Ingress) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&(&ing.metadata.annotations, &ing.spec)).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// The members whose rules AWS refused as they are now (within a drift-check interval:
/// what AWS refused, e.g. a target group that did not exist, may have changed since).
async fn refused_members(ctx: &Context, members: &[Arc<Ingress>]) -> BTreeSet<ObjKey> {
    let mut refused = ctx.refused.lock().await;
    refused.retain(|_, (_, at)| at.elapsed() < ctx.cfg.drift_check_interval);
    members.iter().filter(|m| refused.get(&key_of(m)).is_some_and(|(hash, _)| *hash == content_hash(m))).map(|m| key_of(m)).collect()
}

/// The members that make the stack: the good ones as they are, the others as their last
/// good version if they have one (a refused member's, only if it differs from the refused one).
async fn contributing_members(
    ctx: &Context,
    members: &[Arc<Ingress>],
    bad: &BTreeSet<ObjKey>,
    refused: &BTreeSet<ObjKey>,
) -> Vec<Arc<Ingress>> {
    let last_good = ctx.last_good.lock().await;
    members
        .iter()
        .filter_map(|m| {
            let key = key_of(m);
            if !bad.contains(&key) {
                return Some(m.clone());
            }
            let good = last_good.get(&key)?;
            (!refused.contains(&key) || content_hash(good) != content_hash(m)).then(|| good.clone())
        })
        .collect()
}

/// The Secrets OIDC authentication names, read when needed (never cached in memory).
async fn auth_secrets(
    ctx: &Context,
    members: &[Arc<Ingress>],
    services: &BTreeMap<ObjKey, Service>,
) -> Result<BTreeMap<ObjKey, BTreeMap<String, String>>, Error> {
    let mut names = BTreeSet::new();
    for m in members {
        let ns = m.namespace().unwrap_or_default();
        let empty = BTreeMap::new();
        let mut layers = vec![m.annotations()];
        for svc in services.iter().filter(|(k, _)| k.namespace == ns).map(|(_, s)| s) {
            layers.push(svc.metadata.annotations.as_ref().unwrap_or(&empty));
        }
        for name in crate::k8s::annotations::auth_secrets(&layers) {
            names.insert(ObjKey { namespace: ns.clone(), name });
        }
    }
    let mut out = BTreeMap::new();
    for key in names {
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(ctx.client.clone(), &key.namespace);
        if let Some(secret) = api.get_opt(&key.name).await? {
            out.insert(key, crate::k8s::secret_data(secret));
        }
    }
    Ok(out)
}

/// Whether ACM discovery may be needed: TLS hosts or an HTTPS listen port.
fn may_need_certificates(ing: &Ingress) -> bool {
    ing.spec.as_ref().and_then(|s| s.tls.as_ref()).is_some_and(|t| !t.is_empty())
        || ing.annotations().get(&format!("{PREFIX}listen-ports")).is_some_and(|p| p.contains("HTTPS"))
}

/// EndpointSlices by the Service they belong to.
type SlicesByService = BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>>;

/// The Services the members name, and their EndpointSlices, from the caches.
fn load_backends(ctx: &Context, members: &[Arc<Ingress>]) -> (BTreeMap<ObjKey, Service>, SlicesByService) {
    let wanted: BTreeSet<ObjKey> = members
        .iter()
        .flat_map(|m| {
            let ns = m.namespace().unwrap_or_default();
            backend_services(m).map(move |name| ObjKey { namespace: ns.clone(), name }).collect::<Vec<_>>()
        })
        .collect();
    let mut services = BTreeMap::new();
    for key in &wanted {
        if let Some(svc) = ctx.services.get(&ObjectRef::new(&key.name).within(&key.namespace)) {
            services.insert(key.clone(), svc.as_ref().clone());
        }
    }
    (services, super::slices_of(ctx, &wanted))
}

/// Everything of a stack but its targets: those follow endpoints on their own path.
fn stack_hash(stack: &Stack) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut shape = stack.clone();
    for tg in &mut shape.target_groups {
        tg.targets = None;
    }
    shape.hash(&mut h);
    h.finish()
}

/// Makes AWS match `desired` for the group (`None`: nothing of it remains). Returns the
/// load balancer's DNS name and whether anything new was applied.
/// Also what the sync had to do differently, for Warnings on the members.
async fn sync_group(ctx: &Context, group: &GroupId, desired: Option<&Stack>) -> Result<(Option<String>, bool, Vec<model::Problem>), Error> {
    let requested = Instant::now();
    let target = sync::Target { aws: &ctx.aws, inventory: &ctx.inventory, vpc_id: &ctx.cfg.aws_vpc_id };
    let desired_hash = desired.map(stack_hash);
    // The group lock is held, so the entry can be taken out while AWS is called; on an
    // error it stays out and the next reconcile re-reads AWS.
    let cached = ctx.converged.lock().await.remove(group).filter(|c| c.verified_at.elapsed() < ctx.cfg.drift_check_interval);
    let cached = match (cached, desired) {
        (Some(mut c), Some(desired)) if Some(c.desired_hash) == desired_hash => {
            // Nothing but targets can differ: a pure diff, calls only for what moved.
            let result = sync::targets::sync(&ctx.aws, &desired.target_groups, &mut c.actual.target_groups).await;
            let opened = match result {
                Ok(()) => super::backend::open_targets(ctx, group, &c).await,
                Err(e) => Err(e.into()),
            };
            let dns = c.actual.dns_name().map(str::to_string);
            ctx.converged.lock().await.insert(group.clone(), c);
            opened?;
            return Ok((dns, false, Vec::new()));
        }
        (cached, _) => cached,
    };
    let verified_at = cached.as_ref().map_or_else(Instant::now, |c| c.verified_at);
    let shared_group = match desired {
        Some(stack) => super::backend::shared_group_for(ctx, stack).await?,
        None => {
            // Before the managed group goes: AWS refuses to delete a group other groups' rules name.
            let own = match cached.as_ref().and_then(|c| c.actual.security_group.as_ref()) {
                Some(sg) => Some(sg.id.clone()),
                None => ctx.inventory.stack(&ctx.aws, &group.stack_key()).await?.security_groups.into_iter().next(),
            };
            super::backend::close_targets(ctx, group, own).await?;
            None
        }
    };
    let mut actual = sync::apply(&target, group, desired, cached.map(|c| c.actual), shared_group.as_deref()).await?;
    let remarks = std::mem::take(&mut actual.remarks);
    let dns = actual.dns_name().map(str::to_string);
    let (Some(desired), Some(desired_hash)) = (desired, desired_hash) else {
        // Nothing tagged with the stack may outlive its finalizer; this read of AWS also
        // shows a shared backend group that a create whose reply was lost made.
        sync::delete_leftovers(&target, &group.stack_key(), requested).await?;
        super::backend::release_shared_group_if_unused(ctx).await?;
        return Ok((dns, true, remarks));
    };
    let target_groups = desired
        .target_groups
        .iter()
        .filter_map(|d| {
            let arn = actual.target_groups.iter().find(|a| a.serves(d))?.arn.clone();
            Some(ConvergedTargetGroup { name: d.name.clone(), arn, source: d.source.clone() })
        })
        .collect();
    let converged = Converged { desired_hash, actual, verified_at, target_groups, backend: desired.backend_rules, shared_group };
    // The load balancer is converged whatever the targets' groups answer: cached first.
    let opened = super::backend::open_targets(ctx, group, &converged).await;
    ctx.converged.lock().await.insert(group.clone(), converged);
    opened?;
    Ok((dns, true, remarks))
}
