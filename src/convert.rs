//! `alb-controller convert`: Ingresses (with their `alb.ingress.kubernetes.io/*` annotations)
//! as Gateway API objects for LBC's ALB Gateway controller: one Gateway per IngressGroup, one
//! HTTPRoute per Ingress and rule host, a GatewayClass, and every other object passed through
//! unchanged. What the standard Gateway API cannot say the same way is refused, per Ingress
//! and with the reason, rather than converted into a load balancer that behaves differently.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend};
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::k8s::annotations::{self, ActionSpec, IngressConfig, PREFIX, TargetRef};
use crate::k8s::class::ClassFilter;
use crate::k8s::grouping::{self, Snapshot};
use crate::model::gateway::host_order;
use crate::model::{Action, Condition, GroupId, ObjKey, Protocol, Scheme, TargetType};
use crate::plan::yaml_files;

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Manifest files or directories of them (YAML, multi-document) with Ingresses and the
    /// Services they use; IngressClasses and IngressClassParams are read for grouping.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// A directory to write one file per Gateway (and `gatewayclass.yaml`,
    /// `passed-through.yaml`) into; without it, everything goes to stdout.
    #[arg(short = 'o', long = "output-dir")]
    output_dir: Option<PathBuf>,
    /// The GatewayClass the Gateways use (emitted with controllerName gateway.k8s.aws/alb).
    #[arg(long, default_value = "aws-alb")]
    gateway_class_name: String,
    /// The controller's `--default-target-type`: a Gateway's target groups get it (LBC's
    /// TargetGroupConfiguration, which would say otherwise, is not in this build), so only
    /// Ingresses whose `target-type` is this one convert.
    #[arg(long, default_value = "instance", value_parser = TargetType::parse)]
    default_target_type: TargetType,
    #[arg(long, default_value = "ingress.k8s.aws/alb")]
    controller_name: String,
    #[arg(long, default_value = "alb")]
    ingress_class: String,
}

/// Annotations of the load balancer or its listeners: a Gateway carries them in LBC's
/// LoadBalancerConfiguration, whose types this build does not have.
const LOAD_BALANCER_SETTINGS: &[&str] = &[
    "scheme",
    "subnets",
    "security-groups",
    "manage-backend-security-group-rules",
    "ip-address-type",
    "load-balancer-name",
    "tags",
    "inbound-cidrs",
    "certificate-arn",
    "ssl-policy",
    "ssl-redirect",
    "load-balancer-attributes",
    "listener-attributes.",
    "wafv2-acl-arn",
    "waf-acl-id",
    "web-acl-id",
    "shield-advanced-protection",
    "customer-owned-ipv4-pool",
    "ipam-ipv4-pool-id",
    "mutual-authentication",
    "frontend-nlb",
];

/// Annotations of target groups: LBC's TargetGroupConfiguration, not in this build either.
const TARGET_GROUP_SETTINGS: &[&str] = &[
    "backend-protocol",
    "backend-protocol-version",
    "target-group-attributes",
    "target-node-labels",
    "healthcheck-",
    "success-codes",
    "healthy-threshold-count",
    "unhealthy-threshold-count",
];

/// `HTTPRoute.spec.rules` maxItems.
const MAX_ROUTE_RULES: usize = 16;

/// What the converter reads.
#[derive(Default)]
struct Objects {
    ingresses: Vec<Ingress>,
    services: BTreeMap<ObjKey, Service>,
    cluster: Snapshot,
    /// Every document but the Ingresses, as written.
    passed_through: Vec<serde_yaml::Value>,
}

