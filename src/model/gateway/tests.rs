use super::attach::intersect;
use super::spec::BackendRef;
use super::spec::*;
use super::*;
use crate::model::load_balancer::ROLE_INTERNAL_ELB;

fn key(ns: &str, name: &str) -> ObjKey {
    ObjKey { namespace: ns.into(), name: name.into() }
}

fn listener(name: &str, protocol: &str, port: i32, hostname: Option<&str>) -> ListenerSpec {
    ListenerSpec {
        name: name.into(),
        hostname: hostname.map(str::to_string),
        port,
        protocol: protocol.into(),
        namespaces: FromNamespaces::Same,
        kinds: Vec::new(),
    }
}

fn gateway(listeners: Vec<ListenerSpec>) -> GatewaySpec {
    GatewaySpec { key: key("shop", "gw"), uid: "9f3c1a52-uid".into(), generation: 1, listeners }
}

fn parent(section: Option<&str>) -> ParentRef {
    ParentRef {
        group: GATEWAY_GROUP.into(),
        kind: "Gateway".into(),
        namespace: "shop".into(),
        name: "gw".into(),
        section_name: section.map(str::to_string),
        port: None,
    }
}

fn backend(ns: &str, name: &str, port: i32, weight: i32) -> BackendRef {
    BackendRef { group: String::new(), kind: "Service".into(), namespace: ns.into(), name: name.into(), port: Some(port), weight }
}

fn prefix(path: &str) -> Match {
    Match::Http(HttpMatch { path: Some(PathMatch { kind: PathKind::Prefix, value: path.into() }), ..Default::default() })
}

fn exact(path: &str) -> Match {
    Match::Http(HttpMatch { path: Some(PathMatch { kind: PathKind::Exact, value: path.into() }), ..Default::default() })
}

fn http_route(ns: &str, name: &str, created: &str, hostnames: &[&str], rules: Vec<RuleSpec>) -> RouteSpec {
    RouteSpec {
        kind: RouteKind::Http,
        key: key(ns, name),
        generation: 3,
        created: created.into(),
        parents: vec![parent(None)],
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
        rules,
    }
}

fn rule(matches: Vec<Match>, backends: Vec<BackendRef>) -> RuleSpec {
    RuleSpec { matches, filters: Vec::new(), backends }
}

fn service(ns: &str, name: &str, port: i32) -> (ObjKey, Service) {
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{namespace: {ns}, name: {name}, uid: uid-{name}}}\nspec:\n  ports: [{{port: {port}, targetPort: 8080}}]\n"
    );
    (key(ns, name), serde_yaml::from_str(&yaml).unwrap())
}

fn subnets() -> Vec<Subnet> {
    ["a", "b"]
        .iter()
        .map(|az| Subnet {
            id: format!("subnet-{az}"),
            availability_zone: format!("us-east-1{az}"),
            tags: Tags::from([(ROLE_INTERNAL_ELB.to_string(), "1".to_string())]),
        })
        .collect()
}

struct World {
    gateway: GatewaySpec,
    routes: Vec<RouteSpec>,
    services: BTreeMap<ObjKey, Service>,
    grants: Vec<Grant>,
    target_configs: BTreeMap<ObjKey, TargetConfig>,
    namespaces: BTreeMap<String, Tags>,
    certificates: Vec<Certificate>,
}

impl World {
    fn new(gateway: GatewaySpec, routes: Vec<RouteSpec>) -> Self {
        World {
            gateway,
            routes,
            services: [service("shop", "web", 80), service("shop", "api", 80), service("shop", "grpc", 50051)].into_iter().collect(),
            grants: Vec::new(),
            target_configs: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            certificates: vec![Certificate {
                arn: "arn:aws:acm:us-east-1:000000000000:certificate/wild".into(),
                domains: vec!["*.example.com".into()],
            }],
        }
    }

