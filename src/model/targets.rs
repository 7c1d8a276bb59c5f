//! The targets of a target group, from the objects they follow: the ready endpoints of a
//! Service port, or the instances of the nodes on a NodePort. Pure, so the builder and the
//! endpoint fast path compute targets the same way.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;

use super::{ObjKey, Tags, Target};

/// Where a target group's targets come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum TargetSource {
    /// Endpoints of a Service port (matched by the port's name in the EndpointSlices).
    Endpoints { service: ObjKey, port_name: Option<String>, publish_not_ready: bool },
    /// Instances of the nodes with every label, on a NodePort.
    Nodes { labels: Tags, node_port: i32 },
}

/// A change in Kubernetes that can change targets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dependency {
    /// The EndpointSlices of a Service.
    Service(ObjKey),
    /// A readiness-gated pod in a namespace.
    Pods(String),
    /// Any node.
    Nodes,
}

impl TargetSource {
    /// The Service whose EndpointSlices the targets come from, if any.
    pub fn service(&self) -> Option<&ObjKey> {
        match self {
            TargetSource::Endpoints { service, .. } => Some(service),
            TargetSource::Nodes { .. } => None,
        }
    }

    pub fn dependencies(&self) -> Vec<Dependency> {
        match self {
            TargetSource::Endpoints { service, .. } => {
                vec![Dependency::Service(service.clone()), Dependency::Pods(service.namespace.clone())]
            }
            TargetSource::Nodes { .. } => vec![Dependency::Nodes],
        }
    }

    /// The targets, or `None` when they are not known: no EndpointSlice of the Service
    /// exists (yet), which is never taken for "zero endpoints".
    pub fn targets<'a>(
        &self,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        nodes: &[impl AsRef<Node>],
        gated_pods: &BTreeSet<ObjKey>,
    ) -> Option<BTreeSet<Target>> {
        match self {
            TargetSource::Endpoints { port_name, publish_not_ready, .. } => {
                ip_targets(slices, port_name.as_deref().unwrap_or(""), *publish_not_ready, gated_pods)
            }
            TargetSource::Nodes { labels, node_port } => Some(instance_targets(nodes, labels, *node_port)),
        }
    }
}

/// Ready endpoint addresses of a Service port (not-ready ones too when the Service
/// publishes them, or when a pod waits only for our readiness gate; terminating ones
/// never). `None` without any slice.
fn ip_targets<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    port_name: &str,
    publish_not_ready: bool,
    gated_pods: &BTreeSet<ObjKey>,
) -> Option<BTreeSet<Target>> {
    let mut any = false;
    let mut targets = BTreeSet::new();
    for slice in slices {
        any = true;
        if slice.address_type != "IPv4" {
            continue;
        }
        let port = slice.ports.iter().flatten().find(|p| p.name.as_deref().unwrap_or("") == port_name).and_then(|p| p.port);
        let Some(port) = port else { continue };
        for ep in &slice.endpoints {
            let cond = ep.conditions.as_ref();
            // A nil `ready` means ready (EndpointConditions API contract).
            let ready = cond.and_then(|c| c.ready).unwrap_or(true);
            let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            let gated = ep.target_ref.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("Pod")
                    && gated_pods.contains(&ObjKey {
                        namespace: r.namespace.clone().or_else(|| slice.metadata.namespace.clone()).unwrap_or_default(),
                        name: r.name.clone().unwrap_or_default(),
                    })
            });
            if (ready || publish_not_ready || gated) && !terminating {
                targets.extend(ep.addresses.iter().map(|ip| Target { id: ip.clone(), port }));
            }
        }
    }
    any.then_some(targets)
}

const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The EC2 instances of the nodes that can carry traffic, on the NodePort: nodes with
/// every `target-node-labels` label, not labelled to be excluded from load balancers,
/// not reported NotReady, with an `aws:///<zone>/<instance-id>` provider ID.
fn instance_targets(nodes: &[impl AsRef<Node>], labels: &Tags, node_port: i32) -> BTreeSet<Target> {
    nodes
        .iter()
        .map(AsRef::as_ref)
        .filter(|n| {
            let node_labels = n.metadata.labels.as_ref();
            let has = |k: &str, v: &str| node_labels.and_then(|l| l.get(k)).is_some_and(|x| x == v);
            labels.iter().all(|(k, v)| has(k, v)) && !node_labels.is_some_and(|l| l.contains_key(EXCLUDE_FROM_LB_LABEL))
        })
        .filter(|n| {
            let conditions = n.status.as_ref().and_then(|s| s.conditions.as_ref());
            !conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "False")
        })
        .filter_map(|n| instance_id(n.spec.as_ref()?.provider_id.as_deref()?))
        .map(|id| Target { id, port: node_port })
        .collect()
}

/// `aws:///us-east-1a/i-0123456789abcdef0` → `i-0123456789abcdef0`.
fn instance_id(provider_id: &str) -> Option<String> {
    let id = provider_id.strip_prefix("aws://")?.rsplit('/').next()?;
    id.starts_with("i-").then(|| id.to_string())
}