fn load(files: &[PathBuf]) -> Result<Objects, String> {
    let mut paths = Vec::new();
    for f in files {
        yaml_files(f, &mut paths)?;
    }
    let mut o = Objects::default();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).map_err(|e| format!("{}: {e}", path.display()))?;
            if value.is_null() {
                continue;
            }
            let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
            let bad = |e: serde_yaml::Error| format!("{}: {kind}: {e}", path.display());
            // As `plan` and kubectl: no namespace means `default`.
            let mut namespaced = value.clone();
            if matches!(kind.as_str(), "Ingress" | "Service")
                && let Some(meta) = namespaced.get_mut("metadata").and_then(|m| m.as_mapping_mut())
                && !meta.contains_key("namespace")
            {
                meta.insert("namespace".into(), "default".into());
            }
            match kind.as_str() {
                "Ingress" => {
                    o.ingresses.push(serde_yaml::from_value(namespaced).map_err(bad)?);
                    continue;
                }
                "Service" => {
                    let s: Service = serde_yaml::from_value(namespaced).map_err(bad)?;
                    o.services.insert(ObjKey { namespace: s.namespace().unwrap_or_default(), name: s.name_any() }, s);
                }
                "IngressClass" => o.cluster.classes.push(Arc::new(serde_yaml::from_value(namespaced).map_err(bad)?)),
                "IngressClassParams" => o.cluster.params.push(Arc::new(serde_yaml::from_value(namespaced).map_err(bad)?)),
                "Namespace" => o.cluster.namespaces.push(serde_yaml::from_value(namespaced).map_err(bad)?),
                _ => {}
            }
            o.passed_through.push(value);
        }
    }
    Ok(o)
}

fn key_of(ing: &Ingress) -> ObjKey {
    ObjKey { namespace: ing.namespace().unwrap_or_default(), name: ing.name_any() }
}

fn listener_name(protocol: Protocol, port: i32) -> String {
    format!("{}-{port}", protocol.as_str().to_ascii_lowercase())
}

/// An HTTPRoute path match as the Gateway builder ranks it: (kind: 3 Exact, 2 PathPrefix,
/// 1 RegularExpression; the value).
#[derive(Clone, Debug)]
struct PathMatch {
    kind: u8,
    value: String,
}

impl PathMatch {
    fn json(&self) -> Value {
        let kind = match self.kind {
            3 => "Exact",
            2 => "PathPrefix",
            _ => "RegularExpression",
        };
        json!({"type": kind, "value": self.value})
    }
}

/// One converted Ingress path: an HTTPRoute rule with one match.
struct Rule {
    path: PathMatch,
    /// The match's headers, query parameters and method, from `conditions.*`.
    extra: ExtraMatch,
    action: RuleAction,
}

/// The parts of an HTTPRoute match beyond the path.
#[derive(Default)]
struct ExtraMatch {
    /// (regular expression, name, value).
    headers: Vec<(bool, String, String)>,
    query_params: Vec<(String, String)>,
    method: Option<String>,
}

impl ExtraMatch {
    /// Adds its fields to a match, as JSON.
    fn add_to(&self, m: &mut Value) {
        if !self.headers.is_empty() {
            m["headers"] = self
                .headers
                .iter()
                .map(|(regex, name, value)| json!({"type": if *regex { "RegularExpression" } else { "Exact" }, "name": name, "value": value}))
                .collect();
        }
        if !self.query_params.is_empty() {
            m["queryParams"] = self.query_params.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
        }
        if let Some(method) = &self.method {
            m["method"] = json!(method);
        }
    }
}

/// A `conditions.${backend}` annotation as HTTPRoute match fields: one value per condition
/// (several are alternatives, which would be several matches and so several ALB rules).
fn extra_match(backend: &str, conditions: &[Condition]) -> Result<ExtraMatch, String> {
    let mut m = ExtraMatch::default();
    let refuse = |why: &str| Err(format!("{PREFIX}conditions.{backend}: {why}"));
    for c in conditions {
        match c {
            Condition::HttpHeader { name, values } | Condition::HttpHeaderRegex { name, values } => {
                let [value] = values.as_slice() else { return refuse(&format!("header {name} has several values")) };
                if m.headers.iter().any(|h| h.1.eq_ignore_ascii_case(name)) {
                    return refuse(&format!("header {name} is matched twice"));
                }
                m.headers.push((matches!(c, Condition::HttpHeaderRegex { .. }), name.clone(), value.clone()));
            }
            Condition::QueryString(pairs) => {
                let [(Some(name), value)] = pairs.as_slice() else {
                    return refuse("a query-string condition converts only with exactly one key=value");
                };
                m.query_params.push((name.clone(), value.clone()));
            }
            Condition::HttpRequestMethod(methods) => {
                let [method] = methods.as_slice() else { return refuse("several methods") };
                if m.method.is_some() || method.to_ascii_uppercase() != *method {
                    return refuse(&format!("method {method:?}"));
                }
                m.method = Some(method.clone());
            }
            Condition::SourceIp(_) => return refuse("source-ip has no Gateway API match"),
            Condition::HostHeader(_) | Condition::PathPattern(_) | Condition::PathRegex(_) => {
                return refuse("hosts and paths join the rule's own, which no HTTPRoute match can say");
            }
        }
    }
    Ok(m)
}