    fn build(&self) -> GatewayBuilt {
        let subnets = subnets();
        build(&Inputs {
            cluster: "test",
            gateway: &self.gateway,
            load_balancer: LoadBalancerIntent::default(),
            tags: Tags::new(),
            listener_certificates: BTreeMap::new(),
            routes: &self.routes,
            namespaces: &self.namespaces,
            grants: &self.grants,
            target_configs: &self.target_configs,
            services: &self.services,
            endpoint_slices: &BTreeMap::new(),
            subnets: &subnets,
            certificates: &self.certificates,
            security_groups: &[],
            nodes: &[],
            gated_pods: &BTreeSet::new(),
            options: Options { default_target_type: TargetType::Ip, ..Options::default() },
        })
    }
}

fn stack(b: &GatewayBuilt) -> &Stack {
    b.built.stack.as_ref().unwrap_or_else(|| panic!("no stack: {:?}", b.built.problems))
}

fn rules_on(stack: &Stack, port: i32) -> Vec<Vec<Condition>> {
    stack.listeners.iter().find(|l| l.port == port).unwrap().rules.iter().map(|r| r.conditions.clone()).collect()
}

fn parent_conditions(b: &GatewayBuilt, name: &str) -> Vec<(String, bool, String)> {
    let r = b.routes.iter().find(|r| r.key.name == name).unwrap();
    r.parents[0].conditions.iter().map(|c| (c.type_.to_string(), c.status, c.reason.to_string())).collect()
}

fn cond(type_: &str, status: bool, reason: &str) -> (String, bool, String) {
    (type_.into(), status, reason.into())
}

#[test]
fn http_and_https_listeners_carry_the_routes_with_lbcs_tags_names_and_defaults() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None), listener("https", "HTTPS", 443, Some("*.example.com"))]);
    let routes = vec![
        http_route(
            "shop",
            "api",
            "2026-01-01T00:00:00Z",
            &["shop.example.com"],
            vec![rule(vec![prefix("/api/")], vec![backend("shop", "api", 80, 1)])],
        ),
        http_route("shop", "web", "2026-01-02T00:00:00Z", &[], vec![rule(vec![exact("/health")], vec![backend("shop", "web", 80, 1)])]),
    ];
    let b = World::new(gw, routes).build();
    let s = stack(&b);
    assert!(b.built.problems.is_empty(), "{:?}", b.built.problems);
    assert_eq!(s.load_balancer.tags.get(TAG_GATEWAY_STACK).map(String::as_str), Some("shop/gw"));
    assert_eq!(s.load_balancer.tags.get(TAG_GATEWAY_RESOURCE).map(String::as_str), Some("LoadBalancer"));
    assert!(!s.load_balancer.tags.contains_key(TAG_STACK), "the Ingress prefix is not used");
    // The inventory files it apart from an Ingress stack shop/gw.
    assert_eq!(crate::model::stack_key(&s.load_balancer.tags), Some(s.group.stack_key()));
    assert_eq!(s.group.stack_key(), "gateway:shop/gw");
    let ingress_tags = Stack::base_tags("test", &GroupId::Implicit { namespace: "shop".into(), name: "gw".into() });
    assert_eq!(crate::model::stack_key(&ingress_tags).as_deref(), Some("shop/gw"));
    assert!(s.load_balancer.name.starts_with("k8s-shop-gw-") && s.load_balancer.name.len() <= 32, "{}", s.load_balancer.name);
    // Port 80: no listener hostname, so route hostnames as written; the api route is the
    // one with a hostname, so it comes first.
    assert_eq!(
        rules_on(s, 80),
        vec![
            vec![Condition::HostHeader(vec!["shop.example.com".into()]), Condition::PathPattern(vec!["/api".into(), "/api/*".into()])],
            vec![Condition::PathPattern(vec!["/health".into()])],
        ]
    );
    // Port 443: the web route has no hostname, so it takes the listener's wildcard, which
    // ranks after the exact name.
    assert_eq!(
        rules_on(s, 443),
        vec![
            vec![Condition::HostHeader(vec!["shop.example.com".into()]), Condition::PathPattern(vec!["/api".into(), "/api/*".into()])],
            vec![Condition::HostHeader(vec!["*.example.com".into()]), Condition::PathPattern(vec!["/health".into()])],
        ]
    );
    let https = s.listeners.iter().find(|l| l.port == 443).unwrap();
    assert_eq!(https.certificates, vec!["arn:aws:acm:us-east-1:000000000000:certificate/wild".to_string()]);
    assert_eq!(https.default_action, Action::fixed("404"));
    let tg = s.target_groups.iter().find(|t| t.resource_id.contains("-api:")).unwrap();
    assert_eq!(tg.resource_id, "shop/gw:shop-api:HTTPRoute-shop-api:80");
    assert_eq!(tg.tags.get(TAG_GATEWAY_RESOURCE), Some(&tg.resource_id));
    assert!(tg.name.starts_with("k8s-shop-api-") && tg.name.len() <= 32, "{}", tg.name);
    assert_eq!((tg.port, tg.health_check.interval_seconds, tg.health_check.success_codes.as_str()), (8080, 15, "200-399"));
    assert_eq!(b.accepted.reason, "Accepted");
    assert_eq!(b.listeners.iter().map(|l| (l.name.as_str(), l.attached_routes)).collect::<Vec<_>>(), vec![("http", 2), ("https", 2)]);
    assert_eq!(parent_conditions(&b, "api"), vec![cond("Accepted", true, "Accepted"), cond("ResolvedRefs", true, "ResolvedRefs")]);
}

