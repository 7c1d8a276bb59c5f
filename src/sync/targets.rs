//! Registered targets of each target group: register what is desired and missing,
//! deregister what is registered and not desired, in chunks the API accepts.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;

use super::{ActualTargetGroup, Error};
use crate::aws::Aws;
use crate::model::{Target, TargetGroup};

const ELBV2: &str = "elasticloadbalancingv2";
/// Register/DeregisterTargets take at most this many targets per call.
const TARGETS_PER_CALL: usize = 500;

/// Targets to register and to deregister.
pub fn diff(actual: &BTreeSet<Target>, desired: &BTreeSet<Target>) -> (Vec<Target>, Vec<Target>) {
    (desired.difference(actual).cloned().collect(), actual.difference(desired).cloned().collect())
}

fn to_sdk(targets: &[Target]) -> Vec<TargetDescription> {
    targets.iter().map(|t| TargetDescription::builder().id(&t.id).port(t.port).build()).collect()
}

pub async fn sync(aws: &Aws, desired: &[TargetGroup], actual: &mut [ActualTargetGroup]) -> Result<(), Error> {
    for d in desired {
        let (Some(a), Some(wanted)) = (actual.iter_mut().find(|a| a.serves(d)), &d.targets) else { continue };
        sync_one(aws, a, wanted).await?;
    }
    Ok(())
}

/// Registers and deregisters so that `actual` holds `desired`. New targets go first, so a
/// rolling replacement never leaves the target group empty. `actual` follows every call
/// that succeeded, also when a later one fails.
pub async fn sync_one(aws: &Aws, a: &mut ActualTargetGroup, desired: &BTreeSet<Target>) -> Result<(), Error> {
    let (register, deregister) = diff(&a.targets, desired);
    for chunk in register.chunks(TARGETS_PER_CALL) {
        let targets = to_sdk(chunk);
        aws.call(ELBV2, "RegisterTargets", || {
            aws.elbv2.register_targets().target_group_arn(&a.arn).set_targets(Some(targets.clone())).send()
        })
        .await?;
        a.targets.extend(chunk.iter().cloned());
        aws.metrics().targets_changed("registered", chunk.len());
        tracing::debug!(target_group = %a.name, ips = %ips(chunk), "registered targets");
    }
    for chunk in deregister.chunks(TARGETS_PER_CALL) {
        let targets = to_sdk(chunk);
        aws.call(ELBV2, "DeregisterTargets", || {
            aws.elbv2.deregister_targets().target_group_arn(&a.arn).set_targets(Some(targets.clone())).send()
        })
        .await?;
        for t in chunk {
            a.targets.remove(t);
        }
        aws.metrics().targets_changed("deregistered", chunk.len());
        tracing::debug!(target_group = %a.name, ips = %ips(chunk), "deregistered targets");
    }
    Ok(())
}

fn ips(targets: &[Target]) -> String {
    targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ip: &str) -> Target {
        Target { id: ip.into(), port: 8080 }
    }

    #[test]
    fn diff_registers_new_and_deregisters_gone() {
        let actual = BTreeSet::from([t("10.0.0.1"), t("10.0.0.2")]);
        let desired = BTreeSet::from([t("10.0.0.2"), t("10.0.0.3")]);
        assert_eq!(diff(&actual, &desired), (vec![t("10.0.0.3")], vec![t("10.0.0.1")]));
    }
}
