//! Letting the load balancer reach its targets, as LBC does: the security groups of the
//! targets' network interfaces (a pod IP's interface, a node's primary interface) get a rule
//! from the shared backend security group (or, with it off, from the load balancer's
//! managed group) on the ports the target groups use. Run after a group's sync and after a
//! targets fast-path update; the shared backend group is deleted once no group uses it.

use std::collections::{BTreeMap, BTreeSet};

use kube::runtime::events::EventType;

use super::k8s_writes::publish;
use super::{Context, Converged, Error};
use crate::model::{BackendRules, BackendSource, GroupId, Stack, TargetType};
use crate::sync::endpoint_rules::{GroupNeeds, Ports};
use crate::sync::{self, ActualTargetGroup};

/// LBC's Event reason for a failure to open the targets' security groups.
const REASON: &str = "FailedNetworkReconcile";

fn target(ctx: &Context) -> sync::Target<'_> {
    sync::Target { aws: &ctx.aws, inventory: &ctx.inventory, vpc_id: &ctx.cfg.aws_vpc_id }
}

/// The shared backend group's ID when the stack's load balancer uses it (found or made now).
pub(super) async fn shared_group_for(ctx: &Context, stack: &Stack) -> Result<Option<String>, Error> {
    match stack.backend_rules {
        Some(BackendRules { source: BackendSource::SharedBackendGroup, .. }) => Ok(Some(ctx.backend_sg.ensure(&target(ctx)).await?)),
        _ => Ok(None),
    }
}

/// Every group of the cluster is known to the rules registry: each Ingress carrying one of
/// our finalizers has had its group's needs recorded (so a rule no one needs can be told
/// from one a group not reconciled yet needs).
async fn all_groups_known(ctx: &Context) -> bool {
    let known = ctx.endpoint_rules.known_groups().await;
    ctx.ingresses.state().iter().flat_map(|i| super::reconcile::groups_of_finalizers(i)).all(|(_, g)| known.contains(&g))
}

/// Records what a converged group needs and brings the endpoint groups' rules there.
pub(super) async fn open_targets(ctx: &Context, group: &GroupId, converged: &Converged) -> Result<(), Error> {
    let managed = converged.actual.security_group.as_ref().map(|sg| sg.id.clone());
    let (source, own_source) = match converged.backend {
        Some(BackendRules { source: BackendSource::SharedBackendGroup, .. }) => (converged.shared_group.clone(), None),
        Some(BackendRules { source: BackendSource::ManagedGroup, .. }) => (managed.clone(), managed),
        None => (None, None),
    };
    let (needs, problems) = match (converged.backend, source) {
        (Some(rules), Some(source)) => needs_of(ctx, &converged.actual.target_groups, rules, &source).await?,
        _ => (GroupNeeds::default(), Vec::new()),
    };
    let needs = GroupNeeds { uses_shared: converged.shared_group.is_some(), own_source, ..needs };
    report(ctx, group, problems).await;
    let complete = all_groups_known(ctx).await;
    ctx.endpoint_rules.set(&ctx.aws, group, needs, complete).await?;
    if converged.shared_group.is_none() {
        release_shared_group_if_unused(ctx).await?;
    }
    Ok(())
}

/// The group is going: its rules go. Called before its load balancer and managed security
/// group are deleted (AWS refuses to delete a group that another group's rules name).
pub(super) async fn close_targets(ctx: &Context, group: &GroupId, own_source: Option<String>) -> Result<(), Error> {
    let complete = all_groups_known(ctx).await;
    ctx.endpoint_rules.set(&ctx.aws, group, GroupNeeds { own_source, ..GroupNeeds::default() }, complete).await?;
    ctx.network_warnings.lock().await.remove(group);
    Ok(())
}