#[test]
fn rules_are_ordered_by_the_gateway_api_precedence_across_routes() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None)]);
    let routes = vec![
        // Newer route with the same path as `old`: after it.
        http_route("shop", "new", "2026-02-01T00:00:00Z", &[], vec![rule(vec![prefix("/a")], vec![backend("shop", "web", 80, 1)])]),
        http_route(
            "shop",
            "old",
            "2026-01-01T00:00:00Z",
            &[],
            vec![
                rule(vec![prefix("/a")], vec![backend("shop", "web", 80, 1)]),
                rule(vec![prefix("/a/longer")], vec![backend("shop", "web", 80, 1)]),
                rule(vec![exact("/a")], vec![backend("shop", "web", 80, 1)]),
            ],
        ),
    ];
    let b = World::new(gw, routes).build();
    let order: Vec<(String, Vec<Condition>)> =
        stack(&b).listeners[0].rules.iter().map(|r| (r.from.name.clone(), r.conditions.clone())).collect();
    let p = |v: &[&str]| vec![Condition::PathPattern(v.iter().map(|s| s.to_string()).collect())];
    assert_eq!(
        order,
        vec![
            ("old".into(), p(&["/a"])),
            ("old".into(), p(&["/a/longer", "/a/longer/*"])),
            ("old".into(), p(&["/a", "/a/*"])),
            ("new".into(), p(&["/a", "/a/*"])),
        ]
    );
}

#[test]
fn weighted_backends_forward_by_weight_and_a_missing_one_is_reported() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None)]);
    let routes = vec![
        http_route(
            "shop",
            "canary",
            "2026-01-01T00:00:00Z",
            &[],
            vec![rule(vec![prefix("/")], vec![backend("shop", "web", 80, 90), backend("shop", "api", 80, 10)])],
        ),
        http_route("shop", "gone", "2026-01-02T00:00:00Z", &[], vec![rule(vec![prefix("/gone")], vec![backend("shop", "nope", 80, 1)])]),
    ];
    let b = World::new(gw, routes).build();
    let s = stack(&b);
    let actions: BTreeMap<String, Action> = s.listeners[0].rules.iter().map(|r| (r.from.name.clone(), r.action.clone())).collect();
    let Action::Forward { target_groups, .. } = &actions["canary"] else { panic!("{:?}", actions["canary"]) };
    assert_eq!(target_groups.iter().map(|t| t.weight).collect::<Vec<_>>(), vec![Some(90), Some(10)]);
    assert_eq!(actions["gone"], Action::fixed("500"), "the spec's answer for an invalid backend");
    assert_eq!(parent_conditions(&b, "gone"), vec![cond("Accepted", true, "Accepted"), cond("ResolvedRefs", false, "BackendNotFound")]);
}

