//! Makes AWS match a `Stack`: per resource kind, actual state → pure diff → the
//! fewest calls that close it. Creates carry their tags, so nothing exists untagged.
//!
//! Order: target groups → targets → security group → load balancer → listeners →
//! rules, then deletions in reverse.

mod attributes;
pub mod backend_sg;
pub mod endpoint_rules;
mod listener;
mod load_balancer;
mod rule;
mod security_group;
mod target_group;
pub mod targets;

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::Tag;

use crate::aws::inventory::{Inventory, StackResources};
use crate::aws::{self, Aws};
use crate::model::{GroupId, ObjKey, Problem, Stack, TAG_CLUSTER, TAG_GATEWAY_STACK, TAG_STACK, Tags};

pub use listener::ActualListener;
pub use load_balancer::ActualLoadBalancer;
pub use security_group::ActualSecurityGroup;
pub use target_group::ActualTargetGroup;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] aws::Error),
    #[error(
        "load balancer {name} has deletion protection enabled (load-balancer-attributes deletion_protection.enabled=true): disable it on the load balancer (console, or aws elbv2 modify-load-balancer-attributes) and the deletion is retried"
    )]
    DeletionProtected { name: String },
    /// AWS refused the content of one member's rule (a ValidationError the model did not
    /// foresee, a target group ARN that does not exist, …): that member is to be left out.
    #[error("AWS refused a listener rule of this Ingress, which is left out of the load balancer until it changes: {source}")]
    RuleRefused { ingress: ObjKey, source: aws::Error },
    /// A listener step that failed after the rest of the listener was synced.
    #[error("listener {protocol}:{port}, {what}: {source}")]
    Listener { protocol: String, port: i32, what: String, source: aws::Error },
    /// A create answered "already exists" and what exists under that name is not ours.
    #[error(
        "{kind} {name} already exists ({id}) but is not tagged {tags}: it is not taken over; delete or rename it, or choose another name"
    )]
    NotOurs { kind: &'static str, name: String, id: String, tags: String },
}

impl Error {
    /// Whether trying again soon may succeed (AWS throttled or was unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Aws(e) | Error::Listener { source: e, .. } => e.is_transient(),
            Error::DeletionProtected { .. } | Error::RuleRefused { .. } | Error::NotOurs { .. } => false,
        }
    }

    /// `NotOurs` for a resource named `name` (ID or ARN `id`) that lacks the tags `owner`.
    pub(crate) fn not_ours(kind: &'static str, name: &str, id: &str, owner: &[(&str, &str)]) -> Self {
        let tags = owner.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
        Error::NotOurs { kind, name: name.to_string(), id: id.to_string(), tags }
    }
}

/// The tags that make a resource this stack's: cluster and stack.
pub(crate) fn owner_tags(wanted: &Tags) -> Vec<(&str, &str)> {
    let stack = if wanted.contains_key(TAG_GATEWAY_STACK) { TAG_GATEWAY_STACK } else { TAG_STACK };
    [TAG_CLUSTER, stack].into_iter().map(|k| (k, wanted.get(k).map(String::as_str).unwrap_or_default())).collect()
}

/// Whether a resource found by name after a create answered "already exists" is the one we
/// asked for: it carries the `owner` tags the create was to give it ([`owner_tags`]).
/// Anything else is never taken over.
pub(crate) fn ours(found: &Tags, owner: &[(&str, &str)]) -> bool {
    owner.iter().all(|(k, v)| !v.is_empty() && found.get(*k).map(String::as_str) == Some(*v))
}

/// What exists in AWS for one stack, as last read or written by us.
#[derive(Clone, Debug, Default)]
pub struct Actual {
    pub security_group: Option<ActualSecurityGroup>,
    pub target_groups: Vec<ActualTargetGroup>,
    pub load_balancer: Option<ActualLoadBalancer>,
    pub listeners: Vec<ActualListener>,
    /// What the last sync had to do differently and the members should hear of (Warnings),
    /// taken out by the caller.
    pub remarks: Vec<Problem>,
}

