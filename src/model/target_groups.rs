//! Target groups: one per backend (a Service port with its target settings), named as LBC
//! names them, on the port the targets listen on, with the targets the Service has now.

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::intent::{Wording, World};
use super::tags::OWN_TAGS;
use super::{HealthCheck, ObjKey, Protocol, Tags, TargetGroup, TargetSource, TargetType, limits, names};

/// How a backend's targets are reached and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSettings {
    pub target_type: TargetType,
    /// `instance` targets: only nodes with all these labels.
    pub node_labels: Tags,
    pub attributes: Tags,
    pub protocol: Protocol,
    pub protocol_version: String,
    /// Its port is `traffic-port`, a number, or a Service port name (resolved here).
    pub health_check: HealthCheck,
    pub tags: Tags,
}

/// A Service port requests are forwarded to, as a source names it.
pub struct Backend<'a> {
    /// The object whose backend it is (it names the target group, as LBC's names do).
    pub owner: &'a ObjKey,
    pub service: &'a Service,
    pub port: &'a ServicePort,
    /// The Service port as the source wrote it (number or name).
    pub port_ref: &'a str,
    pub settings: TargetSettings,
}

/// The Service port a backend names, by number or by name.
pub fn service_port<'s>(svc: &'s Service, port: &str) -> Option<&'s ServicePort> {
    svc.spec.as_ref()?.ports.as_ref()?.iter().find(|p| p.port.to_string() == port || p.name.as_deref() == Some(port))
}

fn service_key(svc: &Service) -> ObjKey {
    ObjKey { namespace: svc.metadata.namespace.clone().unwrap_or_default(), name: svc.metadata.name.clone().unwrap_or_default() }
}

/// The target group's port; a named health-check port is resolved on the way.
pub fn port(wording: &Wording, b: &mut Backend) -> Result<i32, String> {
    let svc_key = service_key(b.service);
    let target_type = b.settings.target_type;
    let tg_port = target_port(&svc_key, b.service, b.port, target_type, wording)?;
    let hc_port = &mut b.settings.health_check.port;
    if hc_port.as_str() != "traffic-port" && hc_port.parse::<u16>().is_err() {
        *hc_port = health_check_port(&svc_key, b.service, hc_port, target_type, wording)?.to_string();
    }
    Ok(tg_port)
}

/// An Ingress backend's target group name (LBC's Ingress naming) and port.
pub fn name_and_port(cluster: &str, group: &super::GroupId, wording: &Wording, b: &mut Backend) -> Result<(String, i32), String> {
    let tg_port = port(wording, b)?;
    let svc_key = service_key(b.service);
    let target_type = b.settings.target_type;
    let name = names::target_group(&names::TargetGroupNameParts {
        cluster,
        group,
        ingress_namespace: &b.owner.namespace,
        ingress_name: &b.owner.name,
        svc_namespace: &svc_key.namespace,
        svc_name: &svc_key.name,
        svc_uid: b.service.metadata.uid.as_deref().unwrap_or_default(),
        svc_port: b.port_ref,
        tg_port,
        target_type: target_type.as_str(),
        protocol: b.settings.protocol.as_str(),
        protocol_version: &b.settings.protocol_version,
    });
    Ok((name, tg_port))
}

/// Checks what AWS would refuse before the target group exists.
pub fn check(b: &Backend, wording: &Wording) -> Result<(), String> {
    let svc_key = service_key(b.service);
    limits::check_attributes(&b.settings.attributes, wording.target_group_attributes)
        .map_err(|e| format!("backend Service {svc_key}: {e}"))?;
    if b.settings.tags.len() + OWN_TAGS > limits::MAX_TAGS {
        return Err(format!(
            "backend Service {svc_key}: its target group would have {} tags (with the controller's own); AWS allows {}",
            b.settings.tags.len() + OWN_TAGS,
            limits::MAX_TAGS
        ));
    }
    Ok(())
}

/// The target group of a backend named `name` on `port`, with its targets as `world` has them.
pub fn build(world: &World, b: Backend, name: String, port: i32, resource_id: String) -> TargetGroup {
    let svc_key = service_key(b.service);
    let s = b.settings;
    let source = match s.target_type {
        TargetType::Ip => TargetSource::Endpoints {
            service: svc_key.clone(),
            port_name: b.port.name.clone(),
            publish_not_ready: b.service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false),
        },
        TargetType::Instance => TargetSource::Nodes { labels: s.node_labels.clone(), node_port: port },
    };
    let slices = world.endpoint_slices.get(&svc_key).map(Vec::as_slice).unwrap_or_default();
    let targets = source.targets(slices.iter().map(AsRef::as_ref), world.nodes, world.gated_pods);
    TargetGroup {
        resource_id,
        name,
        protocol: s.protocol,
        protocol_version: s.protocol_version,
        port,
        target_type: s.target_type,
        health_check: s.health_check,
        attributes: s.attributes,
        targets,
        source,
        tags: s.tags,
    }
}

/// A health-check port given as a Service port name, as LBC resolves it: the port's
/// NodePort for instance targets, its numeric targetPort for IP targets.
fn health_check_port(svc_key: &ObjKey, svc: &Service, name: &str, target_type: TargetType, wording: &Wording) -> Result<i32, String> {
    let bad = |why: String| format!("backend Service {svc_key}: {}: {why}", wording.healthcheck_port);
    let port = service_port(svc, name).ok_or_else(|| bad(format!("the Service has no port {name:?}")))?;
    match (target_type, &port.target_port) {
        (TargetType::Instance, _) => port.node_port.ok_or_else(|| bad(format!("port {name:?} has no NodePort"))),
        (TargetType::Ip, Some(IntOrString::Int(n))) => Ok(*n),
        (TargetType::Ip, None) => Ok(port.port),
        (TargetType::Ip, Some(IntOrString::String(_))) => {
            Err(bad(format!("port {name:?} has a named targetPort, which IP targets cannot resolve")))
        }
    }
}

/// The port targets are registered on: the NodePort for instance targets, the numeric
/// targetPort for IP targets (1 for a named one: each endpoint then carries its own port).
fn target_port(svc_key: &ObjKey, svc: &Service, svc_port: &ServicePort, target_type: TargetType, wording: &Wording) -> Result<i32, String> {
    Ok(match (target_type, &svc_port.target_port) {
        (TargetType::Instance, _) => {
            let svc_type = svc.spec.as_ref().and_then(|s| s.type_.as_deref()).unwrap_or("ClusterIP");
            match svc_port.node_port {
                Some(p) if svc_type == "NodePort" || svc_type == "LoadBalancer" => p,
                _ => {
                    return Err(format!(
                        "backend Service {svc_key} is of type {svc_type}: target-type instance needs a NodePort or LoadBalancer Service ({})",
                        wording.target_type_hint
                    ));
                }
            }
        }
        (TargetType::Ip, Some(IntOrString::Int(n))) => *n,
        (TargetType::Ip, Some(IntOrString::String(_))) => 1,
        (TargetType::Ip, None) => svc_port.port,
    })
}