#[test]
fn a_cross_namespace_backend_needs_a_reference_grant() {
    let gw = gateway(vec![ListenerSpec { namespaces: FromNamespaces::All, ..listener("http", "HTTP", 80, None) }]);
    let mut route =
        http_route("team", "r", "2026-01-01T00:00:00Z", &[], vec![rule(vec![prefix("/")], vec![backend("shop", "web", 80, 1)])]);
    route.parents[0].namespace = "shop".into();
    let mut w = World::new(gw, vec![route]);
    let b = w.build();
    assert_eq!(parent_conditions(&b, "r"), vec![cond("Accepted", true, "Accepted"), cond("ResolvedRefs", false, "RefNotPermitted")]);
    assert_eq!(stack(&b).listeners[0].rules[0].action, Action::fixed("500"));

    w.grants.push(Grant {
        namespace: "shop".into(),
        from: vec![(GATEWAY_GROUP.into(), "HTTPRoute".into(), "team".into())],
        to: vec![(String::new(), "Service".into(), Some("web".into()))],
    });
    let b = w.build();
    assert_eq!(parent_conditions(&b, "r"), vec![cond("Accepted", true, "Accepted"), cond("ResolvedRefs", true, "ResolvedRefs")]);
    assert!(matches!(stack(&b).listeners[0].rules[0].action, Action::Forward { .. }));
}

#[test]
fn allowed_routes_and_hostnames_decide_attachment() {
    let gw = gateway(vec![listener("http", "HTTP", 80, Some("shop.example.com"))]);
    let mut other_ns = http_route("team", "elsewhere", "2026-01-01T00:00:00Z", &[], vec![rule(vec![prefix("/")], vec![])]);
    other_ns.parents[0].namespace = "shop".into();
    let routes = vec![
        other_ns,
        http_route("shop", "wrong-host", "2026-01-01T00:00:00Z", &["other.example.org"], vec![rule(vec![prefix("/")], vec![])]),
        http_route(
            "shop",
            "ok",
            "2026-01-01T00:00:00Z",
            &["*.example.com"],
            vec![rule(vec![prefix("/")], vec![backend("shop", "web", 80, 1)])],
        ),
    ];
    let mut w = World::new(gw, routes);
    let b = w.build();
    assert_eq!(parent_conditions(&b, "elsewhere")[0], cond("Accepted", false, "NotAllowedByListeners"));
    assert_eq!(parent_conditions(&b, "wrong-host")[0], cond("Accepted", false, "NoMatchingListenerHostname"));
    assert_eq!(parent_conditions(&b, "ok")[0], cond("Accepted", true, "Accepted"));
    assert_eq!(b.listeners[0].attached_routes, 1);
    // The more specific of the two names is the rule's host.
    assert_eq!(rules_on(stack(&b), 80)[0][0], Condition::HostHeader(vec!["shop.example.com".into()]));

    // A namespace selector lets the other namespace in.
    w.gateway.listeners[0].namespaces = FromNamespaces::Selector(LabelSelectorOf::labels(&[("team", "yes")]));
    w.namespaces.insert("team".into(), Tags::from([("team".to_string(), "yes".to_string())]));
    assert_eq!(parent_conditions(&w.build(), "elsewhere")[0], cond("Accepted", true, "Accepted"));
}

struct LabelSelectorOf;
impl LabelSelectorOf {
    fn labels(l: &[(&str, &str)]) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            match_expressions: None,
        }
    }
}

