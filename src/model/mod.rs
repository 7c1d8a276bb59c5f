//! The desired state of one IngressGroup as plain data, and the pure builder that
//! produces it. Nothing here talks to Kubernetes or AWS.

mod certificates;
pub mod gateway;
mod ingress;
mod intent;
mod limits;
mod listeners;
mod load_balancer;
pub mod names;
mod rules;
mod security_groups;
mod stack;
mod tags;
mod target_groups;
mod targets;

pub use ingress::{BackendRef, Inputs, build, sorted_paths};
pub use intent::{Certificate, LoadBalancerIntent, SecurityGroupInfo, Subnet, SubnetChoice};
pub use target_groups::service_port;
pub use targets::{Dependency, TargetSource};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

pub type Tags = BTreeMap<String, String>;

pub const TAG_CLUSTER: &str = "elbv2.k8s.aws/cluster";
pub const TAG_STACK: &str = "ingress.k8s.aws/stack";
pub const TAG_RESOURCE: &str = "ingress.k8s.aws/resource";
/// LBC's ALB Gateway controller tags its stacks under its own prefix (`gateway.k8s.aws.alb`).
pub const TAG_GATEWAY_STACK: &str = "gateway.k8s.aws.alb/stack";
pub const TAG_GATEWAY_RESOURCE: &str = "gateway.k8s.aws.alb/resource";
/// `ingress.k8s.aws/resource` of a load balancer's managed security group.
pub const RESOURCE_MANAGED_SG: &str = "ManagedLBSecurityGroup";

/// Controller-wide settings the builder follows: LBC's flags, with LBC's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Target type of backends without a `target-type` annotation (LBC: `instance`).
    pub default_target_type: TargetType,
    /// `--enable-backend-security-group`: load balancers with a managed security group
    /// also get the cluster's shared backend security group, and the targets' security
    /// groups allow that one group (else they allow each load balancer's managed group).
    pub backend_security_group: bool,
    /// `--disable-restricted-sg-rules`: rules on the targets' security groups allow every
    /// TCP port instead of the target and health-check ports.
    pub unrestricted_sg_rules: bool,
    /// `--tolerate-non-existent-backend-service`: a rule forwarding to one Service that does
    /// not exist answers a fixed 503 instead of failing its Ingress.
    pub tolerate_missing_backend_service: bool,
    /// `--tolerate-non-existent-backend-action`: a `use-annotation` backend whose
    /// `actions.*` annotation is missing answers a fixed 503 instead of failing its Ingress.
    pub tolerate_missing_backend_action: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_target_type: TargetType::Instance,
            backend_security_group: true,
            unrestricted_sg_rules: false,
            tolerate_missing_backend_service: true,
            tolerate_missing_backend_action: true,
        }
    }
}

/// One IngressGroup = one ALB = one stack. An Ingress without `group.name` is its own group.
/// A Gateway is a stack of its own too; its UID goes into its AWS names, as LBC's do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum GroupId {
    Implicit { namespace: String, name: String },
    Explicit(String),
    Gateway { namespace: String, name: String, uid: String },
}

impl GroupId {
    /// The tag key naming the stack on every resource (LBC's per-controller prefix).
    pub fn stack_tag(&self) -> &'static str {
        match self {
            GroupId::Gateway { .. } => TAG_GATEWAY_STACK,
            _ => TAG_STACK,
        }
    }

    /// The key the AWS inventory files this stack's resources under ([`stack_key`]).
    pub fn stack_key(&self) -> String {
        match self {
            GroupId::Gateway { .. } => format!("gateway:{self}"),
            _ => self.to_string(),
        }
    }

    /// The tag key naming the resource within its stack.
    pub fn resource_tag(&self) -> &'static str {
        match self {
            GroupId::Gateway { .. } => TAG_GATEWAY_RESOURCE,
            _ => TAG_RESOURCE,
        }
    }
}

/// Which stack a resource belongs to, by its tags: the stack tag's value, prefixed for a
/// Gateway stack (`gateway:<namespace>/<name>`) so that it never meets an Ingress stack of
/// the same name (group names cannot hold a `:`). As [`GroupId::stack_key`].
pub fn stack_key(tags: &Tags) -> Option<String> {
    match (tags.get(TAG_STACK), tags.get(TAG_GATEWAY_STACK)) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(s)) => Some(format!("gateway:{s}")),
        (None, None) => None,
    }
}

