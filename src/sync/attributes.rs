//! Attributes of load balancers, target groups and listeners: only the keys the model
//! lists are reconciled, so settings made elsewhere for other keys are left alone.

use aws_sdk_elasticloadbalancingv2::types::{ListenerAttribute, LoadBalancerAttribute, TargetGroupAttribute};

use super::Error;
use crate::aws::Aws;
use crate::model::Tags;

const ELBV2: &str = "elasticloadbalancingv2";

/// The desired attributes whose value differs from `actual` (`None`: not known, so all).
pub fn changes(actual: Option<&Tags>, desired: &Tags) -> Tags {
    desired.iter().filter(|(k, v)| actual.is_none_or(|a| a.get(*k) != Some(*v))).map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub async fn read_load_balancer(aws: &Aws, arn: &str) -> Result<Tags, Error> {
    let out = aws
        .call(ELBV2, "DescribeLoadBalancerAttributes", || aws.elbv2.describe_load_balancer_attributes().load_balancer_arn(arn).send())
        .await?;
    Ok(out.attributes().iter().filter_map(|a| Some((a.key()?.to_string(), a.value().unwrap_or_default().to_string()))).collect())
}

pub async fn modify_load_balancer(aws: &Aws, arn: &str, changes: &Tags) -> Result<(), Error> {
    let attrs: Vec<LoadBalancerAttribute> = changes.iter().map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build()).collect();
    aws.call(ELBV2, "ModifyLoadBalancerAttributes", || {
        aws.elbv2.modify_load_balancer_attributes().load_balancer_arn(arn).set_attributes(Some(attrs.clone())).send()
    })
    .await?;
    Ok(())
}

pub async fn read_target_group(aws: &Aws, arn: &str) -> Result<Tags, Error> {
    let out = aws
        .call(ELBV2, "DescribeTargetGroupAttributes", || aws.elbv2.describe_target_group_attributes().target_group_arn(arn).send())
        .await?;
    Ok(out.attributes().iter().filter_map(|a| Some((a.key()?.to_string(), a.value().unwrap_or_default().to_string()))).collect())
}

pub async fn modify_target_group(aws: &Aws, arn: &str, changes: &Tags) -> Result<(), Error> {
    let attrs: Vec<TargetGroupAttribute> = changes.iter().map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build()).collect();
    aws.call(ELBV2, "ModifyTargetGroupAttributes", || {
        aws.elbv2.modify_target_group_attributes().target_group_arn(arn).set_attributes(Some(attrs.clone())).send()
    })
    .await?;
    Ok(())
}

pub async fn read_listener(aws: &Aws, arn: &str) -> Result<Tags, Error> {
    let out = aws.call(ELBV2, "DescribeListenerAttributes", || aws.elbv2.describe_listener_attributes().listener_arn(arn).send()).await?;
    Ok(out.attributes().iter().filter_map(|a| Some((a.key()?.to_string(), a.value().unwrap_or_default().to_string()))).collect())
}

pub async fn modify_listener(aws: &Aws, arn: &str, changes: &Tags) -> Result<(), Error> {
    let attrs: Vec<ListenerAttribute> = changes.iter().map(|(k, v)| ListenerAttribute::builder().key(k).value(v).build()).collect();
    aws.call(ELBV2, "ModifyListenerAttributes", || {
        aws.elbv2.modify_listener_attributes().listener_arn(arn).set_attributes(Some(attrs.clone())).send()
    })
    .await?;
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
    }
}