#[test]
fn a_grpc_route_gets_grpc_target_groups_and_only_https_listeners() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None), listener("https", "HTTPS", 443, Some("api.example.com"))]);
    let route = RouteSpec {
        kind: RouteKind::Grpc,
        key: key("shop", "rpc"),
        generation: 1,
        created: "2026-01-01T00:00:00Z".into(),
        parents: vec![parent(None)],
        hostnames: vec![],
        rules: vec![RuleSpec {
            matches: vec![Match::Grpc(GrpcMatch {
                method: Some(GrpcMethod { regex: false, service: Some("shop.Cart".into()), method: Some("Add".into()) }),
                headers: vec![],
            })],
            filters: vec![],
            backends: vec![backend("shop", "grpc", 50051, 1)],
        }],
    };
    let b = World::new(gw, vec![route]).build();
    let s = stack(&b);
    assert_eq!(s.listeners.iter().map(|l| l.port).collect::<Vec<_>>(), vec![443], "gRPC is not served on the HTTP listener");
    assert_eq!(
        rules_on(s, 443)[0],
        vec![Condition::HostHeader(vec!["api.example.com".into()]), Condition::PathPattern(vec!["/shop.Cart/Add".into()])]
    );
    let tg = &s.target_groups[0];
    assert_eq!((tg.protocol_version.as_str(), tg.health_check.success_codes.as_str()), ("GRPC", "12"));
    assert_eq!(tg.health_check.path, "/AWS.ALB/healthcheck");
    assert_eq!(b.listeners.iter().map(|l| l.attached_routes).collect::<Vec<_>>(), vec![0, 1]);
}

#[test]
fn filters_alb_cannot_express_refuse_their_rule_and_say_why() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None)]);
    let mut header_rule = rule(vec![prefix("/h")], vec![backend("shop", "web", 80, 1)]);
    header_rule.filters.push(Filter::Other("RequestHeaderModifier".into()));
    let mut redirect_rule = rule(vec![prefix("/old")], vec![]);
    redirect_rule.filters.push(Filter::RequestRedirect {
        scheme: Some("https".into()),
        hostname: None,
        path: Some(PathModifier::ReplaceFullPath("/new".into())),
        port: None,
        status_code: Some(301),
    });
    let routes = vec![http_route("shop", "r", "2026-01-01T00:00:00Z", &[], vec![header_rule, redirect_rule])];
    let b = World::new(gw, routes).build();
    let s = stack(&b);
    assert_eq!(s.listeners[0].rules.len(), 1);
    assert_eq!(
        s.listeners[0].rules[0].action,
        Action::Redirect {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            host: None,
            path: Some("/new".into()),
            query: None,
            status_code: "HTTP_301".into()
        }
    );
    assert_eq!(
        parent_conditions(&b, "r"),
        vec![
            cond("Accepted", true, "Accepted"),
            cond("PartiallyInvalid", true, "UnsupportedValue"),
            cond("ResolvedRefs", true, "ResolvedRefs")
        ]
    );
}

#[test]
fn url_rewrites_become_rule_transforms_as_lbc_writes_them() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None)]);
    let mut rewrite = rule(vec![prefix("/api")], vec![backend("shop", "api", 80, 1)]);
    rewrite
        .filters
        .push(Filter::URLRewrite { hostname: Some("api.internal".into()), path: Some(PathModifier::ReplacePrefixMatch("/v2".into())) });
    let mut full = rule(vec![exact("/old")], vec![backend("shop", "api", 80, 1)]);
    full.filters.push(Filter::URLRewrite { hostname: None, path: Some(PathModifier::ReplaceFullPath("/new".into())) });
    let mut bad = rule(vec![exact("/x")], vec![backend("shop", "api", 80, 1)]);
    bad.filters.push(Filter::URLRewrite { hostname: None, path: Some(PathModifier::ReplacePrefixMatch("/y".into())) });
    let b = World::new(gw, vec![http_route("shop", "r", "2026-01-01T00:00:00Z", &[], vec![rewrite, full, bad])]).build();
    let rules = &stack(&b).listeners[0].rules;
    assert_eq!(rules.len(), 2, "the prefix rewrite of an Exact match is refused");
    assert_eq!(rules[0].transforms, vec![Transform::UrlRewrite { regex: "^([^?]*)".into(), replace: "/new".into() }]);
    assert_eq!(
        rules[1].transforms,
        vec![
            Transform::UrlRewrite { regex: "(^/api(/)?)".into(), replace: "/v2$2".into() },
            Transform::HostHeaderRewrite { regex: ".*".into(), replace: "api.internal".into() }
        ]
    );
}

