//! Gateway API objects (the generated types) as the Gateway builder reads them, with the
//! spec's defaults applied as the API server's CRD defaults would (so that `plan` of a
//! manifest and the controller on a cluster see the same thing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::ResourceExt;
use serde::Serialize;

use super::gateway_api::gateways::{Gateway, GatewayListenersAllowedRoutesNamespacesFrom as From};
use super::gateway_api::grpcroutes::{GrpcRoute, GrpcRouteRulesMatchesHeadersType, GrpcRouteRulesMatchesMethodType};
use super::gateway_api::httproutes::{
    HttpRoute, HttpRouteRulesFiltersRequestRedirectPathType as RedirectPath, HttpRouteRulesFiltersType,
    HttpRouteRulesFiltersUrlRewritePathType as RewritePath, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use super::gateway_api::referencegrants::ReferenceGrant;
use std::collections::BTreeMap;

use super::gateway_config::{
    Attribute, ListenerConfiguration, LoadBalancerConfigurationSpec, MergeMode, Scheme as LbcScheme, TargetGroupConfiguration,
    TargetGroupProps, TargetType as LbcTargetType,
};
use crate::model::gateway::spec::*;
use crate::model::{LoadBalancerIntent, SubnetChoice};
use crate::model::{ObjKey, Scheme, Tags, TargetType};

/// An enum value as the API writes it (`GET`, `RequestHeaderModifier`, `https`).
fn wire(v: &impl Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn key_of(obj: &impl ResourceExt) -> ObjKey {
    ObjKey { namespace: obj.namespace().unwrap_or_default(), name: obj.name_any() }
}

fn created(obj: &impl ResourceExt) -> String {
    obj.meta().creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
}

pub fn gateway(gw: &Gateway) -> GatewaySpec {
    let listeners = gw
        .spec
        .listeners
        .iter()
        .map(|l| {
            let allowed = l.allowed_routes.as_ref();
            let ns = allowed.and_then(|a| a.namespaces.as_ref());
            let namespaces = match ns.and_then(|n| n.from.as_ref()) {
                Some(From::All) => FromNamespaces::All,
                Some(From::Selector) => FromNamespaces::Selector(LabelSelector {
                    match_labels: ns.and_then(|n| n.selector.as_ref()).and_then(|s| s.match_labels.clone()),
                    match_expressions: ns.and_then(|n| n.selector.as_ref()).and_then(|s| s.match_expressions.as_ref()).map(|e| {
                        e.iter()
                            .map(|r| LabelSelectorRequirement {
                                key: r.key.clone(),
                                operator: r.operator.clone(),
                                values: r.values.clone(),
                            })
                            .collect()
                    }),
                }),
                Some(From::Same) | None => FromNamespaces::Same,
            };
            let kinds = allowed
                .and_then(|a| a.kinds.as_ref())
                .map(|k| k.iter().map(|k| (k.group.clone().unwrap_or_else(|| GATEWAY_GROUP.into()), k.kind.clone())).collect())
                .unwrap_or_default();
            ListenerSpec {
                name: l.name.clone(),
                hostname: l.hostname.clone(),
                port: l.port,
                protocol: l.protocol.clone(),
                namespaces,
                kinds,
            }
        })
        .collect();
    GatewaySpec { key: key_of(gw), uid: gw.uid().unwrap_or_default(), generation: gw.metadata.generation.unwrap_or_default(), listeners }
}

#[allow(clippy::too_many_arguments)]
fn parent(
    route_ns: &str,
    group: &Option<String>,
    kind: &Option<String>,
    namespace: &Option<String>,
    name: &str,
    section: &Option<String>,
    port: Option<i32>,
) -> ParentRef {
    ParentRef {
        group: group.clone().unwrap_or_else(|| GATEWAY_GROUP.into()),
        kind: kind.clone().unwrap_or_else(|| "Gateway".into()),
        namespace: namespace.clone().unwrap_or_else(|| route_ns.to_string()),
        name: name.to_string(),
        section_name: section.clone(),
        port,
    }
}

fn backend(
    route_ns: &str,
    group: &Option<String>,
    kind: &Option<String>,
    namespace: &Option<String>,
    name: &str,
    port: Option<i32>,
    weight: Option<i32>,
) -> BackendRef {
    BackendRef {
        group: group.clone().unwrap_or_default(),
        kind: kind.clone().unwrap_or_else(|| "Service".into()),
        namespace: namespace.clone().unwrap_or_else(|| route_ns.to_string()),
        name: name.to_string(),
        port,
        weight: weight.unwrap_or(1),
    }
}

pub fn http_route(r: &HttpRoute) -> RouteSpec {
    let key = key_of(r);
    let ns = key.namespace.clone();
    let parents = r
        .spec
        .parent_refs
        .iter()
        .flatten()
        .map(|p| parent(&ns, &p.group, &p.kind, &p.namespace, &p.name, &p.section_name, p.port))
        .collect();
    let rules = r
        .spec
        .rules
        .iter()
        .flatten()
        .map(|rule| {
            let mut matches: Vec<Match> = rule
                .matches
                .iter()
                .flatten()
                .map(|m| {
                    let path = m.path.as_ref().map_or(PathMatch { kind: PathKind::Prefix, value: "/".into() }, |p| PathMatch {
                        kind: match p.r#type {
                            Some(HttpRouteRulesMatchesPathType::Exact) => PathKind::Exact,
                            Some(HttpRouteRulesMatchesPathType::RegularExpression) => PathKind::Regex,
                            Some(HttpRouteRulesMatchesPathType::PathPrefix) | None => PathKind::Prefix,
                        },
                        value: p.value.clone().unwrap_or_else(|| "/".into()),
                    });
                    Match::Http(HttpMatch {
                        path: Some(path),
                        headers: m
                            .headers
                            .iter()
                            .flatten()
                            .map(|h| ValueMatch {
                                regex: matches!(h.r#type, Some(HttpRouteRulesMatchesHeadersType::RegularExpression)),
                                name: h.name.clone(),
                                value: h.value.clone(),
                            })
                            .collect(),
                        query_params: m
                            .query_params
                            .iter()
                            .flatten()
                            .map(|q| ValueMatch {
                                regex: matches!(q.r#type, Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression)),
                                name: q.name.clone(),
                                value: q.value.clone(),
                            })
                            .collect(),
                        method: m.method.as_ref().map(wire),
                    })
                })
                .collect();
            if matches.is_empty() {
                matches.push(Match::Http(HttpMatch {
                    path: Some(PathMatch { kind: PathKind::Prefix, value: "/".into() }),
                    ..Default::default()
                }));
            }
            let filters = rule
                .filters
                .iter()
                .flatten()
                .map(|f| match (&f.r#type, &f.request_redirect) {
                    (HttpRouteRulesFiltersType::RequestRedirect, Some(rr)) => Filter::RequestRedirect {
                        scheme: rr.scheme.as_ref().map(wire),
                        hostname: rr.hostname.clone(),
                        path: rr.path.as_ref().map(|p| match p.r#type {
                            RedirectPath::ReplaceFullPath => PathModifier::ReplaceFullPath(p.replace_full_path.clone().unwrap_or_default()),
                            RedirectPath::ReplacePrefixMatch => {
                                PathModifier::ReplacePrefixMatch(p.replace_prefix_match.clone().unwrap_or_default())
                            }
                        }),
                        port: rr.port,
                        status_code: rr.status_code.map(|c| c as i32),
                    },
                    (HttpRouteRulesFiltersType::UrlRewrite, _) if f.url_rewrite.is_some() => {
                        let rw = f.url_rewrite.as_ref().expect("checked");
                        Filter::URLRewrite {
                            hostname: rw.hostname.clone(),
                            path: rw.path.as_ref().map(|p| match p.r#type {
                                RewritePath::ReplaceFullPath => {
                                    PathModifier::ReplaceFullPath(p.replace_full_path.clone().unwrap_or_default())
                                }
                                RewritePath::ReplacePrefixMatch => {
                                    PathModifier::ReplacePrefixMatch(p.replace_prefix_match.clone().unwrap_or_default())
                                }
                            }),
                        }
                    }
                    (t, _) => Filter::Other(wire(t)),
                })
                .collect();
            let backends = rule
                .backend_refs
                .iter()
                .flatten()
                .map(|b| backend(&ns, &b.group, &b.kind, &b.namespace, &b.name, b.port, b.weight))
                .collect();
            RuleSpec { matches, filters, backends }
        })
        .collect();
    RouteSpec {
        kind: RouteKind::Http,
        generation: r.metadata.generation.unwrap_or_default(),
        created: created(r),
        parents,
        hostnames: r.spec.hostnames.clone().unwrap_or_default(),
        rules,
        key,
    }
}

pub fn grpc_route(r: &GrpcRoute) -> RouteSpec {
    let key = key_of(r);
    let ns = key.namespace.clone();
    let parents = r
        .spec
        .parent_refs
        .iter()
        .flatten()
        .map(|p| parent(&ns, &p.group, &p.kind, &p.namespace, &p.name, &p.section_name, p.port))
        .collect();
    let rules = r
        .spec
        .rules
        .iter()
        .flatten()
        .map(|rule| {
            let mut matches: Vec<Match> = rule
                .matches
                .iter()
                .flatten()
                .map(|m| {
                    Match::Grpc(GrpcMatch {
                        method: m.method.as_ref().map(|me| GrpcMethod {
                            regex: matches!(me.r#type, Some(GrpcRouteRulesMatchesMethodType::RegularExpression)),
                            service: me.service.clone(),
                            method: me.method.clone(),
                        }),
                        headers: m
                            .headers
                            .iter()
                            .flatten()
                            .map(|h| ValueMatch {
                                regex: matches!(h.r#type, Some(GrpcRouteRulesMatchesHeadersType::RegularExpression)),
                                name: h.name.clone(),
                                value: h.value.clone(),
                            })
                            .collect(),
                    })
                })
                .collect();
            if matches.is_empty() {
                matches.push(Match::Grpc(GrpcMatch::default()));
            }
            RuleSpec {
                matches,
                filters: rule.filters.iter().flatten().map(|f| Filter::Other(wire(&f.r#type))).collect(),
                backends: rule
                    .backend_refs
                    .iter()
                    .flatten()
                    .map(|b| backend(&ns, &b.group, &b.kind, &b.namespace, &b.name, b.port, b.weight))
                    .collect(),
            }
        })
        .collect();
    RouteSpec {
        kind: RouteKind::Grpc,
        generation: r.metadata.generation.unwrap_or_default(),
        created: created(r),
        parents,
        hostnames: r.spec.hostnames.clone().unwrap_or_default(),
        rules,
        key,
    }
}

pub fn grant(g: &ReferenceGrant) -> Grant {
    Grant {
        namespace: g.namespace().unwrap_or_default(),
        from: g.spec.from.iter().map(|f| (f.group.clone(), f.kind.clone(), f.namespace.clone())).collect(),
        to: g.spec.to.iter().map(|t| (t.group.clone(), t.kind.clone(), t.name.clone())).collect(),
    }
}

fn target_props(p: &TargetGroupProps) -> TargetProps {
    let hc = p.health_check_config.as_ref();
    TargetProps {
        name: p.target_group_name.clone(),
        target_type: p.target_type.as_ref().map(|t| match t {
            LbcTargetType::Instance => TargetType::Instance,
            LbcTargetType::Ip => TargetType::Ip,
        }),
        protocol: p.protocol.as_ref().map(wire),
        protocol_version: p.protocol_version.as_ref().map(wire),
        health_check_path: hc.and_then(|h| h.health_check_path.clone()),
        health_check_port: hc.and_then(|h| h.health_check_port.clone()),
        health_check_protocol: hc.and_then(|h| h.health_check_protocol.as_ref().map(wire)),
        health_check_interval: hc.and_then(|h| h.health_check_interval),
        health_check_timeout: hc.and_then(|h| h.health_check_timeout),
        healthy_threshold: hc.and_then(|h| h.healthy_threshold_count),
        unhealthy_threshold: hc.and_then(|h| h.unhealthy_threshold_count),
        http_code: hc.and_then(|h| h.matcher.as_ref()).and_then(|m| m.http_code.clone()),
        grpc_code: hc.and_then(|h| h.matcher.as_ref()).and_then(|m| m.grpc_code.clone()),
        node_labels: p.node_selector.as_ref().and_then(|s| s.match_labels.clone()),
        attributes: p.target_group_attributes.iter().flatten().map(|a| (a.key.clone(), a.value.clone())).collect(),
        tags: p.tags.clone().unwrap_or_default(),
    }
}

/// A TargetGroupConfiguration: the Service it names (in its namespace) and its settings.
pub fn target_config(c: &TargetGroupConfiguration) -> Option<(ObjKey, TargetConfig)> {
    let service = ObjKey { namespace: c.namespace().unwrap_or_default(), name: c.spec.target_reference.as_ref()?.name.clone() };
    let some = |s: &String| (!s.is_empty()).then(|| s.clone());
    Some((
        service,
        TargetConfig {
            default: c.spec.default_configuration.as_ref().map(target_props).unwrap_or_default(),
            routes: c
                .spec
                .route_configurations
                .iter()
                .flatten()
                .map(|r| {
                    let id = &r.route_identifier;
                    (id.kind.clone(), some(&id.namespace), some(&id.name), target_props(&r.target_group_props))
                })
                .collect(),
        },
    ))
}

/// What a Gateway's LoadBalancerConfiguration asks of its load balancer, as the builder
/// takes it.
#[derive(Debug, Default, PartialEq)]
pub struct LoadBalancerSettings {
    pub load_balancer: LoadBalancerIntent,
    pub tags: Tags,
    /// Certificates per listener port: the default first.
    pub listener_certificates: BTreeMap<i32, Vec<String>>,
}

/// The configurations of a Gateway's class and of the Gateway merged as LBC merges them:
/// each field from the preferred one if it sets it (the class's, unless the class's
/// `mergingMode` is `prefer-gateway`), tags and attributes key by key, listener
/// configurations by protocol and port.
pub fn merge_configs(
    class: Option<&LoadBalancerConfigurationSpec>,
    gateway: Option<&LoadBalancerConfigurationSpec>,
) -> LoadBalancerConfigurationSpec {
    let (Some(class), Some(gateway)) = (class, gateway) else {
        return class.or(gateway).cloned().unwrap_or_default();
    };
    let (high, low) = match class.merging_mode {
        Some(MergeMode::PreferGateway) => (gateway, class),
        _ => (class, gateway),
    };
    let mut merged = high.clone();
    macro_rules! take_one {
        ($($field:ident),*) => { $( if merged.$field.is_none() { merged.$field = low.$field.clone(); } )* };
    }
    take_one!(
        load_balancer_name,
        scheme,
        ip_address_type,
        load_balancer_subnets,
        load_balancer_subnets_selector,
        security_groups,
        source_ranges,
        manage_backend_security_group_rules
    );
    let mut tags = low.tags.clone().unwrap_or_default();
    tags.extend(high.tags.clone().unwrap_or_default());
    merged.tags = (!tags.is_empty()).then_some(tags);
    let mut attrs: BTreeMap<String, String> = BTreeMap::new();
    for a in low.load_balancer_attributes.iter().flatten().chain(high.load_balancer_attributes.iter().flatten()) {
        attrs.insert(a.key.clone(), a.value.clone());
    }
    merged.load_balancer_attributes = (!attrs.is_empty()).then(|| attrs.into_iter().map(|(key, value)| Attribute { key, value }).collect());
    let mut listeners: Vec<ListenerConfiguration> = high.listener_configurations.clone().unwrap_or_default();
    for l in low.listener_configurations.iter().flatten() {
        if !listeners.iter().any(|h| h.protocol_port == l.protocol_port) {
            listeners.push(l.clone());
        }
    }
    merged.listener_configurations = (!listeners.is_empty()).then_some(listeners);
    merged
}

/// The builder's settings of a (merged) configuration, or what in it is wrong.
pub fn load_balancer_settings(c: &LoadBalancerConfigurationSpec) -> Result<LoadBalancerSettings, String> {
    let mut lb = LoadBalancerIntent {
        scheme: c.scheme.map(|s| match s {
            LbcScheme::Internal => Scheme::Internal,
            LbcScheme::InternetFacing => Scheme::InternetFacing,
        }),
        ip_address_type: c.ip_address_type.as_ref().map(wire),
        name: c.load_balancer_name.clone(),
        subnets: match (&c.load_balancer_subnets, &c.load_balancer_subnets_selector) {
            (Some(s), _) => Some(SubnetChoice::Named(s.iter().map(|s| s.identifier.clone()).collect())),
            (None, Some(sel)) => Some(SubnetChoice::Tagged(sel.clone())),
            (None, None) => None,
        },
        inbound_cidrs: c.source_ranges.clone(),
        security_groups: c.security_groups.clone(),
        manage_backend_security_group_rules: c.manage_backend_security_group_rules,
        attributes: c.load_balancer_attributes.as_ref().map(|a| a.iter().map(|a| (a.key.clone(), a.value.clone())).collect()),
        ..Default::default()
    };
    let mut listener_certificates = BTreeMap::new();
    for l in c.listener_configurations.iter().flatten() {
        let bad = || {
            format!(
                "LoadBalancerConfiguration spec.listenerConfigurations protocolPort {:?}: expected HTTP:<port> or HTTPS:<port>",
                l.protocol_port
            )
        };
        let (protocol, port) = l.protocol_port.split_once(':').ok_or_else(bad)?;
        let port: i32 = port.parse().map_err(|_| bad())?;
        if !matches!(protocol, "HTTP" | "HTTPS") {
            return Err(bad());
        }
        let certs: Vec<String> = l.default_certificate.iter().chain(l.certificates.iter().flatten()).cloned().collect();
        if !certs.is_empty() {
            listener_certificates.insert(port, certs);
        }
        // One SSL policy for the load balancer's HTTPS listeners in this model.
        if let Some(policy) = &l.ssl_policy {
            match &lb.ssl_policy {
                Some(p) if p != policy => {
                    return Err(format!(
                        "LoadBalancerConfiguration spec.listenerConfigurations sslPolicy: {policy} and {p} on two listeners; one policy for every HTTPS listener is supported"
                    ));
                }
                _ => lb.ssl_policy = Some(policy.clone()),
            }
        }
    }
    Ok(LoadBalancerSettings { load_balancer: lb, tags: c.tags.clone().unwrap_or_default(), listener_certificates })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_defaults_are_applied() {
        let route: HttpRoute = serde_yaml::from_str(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{name: edge, sectionName: https}]
  rules:
  - backendRefs: [{name: web, port: 80}]
  - matches: [{headers: [{name: x-a, value: b, type: RegularExpression}], method: POST}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: a.example.com}}]
"#,
        )
        .unwrap();
        let spec = http_route(&route);
        assert_eq!(
            spec.parents[0],
            ParentRef {
                group: GATEWAY_GROUP.into(),
                kind: "Gateway".into(),
                namespace: "shop".into(),
                name: "edge".into(),
                section_name: Some("https".into()),
                port: None,
            }
        );
        let everything =
            Match::Http(HttpMatch { path: Some(PathMatch { kind: PathKind::Prefix, value: "/".into() }), ..Default::default() });
        assert_eq!(spec.rules[0].matches, vec![everything], "no matches: PathPrefix /");
        assert_eq!(
            spec.rules[0].backends[0],
            BackendRef {
                group: String::new(),
                kind: "Service".into(),
                namespace: "shop".into(),
                name: "web".into(),
                port: Some(80),
                weight: 1,
            }
        );
        let Match::Http(m) = &spec.rules[1].matches[0] else { panic!() };
        assert_eq!(m.path, Some(PathMatch { kind: PathKind::Prefix, value: "/".into() }), "a match without a path: PathPrefix /");
        assert_eq!((m.method.as_deref(), m.headers[0].regex), (Some("POST"), true));
        assert_eq!(spec.rules[1].filters, vec![Filter::URLRewrite { hostname: Some("a.example.com".into()), path: None }]);

        let gw: Gateway = serde_yaml::from_str(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: shop, uid: u1}\nspec:\n  gatewayClassName: aws-alb\n  listeners: [{name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}, kinds: [{kind: HTTPRoute}]}}]\n",
        )
        .unwrap();
        let g = gateway(&gw);
        assert_eq!((g.uid.as_str(), &g.listeners[0].namespaces), ("u1", &FromNamespaces::All));
        assert_eq!(g.listeners[0].kinds, vec![(GATEWAY_GROUP.to_string(), "HTTPRoute".to_string())]);
    }

    #[test]
    fn configurations_merge_as_lbc_merges_them() {
        let spec = |yaml: &str| -> LoadBalancerConfigurationSpec { serde_yaml::from_str(yaml).unwrap() };
        let class = spec("{scheme: internet-facing, tags: {team: platform, a: '1'}, loadBalancerAttributes: [{key: k, value: class}]}");
        let gw = spec("{scheme: internal, loadBalancerName: edge, tags: {team: shop}, loadBalancerAttributes: [{key: k, value: gw}]}");
        let merged = merge_configs(Some(&class), Some(&gw));
        assert_eq!(merged.scheme, class.scheme, "the class's wins by default");
        assert_eq!(merged.load_balancer_name.as_deref(), Some("edge"), "what only the Gateway sets is taken");
        assert_eq!(merged.tags.as_ref().unwrap()["team"], "platform");
        assert_eq!(merged.load_balancer_attributes.as_ref().unwrap()[0].value, "class");

        let mut prefer_gw = class.clone();
        prefer_gw.merging_mode = Some(MergeMode::PreferGateway);
        let merged = merge_configs(Some(&prefer_gw), Some(&gw));
        assert_eq!(merged.scheme, gw.scheme);
        assert_eq!(merged.tags.as_ref().unwrap()["team"], "shop");
        assert_eq!(merged.tags.as_ref().unwrap()["a"], "1");

        let s = load_balancer_settings(&spec(
            "{listenerConfigurations: [{protocolPort: 'HTTPS:443', defaultCertificate: arn:d, certificates: [arn:s], sslPolicy: P}]}",
        ))
        .unwrap();
        assert_eq!(s.listener_certificates[&443], vec!["arn:d".to_string(), "arn:s".to_string()]);
        assert_eq!(s.load_balancer.ssl_policy.as_deref(), Some("P"));
        assert!(load_balancer_settings(&spec("{listenerConfigurations: [{protocolPort: 'TCP:80'}]}")).is_err());
    }
}