/// The resource tag a resource's tags carry, whichever controller kind made it.
pub fn resource_of(tags: &Tags) -> Option<&String> {
    tags.get(TAG_RESOURCE).or_else(|| tags.get(TAG_GATEWAY_RESOURCE))
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupId::Implicit { namespace, name } | GroupId::Gateway { namespace, name, .. } => write!(f, "{namespace}/{name}"),
            GroupId::Explicit(name) => f.write_str(name),
        }
    }
}

/// A namespaced object's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjKey {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Internal,
    InternetFacing,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Internal => "internal",
            Scheme::InternetFacing => "internet-facing",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Protocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Ip,
    Instance,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Ip => "ip",
            TargetType::Instance => "instance",
        }
    }

    pub fn parse(v: &str) -> Result<TargetType, String> {
        match v {
            "ip" => Ok(TargetType::Ip),
            "instance" => Ok(TargetType::Instance),
            _ => Err(format!("unknown target type {v:?}: must be \"ip\" or \"instance\"")),
        }
    }
}

/// Everything AWS resources of one group are made of.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Stack {
    pub group: GroupId,
    pub load_balancer: LoadBalancer,
    /// The managed security group; `None` when `security-groups` names the groups to use.
    pub security_group: Option<SecurityGroup>,
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
    /// How the targets' security groups let the load balancer in (LBC's
    /// TargetGroupBinding networking); `None`: they are not touched (`security-groups`
    /// without `manage-backend-security-group-rules`).
    pub backend_rules: Option<BackendRules>,
}

/// Inbound rules on the security groups of the targets' network interfaces: from
/// `source`, on each target group's target and health-check ports (or every TCP port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct BackendRules {
    pub source: BackendSource,
    /// `--disable-restricted-sg-rules`: every TCP port instead of the ports in use.
    pub all_ports: bool,
}

/// The security group the targets' security groups allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendSource {
    /// The cluster's shared backend security group, attached to the load balancer too.
    SharedBackendGroup,
    /// The load balancer's own managed security group (`--enable-backend-security-group=false`).
    ManagedGroup,
}

impl Stack {
    /// Tags every resource of this stack carries (plus its own resource tag).
    pub fn base_tags(cluster: &str, group: &GroupId) -> Tags {
        Tags::from([(TAG_CLUSTER.to_string(), cluster.to_string()), (group.stack_tag().to_string(), group.to_string())])
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LoadBalancer {
    pub name: String,
    pub scheme: Scheme,
    pub ip_address_type: String,
    pub subnets: BTreeSet<String>,
    /// Security group IDs from `security-groups`; empty when the managed group is used.
    pub security_groups: BTreeSet<String>,
    /// Only these keys are reconciled; others keep whatever value AWS has.
    pub attributes: Tags,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub ingress: BTreeSet<Permission>,
    pub tags: Tags,
}

/// One inbound rule of the managed security group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Permission {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub cidr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Listener {
    pub port: i32,
    pub protocol: Protocol,
    /// HTTPS: the default certificate first, then the SNI ones.
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    /// Only these keys are reconciled.
    pub attributes: Tags,
    pub default_action: Action,
    /// In evaluation order; `priority` is 1-based and contiguous.
    pub rules: Vec<Rule>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    pub priority: i32,
    /// The member Ingress it comes from, so that AWS refusing it is put on that member.
    #[serde(skip)]
    pub from: ObjKey,
    pub conditions: Vec<Condition>,
    /// Authentication before `action` (HTTPS listeners only).
    pub auth: Option<Authenticate>,
    pub action: Action,
    /// Rewrites of the request before its action (Gateway API URLRewrite).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
    pub tags: Tags,
}

/// A rule transform: ALB rewrites the host header or the URL (path) matching `regex` to
/// `replace` (`$1`… name capture groups) before the action.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Transform {
    HostHeaderRewrite { regex: String, replace: String },
    UrlRewrite { regex: String, replace: String },
}

