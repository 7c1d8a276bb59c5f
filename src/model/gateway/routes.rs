//! A route's rules as listener rules: each match on each hostname is one ALB rule (as LBC
//! makes them), ranked across every route on the listener by the Gateway API's precedence;
//! backendRefs become weighted forwards to target groups named as LBC names them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::Inputs;
use super::attach::AttachedRoute;
use super::spec::{BackendRef, Filter, GrpcMatch, HttpMatch, Match, PathKind, PathModifier, RouteKind, RuleSpec, TargetProps, ValueMatch};
use crate::model::intent::{MemberIntent, Route, World};
use crate::model::target_groups::{self, Backend, TargetSettings};
use crate::model::{
    Action, Condition, HealthCheck, ObjKey, Protocol, TargetGroup, TargetType, Transform, WeightedTargetGroup, limits, names,
};

/// One ALB rule's place: (port, route kind, route, rule index, match index, hostname).
type RuleId = (i32, RouteKind, ObjKey, usize, usize, Option<String>);

/// Every rule's rank on its listener, by the Gateway API's precedence (as LBC orders them):
/// the more specific hostname first (exact before wildcard before none), then the path
/// (exact, prefix, regular expression; longer first), method, header and query counts, then
/// the older route, its namespace/name, and the rule's and match's order in it.
pub fn ranks(routes: &[AttachedRoute]) -> BTreeMap<RuleId, usize> {
    let mut by_port: BTreeMap<i32, Vec<(RuleId, Specificity, &str)>> = BTreeMap::new();
    for r in routes {
        for (&port, (_, hosts)) in &r.ports {
            for (ri, rule) in r.spec.rules.iter().enumerate() {
                for (mi, m) in rule.matches.iter().enumerate() {
                    for host in host_units(hosts) {
                        let id = (port, r.spec.kind, r.spec.key.clone(), ri, mi, host.clone());
                        by_port.entry(port).or_default().push((id, specificity(host.as_deref(), m), &r.spec.created));
                    }
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (_, mut rules) in by_port {
        rules.sort_by(|a, b| {
            host_order(a.1.host.as_deref(), b.1.host.as_deref())
                .then_with(|| b.1.key.cmp(&a.1.key))
                .then_with(|| a.2.cmp(b.2))
                .then_with(|| (&a.0.2, a.0.3, a.0.4, &a.0.5).cmp(&(&b.0.2, b.0.3, b.0.4, &b.0.5)))
        });
        out.extend(rules.into_iter().enumerate().map(|(i, (id, _, _))| (id, i)));
    }
    out
}

fn host_units(hosts: &Option<BTreeSet<String>>) -> Vec<Option<String>> {
    match hosts {
        None => vec![None],
        Some(h) if h.is_empty() => vec![None],
        Some(h) => h.iter().cloned().map(Some).collect(),
    }
}

struct Specificity {
    host: Option<String>,
    /// (path kind: 3 exact, 2 prefix, 1 regex, 0 none; path or service length; method
    /// length; has method; headers; query parameters): larger is more specific.
    key: (u8, usize, usize, bool, usize, usize),
}

fn specificity(host: Option<&str>, m: &Match) -> Specificity {
    let key = match m {
        Match::Http(h) => {
            let (kind, len) = match &h.path {
                Some(p) => (
                    match p.kind {
                        PathKind::Exact => 3,
                        PathKind::Prefix => 2,
                        PathKind::Regex => 1,
                    },
                    p.value.len(),
                ),
                None => (0, 0),
            };
            (kind, len, 0, h.method.is_some(), h.headers.len(), h.query_params.len())
        }
        Match::Grpc(g) => {
            let (kind, service, method) = match &g.method {
                Some(m) => (if m.regex { 1 } else { 3 }, m.service.as_deref().map_or(0, str::len), m.method.as_deref().map_or(0, str::len)),
                None => (0, 0, 0),
            };
            (kind, service, method, false, g.headers.len(), 0)
        }
    };
    Specificity { host: host.map(str::to_string), key }
}

/// A named host before none; an exact one before a wildcard; more labels, then longer, first.
pub fn host_order(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a
            .starts_with("*.")
            .cmp(&b.starts_with("*."))
            .then_with(|| b.matches('.').count().cmp(&a.matches('.').count()))
            .then_with(|| b.len().cmp(&a.len())),
    }
}

pub struct Context<'a, 'i> {
    pub inputs: &'a Inputs<'i>,
    pub world: &'a World<'a>,
    pub route: &'a AttachedRoute<'a>,
    pub ranks: &'a BTreeMap<RuleId, usize>,
    /// Rules ALB cannot express, with why (the route's status says so).
    pub refused: Vec<String>,
    /// Backend references that do not resolve: (reason, message).
    pub unresolved: Vec<(&'static str, String)>,
}

/// What one route contributes: its rules on each listener port and their target groups.
pub fn member(ctx: &mut Context) -> Result<MemberIntent, String> {
    let route = ctx.route;
    let key = route.spec.key.clone();
    let mut m = MemberIntent {
        key: key.clone(),
        ports: route.ports.iter().map(|(&port, (protocol, _))| (*protocol, port)).collect(),
        default_action: None,
        routes: Vec::new(),
        target_groups: Vec::new(),
        certificate_arns: Vec::new(),
        certificate_hosts: Vec::new(),
        tags: ctx.inputs.tags.clone(),
        listener_attributes: BTreeMap::new(),
        sets_ssl_redirect: false,
        sets_backend_security_group_rules: false,
        warnings: Vec::new(),
    };
    for (&port, (protocol, hosts)) in &route.ports {
        if *protocol != Protocol::Https {
            continue;
        }
        for arn in ctx.inputs.listener_certificates.get(&port).into_iter().flatten() {
            if !m.certificate_arns.contains(arn) {
                m.certificate_arns.push(arn.clone());
            }
        }
        m.certificate_hosts.extend(hosts.iter().flatten().filter(|h| !m.certificate_hosts.contains(h)).cloned().collect::<Vec<_>>());
    }
    for (ri, rule) in route.spec.rules.iter().enumerate() {
        match rule_routes(ctx, &mut m.target_groups, ri, rule) {
            Ok(routes) => m.routes.extend(routes),
            Err(why) => ctx.refused.push(format!("rule {ri}: {why}")),
        }
    }
    if m.routes.is_empty() {
        return Err(format!(
            "{} {key}: no rule can be served by an Application Load Balancer: {}",
            route.spec.kind.as_str(),
            ctx.refused.join("; ")
        ));
    }
    Ok(m)
}

/// The ALB rules of one route rule, on every port the route serves.
fn rule_routes(ctx: &mut Context, target_groups: &mut Vec<TargetGroup>, ri: usize, rule: &RuleSpec) -> Result<Vec<Route>, String> {
    let action = action(ctx, target_groups, rule)?;
    let spec = ctx.route.spec;
    let transforms: Vec<Vec<Transform>> = rule.matches.iter().map(|m| transforms(&rule.filters, m)).collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (&port, (_, hosts)) in &ctx.route.ports {
        for (mi, m) in rule.matches.iter().enumerate() {
            for host in host_units(hosts) {
                let mut conditions: Vec<Condition> = host.iter().map(|h| Condition::HostHeader(vec![h.clone()])).collect();
                conditions.extend(match m {
                    Match::Http(h) => http_conditions(h)?,
                    Match::Grpc(g) => grpc_conditions(g)?,
                });
                let written = format!("rule {ri} match {mi}{}", host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default());
                limits::check_conditions(&conditions, &written)?;
                out.push(Route {
                    from: spec.key.clone(),
                    written,
                    conditions,
                    auth: None,
                    action: action.clone(),
                    transforms: transforms[mi].clone(),
                    port: Some(port),
                    rank: ctx.ranks.get(&(port, spec.kind, spec.key.clone(), ri, mi, host.clone())).copied(),
                });
            }
        }
    }
    Ok(out)
}

/// HTTPRoute match → ALB conditions, as LBC maps them (a prefix `/a` is `/a` and `/a/*`).
fn http_conditions(m: &HttpMatch) -> Result<Vec<Condition>, String> {
    let mut out = Vec::new();
    if let Some(p) = &m.path {
        out.push(match p.kind {
            PathKind::Exact => Condition::PathPattern(vec![p.value.clone()]),
            PathKind::Prefix => {
                if p.value.contains(['*', '?']) {
                    return Err(format!("path prefix {:?} has a wildcard, which ALB would read as one", p.value));
                }
                match p.value.trim_end_matches('/') {
                    "" => Condition::PathPattern(vec!["/*".into()]),
                    trimmed => Condition::PathPattern(vec![trimmed.to_string(), format!("{trimmed}/*")]),
                }
            }
            PathKind::Regex => Condition::PathRegex(vec![p.value.clone()]),
        });
    }
    out.extend(m.headers.iter().map(header_condition));
    for q in &m.query_params {
        if q.regex {
            return Err(format!(
                "query parameter {:?}: ALB matches query strings by value and wildcard, not by regular expression",
                q.name
            ));
        }
        out.push(Condition::QueryString(vec![(Some(q.name.clone()), q.value.clone())]));
    }
    if let Some(method) = &m.method {
        out.push(Condition::HttpRequestMethod(vec![method.clone()]));
    }
    Ok(out)
}

/// A header match (HTTPRoute or GRPCRoute) as an ALB http-header condition.
fn header_condition(h: &ValueMatch) -> Condition {
    let (name, values) = (h.name.clone(), vec![h.value.clone()]);
    if h.regex { Condition::HttpHeaderRegex { name, values } } else { Condition::HttpHeader { name, values } }
}

/// GRPCRoute match → ALB conditions: the method is the path `/service/method`.
fn grpc_conditions(m: &GrpcMatch) -> Result<Vec<Condition>, String> {
    let mut out = Vec::new();
    let path = match &m.method {
        None => "/*".to_string(),
        Some(g) if g.regex => return Err("a RegularExpression gRPC method match is not supported".into()),
        Some(g) => match (&g.service, &g.method) {
            (Some(s), Some(me)) => format!("/{s}/{me}"),
            (Some(s), None) => format!("/{s}/*"),
            (None, Some(me)) => format!("/*/{me}"),
            (None, None) => "/*".to_string(),
        },
    };
    out.push(Condition::PathPattern(vec![path]));
    out.extend(m.headers.iter().map(header_condition));
    Ok(out)
}

/// The rule's action: a redirect filter's redirect, else a forward to its resolved
/// backends by weight; no resolvable backend (or only zero weights) answers 500, as the
/// spec asks.
fn action(ctx: &mut Context, target_groups: &mut Vec<TargetGroup>, rule: &RuleSpec) -> Result<Action, String> {
    let mut redirect = None;
    for f in &rule.filters {
        match f {
            Filter::RequestRedirect { scheme, hostname, path, port, status_code } => {
                redirect = Some(redirect_action(scheme.as_deref(), hostname.as_deref(), path.as_ref(), *port, *status_code)?);
            }
            // Transforms of the request, made per match (`transforms`).
            Filter::URLRewrite { .. } => {}
            Filter::Other(kind) => return Err(format!("filter {kind} cannot be expressed by an Application Load Balancer rule")),
        }
    }
    if let Some(r) = redirect {
        return Ok(r);
    }
    let mut forward: Vec<WeightedTargetGroup> = Vec::new();
    for b in &rule.backends {
        match target_group(ctx, target_groups, b) {
            Ok(name) if b.weight > 0 => forward.push(WeightedTargetGroup { target_group: name, weight: Some(b.weight) }),
            Ok(_) => {}
            Err(unresolved) => ctx.unresolved.push(unresolved),
        }
    }
    Ok(match forward.len() {
        0 => Action::fixed("500"),
        1 => Action::forward(&forward[0].target_group),
        _ => Action::Forward { target_groups: forward, stickiness_seconds: None },
    })
}

fn redirect_action(
    scheme: Option<&str>,
    hostname: Option<&str>,
    path: Option<&PathModifier>,
    port: Option<i32>,
    status_code: Option<i32>,
) -> Result<Action, String> {
    let protocol = match scheme {
        None => None,
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => Some(s.to_ascii_uppercase()),
        Some(s) => return Err(format!("RequestRedirect scheme {s:?}: ALB redirects to HTTP or HTTPS")),
    };
    // As LBC: a scheme without a port goes to that scheme's well-known port.
    let port = port.map(|p| p.to_string()).or_else(|| protocol.as_deref().map(|p| if p == "HTTPS" { "443" } else { "80" }.to_string()));
    let path = match path {
        None => None,
        Some(PathModifier::ReplaceFullPath(p)) if p.contains(['*', '?']) => {
            return Err(format!("RequestRedirect path {p:?} has a wildcard"));
        }
        Some(PathModifier::ReplaceFullPath(p)) => Some(p.clone()),
        // The prefix is rewritten by a url-rewrite transform; the redirect keeps the path.
        Some(PathModifier::ReplacePrefixMatch(_)) => None,
    };
    let status_code = match status_code.unwrap_or(302) {
        c @ (301 | 302) => format!("HTTP_{c}"),
        c => return Err(format!("RequestRedirect statusCode {c}: ALB redirects with 301 or 302")),
    };
    Ok(Action::Redirect { protocol, port, host: hostname.map(str::to_string), path, query: None, status_code })
}

/// A backend's target settings: LBC's Gateway defaults
/// (pkg/gateway/model/model_build_target_group.go) under what its TargetGroupConfiguration sets.
fn target_settings(p: &TargetProps, kind: RouteKind, default_target_type: TargetType) -> Result<TargetSettings, String> {
    let protocol = |v: Option<&str>, what: &str| match v {
        None | Some("HTTP") => Ok(Protocol::Http),
        Some("HTTPS") => Ok(Protocol::Https),
        Some(other) => Err(format!("{what} {other}: an Application Load Balancer target group is HTTP or HTTPS")),
    };
    let version = match (p.protocol_version.as_deref(), kind) {
        (Some(v @ ("HTTP1" | "HTTP2" | "GRPC")), _) => v.to_string(),
        (Some(v), _) => return Err(format!("protocolVersion {v}")),
        (None, RouteKind::Grpc) => "GRPC".into(),
        (None, RouteKind::Http) => "HTTP1".into(),
    };
    let grpc = version == "GRPC";
    let traffic = protocol(p.protocol.as_deref(), "protocol")?;
    Ok(TargetSettings {
        target_type: p.target_type.unwrap_or(default_target_type),
        node_labels: p.node_labels.clone().unwrap_or_default(),
        attributes: p.attributes.clone(),
        protocol: traffic,
        health_check: HealthCheck {
            protocol: protocol(p.health_check_protocol.as_deref(), "healthCheckConfig.healthCheckProtocol")?,
            port: p.health_check_port.clone().unwrap_or_else(|| "traffic-port".into()),
            path: p.health_check_path.clone().unwrap_or_else(|| if grpc { "/AWS.ALB/healthcheck" } else { "/" }.into()),
            interval_seconds: p.health_check_interval.unwrap_or(15),
            timeout_seconds: p.health_check_timeout.unwrap_or(5),
            healthy_threshold: p.healthy_threshold.unwrap_or(3),
            unhealthy_threshold: p.unhealthy_threshold.unwrap_or(3),
            success_codes: if grpc {
                p.grpc_code.clone().unwrap_or_else(|| "12".into())
            } else {
                p.http_code.clone().unwrap_or_else(|| "200-399".into())
            },
        },
        protocol_version: version,
        tags: p.tags.clone(),
    })
}

/// The rule's transforms for one of its matches, as LBC writes them: a URLRewrite hostname
/// rewrites the whole host header; a full path replaces the path (not the query); a prefix
/// replacement (URLRewrite, or a RequestRedirect's) rewrites the matched prefix, keeping one
/// `/` between it and the rest. The match's path goes into the regular expression as
/// written, as LBC's does, so that rules LBC made compare equal.
fn transforms(filters: &[Filter], m: &Match) -> Result<Vec<Transform>, String> {
    let path_rewrite = |modifier: &PathModifier, filter: &str| -> Result<Transform, String> {
        Ok(match modifier {
            PathModifier::ReplaceFullPath(p) => Transform::UrlRewrite { regex: "^([^?]*)".into(), replace: p.clone() },
            PathModifier::ReplacePrefixMatch(p) => {
                let Match::Http(HttpMatch { path: Some(path), .. }) = m else {
                    return Err(format!("{filter} ReplacePrefixMatch needs a PathPrefix match"));
                };
                if path.kind != PathKind::Prefix {
                    return Err(format!("{filter} ReplacePrefixMatch needs a PathPrefix match, not {:?}", path.kind));
                }
                if p.contains(['*', '?']) {
                    return Err(format!("{filter} ReplacePrefixMatch {p:?} has a wildcard"));
                }
                let replace = match p.as_str() {
                    "" => "/".to_string(),
                    p if p.ends_with('/') => p.to_string(),
                    p => format!("{p}$2"),
                };
                Transform::UrlRewrite { regex: format!("(^{}(/)?)", path.value), replace }
            }
        })
    };
    let mut out = Vec::new();
    for f in filters {
        match f {
            Filter::URLRewrite { hostname, path } => {
                if let Some(p) = path {
                    out.push(path_rewrite(p, "URLRewrite")?);
                }
                if let Some(h) = hostname {
                    out.push(Transform::HostHeaderRewrite { regex: ".*".into(), replace: h.clone() });
                }
            }
            Filter::RequestRedirect { path: Some(p @ PathModifier::ReplacePrefixMatch(_)), .. } => {
                out.push(path_rewrite(p, "RequestRedirect")?)
            }
            _ => {}
        }
    }
    // ALB takes at most one transform of each type.
    let urls = out.iter().filter(|t| matches!(t, Transform::UrlRewrite { .. })).count();
    let hosts = out.len() - urls;
    if urls > 1 || hosts > 1 {
        return Err("more than one URL or host rewrite: an ALB rule takes one of each".into());
    }
    Ok(out)
}

/// The target group of a Service backendRef (made once per route and Service port), or
/// why the reference does not resolve.
fn target_group(ctx: &mut Context, target_groups: &mut Vec<TargetGroup>, b: &BackendRef) -> Result<String, (&'static str, String)> {
    let spec = ctx.route.spec;
    let svc_key = ObjKey { namespace: b.namespace.clone(), name: b.name.clone() };
    if !b.group.is_empty() || b.kind != "Service" {
        return Err(("InvalidKind", format!("backendRef {}/{} {}: only Services are supported", b.group, b.kind, b.name)));
    }
    if b.namespace != spec.key.namespace && !ctx.inputs.grants.iter().any(|g| g.allows(spec.kind, &spec.key.namespace, &svc_key)) {
        return Err(("RefNotPermitted", format!("backendRef Service {svc_key}: no ReferenceGrant in {} allows it", b.namespace)));
    }
    let Some(svc) = ctx.inputs.services.get(&svc_key) else {
        return Err(("BackendNotFound", format!("backendRef Service {svc_key} not found")));
    };
    let Some(port) = b.port else {
        return Err(("BackendNotFound", format!("backendRef Service {svc_key}: a port is required")));
    };
    let port_ref = port.to_string();
    let Some(svc_port) = target_groups::service_port(svc, &port_ref) else {
        return Err(("BackendNotFound", format!("backendRef Service {svc_key} has no port {port}")));
    };
    let props = ctx.inputs.target_configs.get(&svc_key).map(|c| c.for_route(spec.kind, &spec.key)).unwrap_or_default();
    let unsupported = |e: String| ("UnsupportedValue", e);
    let settings = target_settings(&props, spec.kind, ctx.world.options.default_target_type)
        .map_err(|e| unsupported(format!("TargetGroupConfiguration of Service {svc_key}: {e}")))?;
    let owner = spec.key.clone();
    let mut backend = Backend { owner: &owner, service: svc, port: svc_port, port_ref: &port_ref, settings };
    let tg_port = target_groups::port(&super::WORDING, &mut backend).map_err(unsupported)?;
    target_groups::check(&backend, &super::WORDING).map_err(unsupported)?;
    let gateway = &ctx.inputs.gateway.key;
    let target_type = backend.settings.target_type;
    let name = props.name.clone().unwrap_or_else(|| {
        names::gateway_target_group(&names::GatewayTargetGroupNameParts {
            cluster: ctx.inputs.cluster,
            gateway,
            route: &spec.key,
            route_kind: spec.kind.as_str(),
            service: &svc_key,
            port: &if target_type == crate::model::TargetType::Instance { tg_port.to_string() } else { port_ref.clone() },
            target_type: target_type.as_str(),
            protocol: backend.settings.protocol.as_str(),
            protocol_version: &backend.settings.protocol_version,
        })
    });
    if !target_groups.iter().any(|tg| tg.name == name) {
        let resource_id = format!(
            "{}/{}:{}-{}:{}-{}-{}:{port}",
            gateway.namespace,
            gateway.name,
            spec.key.namespace,
            spec.key.name,
            spec.kind.as_str(),
            svc_key.namespace,
            svc_key.name
        );
        target_groups.push(target_groups::build(ctx.world, backend, name.clone(), tg_port, resource_id));
    }
    Ok(name)
}