/// Deletes the shared backend group when this controller made it (or adopted LBC's) and no
/// group of the cluster uses it: first its rules on the targets' groups, then the group.
pub(super) async fn release_shared_group_if_unused(ctx: &Context) -> Result<(), Error> {
    if !ctx.backend_sg.managed() || ctx.endpoint_rules.shared_in_use().await || !all_groups_known(ctx).await {
        return Ok(());
    }
    let t = target(ctx);
    let Some(id) = ctx.backend_sg.current(&t).await? else { return Ok(()) };
    if ctx.inventory.any_load_balancer_uses(&ctx.aws, &id).await? {
        return Ok(());
    }
    ctx.endpoint_rules.revoke_source(&ctx.aws, &id).await?;
    ctx.backend_sg.delete(&t, &id).await?;
    Ok(())
}

/// What the target groups need: for each target's endpoint security group, the ports of
/// the target groups behind it. Returns the problems (interfaces that cannot be resolved).
async fn needs_of(
    ctx: &Context,
    target_groups: &[ActualTargetGroup],
    rules: BackendRules,
    source: &str,
) -> Result<(GroupNeeds, Vec<String>), Error> {
    let ips: BTreeSet<String> =
        target_groups.iter().filter(|tg| tg.target_type == TargetType::Ip).flat_map(|tg| tg.targets.iter().map(|t| t.id.clone())).collect();
    let instances: BTreeSet<String> = target_groups
        .iter()
        .filter(|tg| tg.target_type == TargetType::Instance)
        .flat_map(|tg| tg.targets.iter().map(|t| t.id.clone()))
        .collect();
    let mut enis = ctx.enis.of_ips(&ctx.aws, &ips).await?;
    enis.extend(ctx.enis.of_instances(&ctx.aws, &instances).await?);
    let found: Vec<_> = enis.values().flatten().cloned().collect();
    let groups = ctx.endpoint_rules.endpoint_groups(&ctx.aws, &found).await?;
    let mut problems = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    let mut needs: BTreeMap<(String, String), Ports> = BTreeMap::new();
    for tg in target_groups {
        let hc_port = tg.health_check.port.parse::<i32>().ok();
        for t in &tg.targets {
            let Some(eni) = enis.get(&t.id).and_then(Option::as_ref) else {
                unplaced.insert(t.id.as_str());
                continue;
            };
            let sg = match groups.get(&eni.id) {
                Some(Ok(sg)) => sg.clone(),
                Some(Err(why)) => {
                    problems.insert(why.clone());
                    continue;
                }
                None => continue,
            };
            let ports = needs.entry((sg, source.to_string())).or_default();
            ports.all |= rules.all_ports;
            if !rules.all_ports {
                ports.ports.insert(t.port);
                ports.ports.extend(hc_port);
            }
        }
    }
    if !unplaced.is_empty() {
        const SHOWN: usize = 5;
        let mut list: Vec<&str> = unplaced.iter().take(SHOWN).copied().collect();
        if unplaced.len() > SHOWN {
            list.push("…");
        }
        problems.insert(format!(
            "{} target(s) ({}) are on no network interface of VPC {} (pod IPs must be addresses of the nodes' interfaces, as with the VPC CNI): their security groups cannot be opened to the load balancer",
            unplaced.len(),
            list.join(", "),
            ctx.cfg.aws_vpc_id
        ));
    }
    Ok((GroupNeeds { needs, ..GroupNeeds::default() }, problems.into_iter().collect()))
}

/// Warning Events for problems not reported yet (a problem is reported once while it lasts).
async fn report(ctx: &Context, group: &GroupId, problems: Vec<String>) {
    let new: Vec<String> = {
        let mut seen = ctx.network_warnings.lock().await;
        let before = seen.insert(group.clone(), problems.iter().cloned().collect()).unwrap_or_default();
        problems.into_iter().filter(|p| !before.contains(p)).collect()
    };
    if new.is_empty() {
        return;
    }
    for p in &new {
        tracing::warn!(%group, problem = %crate::telemetry::Excerpt(p), "the targets' security groups");
    }
    for m in super::reconcile::members_of(ctx, group) {
        for p in &new {
            publish(ctx, &m, EventType::Warning, REASON, p.clone()).await;
        }
    }
}
