//! What a source of stacks asks of one load balancer, in terms that know no Ingress and no
//! Gateway: the front-ends (`ingress`, later `gateway`) translate their objects into these,
//! and the aspect builders (`load_balancer`, `listeners`, `rules`, `target_groups`,
//! `certificates`, `security_groups`, `tags`) turn them into a `Stack`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::*;

/// A subnet as discovery found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Subnet {
    pub id: String,
    pub availability_zone: String,
    #[serde(default)]
    pub tags: Tags,
}

/// A security group of the VPC, for security groups given by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroupInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub name_tag: Option<String>,
}

/// An ISSUED ACM certificate: its ARN and every name it covers (domain + SANs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Certificate {
    pub arn: String,
    pub domains: Vec<String>,
}

/// What the account and the cluster hold that a stack is built against, whatever its source.
pub struct World<'a> {
    pub cluster: &'a str,
    pub group: &'a GroupId,
    /// EndpointSlices by the Service they belong to.
    pub endpoint_slices: &'a BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>>,
    pub subnets: &'a [Subnet],
    pub certificates: &'a [Certificate],
    /// The VPC's security groups (only needed when security groups are named).
    pub security_groups: &'a [SecurityGroupInfo],
    /// Nodes, for `instance` targets.
    pub nodes: &'a [Arc<Node>],
    /// Pods whose containers are ready and whose only wait is one of our readiness gates.
    pub gated_pods: &'a BTreeSet<ObjKey>,
    pub options: Options,
}

/// How the source names its settings in messages: an Ingress says
/// "annotation alb.ingress.kubernetes.io/tags", a Gateway would name its configuration's field.
pub struct Wording {
    /// What a member is ("Ingress").
    pub member: &'static str,
    pub tags: &'static str,
    pub subnets: &'static str,
    pub subnet_tags: &'static str,
    pub security_groups: &'static str,
    pub certificate_arn: &'static str,
    /// What to do when no certificate is found.
    pub certificate_hint: &'static str,
    pub ssl_redirect: &'static str,
    pub manage_backend_security_group_rules: &'static str,
    pub target_group_attributes: &'static str,
    pub healthcheck_port: &'static str,
    /// What to do when instance targets meet a Service without NodePorts.
    pub target_type_hint: &'static str,
}

/// Where the load balancer's subnets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubnetChoice {
    /// IDs or Name tags.
    Named(Vec<String>),
    /// For each tag key, one of the values.
    Tagged(BTreeMap<String, Vec<String>>),
    Discover,
}

/// Load-balancer-wide settings, agreed among the members by the front-end (unset = default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadBalancerIntent {
    pub scheme: Option<Scheme>,
    pub ip_address_type: Option<String>,
    pub name: Option<String>,
    pub subnets: Option<SubnetChoice>,
    pub inbound_cidrs: Option<Vec<String>>,
    /// The HTTPS port HTTP listeners redirect to.
    pub ssl_redirect: Option<i32>,
    pub ssl_policy: Option<String>,
    pub attributes: Option<Tags>,
    /// Security groups (IDs or names) instead of the managed one.
    pub security_groups: Option<Vec<String>>,
    pub manage_backend_security_group_rules: Option<bool>,
}

/// One listener rule before it gets its priority: matches and what to do.
#[derive(Clone)]
pub struct Route {
    /// The object it comes from, and its match as written there, for messages.
    pub from: ObjKey,
    pub written: String,
    pub conditions: Vec<Condition>,
    pub auth: Option<Authenticate>,
    pub action: Action,
    pub transforms: Vec<Transform>,
    /// Only on this listener port (a Gateway route's conditions depend on the listener's
    /// hostname); `None`: on every port of its member (an Ingress rule).
    pub port: Option<i32>,
    /// Its place among every member's routes on the listener (Gateway API precedence);
    /// `None`: in member order (IngressGroup order), after ranked ones.
    pub rank: Option<usize>,
}

/// What one member (an Ingress of a group) contributes to the load balancer.
pub struct MemberIntent {
    pub key: ObjKey,
    /// The listeners it wants, by protocol and port; its routes go to each of them.
    pub ports: Vec<(Protocol, i32)>,
    pub default_action: Option<Action>,
    /// In the member's own order.
    pub routes: Vec<Route>,
    /// The target groups its actions forward to.
    pub target_groups: Vec<TargetGroup>,
    /// Certificates it names; the first of the first member is the listeners' default.
    pub certificate_arns: Vec<String>,
    /// Hosts to find ACM certificates for when it names none.
    pub certificate_hosts: Vec<String>,
    /// Its tags: merged onto the load balancer and listeners (one value per key for the
    /// whole stack), and alone on its own rules (as LBC).
    pub tags: Tags,
    /// Listener attributes by port (the first member in order wins a key).
    pub listener_attributes: BTreeMap<i32, Tags>,
    /// It set the load-balancer-wide settings that need an HTTPS listener or the shared
    /// backend group, so it is the one left out when those cannot be had.
    pub sets_ssl_redirect: bool,
    pub sets_backend_security_group_rules: bool,
    pub warnings: Vec<Problem>,
}

/// A problem that leaves a member out of the stack.
pub fn problem(key: &ObjKey, message: String) -> Problem {
    Problem { ingress: key.clone(), reason: "FailedBuildModel", message }
}

/// A setting accepted with a remark (a JSON key LBC would ignore too): the build went on.
pub fn setting_warning(key: &ObjKey, message: String) -> Problem {
    Problem { ingress: key.clone(), reason: "AnnotationWarning", message }
}

/// A warning on a member, once however many of its rules share the cause.
pub fn warn_once(warnings: &mut Vec<Problem>, key: &ObjKey, message: String) {
    let w = problem(key, message);
    if !warnings.contains(&w) {
        warnings.push(w);
    }
}

/// A host or path as messages quote it: a prefix when it is long.
pub fn shortened(s: &str) -> String {
    const SHOWN: usize = 60;
    if s.chars().count() <= SHOWN { s.to_string() } else { format!("{}…", s.chars().take(SHOWN).collect::<String>()) }
}