/// What an HTTPRoute rule does.
enum RuleAction {
    /// Its backendRefs.
    Forward(Vec<Value>),
    /// Its RequestRedirect filter.
    Redirect(Value),
}

/// One HTTPRoute: the rules of one rule host of an Ingress, in the Ingress's order.
struct Route {
    name: String,
    host: Option<String>,
    rules: Vec<Rule>,
}

/// A converted Ingress.
struct Member {
    key: ObjKey,
    ports: Vec<(Protocol, i32)>,
    routes: Vec<Route>,
    /// `spec.defaultBackend`: a catch-all rule (`PathPrefix /`) on every listener, ranked
    /// after every other rule, as the listeners' default action is after their rules.
    default: Option<Rule>,
}

/// An Ingress path as an HTTPRoute path match that gives the same ALB condition.
fn path_match(path: &HTTPIngressPath, regex: bool) -> Result<PathMatch, String> {
    let p = path.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
    match path.path_type.as_str() {
        "Exact" => Ok(PathMatch { kind: 3, value: p.to_string() }),
        "Prefix" => {
            let trimmed = p.trim_end_matches('/');
            Ok(PathMatch { kind: 2, value: if trimmed.is_empty() { "/".into() } else { trimmed.to_string() } })
        }
        _ if regex => Ok(PathMatch { kind: 1, value: p.to_string() }),
        // An ALB pattern: without wildcards it matches one path; `/*` matches every path.
        _ if p == "/*" => Ok(PathMatch { kind: 2, value: "/".into() }),
        _ if !p.contains(['*', '?']) => Ok(PathMatch { kind: 3, value: p.to_string() }),
        _ => Err(format!(
            "ImplementationSpecific path {p:?} is an ALB wildcard pattern: no Gateway API path match gives the same condition \
             (PathPrefix {:?} also matches the prefix itself; a RegularExpression makes a regex condition)",
            p.trim_end_matches('*').trim_end_matches('/')
        )),
    }
}

/// A Service port (number or name) as the port number a backendRef needs.
fn service_port(objects: &Objects, namespace: &str, name: &str, port: &str) -> Result<i32, String> {
    let key = ObjKey { namespace: namespace.into(), name: name.into() };
    let svc =
        objects.services.get(&key).ok_or_else(|| format!("Service {key} is not in the input: its port cannot be resolved or checked"))?;
    if svc.annotations().keys().any(|k| k.starts_with(PREFIX)) {
        return Err(format!("Service {key} has {PREFIX}* annotations: target group settings need LBC's TargetGroupConfiguration"));
    }
    crate::model::service_port(svc, port).map(|p| p.port).ok_or_else(|| format!("Service {key} has no port {port}"))
}

fn backend_ref(name: &str, port: i32, weight: Option<i32>) -> Value {
    let mut v = json!({"name": name, "port": port});
    if let Some(w) = weight {
        v["weight"] = json!(w);
    }
    v
}

/// A `#{…}` placeholder keeps the request's value: the same as leaving the field out.
fn literal(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.starts_with("#{"))
}