impl Actual {
    pub fn dns_name(&self) -> Option<&str> {
        self.load_balancer.as_ref().map(|lb| lb.dns_name.as_str())
    }
}

/// Where and for whom we sync.
pub struct Target<'a> {
    pub aws: &'a Aws,
    pub inventory: &'a Inventory,
    pub vpc_id: &'a str,
}

/// Reads a stack's target groups (found by tag, with their targets), and returns what
/// else the inventory knows of the stack, for [`read_load_balancer`].
async fn read_target_groups(t: &Target<'_>, stack: &str) -> Result<(Actual, StackResources), Error> {
    let mut known = t.inventory.stack(t.aws, stack).await?;
    let target_groups = target_group::read(t.aws, std::mem::take(&mut known.target_groups)).await?;
    Ok((Actual { target_groups, ..Actual::default() }, known))
}

/// Reads the security group, load balancer and listeners (everything but target groups).
async fn read_load_balancer(t: &Target<'_>, known: StackResources, actual: &mut Actual) -> Result<(), Error> {
    actual.security_group = security_group::read(t, &known.security_groups).await?;
    actual.load_balancer = known.load_balancers.into_iter().next().map(|lb| {
        let mut lb = ActualLoadBalancer::from_sdk(lb);
        lb.kept_security_groups = lb.security_groups.iter().filter(|id| known.backend_security_groups.contains(id)).cloned().collect();
        lb
    });
    if let Some(lb) = &actual.load_balancer {
        actual.listeners = listener::read(t.aws, &lb.arn).await?;
    }
    Ok(())
}

/// Makes AWS match `desired` (`None`: delete everything of the stack), starting from
/// `cached` or, without it, from AWS read as the steps need it. Returns the state AWS is
/// in afterwards, for the cache.
///
/// Targets come right after their target groups: after a restart, pods are registered
/// before the load balancer, listeners and rules are even read. `backend_sg` is the
/// cluster's shared backend security group, when the load balancer uses it.
pub async fn apply(
    t: &Target<'_>,
    group: &GroupId,
    desired: Option<&Stack>,
    cached: Option<Actual>,
    backend_sg: Option<&str>,
) -> Result<Actual, Error> {
    let stack_tag = group.stack_key();
    let Some(desired) = desired else {
        let mut actual = match cached {
            Some(a) => a,
            None => {
                let (mut actual, known) = read_target_groups(t, &stack_tag).await?;
                read_load_balancer(t, known, &mut actual).await?;
                actual
            }
        };
        delete_all(t, &stack_tag, &mut actual).await?;
        return Ok(actual);
    };
    let (mut actual, unread) = match cached {
        Some(a) => (a, None),
        None => {
            let (actual, known) = read_target_groups(t, &stack_tag).await?;
            (actual, Some(known))
        }
    };
    let tg_arns = target_group::create_missing(t, &stack_tag, &desired.target_groups, &mut actual.target_groups).await?;
    targets::sync(t.aws, &desired.target_groups, &mut actual.target_groups).await?;
    if let Some(known) = unread {
        read_load_balancer(t, known, &mut actual).await?;
    }

    let mut sg_ids = match &desired.security_group {
        Some(sg) => BTreeSet::from([security_group::sync(t, sg, &mut actual.security_group).await?]),
        None => desired.load_balancer.security_groups.clone(),
    };
    sg_ids.extend(backend_sg.map(str::to_string));
    load_balancer::sync(t, &stack_tag, &desired.load_balancer, &sg_ids, &mut actual).await?;
    let lb_arn = actual.load_balancer.as_ref().map(|lb| lb.arn.clone()).unwrap_or_default();
    listener::sync(t.aws, &lb_arn, &desired.listeners, &tg_arns, &mut actual.listeners, &mut actual.remarks).await?;
    // Only now that no rule points at them can old target groups go.
    target_group::delete_unwanted(t, &stack_tag, &desired.target_groups, &mut actual.target_groups).await?;
    if desired.security_group.is_none() {
        // The load balancer no longer uses the managed group.
        security_group::delete(t, &stack_tag, &mut actual.security_group).await?;
    }
    Ok(actual)
}

