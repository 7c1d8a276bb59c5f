//! The load balancer itself: found by its stack tag, created tagged; subnets and
//! security groups set in place; replaced only when its scheme (fixed at creation) must
//! change. A different name is kept, as LBC keeps it: renaming would need a new load
//! balancer, with a new DNS name.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::{IpAddressType, LoadBalancer as SdkLoadBalancer, LoadBalancerSchemeEnum, LoadBalancerTypeEnum};

use super::attributes::{self, Owner};
use super::{Actual, Error, Target, elbv2_tags};
use crate::model::{LoadBalancer, Tags};

const ELBV2: &str = "elasticloadbalancingv2";

#[derive(Clone, Debug)]
pub struct ActualLoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    pub scheme: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    /// Security groups kept on it beyond the desired ones: LBC's shared backend group.
    pub kept_security_groups: BTreeSet<String>,
    /// `None` until read (only read when attributes are wanted).
    pub attributes: Option<Tags>,
}

impl ActualLoadBalancer {
    pub fn from_sdk(lb: SdkLoadBalancer) -> Self {
        ActualLoadBalancer {
            arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
            name: lb.load_balancer_name().unwrap_or_default().to_string(),
            dns_name: lb.dns_name().unwrap_or_default().to_string(),
            scheme: lb.scheme().map(|s| s.as_str().to_string()).unwrap_or_default(),
            subnets: lb.availability_zones().iter().filter_map(|az| az.subnet_id().map(str::to_string)).collect(),
            security_groups: lb.security_groups().iter().cloned().collect(),
            kept_security_groups: BTreeSet::new(),
            attributes: None,
        }
    }
}

pub async fn sync(t: &Target<'_>, stack: &str, desired: &LoadBalancer, sgs: &BTreeSet<String>, actual: &mut Actual) -> Result<(), Error> {
    let aws = t.aws;
    if actual.load_balancer.as_ref().is_some_and(|lb| lb.scheme != desired.scheme.as_str()) {
        tracing::info!(name = %desired.name, "load balancer scheme changed: replacing it");
        delete(t, stack, actual).await?;
    }
    let lb = match actual.load_balancer.take() {
        Some(lb) => lb,
        None => {
            actual.listeners.clear();
            match create_or_adopt(t, stack, desired, sgs).await? {
                Made::Created(mut lb) => {
                    attributes::sync(aws, Owner::LoadBalancer(&lb.arn), &desired.attributes, &mut lb.attributes, true).await?;
                    actual.load_balancer = Some(lb);
                    return Ok(());
                }
                // Brought to what is desired below, like any load balancer found.
                Made::Adopted(lb) => lb,
            }
        }
    };
    let lb = actual.load_balancer.insert(lb);
    attributes::sync(aws, Owner::LoadBalancer(&lb.arn), &desired.attributes, &mut lb.attributes, false).await?;
    if lb.subnets != desired.subnets {
        aws.call(ELBV2, "SetSubnets", || {
            aws.elbv2.set_subnets().load_balancer_arn(&lb.arn).set_subnets(Some(desired.subnets.iter().cloned().collect())).send()
        })
        .await?;
        lb.subnets = desired.subnets.clone();
    }
    let sgs: BTreeSet<String> = sgs.union(&lb.kept_security_groups).cloned().collect();
    if lb.security_groups != sgs {
        aws.call(ELBV2, "SetSecurityGroups", || {
            aws.elbv2.set_security_groups().load_balancer_arn(&lb.arn).set_security_groups(Some(sgs.iter().cloned().collect())).send()
        })
        .await?;
        lb.security_groups = sgs;
    }
    Ok(())
}

enum Made {
    Created(ActualLoadBalancer),
    /// Made by an earlier create whose reply was lost; as AWS describes it.
    Adopted(ActualLoadBalancer),
}

/// Creates the load balancer. AWS answers a create identical to an earlier one with the
/// existing load balancer, and one that differs with `DuplicateLoadBalancerName`: then it
/// is found by name and adopted if it is this stack's.
async fn create_or_adopt(t: &Target<'_>, stack: &str, desired: &LoadBalancer, sgs: &BTreeSet<String>) -> Result<Made, Error> {
    let aws = t.aws;
    let created = aws
        .call(ELBV2, "CreateLoadBalancer", || {
            aws.elbv2
                .create_load_balancer()
                .name(&desired.name)
                .r#type(LoadBalancerTypeEnum::Application)
                .scheme(LoadBalancerSchemeEnum::from(desired.scheme.as_str()))
                .ip_address_type(IpAddressType::from(desired.ip_address_type.as_str()))
                .set_subnets(Some(desired.subnets.iter().cloned().collect()))
                .set_security_groups(Some(sgs.iter().cloned().collect()))
                .set_tags(Some(elbv2_tags(&desired.tags)))
                .send()
        })
        .await;
    match created {
        Ok(out) => {
            let created =
                out.load_balancers.unwrap_or_default().into_iter().next().ok_or(crate::aws::Error::Response {
                    operation: "CreateLoadBalancer",
                    what: "no load balancer in the response".into(),
                })?;
            t.inventory.put_load_balancer(stack, created.clone()).await;
            let mut lb = ActualLoadBalancer::from_sdk(created);
            tracing::info!(arn = %lb.arn, dns = %lb.dns_name, "created load balancer");
            // Some emulators omit these in the create response; we just set them.
            lb.subnets = desired.subnets.clone();
            lb.security_groups = sgs.clone();
            Ok(Made::Created(lb))
        }
        Err(e) if e.is_code(&["DuplicateLoadBalancerName"]) => {
            let found = aws
                .call(ELBV2, "DescribeLoadBalancers", || aws.elbv2.describe_load_balancers().names(&desired.name).send())
                .await?
                .load_balancers
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or(e)?;
            let arn = found.load_balancer_arn().unwrap_or_default().to_string();
            let owner = super::owner_tags(&desired.tags);
            if !super::ours(&super::read_tags(aws, &arn).await?, &owner) {
                return Err(Error::not_ours("load balancer", &desired.name, &arn, &owner));
            }
            tracing::info!(%arn, name = %desired.name, "adopted the load balancer an earlier create made (its reply was lost)");
            t.inventory.put_load_balancer(stack, found.clone()).await;
            Ok(Made::Adopted(ActualLoadBalancer::from_sdk(found)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the load balancer (its listeners and rules go with it).
pub async fn delete(t: &Target<'_>, stack: &str, actual: &mut Actual) -> Result<(), Error> {
    let Some(lb) = actual.load_balancer.as_ref() else {
        return Ok(());
    };
    let aws = t.aws;
    // Checked here rather than left to AWS, so the Event can say what to do.
    let protected = match attributes::read(aws, Owner::LoadBalancer(&lb.arn)).await {
        Ok(attrs) => attrs.get("deletion_protection.enabled").is_some_and(|v| v == "true"),
        Err(Error::Aws(e)) if e.is_code(&["LoadBalancerNotFound"]) => false,
        Err(e) => return Err(e),
    };
    if protected {
        return Err(Error::DeletionProtected { name: lb.name.clone() });
    }
    match aws.call(ELBV2, "DeleteLoadBalancer", || aws.elbv2.delete_load_balancer().load_balancer_arn(&lb.arn).send()).await {
        Ok(_) => tracing::info!(arn = %lb.arn, "deleted load balancer"),
        Err(e) if e.is_code(&["LoadBalancerNotFound"]) => {}
        Err(e) => return Err(e.into()),
    }
    t.inventory.remove_load_balancer(stack, &lb.arn).await;
    actual.load_balancer = None;
    actual.listeners.clear();
    Ok(())
}
