//! Pod readiness gates (`target-health.elbv2.k8s.aws/<target group>`): a gated pod's
//! endpoint is registered once its containers are ready, and its gate condition is set
//! True once the load balancer reports the target healthy. Only target groups with
//! pending pods are polled, at most once a second.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::Context;
use crate::model::ObjKey;
use crate::webhook::GATE_PREFIX;

/// The gates of a pod whose condition is not True yet.
fn pending(pod: &Pod) -> Vec<String> {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .into_iter()
        .flatten()
        .map(|g| g.condition_type.clone())
        .filter(|t| t.starts_with(GATE_PREFIX))
        .filter(|t| !conditions.into_iter().flatten().any(|c| &c.type_ == t && c.status == "True"))
        .collect()
}

fn containers_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "ContainersReady" && c.status == "True")
}

/// Pods waiting only for one of our gates: their endpoints are registered.
pub fn waiting_pods(ctx: &Context) -> BTreeSet<ObjKey> {
    ctx.gated_pods
        .state()
        .iter()
        .filter(|p| containers_ready(p) && !pending(p).is_empty())
        .map(|p| ObjKey { namespace: p.namespace().unwrap_or_default(), name: p.name_any() })
        .collect()
}

/// Sets gate conditions True as their targets turn healthy, for as long as we lead.
pub async fn flip(ctx: Arc<Context>) {
    // At most one round a second: that is the rate limit of the target health polls.
    let mut rounds = tokio::time::interval(Duration::from_secs(1));
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A failure is a warning when it is new; the same one again each second is not.
    let mut last_failure: Option<String> = None;
    loop {
        rounds.tick().await;
        match flip_once(&ctx).await {
            Ok(()) => last_failure = None,
            Err(e) => {
                let text = e.to_string();
                let error = crate::telemetry::Excerpt(&text);
                if last_failure.as_ref() != Some(&text) {
                    tracing::warn!(%error, "readiness gates: will retry");
                } else {
                    tracing::debug!(%error, "readiness gates: failed again; will retry");
                }
                last_failure = Some(text);
            }
        }
    }
}

async fn flip_once(ctx: &Context) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Pending (pod, gate) pairs by target group name.
    let mut by_tg: BTreeMap<String, Vec<(Arc<Pod>, String)>> = BTreeMap::new();
    for pod in ctx.gated_pods.state() {
        if pod.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_none() {
            continue;
        }
        for gate in pending(&pod) {
            by_tg.entry(gate.trim_start_matches(GATE_PREFIX).to_string()).or_default().push((pod.clone(), gate));
        }
    }
    if by_tg.is_empty() {
        return Ok(());
    }
    let arns: BTreeMap<String, String> = {
        let converged = ctx.converged.lock().await;
        converged.values().flat_map(|c| c.target_groups.iter().map(|tg| (tg.name.clone(), tg.arn.clone()))).collect()
    };
    for (tg, waiting) in by_tg {
        let Some(arn) = arns.get(&tg) else { continue };
        let aws = &ctx.aws;
        let out = aws
            .call("elasticloadbalancingv2", "DescribeTargetHealth", || aws.elbv2.describe_target_health().target_group_arn(arn).send())
            .await?;
        let healthy: BTreeSet<String> = out
            .target_health_descriptions()
            .iter()
            .filter(|d| d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy))
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
            .collect();
        for (pod, gate) in waiting {
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
            if !healthy.contains(&ip) {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let patch = json!({"status": {"conditions": [{"type": gate, "status": "True", "lastTransitionTime": now}]}});
            api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(patch)).await?;
            tracing::info!(pod = %pod.name_any(), %gate, "readiness gate True: the target is healthy");
        }
    }
    Ok(())
}