fn redirect_filter(action: &Action) -> Result<Value, String> {
    let Action::Redirect { protocol, port, host, path, query, status_code } = action else {
        return Err("not a redirect".into());
    };
    if literal(query).is_some() {
        return Err("a redirect's query cannot be set by a RequestRedirect filter".into());
    }
    let mut filter = serde_json::Map::new();
    if let Some(p) = literal(protocol) {
        // The Gateway builder (as LBC) sends a scheme without a port to its well-known port.
        if literal(port).is_none() {
            return Err(format!("a redirect to {p} that keeps the request's port: a RequestRedirect scheme implies its default port"));
        }
        filter.insert("scheme".into(), json!(p.to_ascii_lowercase()));
    }
    if let Some(p) = literal(port) {
        filter.insert("port".into(), json!(p.parse::<i32>().map_err(|_| format!("redirect port {p:?} is not a number"))?));
    }
    if let Some(h) = literal(host) {
        filter.insert("hostname".into(), json!(h));
    }
    if let Some(p) = path.as_deref().filter(|p| *p != "/#{path}") {
        if p.contains("#{") {
            return Err(format!("redirect path {p:?} uses placeholders, which a RequestRedirect filter cannot"));
        }
        filter.insert("path".into(), json!({"type": "ReplaceFullPath", "replaceFullPath": p}));
    }
    let code: i32 = status_code.trim_start_matches("HTTP_").parse().map_err(|_| format!("redirect status {status_code:?}"))?;
    filter.insert("statusCode".into(), json!(code));
    Ok(json!({"type": "RequestRedirect", "requestRedirect": filter}))
}

/// What an Ingress backend becomes.
fn rule_action(objects: &Objects, ing: &Ingress, cfg: &IngressConfig, backend: &IngressBackend) -> Result<RuleAction, String> {
    let ns = ing.namespace().unwrap_or_default();
    let Some(svc) = backend.service.as_ref() else {
        return Err("a resource backend cannot be converted (only Services)".into());
    };
    let port = svc.port.as_ref();
    let port_ref = port.and_then(|p| p.name.clone()).or_else(|| port.and_then(|p| p.number).map(|n| n.to_string())).unwrap_or_default();
    if port_ref != "use-annotation" {
        let number = service_port(objects, &ns, &svc.name, &port_ref)?;
        return Ok(RuleAction::Forward(vec![backend_ref(&svc.name, number, None)]));
    }
    match cfg.actions.get(&svc.name) {
        None => Err(format!("backend {:?} uses annotation {PREFIX}actions.{}, which is not set", svc.name, svc.name)),
        Some(ActionSpec::Fixed(a @ Action::Redirect { .. })) => Ok(RuleAction::Redirect(redirect_filter(a)?)),
        Some(ActionSpec::Fixed(_)) => Err(format!(
            "{PREFIX}actions.{}: a fixed response is not in the standard Gateway API and needs LBC's ListenerRuleConfiguration, \
             whose types this build does not have",
            svc.name
        )),
        Some(ActionSpec::Forward { stickiness_seconds: Some(_), .. }) => {
            Err(format!("{PREFIX}actions.{}: target group stickiness needs LBC's ListenerRuleConfiguration", svc.name))
        }
        Some(ActionSpec::Forward { targets, stickiness_seconds: None }) => {
            let mut backends = Vec::new();
            for (target, weight) in targets {
                match target {
                    TargetRef::Arn(arn) => {
                        return Err(format!("{PREFIX}actions.{}: target group {arn} is not a Service", svc.name));
                    }
                    TargetRef::Service { name, port } => {
                        if *weight == Some(0) {
                            // The Gateway builder leaves zero weights out of the forward.
                            return Err(format!("{PREFIX}actions.{}: Service {name} has weight 0", svc.name));
                        }
                        let number = service_port(objects, &ns, name, port)?;
                        backends.push(backend_ref(name, number, if targets.len() > 1 { *weight } else { None }));
                    }
                }
            }
            Ok(RuleAction::Forward(backends))
        }
    }
}

