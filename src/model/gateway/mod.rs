//! The Gateway API front-end: one Gateway with the HTTPRoutes and GRPCRoutes attached to
//! it, translated into intents for the stack builders, as LBC's ALB Gateway controller
//! builds its stacks; and the status the spec asks for (listeners, route parents).
//!
//! The objects come in as plain descriptions (`spec`), so that this builder knows nothing
//! of the generated Kubernetes types. A route with a problem (a backend AWS cannot serve,
//! past a quota, …) is left out and reported; the others still make the load balancer.

mod attach;
mod routes;
pub mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::intent::{Certificate, LoadBalancerIntent, MemberIntent, SecurityGroupInfo, Subnet, Wording, World, problem};
use super::stack::{self, Built};
use super::*;
pub use attach::{Condition as StatusCondition, ListenerStatus, RouteStatus};
pub use routes::host_order;
use spec::{GatewaySpec, Grant, RouteSpec};

/// The GatewayClass `controllerName` of LBC's ALB Gateway controller.
pub const CONTROLLER_NAME: &str = "gateway.k8s.aws/alb";

pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub gateway: &'a GatewaySpec,
    /// What its LoadBalancerConfiguration asks of the load balancer (unset = default).
    pub load_balancer: LoadBalancerIntent,
    /// Its LoadBalancerConfiguration's tags: on the load balancer and every resource.
    pub tags: Tags,
    /// Certificates its LoadBalancerConfiguration names per listener port (the first is
    /// the default); ports without any discover them in ACM by hostname.
    pub listener_certificates: BTreeMap<i32, Vec<String>>,
    /// Every HTTPRoute and GRPCRoute that may name this Gateway as a parent.
    pub routes: &'a [RouteSpec],
    /// Namespace labels by namespace, for `allowedRoutes.namespaces.selector`.
    pub namespaces: &'a BTreeMap<String, Tags>,
    pub grants: &'a [Grant],
    /// TargetGroupConfigurations by the Service they name.
    pub target_configs: &'a BTreeMap<ObjKey, spec::TargetConfig>,
    pub services: &'a BTreeMap<ObjKey, Service>,
    pub endpoint_slices: &'a BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>>,
    pub subnets: &'a [Subnet],
    pub certificates: &'a [Certificate],
    pub security_groups: &'a [SecurityGroupInfo],
    pub nodes: &'a [Arc<Node>],
    pub gated_pods: &'a BTreeSet<ObjKey>,
    pub options: Options,
}

/// How a Gateway's settings are named in messages: by its configuration's fields.
pub const WORDING: Wording = Wording {
    member: "route",
    tags: "LoadBalancerConfiguration spec.tags",
    subnets: "LoadBalancerConfiguration spec.loadBalancerSubnets",
    subnet_tags: "LoadBalancerConfiguration spec.loadBalancerSubnetsSelector",
    security_groups: "LoadBalancerConfiguration spec.securityGroups",
    certificate_arn: "LoadBalancerConfiguration spec.listenerConfigurations certificates",
    certificate_hint: "name certificates in the LoadBalancerConfiguration's listenerConfigurations, or give the listener or its routes hostnames matched by an ISSUED ACM certificate",
    ssl_redirect: "LoadBalancerConfiguration spec.listenerConfigurations",
    manage_backend_security_group_rules: "LoadBalancerConfiguration spec.manageBackendSecurityGroupRules",
    target_group_attributes: "TargetGroupConfiguration targetGroupAttributes",
    healthcheck_port: "TargetGroupConfiguration healthCheckConfig.healthCheckPort",
    target_type_hint: "or set targetType: ip in a TargetGroupConfiguration",
};

/// The stack of one Gateway, and the status of its listeners and of the routes' parents.
pub struct GatewayBuilt {
    pub built: Built,
    /// The Gateway's `Accepted` condition (the controller sets `Programmed`).
    pub accepted: StatusCondition,
    pub listeners: Vec<ListenerStatus>,
    /// Every route that names this Gateway, with its parent statuses for it.
    pub routes: Vec<RouteStatus>,
}

pub fn build(inputs: &Inputs) -> GatewayBuilt {
    let gw = inputs.gateway;
    let group = GroupId::Gateway { namespace: gw.key.namespace.clone(), name: gw.key.name.clone(), uid: gw.uid.clone() };
    let world = World {
        cluster: inputs.cluster,
        group: &group,
        endpoint_slices: inputs.endpoint_slices,
        subnets: inputs.subnets,
        certificates: inputs.certificates,
        security_groups: inputs.security_groups,
        nodes: inputs.nodes,
        gated_pods: inputs.gated_pods,
        options: inputs.options,
    };
    let mut attached = attach::attach(gw, inputs.routes, inputs.namespaces);
    let mut out = Built::default();

    // Each attached route on its own: its rules on each listener port, its backends.
    let ranks = routes::ranks(&attached.routes);
    let mut members: Vec<MemberIntent> = Vec::new();
    let mut reports = Vec::new();
    for route in &attached.routes {
        let mut ctx = routes::Context { inputs, world: &world, route, ranks: &ranks, refused: Vec::new(), unresolved: Vec::new() };
        match routes::member(&mut ctx) {
            Ok(m) => members.push(m),
            Err(message) => out.problems.push(problem(&route.spec.key, message)),
        }
        reports.push((route.spec, ctx.refused, ctx.unresolved));
    }
    for (route, refused, unresolved) in reports {
        attached.report(route, refused, unresolved);
    }

    // Its names hash the Gateway's UID, as LBC's do (`names::load_balancer`): a recreated
    // Gateway gets a new load balancer.
    stack::assemble(&world, &WORDING, inputs.load_balancer.clone(), members, &mut out);
    // A route the stack builders left out is not accepted by its listeners.
    let left_out: BTreeMap<ObjKey, String> = out.problems.iter().map(|p| (p.ingress.clone(), p.message.clone())).collect();
    attached.refuse_left_out(&left_out);
    GatewayBuilt {
        built: out,
        accepted: attached.gateway_accepted(),
        listeners: attached.listener_statuses(),
        routes: attached.route_statuses(),
    }
}
