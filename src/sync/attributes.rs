//! Attributes of load balancers, target groups and listeners: only the keys the model
//! lists are reconciled, so settings made elsewhere for other keys are left alone.

use aws_sdk_elasticloadbalancingv2::types::{ListenerAttribute, LoadBalancerAttribute, TargetGroupAttribute};

use super::Error;
use crate::aws::Aws;
use crate::model::Tags;

const ELBV2: &str = "elasticloadbalancingv2";

/// Whose attributes, by ARN.
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    LoadBalancer(&'a str),
    TargetGroup(&'a str),
    Listener(&'a str),
}

/// The desired attributes whose value differs from `actual` (`None`: not known, so all).
pub fn changes(actual: Option<&Tags>, desired: &Tags) -> Tags {
    desired
        .iter()
        .filter(|(k, v)| actual.is_none_or(|a| !a.get(*k).is_some_and(|have| same_value(have, v))))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether two attribute values mean the same: AWS describes numbers in their plain form
/// (`60` for a written `060`), which is no difference to repair.
fn same_value(have: &str, want: &str) -> bool {
    have == want || matches!((have.parse::<i64>(), want.parse::<i64>()), (Ok(a), Ok(b)) if a == b)
}

fn pairs<'a>(list: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Tags {
    list.filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string()))).collect()
}

pub async fn read(aws: &Aws, owner: Owner<'_>) -> Result<Tags, Error> {
    Ok(match owner {
        Owner::LoadBalancer(arn) => {
            let out = aws
                .call(ELBV2, "DescribeLoadBalancerAttributes", || {
                    aws.elbv2.describe_load_balancer_attributes().load_balancer_arn(arn).send()
                })
                .await?;
            pairs(out.attributes().iter().map(|a| (a.key(), a.value())))
        }
        Owner::TargetGroup(arn) => {
            let out = aws
                .call(ELBV2, "DescribeTargetGroupAttributes", || aws.elbv2.describe_target_group_attributes().target_group_arn(arn).send())
                .await?;
            pairs(out.attributes().iter().map(|a| (a.key(), a.value())))
        }
        Owner::Listener(arn) => {
            let out =
                aws.call(ELBV2, "DescribeListenerAttributes", || aws.elbv2.describe_listener_attributes().listener_arn(arn).send()).await?;
            pairs(out.attributes().iter().map(|a| (a.key(), a.value())))
        }
    })
}

async fn modify(aws: &Aws, owner: Owner<'_>, changes: &Tags) -> Result<(), Error> {
    match owner {
        Owner::LoadBalancer(arn) => {
            let attrs: Vec<_> = changes.iter().map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build()).collect();
            aws.call(ELBV2, "ModifyLoadBalancerAttributes", || {
                aws.elbv2.modify_load_balancer_attributes().load_balancer_arn(arn).set_attributes(Some(attrs.clone())).send()
            })
            .await?;
        }
        Owner::TargetGroup(arn) => {
            let attrs: Vec<_> = changes.iter().map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build()).collect();
            aws.call(ELBV2, "ModifyTargetGroupAttributes", || {
                aws.elbv2.modify_target_group_attributes().target_group_arn(arn).set_attributes(Some(attrs.clone())).send()
            })
            .await?;
        }
        Owner::Listener(arn) => {
            let attrs: Vec<_> = changes.iter().map(|(k, v)| ListenerAttribute::builder().key(k).value(v).build()).collect();
            aws.call(ELBV2, "ModifyListenerAttributes", || {
                aws.elbv2.modify_listener_attributes().listener_arn(arn).set_attributes(Some(attrs.clone())).send()
            })
            .await?;
        }
    }
    Ok(())
}

/// Makes the listed attributes match. `actual` is what is known (`None`: unknown; it is
/// read first unless `fresh`, a resource just created, whose attributes are all set).
pub async fn sync(aws: &Aws, owner: Owner<'_>, desired: &Tags, actual: &mut Option<Tags>, fresh: bool) -> Result<(), Error> {
    if desired.is_empty() {
        return Ok(());
    }
    if actual.is_none() && !fresh {
        *actual = Some(read(aws, owner).await?);
    }
    let changes = changes(actual.as_ref(), desired);
    if !changes.is_empty() {
        modify(aws, owner, &changes).await?;
        actual.get_or_insert_default().extend(changes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_listed_keys_that_differ_change() {
        let actual = t(&[("idle_timeout.timeout_seconds", "60"), ("deletion_protection.enabled", "false"), ("http2.enabled", "true")]);
        let desired = t(&[("idle_timeout.timeout_seconds", "120"), ("http2.enabled", "true")]);
        assert_eq!(changes(Some(&actual), &desired), t(&[("idle_timeout.timeout_seconds", "120")]));
        assert_eq!(changes(None, &desired), desired, "unknown actual: set every listed key");
        assert!(changes(Some(&actual), &Tags::new()).is_empty());
        let padded = t(&[("idle_timeout.timeout_seconds", "060")]);
        assert!(changes(Some(&actual), &padded).is_empty(), "a number AWS writes plainly is no difference");
    }
}