/// Annotations this converter cannot carry, with why.
fn unconvertible_annotations(args: &ConvertArgs, ing: &Ingress, cfg: &IngressConfig) -> Vec<String> {
    let mut out = Vec::new();
    for key in ing.annotations().keys().filter_map(|k| k.strip_prefix(PREFIX)) {
        let lb = LOAD_BALANCER_SETTINGS.iter().any(|s| if s.ends_with(['.', '-']) { key.starts_with(s) } else { key == *s });
        let tg = TARGET_GROUP_SETTINGS.iter().any(|s| if s.ends_with(['.', '-']) { key.starts_with(s) } else { key == *s });
        if key == "scheme" && cfg.scheme == Some(Scheme::Internal) {
            // A Gateway's load balancer is internal by default too.
        } else if key == "target-type" {
            let value = ing.annotations()[&format!("{PREFIX}{key}")].trim().to_string();
            if TargetType::parse(&value) != Ok(args.default_target_type) {
                out.push(format!(
                    "annotation {PREFIX}target-type {value:?} needs TargetGroupConfiguration (or the controller's \
                     --default-target-type {value}, and convert's)"
                ));
            }
        } else if lb {
            out.push(format!("annotation {PREFIX}{key} needs LoadBalancerConfiguration"));
        } else if tg {
            out.push(format!("annotation {PREFIX}{key} needs TargetGroupConfiguration"));
        } else if key.starts_with("auth-") {
            out.push(format!("annotation {PREFIX}{key}: authentication needs LBC's ListenerRuleConfiguration"));
        } else if !(matches!(key, "group.name" | "group.order" | "listen-ports" | "use-regex-path-match")
            || key.starts_with("actions.")
            || key.starts_with("conditions."))
        {
            out.push(format!("annotation {PREFIX}{key} is not converted"));
        }
    }
    out
}

/// One Ingress as HTTPRoute rules, or every reason it cannot be.
fn convert_member(
    args: &ConvertArgs,
    objects: &Objects,
    filter: &ClassFilter,
    ing: &Ingress,
    cfg: &IngressConfig,
) -> Result<Member, Vec<String>> {
    let key = key_of(ing);
    let mut why = unconvertible_annotations(args, ing, cfg);
    match grouping::class_params(&objects.cluster, filter, ing) {
        // The group and who may use the class are not load balancer settings.
        Some(Ok(params))
            if serde_json::to_value(&params)
                .is_ok_and(|v| v.as_object().is_some_and(|o| o.keys().any(|k| k != "group" && k != "namespaceSelector"))) =>
        {
            why.push("IngressClassParams settings need LoadBalancerConfiguration".into());
        }
        // As the Ingress builder, which leaves such an Ingress out.
        Some(Err(e)) => why.push(e),
        _ => {}
    }
    let spec = ing.spec.as_ref();
    let has_tls = spec.and_then(|s| s.tls.as_ref()).is_some_and(|t| !t.is_empty());
    let ports = cfg.listen_ports.clone().unwrap_or_else(|| if has_tls { vec![(Protocol::Https, 443)] } else { vec![(Protocol::Http, 80)] });
    // A Gateway discovers certificates by its routes' hostnames only.
    let rule_hosts: Vec<&str> = spec.and_then(|s| s.rules.as_ref()).into_iter().flatten().filter_map(|r| r.host.as_deref()).collect();
    for tls in spec.and_then(|s| s.tls.as_ref()).into_iter().flatten() {
        for h in tls.hosts.iter().flatten().filter(|h| !rule_hosts.contains(&h.as_str())) {
            why.push(format!("spec.tls host {h:?} is no rule's host: the Gateway would not discover its certificate"));
        }
    }
    let default = match spec.and_then(|s| s.default_backend.as_ref()) {
        Some(backend) => match rule_action(objects, ing, cfg, backend) {
            Ok(action) => Some(Rule { path: PathMatch { kind: 2, value: "/".into() }, extra: ExtraMatch::default(), action }),
            Err(e) => {
                why.push(format!("spec.defaultBackend: {e}"));
                None
            }
        },
        None => None,
    };
    let mut routes: Vec<Route> = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = rule.host.clone().filter(|h| !h.is_empty());
        let Some(http) = rule.http.as_ref() else { continue };
        for path in crate::model::sorted_paths(&http.paths) {
            let converted = path_match(path, cfg.use_regex_path_match).and_then(|m| {
                let backend = path.backend.service.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
                let extra = extra_match(backend, cfg.conditions.get(backend).map(Vec::as_slice).unwrap_or_default())?;
                rule_action(objects, ing, cfg, &path.backend).map(|action| Rule { path: m, extra, action })
            });
            match converted {
                // An HTTPRoute holds at most 16 rules (the CRD's maxItems): more start another.
                Ok(r) => match routes.iter_mut().rev().find(|route| route.host == host).filter(|route| route.rules.len() < MAX_ROUTE_RULES)
                {
                    Some(route) => route.rules.push(r),
                    None => routes.push(Route { name: String::new(), host: host.clone(), rules: vec![r] }),
                },
                Err(e) => why.push(format!("path {:?}: {e}", path.path.as_deref().unwrap_or(""))),
            }
        }
    }
    if routes.is_empty() && default.is_none() && why.is_empty() {
        why.push("no rules: nothing to route".into());
    }
    if !why.is_empty() {
        return Err(why);
    }
    let several = routes.len() > 1;
    for (i, r) in routes.iter_mut().enumerate() {
        r.name = if several { format!("{}-{i:02}", key.name) } else { key.name.clone() };
    }
    Ok(Member { key, ports, routes, default })
}