#[test]
fn listeners_alb_cannot_serve_are_not_accepted() {
    let mut gw =
        gateway(vec![listener("http", "HTTP", 80, None), listener("tcp", "TCP", 9000, None), listener("clash", "HTTPS", 80, None)]);
    let b = World::new(gw.clone(), vec![]).build();
    assert_eq!((b.accepted.status, b.accepted.reason), (false, "ListenersNotValid"), "none is valid");
    gw.listeners.push(listener("ok", "HTTP", 8080, None));
    let b = World::new(gw, vec![]).build();
    assert_eq!((b.accepted.status, b.accepted.reason), (true, "ListenersNotValid"), "one is valid");
    let by_name: BTreeMap<&str, Vec<(&str, bool, &str)>> =
        b.listeners.iter().map(|l| (l.name.as_str(), l.conditions.iter().map(|c| (c.type_, c.status, c.reason)).collect())).collect();
    assert_eq!(by_name["tcp"][0], ("Accepted", false, "UnsupportedProtocol"));
    assert_eq!(by_name["clash"][2], ("Conflicted", true, "ProtocolConflict"));
    assert_eq!(by_name["http"][2], ("Conflicted", true, "ProtocolConflict"));
    assert!(b.built.stack.is_none(), "no route, no load balancer");
}

#[test]
fn hostnames_intersect_as_the_spec_defines() {
    let set = |v: &[&str]| Some(Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>()));
    assert_eq!(intersect(None, &[]), Some(None));
    assert_eq!(intersect(Some("a.example.com"), &[]), set(&["a.example.com"]));
    assert_eq!(intersect(Some("*.example.com"), &["a.b.example.com".into(), "example.com".into()]), set(&["a.b.example.com"]));
    assert_eq!(intersect(Some("a.example.com"), &["*.example.com".into()]), set(&["a.example.com"]));
    assert_eq!(intersect(Some("*.example.com"), &["*.a.example.com".into()]), set(&["*.a.example.com"]));
    assert_eq!(intersect(Some("a.example.com"), &["b.example.com".into()]), None);
}

#[test]
fn regular_expressions_match_by_regex_values_and_a_prefix_redirect_rewrites_first() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None)]);
    let regex = Match::Http(HttpMatch {
        path: Some(PathMatch { kind: PathKind::Regex, value: "^/v[0-9]+/".into() }),
        headers: vec![ValueMatch { regex: true, name: "X-Env".into(), value: "^canary-.*".into() }],
        ..Default::default()
    });
    let mut prefix_redirect = rule(vec![prefix("/old")], vec![]);
    prefix_redirect.filters.push(Filter::RequestRedirect {
        scheme: None,
        hostname: None,
        path: Some(PathModifier::ReplacePrefixMatch("/new".into())),
        port: None,
        status_code: None,
    });
    let routes = vec![http_route(
        "shop",
        "r",
        "2026-01-01T00:00:00Z",
        &[],
        vec![rule(vec![regex], vec![backend("shop", "web", 80, 1)]), prefix_redirect],
    )];
    let b = World::new(gw, routes).build();
    let s = stack(&b);
    assert_eq!(s.listeners[0].rules.len(), 2, "{:?} {:?}", b.routes, b.built.warnings);
    assert_eq!(
        rules_on(s, 80)[1],
        vec![
            Condition::PathRegex(vec!["^/v[0-9]+/".into()]),
            Condition::HttpHeaderRegex { name: "X-Env".into(), values: vec!["^canary-.*".into()] }
        ]
    );
    // As LBC: the prefix is rewritten by a transform, then the redirect keeps the path.
    let redirect = &s.listeners[0].rules[0];
    assert_eq!(redirect.transforms, vec![Transform::UrlRewrite { regex: "(^/old(/)?)".into(), replace: "/new$2".into() }]);
    assert!(matches!(&redirect.action, Action::Redirect { path: None, status_code, .. } if status_code == "HTTP_302"));
}

