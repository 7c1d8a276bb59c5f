use super::*;
use crate::model::load_balancer::{ROLE_ELB, ROLE_INTERNAL_ELB};

/// Objects of a multi-document YAML manifest, by kind.
#[derive(Default)]
struct Fixture {
    ingresses: Vec<Ingress>,
    services: BTreeMap<ObjKey, Service>,
    slices: BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>>,
}

fn fixture(yaml: &str) -> Fixture {
    let mut f = Fixture::default();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = serde_yaml::Value::deserialize(doc).unwrap();
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        match kind.as_str() {
            "Ingress" => f.ingresses.push(serde_yaml::from_value(v).unwrap()),
            "Service" => {
                let s: Service = serde_yaml::from_value(v).unwrap();
                let key = ObjKey { namespace: s.metadata.namespace.clone().unwrap(), name: s.metadata.name.clone().unwrap() };
                f.services.insert(key, s);
            }
            "EndpointSlice" => {
                let s: EndpointSlice = serde_yaml::from_value(v).unwrap();
                let svc = s.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"].clone();
                let key = ObjKey { namespace: s.metadata.namespace.clone().unwrap(), name: svc };
                f.slices.entry(key).or_default().push(Arc::new(s));
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    f
}

use serde::Deserialize;

/// What a test varies besides the manifests; the rest are the usual defaults.
#[derive(Default)]
struct Env<'a> {
    group: Option<GroupId>,
    subnets: Option<&'a [Subnet]>,
    certificates: &'a [Certificate],
    security_groups: &'a [SecurityGroupInfo],
    secrets: Option<&'a BTreeMap<ObjKey, BTreeMap<String, String>>>,
    nodes: &'a [Arc<Node>],
}

fn build_env(f: &Fixture, env: Env) -> Built {
    let default_subnets = subnets();
    let no_secrets = BTreeMap::new();
    build(&Inputs {
        cluster: "test",
        group: env.group.unwrap_or_else(|| GroupId::Implicit { namespace: "shop".into(), name: "shop".into() }),
        members: f.ingresses.iter().collect(),
        services: &f.services,
        endpoint_slices: &f.slices,
        subnets: env.subnets.unwrap_or(&default_subnets),
        certificates: env.certificates,
        security_groups: env.security_groups,
        secrets: env.secrets.unwrap_or(&no_secrets),
        nodes: env.nodes,
        options: Options { default_target_type: TargetType::Ip, ..Options::default() },
        gated_pods: &BTreeSet::new(),
        params: &BTreeMap::new(),
    })
}

fn subnet(id: &str, az: &str, tags: &[(&str, &str)]) -> Subnet {
    Subnet { id: id.into(), availability_zone: az.into(), tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
}

fn subnets() -> Vec<Subnet> {
    vec![
        subnet("subnet-pub-a", "us-east-1a", &[(ROLE_ELB, "1")]),
        subnet("subnet-pub-b", "us-east-1b", &[(ROLE_ELB, "1")]),
        subnet("subnet-priv-a", "us-east-1a", &[(ROLE_INTERNAL_ELB, "1")]),
        subnet("subnet-priv-b", "us-east-1b", &[(ROLE_INTERNAL_ELB, "1")]),
        subnet("subnet-priv-c", "us-east-1c", &[(ROLE_INTERNAL_ELB, "1")]),
    ]
}

fn run(f: &Fixture, subnets: &[Subnet]) -> Built {
    let ing = &f.ingresses[0];
    build_env(
        f,
        Env {
            group: Some(GroupId::Implicit { namespace: ing.metadata.namespace.clone().unwrap(), name: ing.metadata.name.clone().unwrap() }),
            subnets: Some(subnets),
            ..Env::default()
        },
    )
}

const WEB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.1.1]
  conditions: {ready: true}
- addresses: [10.0.1.2]
- addresses: [10.0.1.3]
  conditions: {ready: false}
- addresses: [10.0.1.4]
  conditions: {ready: true, terminating: true}
"#;

fn with_web(ingress: &str) -> Fixture {
    fixture(&format!("{WEB}\n---\n{ingress}"))
}

#[test]
fn two_paths_become_two_rules_in_lbc_order() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  rules:
  - http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /static/*, pathType: ImplementationSpecific, backend: {service: {name: web, port: {name: http}}}}
      - {path: /health, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api/v2/, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    let built = run(&f, &subnets());
    assert!(built.problems.is_empty() && built.warnings.is_empty(), "{:?}", built);
    let stack = built.stack.unwrap();
    let l = &stack.listeners[0];
    assert_eq!((l.port, l.protocol), (80, Protocol::Http));
    assert_eq!(l.default_action, Action::fixed("404"));
    let paths: Vec<_> = l.rules.iter().map(|r| (r.priority, r.conditions.clone())).collect();
    assert_eq!(
        paths,
        vec![
            (1, vec![Condition::PathPattern(vec!["/health".into()])]),
            (2, vec![Condition::PathPattern(vec!["/api/v2".into(), "/api/v2/*".into()])]),
            (3, vec![Condition::PathPattern(vec!["/api".into(), "/api/*".into()])]),
            (4, vec![Condition::PathPattern(vec!["/static/*".into()])]),
        ]
    );
    // port 80 and port "http" are two backends, so two target groups, as LBC.
    assert_eq!(stack.target_groups.len(), 2);
    let tg = &stack.target_groups[0];
    assert_eq!(tg.resource_id, "shop/shop-web:80");
    assert_eq!(tg.port, 8080);
    assert_eq!(
        tg.targets.iter().flatten().map(|t| (t.id.as_str(), t.port)).collect::<Vec<_>>(),
        vec![("10.0.1.1", 8080), ("10.0.1.2", 8080)]
    );
    assert_eq!(l.rules[0].action, Action::forward(&tg.name));
}

#[test]
fn defaults_are_internal_private_subnets_and_tagged_resources() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/tags: "team=web"}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let stack = run(&f, &subnets()).stack.unwrap();
    assert_eq!(stack.load_balancer.scheme, Scheme::Internal);
    assert_eq!(stack.load_balancer.subnets, BTreeSet::from(["subnet-priv-a".into(), "subnet-priv-b".into(), "subnet-priv-c".into()]));
    assert!(stack.load_balancer.name.starts_with("k8s-shop-shop-"));
    assert_eq!(stack.listeners[0].default_action, Action::forward(&stack.target_groups[0].name));
    assert!(stack.listeners[0].rules.is_empty());
    for tags in
        [&stack.load_balancer.tags, &stack.security_group.as_ref().unwrap().tags, &stack.target_groups[0].tags, &stack.listeners[0].tags]
    {
        assert_eq!(tags[TAG_CLUSTER], "test");
        assert_eq!(tags[TAG_STACK], "shop/shop");
        assert_eq!(tags["team"], "web");
    }
    assert_eq!(stack.load_balancer.tags[TAG_RESOURCE], "LoadBalancer");
    assert_eq!(stack.security_group.as_ref().unwrap().tags[TAG_RESOURCE], "ManagedLBSecurityGroup");
    assert_eq!(
        stack.security_group.as_ref().unwrap().ingress,
        BTreeSet::from([Permission { protocol: "tcp".into(), from_port: 80, to_port: 80, cidr: "0.0.0.0/0".into() }])
    );
}

#[test]
fn internet_facing_uses_public_subnets_and_drops_other_clusters() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/scheme: internet-facing}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let mut s = subnets();
    s.push(subnet("subnet-pub-c-other", "us-east-1c", &[(ROLE_ELB, "1"), ("kubernetes.io/cluster/other", "owned")]));
    s.push(subnet("subnet-pub-b2", "us-east-1b", &[(ROLE_ELB, "1"), ("kubernetes.io/cluster/test", "shared")]));
    let stack = run(&f, &s).stack.unwrap();
    assert_eq!(stack.load_balancer.scheme, Scheme::InternetFacing);
    // One per AZ, our cluster's tag preferred, the other cluster's subnet dropped.
    assert_eq!(stack.load_balancer.subnets, BTreeSet::from(["subnet-pub-a".into(), "subnet-pub-b2".into()]));
}

#[test]
fn fewer_than_two_azs_is_a_problem() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let built = run(&f, &subnets()[..3]);
    assert!(built.stack.is_none());
    assert!(built.problems[0].message.contains("at least 2 subnets"), "{:?}", built.problems);
}

/// As `run`, with the controller-wide options given.
fn run_options(f: &Fixture, options: Options) -> Built {
    let no_secrets = BTreeMap::new();
    let ing = &f.ingresses[0];
    build(&Inputs {
        cluster: "test",
        group: GroupId::Implicit { namespace: ing.metadata.namespace.clone().unwrap(), name: ing.metadata.name.clone().unwrap() },
        members: f.ingresses.iter().collect(),
        services: &f.services,
        endpoint_slices: &f.slices,
        subnets: &subnets(),
        certificates: &[],
        security_groups: &[],
        secrets: &no_secrets,
        nodes: &[],
        options,
        gated_pods: &BTreeSet::new(),
        params: &BTreeMap::new(),
    })
}

const STRICT: Options = Options {
    default_target_type: TargetType::Ip,
    backend_security_group: true,
    unrestricted_sg_rules: false,
    tolerate_missing_backend_service: false,
    tolerate_missing_backend_action: false,
};

fn fixed_body(a: &Action) -> Option<(&str, &str)> {
    match a {
        Action::FixedResponse { status_code, message_body, .. } => Some((status_code, message_body.as_deref()?)),
        _ => None,
    }
}

const MISSING_SERVICE: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}
      - {path: /again, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}
      - {path: /web, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}
"#;

#[test]
fn missing_service_answers_503_with_lbcs_body_and_a_warning_naming_it() {
    let built = run(&with_web(MISSING_SERVICE), &subnets());
    let stack = built.stack.unwrap();
    let rules = &stack.listeners[0].rules;
    assert_eq!(rules[0].conditions[0], Condition::HostHeader(vec!["shop.example.com".into()]));
    // Longest Prefix first: /again, /web, then / (which covers the other two).
    let bodies: Vec<_> = rules.iter().map(|r| fixed_body(&r.action)).collect();
    assert_eq!(
        bodies,
        vec![
            Some(("503", "Backend service does not exist")),
            Some(("503", "Backend service port does not exist")),
            Some(("503", "Backend service does not exist")),
        ]
    );
    assert!(matches!(&rules[0].action, Action::FixedResponse { content_type: Some(t), .. } if t == "text/plain"));
    assert!(stack.target_groups.is_empty());
    let messages: Vec<&str> = built.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(messages.iter().filter(|m| m.contains("shop/nope not found")).count(), 1, "once for both rules: {messages:?}");
    assert!(messages.iter().any(|m| m.contains("has no port 81")), "{messages:?}");
}

#[test]
fn missing_service_or_port_fails_the_member_when_not_tolerated() {
    let built = run_options(&with_web(MISSING_SERVICE), STRICT);
    assert!(built.stack.is_none());
    assert_eq!(built.problems.len(), 1, "{:?}", built.problems);
    assert_eq!(built.problems[0].reason, "FailedBuildModel");
    assert!(built.problems[0].message.contains("backend Service shop/nope not found"), "{:?}", built.problems);
}

#[test]
fn invalid_annotation_leaves_the_ingress_out_with_its_name() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/scheme: public}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let built = run(&f, &subnets());
    assert!(built.stack.is_none());
    assert_eq!(built.problems.len(), 1);
    assert!(built.problems[0].message.contains("alb.ingress.kubernetes.io/scheme"), "{}", built.problems[0].message);
}

#[test]
fn wildcard_in_prefix_path_is_a_problem() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  rules:
  - http:
      paths:
      - {path: /a*, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    let built = run(&f, &subnets());
    assert!(built.stack.is_none());
    assert!(built.problems[0].message.contains("wildcards"));
}

#[test]
fn named_target_port_uses_port_one_and_endpoint_ports() {
    let f = fixture(
        r#"
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  ports: [{name: grpc, port: 9000, targetPort: grpc-port}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-1, namespace: shop, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
ports: [{name: grpc, port: 50051}]
endpoints: [{addresses: [10.0.2.1]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: api, namespace: shop, annotations: {alb.ingress.kubernetes.io/listen-ports: '[{"HTTP": 8080}]'}}
spec:
  defaultBackend: {service: {name: api, port: {name: grpc}}}
"#,
    );
    let stack = run(&f, &subnets()).stack.unwrap();
    assert_eq!(stack.listeners[0].port, 8080);
    let tg = &stack.target_groups[0];
    assert_eq!(tg.port, 1);
    assert_eq!(tg.targets, Some(BTreeSet::from([Target { id: "10.0.2.1".into(), port: 50051 }])));
}

#[test]
fn same_input_same_stack() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    assert_eq!(run(&f, &subnets()).stack, run(&f, &subnets()).stack);
}

fn run_group(f: &Fixture, certificates: &[Certificate]) -> Built {
    build_env(f, Env { group: Some(GroupId::Explicit("shop".into())), certificates, ..Env::default() })
}

fn member(name: &str, annotations: &str, path: &str) -> String {
    format!(
        r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: shop
  annotations: {{alb.ingress.kubernetes.io/group.name: shop{annotations}}}
spec:
  rules:
  - http:
      paths:
      - {{path: {path}, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    )
}

fn rule_paths(stack: &Stack, port: i32) -> Vec<String> {
    let l = stack.listeners.iter().find(|l| l.port == port).unwrap();
    l.rules
        .iter()
        .map(|r| match r.conditions.last().unwrap() {
            Condition::PathPattern(v) => v.join(","),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn group_members_are_ordered_by_group_order_then_name() {
    let f = fixture(&format!(
        "{WEB}{}{}{}",
        member("c", ", alb.ingress.kubernetes.io/group.order: '-1'", "/c"),
        member("a", ", alb.ingress.kubernetes.io/group.order: '10'", "/a"),
        member("b", "", "/b"),
    ));
    let built = run_group(&f, &[]);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let stack = built.stack.unwrap();
    assert_eq!(rule_paths(&stack, 80), vec!["/c", "/b", "/a"]);
    assert!(stack.load_balancer.name.starts_with("k8s-shop-"));
    assert_eq!(stack.load_balancer.tags[TAG_STACK], "shop");
    // As LBC: one target group per member and Service port, tagged with its resource id.
    let mut ids: Vec<&str> = stack.target_groups.iter().map(|t| t.resource_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["shop/a-web:80", "shop/b-web:80", "shop/c-web:80"]);
}

#[test]
fn a_conflicting_exclusive_annotation_leaves_that_member_out() {
    let f = fixture(&format!(
        "{WEB}{}{}{}",
        member("a", ", alb.ingress.kubernetes.io/scheme: internet-facing", "/a"),
        member("b", ", alb.ingress.kubernetes.io/scheme: internal", "/b"),
        member("c", "", "/c"),
    ));
    let built = run_group(&f, &[]);
    assert_eq!(built.problems.len(), 1);
    assert_eq!(built.problems[0].ingress.name, "b");
    assert!(built.problems[0].message.contains("alb.ingress.kubernetes.io/scheme") && built.problems[0].message.contains("shop/a"));
    let stack = built.stack.unwrap();
    assert_eq!(stack.load_balancer.scheme, Scheme::InternetFacing);
    assert_eq!(rule_paths(&stack, 80), vec!["/a", "/c"]);
}

#[test]
fn an_invalid_member_is_left_out_and_the_rest_converge() {
    let f = fixture(&format!(
        "{WEB}{}{}",
        member("a", ", alb.ingress.kubernetes.io/healthcheck-interval-seconds: 'often'", "/a"),
        member("b", "", "/b"),
    ));
    let built = run_group(&f, &[]);
    assert_eq!(built.problems.len(), 1);
    assert!(built.problems[0].message.contains("healthcheck-interval-seconds"), "{}", built.problems[0].message);
    assert_eq!(rule_paths(&built.stack.unwrap(), 80), vec!["/b"]);
}

#[test]
fn an_unresolvable_subnet_leaves_only_the_member_that_names_it_out() {
    let f = fixture(&format!(
        "{WEB}{}{}",
        member("a", ", alb.ingress.kubernetes.io/subnets: 'subnet-nope, subnet-priv-a'", "/a"),
        member("b", "", "/b"),
    ));
    let built = run_group(&f, &[]);
    assert_eq!(built.problems.len(), 1, "{:?}", built.problems);
    assert_eq!(built.problems[0].ingress.name, "a");
    assert!(built.problems[0].message.contains("subnets") && built.problems[0].message.contains("subnet-nope"));
    let stack = built.stack.unwrap();
    assert_eq!(rule_paths(&stack, 80), vec!["/b"]);
    // b's own choice, discovery, applies.
    assert_eq!(stack.load_balancer.subnets.len(), 3);
}

#[test]
fn a_rule_aws_would_refuse_leaves_only_its_member_out() {
    // Valid for Kubernetes (labels of at most 63), over AWS's 128 characters.
    let long_host = format!("{}.{}.example.com", "a".repeat(63), "b".repeat(63));
    let bad = format!(
        r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: long, namespace: shop, annotations: {{alb.ingress.kubernetes.io/group.name: shop}}}}
spec:
  rules:
  - host: {long_host}
    http:
      paths:
      - {{path: /x, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    );
    let long_path = format!("/{}", "p".repeat(128));
    let f = fixture(&format!("{WEB}{bad}{}{}", member("ok", "", "/ok"), member("path", "", &long_path)));
    let built = run_group(&f, &[]);
    let mut bad: Vec<&str> = built.problems.iter().map(|p| p.ingress.name.as_str()).collect();
    bad.sort();
    assert_eq!(bad, ["long", "path"], "{:?}", built.problems);
    assert!(built.problems.iter().all(|p| p.message.contains("1-128") && p.message.len() < 400), "{:?}", built.problems);
    assert_eq!(rule_paths(&built.stack.unwrap(), 80), vec!["/ok"]);
}

#[test]
fn members_past_the_rules_quota_are_left_out_in_group_order() {
    let many = |name: &str, order: i32, n: usize| {
        let paths: String = (0..n)
            .map(|i| format!("\n      - {{path: /{name}{i}, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}"))
            .collect();
        format!(
            "\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: shop, annotations: {{alb.ingress.kubernetes.io/group.name: shop, alb.ingress.kubernetes.io/group.order: '{order}'}}}}\nspec:\n  rules:\n  - http:\n      paths:{paths}\n"
        )
    };
    let f = fixture(&format!("{WEB}{}{}{}", many("a", 1, 60), many("b", 2, 50), many("c", 3, 30)));
    let built = run_group(&f, &[]);
    assert_eq!(built.problems.len(), 1, "{:?}", built.problems);
    assert_eq!(built.problems[0].ingress.name, "b");
    assert!(built.problems[0].message.contains("110 rules"), "{}", built.problems[0].message);
    assert_eq!(built.stack.unwrap().listeners[0].rules.len(), 90, "a and c fit");
}

#[test]
fn the_member_whose_certificates_pass_the_quota_is_left_out() {
    let arns =
        |from: usize, n: usize| (from..from + n).map(|i| format!("arn:aws:acm:us-east-1:1:certificate/c{i}")).collect::<Vec<_>>().join(",");
    let https = |certs: String| {
        format!(", alb.ingress.kubernetes.io/listen-ports: '[{{\"HTTPS\": 443}}]', alb.ingress.kubernetes.io/certificate-arn: '{certs}'")
    };
    let f = fixture(&format!(
        "{WEB}{}{}{}",
        member("a", &https(arns(0, 20)), "/a"),
        member("b", &https(arns(20, 10)), "/b"),
        member("c", &https(arns(0, 3)), "/c")
    ));
    let built = run_group(&f, &[]);
    assert_eq!(built.problems.iter().map(|p| p.ingress.name.as_str()).collect::<Vec<_>>(), ["b"], "{:?}", built.problems);
    assert!(built.problems[0].message.contains("30"), "{}", built.problems[0].message);
    let stack = built.stack.unwrap();
    assert_eq!(stack.listeners[0].certificates.len(), 20);
    assert_eq!(rule_paths(&stack, 443), vec!["/a", "/c"]);
}

#[test]
fn an_ssl_redirect_to_a_port_that_is_not_https_leaves_its_member_out() {
    let f = fixture(&format!("{WEB}{}{}", member("a", ", alb.ingress.kubernetes.io/ssl-redirect: '443'", "/a"), member("b", "", "/b")));
    let built = run_group(&f, &[]);
    assert_eq!(built.problems.iter().map(|p| p.ingress.name.as_str()).collect::<Vec<_>>(), ["a"]);
    let stack = built.stack.unwrap();
    assert_eq!(rule_paths(&stack, 80), vec!["/b"]);
    assert_eq!(stack.listeners[0].default_action, Action::fixed("404"));
}

#[test]
fn duplicate_group_order_is_a_problem_for_the_later_member() {
    let f = fixture(&format!(
        "{WEB}{}{}",
        member("a", ", alb.ingress.kubernetes.io/group.order: '5'", "/a"),
        member("b", ", alb.ingress.kubernetes.io/group.order: '5'", "/b"),
    ));
    let built = run_group(&f, &[]);
    assert_eq!(built.problems.len(), 1);
    assert_eq!(built.problems[0].ingress.name, "b");
}

#[test]
fn listen_ports_are_merged_and_rules_stay_on_their_own_ports() {
    let f = fixture(&format!(
        "{WEB}{}{}",
        member("a", r#", alb.ingress.kubernetes.io/listen-ports: '[{"HTTP": 8080}]'"#, "/a"),
        member("b", "", "/b"),
    ));
    let stack = run_group(&f, &[]).stack.unwrap();
    assert_eq!(stack.listeners.iter().map(|l| l.port).collect::<Vec<_>>(), vec![80, 8080]);
    assert_eq!(rule_paths(&stack, 80), vec!["/b"]);
    assert_eq!(rule_paths(&stack, 8080), vec!["/a"]);
    assert_eq!(stack.security_group.as_ref().unwrap().ingress.iter().map(|p| p.from_port).collect::<Vec<_>>(), vec![80, 8080]);
}

fn cert(arn: &str, domains: &[&str]) -> Certificate {
    Certificate { arn: arn.into(), domains: domains.iter().map(|d| d.to_string()).collect() }
}

const TLS: &str = r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTP": 80}, {"HTTPS": 443}]'
    alb.ingress.kubernetes.io/ssl-redirect: '443'
spec:
  tls: [{hosts: [shop.example.com]}]
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

#[test]
fn https_with_a_discovered_certificate_and_ssl_redirect() {
    let f = fixture(&format!("{WEB}{TLS}"));
    let certs = [cert("arn:wild", &["*.example.com"]), cert("arn:exact", &["shop.example.com"]), cert("arn:other", &["x.org"])];
    let built = run(&f, &subnets());
    assert!(built.stack.is_none(), "no certificates offered: {:?}", built.problems);
    assert!(built.problems[0].message.contains("no ISSUED ACM certificate matches host shop.example.com"));
    let built = build_env(&f, Env { certificates: &certs, ..Env::default() });
    let stack = built.stack.unwrap();
    let http = &stack.listeners[0];
    let https = &stack.listeners[1];
    assert_eq!((http.port, https.port, https.protocol), (80, 443, Protocol::Https));
    assert!(http.rules.is_empty(), "HTTP only redirects");
    assert!(matches!(&http.default_action, Action::Redirect { port: Some(p), status_code, .. } if p == "443" && status_code == "HTTP_301"));
    assert_eq!(https.certificates, vec!["arn:exact"], "an exact name beats a wildcard");
    assert_eq!(https.ssl_policy.as_deref(), Some("ELBSecurityPolicy-2016-08"));
    assert_eq!(https.rules.len(), 1);
}

#[test]
fn two_certificates_for_one_host_is_a_problem() {
    let f = fixture(&format!("{WEB}{TLS}"));
    let certs = [cert("arn:1", &["*.example.com"]), cert("arn:2", &["*.example.com", "example.com"])];
    let built = build_env(&f, Env { certificates: &certs, ..Env::default() });
    assert!(built.stack.is_none());
    assert!(built.problems[0].message.contains("2 ACM certificates match host shop.example.com"), "{}", built.problems[0].message);
}

#[test]
fn certificate_arn_annotation_wins_and_defaults_to_https_443() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations: {alb.ingress.kubernetes.io/certificate-arn: "arn:a,arn:b", alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let stack = run(&f, &subnets()).stack.unwrap();
    assert_eq!(stack.listeners.len(), 1);
    let l = &stack.listeners[0];
    assert_eq!((l.port, l.protocol), (443, Protocol::Https));
    assert_eq!(l.certificates, vec!["arn:a", "arn:b"]);
    assert_eq!(l.ssl_policy.as_deref(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
}

#[test]
fn ssl_redirect_to_a_port_that_is_not_https_is_a_problem() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/ssl-redirect: '443'}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let built = run(&f, &subnets());
    assert!(built.stack.is_none());
    assert!(built.problems[0].message.contains("ssl-redirect"));
}

#[test]
fn subnets_annotation_by_id_or_name() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/subnets: "subnet-priv-a, public-b"}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let mut s = subnets();
    s[1].tags.insert("Name".into(), "public-b".into());
    let stack = run(&f, &s).stack.unwrap();
    assert_eq!(stack.load_balancer.subnets, BTreeSet::from(["subnet-priv-a".into(), "subnet-pub-b".into()]));
    let built = run(&f, &subnets());
    assert!(built.problems[0].message.contains("no subnet \"public-b\""));
}

#[test]
fn service_annotations_shape_the_target_group() {
    let f = fixture(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations: {alb.ingress.kubernetes.io/healthcheck-path: /ready, alb.ingress.kubernetes.io/backend-protocol-version: GRPC}
spec:
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/healthcheck-path: /ingress}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let stack = run(&f, &subnets()).stack.unwrap();
    let tg = &stack.target_groups[0];
    assert_eq!(
        (tg.protocol_version.as_str(), tg.health_check.path.as_str(), tg.health_check.success_codes.as_str()),
        ("GRPC", "/ready", "12")
    );
}

#[test]
fn dualstack_opens_ipv6_too() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/ip-address-type: dualstack}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let stack = run(&f, &subnets()).stack.unwrap();
    assert_eq!(stack.load_balancer.ip_address_type, "dualstack");
    assert_eq!(
        stack.security_group.as_ref().unwrap().ingress.iter().map(|p| p.cidr.as_str()).collect::<Vec<_>>(),
        vec!["0.0.0.0/0", "::/0"]
    );
}

#[test]
fn weighted_forward_fixed_response_redirect_and_conditions() {
    let f = fixture(&format!(
        r#"{WEB}
---
apiVersion: v1
kind: Service
metadata: {{name: canary, namespace: shop}}
spec:
  ports: [{{name: http, port: 80, targetPort: 9090}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/actions.split: >
      {{"type":"forward","forwardConfig":{{"targetGroups":[{{"serviceName":"web","servicePort":80,"weight":90}},{{"serviceName":"canary","servicePort":"http","weight":10}},{{"targetGroupARN":"arn:legacy","weight":0}}]}}}}
    alb.ingress.kubernetes.io/actions.gone: '{{"type":"fixed-response","fixedResponseConfig":{{"statusCode":"410","contentType":"text/plain","messageBody":"gone"}}}}'
    alb.ingress.kubernetes.io/actions.moved: '{{"type":"redirect","redirectConfig":{{"host":"new.example.com","statusCode":"HTTP_301"}}}}'
    alb.ingress.kubernetes.io/conditions.split: '[{{"field":"http-header","httpHeaderConfig":{{"httpHeaderName":"X-Canary","values":["yes"]}}}},{{"field":"host-header","hostHeaderConfig":{{"values":["beta.example.com"]}}}}]'
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {{path: /split, pathType: Exact, backend: {{service: {{name: split, port: {{name: use-annotation}}}}}}}}
      - {{path: /gone, pathType: Exact, backend: {{service: {{name: gone, port: {{name: use-annotation}}}}}}}}
      - {{path: /moved, pathType: Exact, backend: {{service: {{name: moved, port: {{name: use-annotation}}}}}}}}
"#
    ));
    let built = run(&f, &subnets());
    assert!(built.problems.is_empty() && built.warnings.is_empty(), "{built:?}");
    let stack = built.stack.unwrap();
    let rules = &stack.listeners[0].rules;
    let Action::Forward { target_groups, .. } = &rules[0].action else { panic!("{:?}", rules[0].action) };
    assert_eq!(target_groups.iter().map(|t| t.weight).collect::<Vec<_>>(), vec![Some(90), Some(10), Some(0)]);
    assert_eq!(target_groups[2].target_group, "arn:legacy");
    assert_eq!(stack.target_groups.len(), 2, "web and canary");
    assert_eq!(
        rules[0].conditions,
        vec![
            Condition::HttpHeader { name: "X-Canary".into(), values: vec!["yes".into()] },
            Condition::HostHeader(vec!["shop.example.com".into(), "beta.example.com".into()]),
            Condition::PathPattern(vec!["/split".into()]),
        ]
    );
    assert!(
        matches!(&rules[1].action, Action::FixedResponse { status_code, message_body: Some(b), .. } if status_code == "410" && b == "gone")
    );
    assert!(matches!(&rules[2].action, Action::Redirect { host: Some(h), .. } if h == "new.example.com"));
}

const MISSING_ACTION: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  defaultBackend: {service: {name: nothing, port: {name: use-annotation}}}
  rules:
  - http:
      paths:
      - {path: /gone, pathType: Exact, backend: {service: {name: nothing, port: {name: use-annotation}}}}
      - {path: /web, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
"#;

#[test]
fn a_missing_use_annotation_action_answers_503_with_lbcs_body() {
    let built = run(&with_web(MISSING_ACTION), &subnets());
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let stack = built.stack.unwrap();
    let l = &stack.listeners[0];
    assert_eq!(fixed_body(&l.default_action), Some(("503", "Backend action does not exist")));
    assert_eq!(fixed_body(&l.rules[0].action), Some(("503", "Backend action does not exist")));
    assert_eq!(l.rules[1].action, Action::forward(&stack.target_groups[0].name), "the other rule still forwards");
    assert_eq!(built.warnings.len(), 1, "{:?}", built.warnings);
    assert!(built.warnings[0].message.contains("actions.nothing, which is not set"), "{:?}", built.warnings);
}

#[test]
fn a_missing_use_annotation_action_fails_the_member_when_not_tolerated() {
    let built = run_options(&with_web(MISSING_ACTION), STRICT);
    assert!(built.stack.is_none());
    assert!(built.problems[0].message.contains("actions.nothing"), "{:?}", built.problems);
}

#[test]
fn a_missing_service_in_a_weighted_forward_makes_the_rule_a_503() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/actions.split: >
      {"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"web","servicePort":80,"weight":90},{"serviceName":"canary","servicePort":80,"weight":10}]}}
spec:
  rules:
  - http:
      paths:
      - {path: /split, pathType: Exact, backend: {service: {name: split, port: {name: use-annotation}}}}
"#,
    );
    let built = run(&f, &subnets());
    let stack = built.stack.unwrap();
    assert_eq!(fixed_body(&stack.listeners[0].rules[0].action), Some(("503", "Backend service does not exist")));
    assert!(built.warnings.iter().any(|w| w.message.contains("shop/canary not found")), "{:?}", built.warnings);
    let strict = run_options(&f, STRICT);
    assert!(strict.stack.is_none() && strict.problems[0].message.contains("shop/canary not found"), "{:?}", strict.problems);
}

#[test]
fn rules_after_a_catch_all_forward_are_kept_with_a_warning_naming_both() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
  - http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
  - host: shop.example.com
    http:
      paths:
      - {path: /late, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    let built = run(&f, &subnets());
    let stack = built.stack.unwrap();
    assert_eq!(rule_paths(&stack, 80), vec!["/*", "/api,/api/*", "/late"], "every rule kept");
    assert_eq!(built.warnings.len(), 1, "only /late is shadowed (/api has no host): {:?}", built.warnings);
    let w = &built.warnings[0];
    assert_eq!((w.reason, w.ingress.to_string().as_str()), ("UnreachableRule", "shop/shop"));
    assert_eq!(
        w.message,
        r#"the rule for host "shop.example.com" path "/late" on port 80 can never match: rule 1 of the listener, for host "shop.example.com" path "/" of shop/shop, matches every request it would (kept, as LBC keeps it)"#
    );
}

#[test]
fn too_many_condition_values_is_a_problem() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/conditions.web: '[{"field":"source-ip","sourceIpConfig":{"values":["10.0.0.0/8","10.1.0.0/16","10.2.0.0/16","10.3.0.0/16"]}}]'
spec:
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /x, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    let built = run(&f, &subnets());
    assert!(built.problems[0].message.contains("7 condition values"), "{:?}", built.problems);
}

#[test]
fn instance_targets_are_the_labelled_nodes_on_the_node_port() {
    let f = fixture(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations: {alb.ingress.kubernetes.io/target-type: instance, alb.ingress.kubernetes.io/target-node-labels: pool=web}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let node = |name: &str, pool: &str, provider: &str, extra: serde_json::Value| -> Node {
        let mut v = serde_json::json!({"metadata": {"name": name, "labels": {"pool": pool}}, "spec": {"providerID": provider}});
        if let serde_json::Value::Object(m) = extra {
            for (k, val) in m {
                v[k] = val;
            }
        }
        serde_json::from_value(v).unwrap()
    };
    let nodes = vec![
        node("n1", "web", "aws:///us-east-1a/i-aaa", serde_json::json!({})),
        node("n2", "web", "aws:///us-east-1b/i-bbb", serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})),
        node("n3", "batch", "aws:///us-east-1a/i-ccc", serde_json::json!({})),
        node("n4", "web", "kind://docker/x", serde_json::json!({})),
    ]
    .into_iter()
    .map(Arc::new)
    .collect::<Vec<_>>();
    let built = build_env(&f, Env { nodes: &nodes, ..Env::default() });
    let stack = built.stack.unwrap();
    let tg = &stack.target_groups[0];
    assert_eq!((tg.target_type, tg.port), (TargetType::Instance, 30080));
    assert_eq!(tg.targets, Some(BTreeSet::from([Target { id: "i-aaa".into(), port: 30080 }])));
}

#[test]
fn instance_targets_need_a_node_port_service() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/target-type: instance}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let built = run(&f, &subnets());
    assert!(built.problems[0].message.contains("needs a NodePort or LoadBalancer Service"), "{:?}", built.problems);
}

#[test]
fn security_groups_by_id_or_name_replace_the_managed_one() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop, annotations: {alb.ingress.kubernetes.io/security-groups: "sg-1, web-sg, Tagged"}}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    let groups = [
        SecurityGroupInfo { id: "sg-1".into(), name: "one".into(), name_tag: None },
        SecurityGroupInfo { id: "sg-2".into(), name: "web-sg".into(), name_tag: None },
        SecurityGroupInfo { id: "sg-3".into(), name: "x".into(), name_tag: Some("Tagged".into()) },
    ];
    let build_with = |groups: &[SecurityGroupInfo]| build_env(&f, Env { security_groups: groups, ..Env::default() });
    let stack = build_with(&groups).stack.unwrap();
    assert!(stack.security_group.is_none());
    assert_eq!(stack.load_balancer.security_groups, BTreeSet::from(["sg-1".into(), "sg-2".into(), "sg-3".into()]));
    let built = build_with(&groups[..1]);
    assert!(built.problems[0].message.contains("no security group \"web-sg\""), "{:?}", built.problems);
}

#[test]
fn oidc_authentication_on_https_rules_only_with_the_secret_credentials() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTP": 80}, {"HTTPS": 443}]'
    alb.ingress.kubernetes.io/certificate-arn: arn:cert
    alb.ingress.kubernetes.io/auth-type: oidc
    alb.ingress.kubernetes.io/auth-idp-oidc: '{"issuer":"https://idp","authorizationEndpoint":"https://idp/a","tokenEndpoint":"https://idp/t","userInfoEndpoint":"https://idp/u","secretName":"oidc"}'
    alb.ingress.kubernetes.io/auth-on-unauthenticated-request: deny
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    let secrets = BTreeMap::from([(
        ObjKey { namespace: "shop".into(), name: "oidc".into() },
        BTreeMap::from([("clientID".to_string(), "id".to_string()), ("clientSecret".to_string(), "s".to_string())]),
    )]);
    let inputs = |secrets: &BTreeMap<ObjKey, BTreeMap<String, String>>| build_env(&f, Env { secrets: Some(secrets), ..Env::default() });
    let stack = inputs(&secrets).stack.unwrap();
    assert!(stack.listeners[0].rules[0].auth.is_none(), "no authentication on HTTP");
    let Some(Authenticate::Oidc { client_id, client_secret, session, .. }) = &stack.listeners[1].rules[0].auth else { panic!() };
    assert_eq!((client_id.as_str(), client_secret.as_str(), session.on_unauthenticated_request.as_str()), ("id", "s", "deny"));
    let built = inputs(&BTreeMap::new());
    assert!(built.problems[0].message.contains("Secret shop/oidc"), "{:?}", built.problems);
    // As LBC: the legacy key clientId, and no trailing newline in the credentials.
    let legacy = BTreeMap::from([(
        ObjKey { namespace: "shop".into(), name: "oidc".into() },
        BTreeMap::from([("clientId".to_string(), "id\n".to_string()), ("clientSecret".to_string(), "s\n".to_string())]),
    )]);
    let stack = inputs(&legacy).stack.unwrap();
    let Some(Authenticate::Oidc { client_id, client_secret, .. }) = &stack.listeners[1].rules[0].auth else { panic!() };
    assert_eq!((client_id.as_str(), client_secret.as_str()), ("id", "s"));
}

#[test]
fn explicit_certificates_win_and_other_members_hosts_are_discovered() {
    let f = fixture(&format!(
        r#"{WEB}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: a
  namespace: shop
  annotations: {{alb.ingress.kubernetes.io/group.name: g, alb.ingress.kubernetes.io/certificate-arn: "arn:private-wildcard"}}
spec:
  tls: [{{hosts: [a.example.com]}}]
  rules: [{{host: a.example.com, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: b
  namespace: shop
  annotations: {{alb.ingress.kubernetes.io/group.name: g}}
spec:
  tls: [{{hosts: [a.example.com, b.other.org]}}]
  rules: [{{host: b.other.org, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}]
"#
    ));
    let certs = [
        cert("arn:private-wildcard", &["*.example.com"]),
        cert("arn:public-wildcard", &["*.example.com"]),
        cert("arn:other", &["b.other.org"]),
    ];
    let built = build_env(&f, Env { group: Some(GroupId::Explicit("g".into())), certificates: &certs, ..Env::default() });
    assert!(built.problems.is_empty(), "a.example.com is covered by a's explicit certificate: {:?}", built.problems);
    let stack = built.stack.unwrap();
    assert_eq!(stack.listeners[0].certificates, vec!["arn:private-wildcard", "arn:other"]);
}

#[test]
fn more_than_100_rules_is_a_problem_before_aws_is_called() {
    let paths: String = (0..101)
        .map(|i| format!("      - {{path: /p{i}, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}\n"))
        .collect();
    let f = with_web(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: shop, namespace: shop}}\nspec:\n  rules:\n  - http:\n      paths:\n{paths}"
    ));
    let built = run(&f, &subnets());
    assert!(built.stack.is_none());
    assert!(built.problems[0].message.contains("101 rules; an ALB allows 100"), "{:?}", built.problems);
}

#[test]
fn a_service_without_endpoint_slices_keeps_its_targets_unknown_not_empty() {
    let f = fixture(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    );
    assert_eq!(run(&f, &subnets()).stack.unwrap().target_groups[0].targets, None, "no slice: unknown, not zero");
    let empty = fixture(&format!(
        "{}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: web-1, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}\naddressType: IPv4\nendpoints: []\n",
        r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#
    ));
    assert_eq!(run(&empty, &subnets()).stack.unwrap().target_groups[0].targets, Some(BTreeSet::new()), "an empty slice: zero");
}

#[test]
fn publish_not_ready_addresses_registers_not_ready_but_never_terminating_endpoints() {
    let f = fixture(&format!(
        "{}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: shop, namespace: shop}}\nspec:\n  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n",
        WEB.replace(
            "  ports: [{name: http, port: 80, targetPort: 8080}]",
            "  publishNotReadyAddresses: true\n  ports: [{name: http, port: 80, targetPort: 8080}]"
        )
    ));
    let stack = run(&f, &subnets()).stack.unwrap();
    let ips: Vec<String> = stack.target_groups[0].targets.iter().flatten().map(|t| t.id.clone()).collect();
    assert_eq!(ips, vec!["10.0.1.1", "10.0.1.2", "10.0.1.3"], "10.0.1.4 is terminating");
}

#[test]
fn tags_follow_lbc_per_resource_kind() {
    let f = fixture(&format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop, annotations: {{alb.ingress.kubernetes.io/tags: "team=svc,svc=1"}}}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
{}{}"#,
        member("a", ", alb.ingress.kubernetes.io/tags: 'team=a,cost=1'", "/a"),
        member("b", ", alb.ingress.kubernetes.io/tags: 'cost=1'", "/b"),
    ));
    let default_subnets = subnets();
    let class_tags = IngressClassParamsSpec {
        tags: Some(vec![
            crate::k8s::params::KeyValue { key: "team".into(), value: "class".into() },
            crate::k8s::params::KeyValue { key: "owner".into(), value: "class".into() },
        ]),
        ..Default::default()
    };
    let params = BTreeMap::from([(ObjKey { namespace: "shop".into(), name: "a".into() }, Ok(class_tags))]);
    let built = build(&Inputs {
        cluster: "test",
        group: GroupId::Explicit("shop".into()),
        members: f.ingresses.iter().collect(),
        services: &f.services,
        endpoint_slices: &f.slices,
        subnets: &default_subnets,
        certificates: &[],
        security_groups: &[],
        secrets: &BTreeMap::new(),
        nodes: &[],
        options: Options { default_target_type: TargetType::Ip, ..Options::default() },
        gated_pods: &BTreeSet::new(),
        params: &params,
    });
    assert!(built.problems.is_empty() && built.warnings.is_empty(), "{built:?}");
    let stack = built.stack.unwrap();
    let user = |tags: &Tags| -> Vec<String> {
        tags.iter()
            .filter(|(k, _)| ![TAG_CLUSTER, TAG_STACK, TAG_RESOURCE].contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    };
    // Load balancer, security group, listener: every member's tags (class over annotation).
    for tags in [&stack.load_balancer.tags, &stack.security_group.as_ref().unwrap().tags, &stack.listeners[0].tags] {
        assert_eq!(user(tags), ["cost=1", "owner=class", "team=class"]);
    }
    // A rule: its own Ingress's tags only.
    let rules = &stack.listeners[0].rules;
    assert_eq!(user(&rules[0].tags), ["cost=1", "owner=class", "team=class"]);
    assert_eq!(user(&rules[1].tags), ["cost=1"]);
    assert_eq!((rules[1].tags[TAG_RESOURCE].as_str(), rules[1].tags[TAG_STACK].as_str()), ("80:2", "shop"));
    // A target group: class over Service over its Ingress, key by key.
    let tg = |ing: &str| stack.target_groups.iter().find(|t| t.resource_id == format!("shop/{ing}-web:80")).unwrap();
    assert_eq!(user(&tg("a").tags), ["cost=1", "owner=class", "svc=1", "team=class"]);
    assert_eq!(user(&tg("b").tags), ["cost=1", "svc=1", "team=svc"]);
    assert_eq!(tg("b").tags[TAG_RESOURCE], "shop/b-web:80");
}

#[test]
fn unknown_json_keys_are_warnings_and_the_ingress_still_builds() {
    let f = with_web(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/conditions.web: '[{"field":"source-ip","sourceIPConfig":{"values":["10.0.0.0/8"]},"negate":true}]'
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    let built = run(&f, &subnets());
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    assert_eq!(built.warnings.len(), 1, "{:?}", built.warnings);
    assert!(built.warnings[0].message.contains(r#"conditions.web: unknown key "[0].negate" is ignored"#), "{:?}", built.warnings);
    let rule = &built.stack.unwrap().listeners[0].rules[0];
    assert!(rule.conditions.contains(&Condition::SourceIp(vec!["10.0.0.0/8".into()])), "{:?}", rule.conditions);
}

#[test]
fn a_named_health_check_port_is_the_service_ports_target_port() {
    let ing = |port: &str| {
        with_web(&format!(
            r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations: {{alb.ingress.kubernetes.io/healthcheck-port: {port}}}
spec:
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"#
        ))
    };
    let built = run(&ing("http"), &subnets());
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    assert_eq!(built.stack.unwrap().target_groups[0].health_check.port, "8080");
    let built = run(&ing("metrics"), &subnets());
    assert!(built.problems[0].message.contains(r#"healthcheck-port: the Service has no port "metrics""#), "{:?}", built.problems);
}

#[test]
fn the_wording_names_lbcs_annotations() {
    for name in [
        WORDING.tags,
        WORDING.subnets,
        WORDING.security_groups,
        WORDING.certificate_arn,
        WORDING.ssl_redirect,
        WORDING.manage_backend_security_group_rules,
        WORDING.target_group_attributes,
        WORDING.healthcheck_port,
    ] {
        let annotation = name.strip_prefix("annotation ").unwrap();
        assert!(annotation.starts_with(annotations::PREFIX), "{name}");
        assert!(annotations::READ.contains(&&annotation[annotations::PREFIX.len()..]), "{name} is an annotation we read");
    }
}
