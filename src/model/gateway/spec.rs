//! Gateway API objects as the Gateway builder reads them: only the fields it acts on, with
//! the spec's defaults already applied (as the API server's CRD defaults would).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::model::{ObjKey, Tags, TargetType};

pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

#[derive(Clone, Debug, PartialEq)]
pub struct GatewaySpec {
    pub key: ObjKey,
    pub uid: String,
    pub generation: i64,
    pub listeners: Vec<ListenerSpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListenerSpec {
    pub name: String,
    pub hostname: Option<String>,
    pub port: i32,
    /// As written: `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`, or a domain-prefixed one.
    pub protocol: String,
    /// Where routes may come from.
    pub namespaces: FromNamespaces,
    /// `allowedRoutes.kinds` as (group, kind); empty: the kinds of the protocol.
    pub kinds: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FromNamespaces {
    Same,
    All,
    Selector(LabelSelector),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    Http,
    Grpc,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RouteSpec {
    pub kind: RouteKind,
    pub key: ObjKey,
    pub generation: i64,
    /// `metadata.creationTimestamp` (RFC 3339): the oldest route wins ties, as the spec says.
    pub created: String,
    pub parents: Vec<ParentRef>,
    pub hostnames: Vec<String>,
    pub rules: Vec<RuleSpec>,
}

/// A `parentRefs` entry, with the route's namespace filled in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParentRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RuleSpec {
    /// Never empty: a rule without matches matches every request (`PathPrefix /`).
    pub matches: Vec<Match>,
    pub filters: Vec<Filter>,
    pub backends: Vec<BackendRef>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    Http(HttpMatch),
    Grpc(GrpcMatch),
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct HttpMatch {
    pub path: Option<PathMatch>,
    pub headers: Vec<ValueMatch>,
    pub query_params: Vec<ValueMatch>,
    pub method: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PathMatch {
    pub kind: PathKind,
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Exact,
    Prefix,
    Regex,
}

/// A header or query parameter match.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueMatch {
    pub regex: bool,
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct GrpcMatch {
    pub method: Option<GrpcMethod>,
    pub headers: Vec<ValueMatch>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GrpcMethod {
    pub regex: bool,
    pub service: Option<String>,
    pub method: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    RequestRedirect {
        scheme: Option<String>,
        hostname: Option<String>,
        path: Option<PathModifier>,
        port: Option<i32>,
        status_code: Option<i32>,
    },
    URLRewrite {
        hostname: Option<String>,
        path: Option<PathModifier>,
    },
    /// Any other filter, by its `type`.
    Other(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum PathModifier {
    ReplaceFullPath(String),
    ReplacePrefixMatch(String),
}

/// A `backendRefs` entry, with the route's namespace filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub port: Option<i32>,
    pub weight: i32,
}

/// What a TargetGroupConfiguration sets for its Service's target groups (unset: LBC's
/// Gateway defaults).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TargetProps {
    pub name: Option<String>,
    pub target_type: Option<TargetType>,
    /// `HTTP` or `HTTPS` for an ALB.
    pub protocol: Option<String>,
    pub protocol_version: Option<String>,
    pub health_check_path: Option<String>,
    pub health_check_port: Option<String>,
    pub health_check_protocol: Option<String>,
    pub health_check_interval: Option<i32>,
    pub health_check_timeout: Option<i32>,
    pub healthy_threshold: Option<i32>,
    pub unhealthy_threshold: Option<i32>,
    pub http_code: Option<String>,
    pub grpc_code: Option<String>,
    pub node_labels: Option<Tags>,
    pub attributes: Tags,
    pub tags: Tags,
}

impl TargetProps {
    /// `self` over `low`: each field from `self` if it sets it; tags and attributes key by key.
    pub fn over(&self, low: &TargetProps) -> TargetProps {
        macro_rules! one {
            ($($f:ident),*) => { TargetProps { $( $f: self.$f.clone().or_else(|| low.$f.clone()), )* attributes: merged(&low.attributes, &self.attributes), tags: merged(&low.tags, &self.tags) } };
        }
        fn merged(low: &Tags, high: &Tags) -> Tags {
            let mut t = low.clone();
            t.extend(high.clone());
            t
        }
        one!(
            name,
            target_type,
            protocol,
            protocol_version,
            health_check_path,
            health_check_port,
            health_check_protocol,
            health_check_interval,
            health_check_timeout,
            healthy_threshold,
            unhealthy_threshold,
            http_code,
            grpc_code,
            node_labels
        )
    }
}

/// A TargetGroupConfiguration: defaults, and per route (kind, and optionally namespace and
/// name) settings over them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TargetConfig {
    pub default: TargetProps,
    pub routes: Vec<(String, Option<String>, Option<String>, TargetProps)>,
}

impl TargetConfig {
    /// The settings for one route, as LBC picks them: an exact kind/namespace/name entry, else
    /// the most specific of kind+namespace and kind alone, over the defaults.
    pub fn for_route(&self, kind: RouteKind, route: &ObjKey) -> TargetProps {
        let mut best: Option<(u8, &TargetProps)> = None;
        for (k, ns, name, props) in &self.routes {
            if k != kind.as_str() {
                continue;
            }
            let rank = match (ns.as_deref(), name.as_deref()) {
                (Some(n), Some(m)) if n == route.namespace && m == route.name => 3,
                (Some(n), None) if n == route.namespace => 2,
                (None, None) => 1,
                _ => continue,
            };
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, props));
            }
        }
        best.map_or_else(|| self.default.clone(), |(_, p)| p.over(&self.default))
    }
}

/// A ReferenceGrant: in `namespace`, objects of `to` may be referred to from `from`.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub namespace: String,
    /// (group, kind, namespace).
    pub from: Vec<(String, String, String)>,
    /// (group, kind, name: `None` for all of that kind).
    pub to: Vec<(String, String, Option<String>)>,
}

impl Grant {
    /// Whether a `kind` route in `route_namespace` may use `service` through this grant.
    pub fn allows(&self, kind: RouteKind, route_namespace: &str, service: &ObjKey) -> bool {
        self.namespace == service.namespace
            && self.from.iter().any(|(g, k, ns)| g == GATEWAY_GROUP && k == kind.as_str() && ns == route_namespace)
            && self.to.iter().any(|(g, k, name)| g.is_empty() && k == "Service" && name.as_ref().is_none_or(|n| *n == service.name))
    }
}

/// Whether labels satisfy a label selector (matchLabels and matchExpressions).
pub fn selects(selector: &LabelSelector, labels: &Tags) -> bool {
    let by_labels = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    by_labels && by_expressions
}