/// Where the Gateway API's precedence (as the Gateway builder applies it) would put the
/// group's rules in another order than the Ingresses have them on some port: (port, the
/// rule that would move up, the rule it would pass).
fn precedence_conflict(members: &[Member]) -> Option<(i32, String, String)> {
    /// A rule where it is ranked: (namespace, route name, rule index, host, the rule).
    type Placed<'a> = (&'a String, &'a String, usize, Option<&'a str>, &'a Rule);
    // The Gateway builder's specificity of a match: path kind and length, method, headers
    // and query parameters (larger is more specific).
    let specificity =
        |r: &Rule| (r.path.kind, r.path.value.len(), r.extra.method.is_some(), r.extra.headers.len(), r.extra.query_params.len());
    let mut ports: Vec<i32> = members.iter().flat_map(|m| m.ports.iter().map(|p| p.1)).collect();
    ports.sort();
    ports.dedup();
    for port in ports {
        // In the Ingresses' order.
        let mut rules: Vec<Placed> = Vec::new();
        for m in members.iter().filter(|m| m.ports.iter().any(|p| p.1 == port)) {
            for r in &m.routes {
                for (i, rule) in r.rules.iter().enumerate() {
                    rules.push((&m.key.namespace, &r.name, i, r.host.as_deref(), rule));
                }
            }
        }
        // The default backend's catch-all serves every port, after every rule.
        let defaults: Vec<(&Member, String)> =
            members.iter().filter(|m| m.default.is_some()).map(|m| (m, default_route_name(&m.key))).collect();
        for (m, name) in &defaults {
            rules.push((&m.key.namespace, name, 0, None, m.default.as_ref().unwrap()));
        }
        let gateway_order = |a: &Placed, b: &Placed| {
            host_order(a.3, b.3).then_with(|| specificity(b.4).cmp(&specificity(a.4))).then_with(|| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)))
        };
        for (i, a) in rules.iter().enumerate() {
            if let Some(b) = rules[i + 1..].iter().find(|b| gateway_order(b, a) == Ordering::Less) {
                let show = |r: &Placed| format!("host {:?} path {:?} of {}/{}", r.3.unwrap_or(""), r.4.path.value, r.0, r.1);
                return Some((port, show(b), show(a)));
            }
        }
    }
    None
}

fn default_route_name(ing: &ObjKey) -> String {
    format!("{}-default-backend", ing.name)
}

fn rule_json(rule: &Rule) -> Value {
    let mut m = json!({"path": rule.path.json()});
    rule.extra.add_to(&mut m);
    let mut v = json!({"matches": [m]});
    match &rule.action {
        RuleAction::Redirect(f) => v["filters"] = json!([f]),
        RuleAction::Forward(backends) => v["backendRefs"] = json!(backends),
    }
    v
}