/// Deletes whatever AWS still has tagged with `stack` after [`apply`] deleted what it knew
/// of: what a create whose reply was lost made is known to no cache. AWS is read afresh,
/// by a read that started at `since` or later (shared with other stacks deleted meanwhile).
/// Called before a stack's finalizer is released; an error keeps the finalizer.
pub async fn delete_leftovers(t: &Target<'_>, stack: &str, since: std::time::Instant) -> Result<(), Error> {
    let left = t.inventory.stack_read_since(t.aws, stack, since).await?;
    if left.load_balancers.is_empty() && left.target_groups.is_empty() && left.security_groups.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        stack,
        load_balancers = left.load_balancers.len(),
        target_groups = left.target_groups.len(),
        security_groups = left.security_groups.len(),
        "AWS still has resources of the deleted stack (made by a create whose reply was lost): deleting them"
    );
    for lb in left.load_balancers {
        let mut actual = Actual { load_balancer: Some(ActualLoadBalancer::from_sdk(lb)), ..Actual::default() };
        load_balancer::delete(t, stack, &mut actual).await?;
    }
    let mut target_groups = target_group::read(t.aws, left.target_groups).await?;
    target_group::delete_unwanted(t, stack, &[], &mut target_groups).await?;
    for id in left.security_groups {
        security_group::delete(t, stack, &mut Some(ActualSecurityGroup { id, ingress: BTreeSet::new() })).await?;
    }
    Ok(())
}

async fn delete_all(t: &Target<'_>, stack: &str, actual: &mut Actual) -> Result<(), Error> {
    load_balancer::delete(t, stack, actual).await?;
    target_group::delete_unwanted(t, stack, &[], &mut actual.target_groups).await?;
    security_group::delete(t, stack, &mut actual.security_group).await?;
    Ok(())
}

/// The tags of one ELBv2 resource.
pub(crate) async fn read_tags(aws: &Aws, arn: &str) -> Result<Tags, aws::Error> {
    let out = aws.call("elasticloadbalancingv2", "DescribeTags", || aws.elbv2.describe_tags().resource_arns(arn).send()).await?;
    Ok(out.tag_descriptions().iter().find(|d| d.resource_arn() == Some(arn)).map(|d| aws::elbv2_tags_to_map(d.tags())).unwrap_or_default())
}

pub(crate) fn elbv2_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_what_carries_the_stack_tags_is_adopted() {
        let wanted = tags(&[(TAG_CLUSTER, "c1"), (TAG_STACK, "shop/web"), ("team", "a")]);
        let owner = owner_tags(&wanted);
        assert!(ours(&tags(&[(TAG_CLUSTER, "c1"), (TAG_STACK, "shop/web")]), &owner), "other tags do not matter");
        assert!(!ours(&tags(&[(TAG_CLUSTER, "c2"), (TAG_STACK, "shop/web")]), &owner), "another cluster's");
        assert!(!ours(&tags(&[(TAG_CLUSTER, "c1"), (TAG_STACK, "shop/other")]), &owner), "another stack's");
        assert!(!ours(&tags(&[]), &owner), "untagged: made by hand");
        assert!(!ours(&wanted, &owner_tags(&Tags::new())), "nothing to match: never ours");
        let e = Error::not_ours("security group", "k8s-shop-web-1234", "sg-1", &owner);
        assert_eq!(
            e.to_string(),
            "security group k8s-shop-web-1234 already exists (sg-1) but is not tagged elbv2.k8s.aws/cluster=c1, ingress.k8s.aws/stack=shop/web: it is not taken over; delete or rename it, or choose another name"
        );
    }
}