#[test]
fn a_target_group_configuration_sets_its_services_target_groups_per_route() {
    let gw = gateway(vec![listener("http", "HTTP", 80, None)]);
    let routes = vec![
        http_route("shop", "a", "2026-01-01T00:00:00Z", &[], vec![rule(vec![prefix("/a")], vec![backend("shop", "web", 80, 1)])]),
        http_route("shop", "b", "2026-01-02T00:00:00Z", &[], vec![rule(vec![prefix("/b")], vec![backend("shop", "web", 80, 1)])]),
    ];
    let mut w = World::new(gw, routes);
    let default = TargetProps {
        health_check_path: Some("/healthz".into()),
        tags: Tags::from([("team".to_string(), "web".to_string())]),
        ..Default::default()
    };
    let for_b = TargetProps { health_check_interval: Some(30), http_code: Some("200".into()), ..Default::default() };
    w.target_configs.insert(
        key("shop", "web"),
        TargetConfig { default, routes: vec![("HTTPRoute".into(), Some("shop".into()), Some("b".into()), for_b)] },
    );
    let b = w.build();
    let tg = |route: &str| stack(&b).target_groups.iter().find(|t| t.resource_id.contains(&format!(":shop-{route}:"))).unwrap().clone();
    let (a, bb) = (tg("a"), tg("b"));
    assert_eq!(
        (a.health_check.path.as_str(), a.health_check.interval_seconds, a.health_check.success_codes.as_str()),
        ("/healthz", 15, "200-399")
    );
    assert_eq!(
        (bb.health_check.path.as_str(), bb.health_check.interval_seconds, bb.health_check.success_codes.as_str()),
        ("/healthz", 30, "200")
    );
    assert_eq!(bb.tags.get("team").map(String::as_str), Some("web"), "the defaults' tags under the route's settings");

    // A protocol ALB target groups do not have is the backend's problem.
    w.target_configs.get_mut(&key("shop", "web")).unwrap().default.protocol = Some("TCP".into());
    let b = w.build();
    assert_eq!(parent_conditions(&b, "a")[1], cond("ResolvedRefs", false, "UnsupportedValue"));
}

#[test]
fn route_settings_are_picked_as_lbc_picks_them() {
    let p = |i: i32| TargetProps { health_check_interval: Some(i), ..Default::default() };
    let c = TargetConfig {
        default: p(1),
        routes: vec![
            ("HTTPRoute".into(), None, None, p(2)),
            ("HTTPRoute".into(), Some("shop".into()), None, p(3)),
            ("HTTPRoute".into(), Some("shop".into()), Some("x".into()), p(4)),
            ("GRPCRoute".into(), None, None, p(5)),
        ],
    };
    let at = |kind, ns: &str, name: &str| c.for_route(kind, &key(ns, name)).health_check_interval;
    assert_eq!(at(RouteKind::Http, "shop", "x"), Some(4), "kind, namespace and name");
    assert_eq!(at(RouteKind::Http, "shop", "y"), Some(3), "kind and namespace");
    assert_eq!(at(RouteKind::Http, "other", "y"), Some(2), "kind");
    assert_eq!(at(RouteKind::Grpc, "shop", "x"), Some(5));
    assert_eq!(TargetConfig { default: p(1), routes: vec![] }.for_route(RouteKind::Grpc, &key("a", "b")).health_check_interval, Some(1));
}