/// An `authenticate-oidc` or `authenticate-cognito` action.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Authenticate {
    Oidc {
        issuer: String,
        authorization_endpoint: String,
        token_endpoint: String,
        user_info_endpoint: String,
        client_id: String,
        /// Write-only in AWS (never described back): compared by neither side.
        #[serde(skip)]
        client_secret: String,
        #[serde(flatten)]
        session: AuthSession,
    },
    Cognito {
        user_pool_arn: String,
        user_pool_client_id: String,
        user_pool_domain: String,
        #[serde(flatten)]
        session: AuthSession,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct AuthSession {
    pub scope: String,
    pub session_cookie_name: String,
    pub session_timeout: i64,
    /// `authenticate`, `allow` or `deny`.
    pub on_unauthenticated_request: String,
    pub extra_params: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "field", content = "values")]
pub enum Condition {
    HostHeader(Vec<String>),
    PathPattern(Vec<String>),
    /// Regular expressions on the path (`use-regex-path-match`).
    PathRegex(Vec<String>),
    HttpHeader {
        name: String,
        values: Vec<String>,
    },
    /// Regular expressions on a header's value (Gateway API `RegularExpression` matches).
    HttpHeaderRegex {
        name: String,
        values: Vec<String>,
    },
    HttpRequestMethod(Vec<String>),
    /// (key, value); a missing key matches the value alone.
    QueryString(Vec<(Option<String>, String)>),
    SourceIp(Vec<String>),
}

impl Condition {
    /// How many values count against the per-rule quota.
    pub fn value_count(&self) -> usize {
        match self {
            Condition::HostHeader(v)
            | Condition::PathPattern(v)
            | Condition::PathRegex(v)
            | Condition::HttpRequestMethod(v)
            | Condition::SourceIp(v) => v.len(),
            Condition::HttpHeader { values, .. } | Condition::HttpHeaderRegex { values, .. } => values.len(),
            Condition::QueryString(v) => v.len(),
        }
    }
}

/// One target group of a forward action. `target_group` is a target group name in the
/// model (an ARN for target groups made outside Kubernetes) and an ARN once resolved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WeightedTargetGroup {
    pub target_group: String,
    pub weight: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Action {
    FixedResponse {
        status_code: String,
        content_type: Option<String>,
        message_body: Option<String>,
    },
    /// One target group (weight `None`), or several with weights.
    Forward {
        target_groups: Vec<WeightedTargetGroup>,
        stickiness_seconds: Option<i32>,
    },
    Redirect {
        protocol: Option<String>,
        port: Option<String>,
        host: Option<String>,
        path: Option<String>,
        query: Option<String>,
        status_code: String,
    },
}

impl Action {
    pub fn forward(target_group: &str) -> Action {
        Action::Forward {
            target_groups: vec![WeightedTargetGroup { target_group: target_group.into(), weight: None }],
            stickiness_seconds: None,
        }
    }

    pub fn fixed(status_code: &str) -> Action {
        Action::FixedResponse { status_code: status_code.to_string(), content_type: Some("text/plain".into()), message_body: None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TargetGroup {
    /// `<namespace>/<ingress>-<service>:<port>`, as LBC's `ingress.k8s.aws/resource` tag.
    pub resource_id: String,
    pub name: String,
    pub protocol: Protocol,
    pub protocol_version: String,
    pub port: i32,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    /// Only these keys are reconciled.
    pub attributes: Tags,
    /// `None`: not known (no EndpointSlice of the Service is in the cache, e.g. during a
    /// relist), so the registered targets are left as they are — never "zero targets".
    pub targets: Option<BTreeSet<Target>>,
    /// Where `targets` come from, so they can be recomputed alone when endpoints, nodes or
    /// pods change, without building the whole group again.
    #[serde(skip)]
    pub source: TargetSource,
    pub tags: Tags,
}

impl TargetGroup {
    /// The ports the targets' security groups must open for this target group: the
    /// targets' ports (a named target port can differ per pod) and a health-check port
    /// that is not the traffic port (LBC's restricted rules).
    pub fn backend_ports(&self) -> BTreeSet<i32> {
        let mut ports: BTreeSet<i32> = self.targets.iter().flatten().map(|t| t.port).collect();
        if let Ok(hc) = self.health_check.port.parse::<i32>() {
            ports.insert(hc);
        }
        ports
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct HealthCheck {
    pub protocol: Protocol,
    pub port: String,
    pub path: String,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub success_codes: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Target {
    pub id: String,
    pub port: i32,
}

/// Something wrong with one Ingress, worded exactly as its Warning Event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub ingress: ObjKey,
    /// Event reason, e.g. `FailedBuildModel`.
    pub reason: &'static str,
    pub message: String,
}
