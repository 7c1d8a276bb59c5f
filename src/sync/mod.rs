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
use crate::model::{GroupId, ObjKey, Problem, Stack, Tags};

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
    let stack_tag = group.to_string();
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

async fn delete_all(t: &Target<'_>, stack: &str, actual: &mut Actual) -> Result<(), Error> {
    load_balancer::delete(t, stack, actual).await?;
    target_group::delete_unwanted(t, stack, &[], &mut actual.target_groups).await?;
    security_group::delete(t, stack, &mut actual.security_group).await?;
    Ok(())
}

pub(crate) fn elbv2_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}