fn route_json(name: &str, ing: &ObjKey, parent_refs: &[Value], host: Option<&str>, rules: &[&Rule]) -> Value {
    let mut spec = json!({"parentRefs": parent_refs, "rules": rules.iter().map(|r| rule_json(r)).collect::<Vec<_>>()});
    if let Some(h) = host {
        spec["hostnames"] = json!([h]);
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": ing.namespace,
            "annotations": {"alb-controller/converted-from": format!("Ingress {ing}")},
        },
        "spec": spec,
    })
}

/// The Gateway and HTTPRoutes of one group.
fn group_objects(args: &ConvertArgs, group: &GroupId, members: &[Member]) -> Vec<Value> {
    let first = &members[0].key;
    let (gw_namespace, gw_name) = match group {
        GroupId::Explicit(name) => (first.namespace.clone(), name.clone()),
        _ => (first.namespace.clone(), first.name.clone()),
    };
    let one_namespace = members.iter().all(|m| m.key.namespace == gw_namespace);
    let mut ports: Vec<(Protocol, i32)> = members.iter().flat_map(|m| m.ports.iter().copied()).collect();
    ports.sort_by_key(|p| p.1);
    ports.dedup();
    let listeners: Vec<Value> = ports
        .iter()
        .map(|&(protocol, port)| {
            json!({
                "name": listener_name(protocol, port),
                "protocol": protocol.as_str(),
                "port": port,
                "allowedRoutes": {"namespaces": {"from": if one_namespace { "Same" } else { "All" }}},
            })
        })
        .collect();
    let mut out = vec![json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": gw_name, "namespace": gw_namespace, "annotations": {"alb-controller/converted-from": group.to_string()}},
        "spec": {"gatewayClassName": args.gateway_class_name, "listeners": listeners},
    })];
    for m in members {
        let parent_refs: Vec<Value> = m
            .ports
            .iter()
            .map(|&(protocol, port)| json!({"name": gw_name, "namespace": gw_namespace, "sectionName": listener_name(protocol, port)}))
            .collect();
        for r in &m.routes {
            out.push(route_json(&r.name, &m.key, &parent_refs, r.host.as_deref(), &r.rules.iter().collect::<Vec<_>>()));
        }
        if let Some(d) = &m.default {
            let every_listener: Vec<Value> = ports
                .iter()
                .map(|&(protocol, port)| json!({"name": gw_name, "namespace": gw_namespace, "sectionName": listener_name(protocol, port)}))
                .collect();
            out.push(route_json(&default_route_name(&m.key), &m.key, &every_listener, None, &[d]));
        }
    }
    out
}

fn yaml_documents(docs: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Runs `convert`: `Ok(false)` when some Ingress could not be converted (listed on stderr).
pub fn run(args: &ConvertArgs) -> Result<bool, String> {
    let mut objects = load(&args.files)?;
    // As `plan`: the IngressClass is cluster setup, assumed when not in the manifests.
    if !objects.cluster.classes.iter().any(|c| c.name_any() == args.ingress_class) {
        objects.cluster.classes.push(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": args.ingress_class}, "spec": {"controller": args.controller_name}}))
                .expect("a valid IngressClass"),
        ));
    }
    let filter = ClassFilter { controller: args.controller_name.clone(), legacy_class: args.ingress_class.clone() };
    let mut refused: Vec<(ObjKey, String)> = Vec::new();
    let mut groups: BTreeMap<GroupId, Vec<(&Ingress, IngressConfig)>> = BTreeMap::new();
    for ing in objects.ingresses.iter().filter(|i| grouping::is_active(&objects.cluster, &filter, i)) {
        let empty = BTreeMap::new();
        let parsed = annotations::parse(ing.metadata.annotations.as_ref().unwrap_or(&empty))
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
        match grouping::group_of(&objects.cluster, &filter, ing).and_then(|g| parsed.map(|cfg| (g, cfg))) {
            Ok((g, cfg)) => groups.entry(g).or_default().push((ing, cfg)),
            Err(e) => refused.push((key_of(ing), e)),
        }
    }
    let mut gateways: Vec<(GroupId, Vec<Value>)> = Vec::new();
    // (kind, namespace, name) of every object written: two groups must not make the same one.
    let mut made: std::collections::BTreeSet<(String, String, String)> = Default::default();
    for (group, mut members) in groups {
        // The group's order, as the Ingress builder ranks members.
        members.sort_by_key(|m| (m.1.group_order, key_of(m.0)));
        let mut converted = Vec::new();
        let mut orders: BTreeMap<i64, ObjKey> = BTreeMap::new();
        for (ing, cfg) in &members {
            // As the Ingress builder: a second member claiming an explicit order is left out.
            if cfg.group_order != 0 {
                let first = orders.entry(cfg.group_order).or_insert_with(|| key_of(ing));
                if *first != key_of(ing) {
                    refused.push((key_of(ing), format!("{PREFIX}group.order {} is already used by {first}", cfg.group_order)));
                    continue;
                }
            }
            match convert_member(args, &objects, &filter, ing, cfg) {
                Ok(m) => converted.push(m),
                Err(why) => refused.extend(why.into_iter().map(|w| (key_of(ing), w))),
            }
        }
        if converted.is_empty() {
            continue;
        }
        if converted.len() < members.len() {
            // The Gateway would lack the refused members' rules: a different load balancer.
            for m in &converted {
                refused.push((m.key.clone(), format!("another Ingress of group {group} cannot be converted")));
            }
            continue;
        }
        // As the Ingress builder: one default backend per load balancer.
        let with_default: Vec<&Member> = converted.iter().filter(|m| m.default.is_some()).collect();
        if with_default.len() > 1 {
            for m in &converted {
                refused.push((
                    m.key.clone(),
                    format!("group {group}: more than one Ingress sets spec.defaultBackend ({} first)", with_default[0].key),
                ));
            }
            continue;
        }
        if let Some((port, moved, passed)) = precedence_conflict(&converted) {
            for m in &converted {
                refused.push((
                    m.key.clone(),
                    format!("on port {port} the Gateway API's precedence would put {moved} before {passed}, unlike the Ingress order"),
                ));
            }
            continue;
        }
        let docs = group_objects(args, &group, &converted);
        let names: Vec<(String, String, String)> = docs
            .iter()
            .map(|d| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (text(&d["kind"]), text(&d["metadata"]["namespace"]), text(&d["metadata"]["name"]))
            })
            .collect();
        if let Some((kind, ns, name)) = names.iter().find(|n| made.contains(n)) {
            for m in &converted {
                refused.push((m.key.clone(), format!("{kind} {ns}/{name} is already made for another group")));
            }
            continue;
        }
        made.extend(names);
        gateways.push((group.clone(), docs));
    }
    let class = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": args.gateway_class_name},
        "spec": {"controllerName": crate::model::gateway::CONTROLLER_NAME},
    });
    let passed: Vec<Value> =
        objects.passed_through.iter().map(|v| serde_json::to_value(v).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
    match &args.output_dir {
        None => {
            let mut all = vec![class];
            all.extend(gateways.into_iter().flat_map(|(_, docs)| docs));
            all.extend(passed);
            print!("{}", yaml_documents(&all)?);
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let write = |name: &str, docs: &[Value]| {
                let path = dir.join(name);
                std::fs::write(&path, yaml_documents(docs)?).map_err(|e| format!("{}: {e}", path.display()))
            };
            write("gatewayclass.yaml", &[class])?;
            for (_, docs) in &gateways {
                let meta = &docs[0]["metadata"];
                write(&format!("gateway-{}-{}.yaml", meta["namespace"].as_str().unwrap_or(""), meta["name"].as_str().unwrap_or("")), docs)?;
            }
            if !passed.is_empty() {
                write("passed-through.yaml", &passed)?;
            }
        }
    }
    refused.sort();
    refused.dedup();
    for (key, why) in &refused {
        eprintln!("Ingress {key}: not converted: {why}");
    }
    Ok(refused.is_empty())
}
