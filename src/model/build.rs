//! Ingresses + Services + EndpointSlices + discovered subnets in, a `Stack` out.
//! Pure: no clients, no clock, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::k8s::annotations::{self, IngressConfig};

/// A subnet as discovery found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Subnet {
    pub id: String,
    pub availability_zone: String,
    #[serde(default)]
    pub tags: Tags,
}

pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub group: GroupId,
    /// Member Ingresses, already in group order.
    pub members: Vec<&'a Ingress>,
    pub services: &'a BTreeMap<ObjKey, Service>,
    /// EndpointSlices by the Service they belong to.
    pub endpoint_slices: &'a BTreeMap<ObjKey, Vec<EndpointSlice>>,
    pub subnets: &'a [Subnet],
}

#[derive(Debug, Default)]
pub struct Built {
    /// `None` when no member could be built: AWS is then left as it is.
    pub stack: Option<Stack>,
    /// Members left out of the stack, with why.
    pub problems: Vec<Problem>,
    /// Members built in a degraded way (e.g. a rule answering 503), with why.
    pub warnings: Vec<Problem>,
}

const ROLE_ELB: &str = "kubernetes.io/role/elb";
const ROLE_INTERNAL_ELB: &str = "kubernetes.io/role/internal-elb";
const CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster/";

pub fn build(inputs: &Inputs) -> Built {
    let mut out = Built::default();
    let mut members = Vec::new();
    for ing in &inputs.members {
        let key = ing_key(ing);
        let empty = BTreeMap::new();
        match annotations::parse(ing.metadata.annotations.as_ref().unwrap_or(&empty)) {
            Ok(config) => members.push((*ing, key, config)),
            Err(errors) => out.problems.push(Problem {
                ingress: key,
                reason: "FailedBuildModel",
                message: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }
    // One member per group until IngressGroups land; the group config is that member's.
    let Some((_, _, config)) = members.first() else {
        return out;
    };
    let config = config.clone();
    let subnets = match select_subnets(inputs.subnets, config.scheme, inputs.cluster) {
        Ok(s) => s,
        Err(message) => {
            for (_, key, _) in &members {
                out.problems.push(Problem {
                    ingress: key.clone(),
                    reason: "FailedBuildModel",
                    message: message.clone(),
                });
            }
            return out;
        }
    };
    let base = Stack::base_tags(inputs.cluster, &inputs.group);
    let with = |extra: &Tags, resource: &str| {
        let mut t = extra.clone();
        t.extend(base.clone());
        t.insert(TAG_RESOURCE.to_string(), resource.to_string());
        t
    };

    let mut target_groups: BTreeMap<String, TargetGroup> = BTreeMap::new();
    let mut rules = Vec::new();
    let mut default_action = Action::fixed("404");
    for (ing, key, cfg) in &members {
        let mut b = BackendBuilder {
            inputs,
            key,
            cfg,
            target_groups: &mut target_groups,
            warnings: &mut out.warnings,
            with: &with,
        };
        let spec = ing.spec.as_ref();
        if let Some(backend) = spec.and_then(|s| s.default_backend.as_ref()) {
            default_action = b.action(backend);
        }
        for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
            let Some(http) = rule.http.as_ref() else {
                continue;
            };
            for path in sort_paths(&http.paths) {
                let conditions = match conditions(rule.host.as_deref(), path) {
                    Ok(c) => c,
                    Err(message) => {
                        out.problems.push(Problem {
                            ingress: key.clone(),
                            reason: "FailedBuildModel",
                            message,
                        });
                        return Built { stack: None, ..out };
                    }
                };
                let action = b.action(&path.backend);
                rules.push((conditions, action));
            }
        }
    }

    let listener_tags = |port: i32| with(&config.tags, &port.to_string());
    let listeners = config
        .listen_ports
        .iter()
        .map(|&(protocol, port)| Listener {
            port,
            protocol,
            default_action: default_action.clone(),
            rules: rules
                .iter()
                .enumerate()
                .map(|(i, (conditions, action))| Rule {
                    priority: i as i32 + 1,
                    conditions: conditions.clone(),
                    action: action.clone(),
                    tags: with(&config.tags, &format!("{port}:{}", i + 1)),
                })
                .collect(),
            tags: listener_tags(port),
        })
        .collect::<Vec<_>>();

    let ingress = config
        .listen_ports
        .iter()
        .flat_map(|&(_, port)| {
            config.inbound_cidrs.iter().map(move |cidr| Permission {
                protocol: "tcp".into(),
                from_port: port,
                to_port: port,
                cidr: cidr.clone(),
            })
        })
        .collect();
    let stack = Stack {
        group: inputs.group.clone(),
        load_balancer: LoadBalancer {
            name: config.load_balancer_name.clone().unwrap_or_else(|| {
                names::load_balancer(inputs.cluster, &inputs.group, config.scheme.as_str())
            }),
            scheme: config.scheme,
            ip_address_type: "ipv4".into(),
            subnets,
            tags: with(&config.tags, "LoadBalancer"),
        },
        security_group: SecurityGroup {
            name: names::security_group(inputs.cluster, &inputs.group),
            description: "[k8s] Managed SecurityGroup for LoadBalancer".into(),
            ingress,
            tags: with(&config.tags, "ManagedLBSecurityGroup"),
        },
        listeners,
        target_groups: target_groups.into_values().collect(),
    };
    out.stack = Some(stack);
    out
}

fn ing_key(ing: &Ingress) -> ObjKey {
    ObjKey {
        namespace: ing.metadata.namespace.clone().unwrap_or_default(),
        name: ing.metadata.name.clone().unwrap_or_default(),
    }
}

/// Turns Ingress backends into actions, creating one target group per Service port.
struct BackendBuilder<'a, 'b, F: Fn(&Tags, &str) -> Tags> {
    inputs: &'b Inputs<'a>,
    key: &'b ObjKey,
    cfg: &'b IngressConfig,
    target_groups: &'b mut BTreeMap<String, TargetGroup>,
    warnings: &'b mut Vec<Problem>,
    with: &'b F,
}

impl<F: Fn(&Tags, &str) -> Tags> BackendBuilder<'_, '_, F> {
    /// Forward to the backend's target group, or a fixed 503 (with a warning) when the
    /// backend Service or its port does not exist, as LBC answers.
    fn action(&mut self, backend: &IngressBackend) -> Action {
        match self.target_group(backend) {
            Ok(resource_id) => Action::Forward {
                target_group: resource_id,
            },
            Err(message) => {
                self.warnings.push(Problem {
                    ingress: self.key.clone(),
                    reason: "FailedBuildModel",
                    message,
                });
                Action::fixed("503")
            }
        }
    }

    fn target_group(&mut self, backend: &IngressBackend) -> Result<String, String> {
        let svc_ref = backend.service.as_ref().ok_or_else(|| {
            "backend is not a Service; only Service backends are supported".to_string()
        })?;
        let svc_key = ObjKey {
            namespace: self.key.namespace.clone(),
            name: svc_ref.name.clone(),
        };
        let port_ref = svc_ref.port.as_ref();
        let port_str = match (
            port_ref.and_then(|p| p.number),
            port_ref.and_then(|p| p.name.as_ref()),
        ) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => return Err(format!("backend Service {svc_key} has no port")),
        };
        let svc = self.inputs.services.get(&svc_key).ok_or_else(|| {
            format!("backend Service {svc_key} not found; its rules answer 503 until it exists")
        })?;
        let svc_port = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .find(|p| p.port.to_string() == port_str || p.name.as_deref() == Some(port_str.as_str()))
            .ok_or_else(|| format!("backend Service {svc_key} has no port {port_str}; its rules answer 503 until it does"))?;
        let resource_id = format!(
            "{}/{}-{}:{}",
            self.key.namespace, self.key.name, svc_key.name, port_str
        );
        if self.target_groups.contains_key(&resource_id) {
            return Ok(resource_id);
        }
        let tg_port = match &svc_port.target_port {
            Some(IntOrString::Int(n)) => *n,
            Some(IntOrString::String(_)) => 1,
            None => svc_port.port,
        };
        let target_type = self.cfg.target_type;
        let protocol = Protocol::Http;
        let name = names::target_group(
            self.inputs.cluster,
            &self.inputs.group,
            &svc_key.namespace,
            &svc_key.name,
            &port_str,
            tg_port,
            target_type.as_str(),
            protocol.as_str(),
            "HTTP1",
        );
        let targets = ip_targets(
            self.inputs
                .endpoint_slices
                .get(&svc_key)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            svc_port,
        );
        self.target_groups.insert(
            resource_id.clone(),
            TargetGroup {
                resource_id: resource_id.clone(),
                name,
                protocol,
                protocol_version: "HTTP1".into(),
                port: tg_port,
                target_type,
                health_check: HealthCheck {
                    protocol: Protocol::Http,
                    port: "traffic-port".into(),
                    path: self.cfg.healthcheck_path.clone(),
                    interval_seconds: 15,
                    timeout_seconds: 5,
                    healthy_threshold: 2,
                    unhealthy_threshold: 2,
                    success_codes: self.cfg.success_codes.clone(),
                },
                targets,
                tags: (self.with)(&self.cfg.tags, &resource_id),
            },
        );
        Ok(resource_id)
    }
}

/// Ready endpoint addresses of a Service port, from its EndpointSlices.
fn ip_targets(slices: &[EndpointSlice], svc_port: &ServicePort) -> BTreeSet<Target> {
    let mut targets = BTreeSet::new();
    for slice in slices.iter().filter(|s| s.address_type == "IPv4") {
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == svc_port.name.as_deref().unwrap_or(""))
            .and_then(|p| p.port);
        let Some(port) = port else { continue };
        for ep in &slice.endpoints {
            let cond = ep.conditions.as_ref();
            // A nil `ready` means ready (EndpointConditions API contract).
            let ready = cond.and_then(|c| c.ready).unwrap_or(true);
            let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            if ready && !terminating {
                targets.extend(ep.addresses.iter().map(|ip| Target {
                    id: ip.clone(),
                    port,
                }));
            }
        }
    }
    targets
}

/// LBC's order: Exact paths first, then Prefix paths longest first, then
/// ImplementationSpecific (or unset) in their written order.
fn sort_paths(paths: &[HTTPIngressPath]) -> Vec<&HTTPIngressPath> {
    let kind = |p: &HTTPIngressPath| match p.path_type.as_str() {
        "Exact" => 0,
        "Prefix" => 1,
        _ => 2,
    };
    let mut sorted: Vec<&HTTPIngressPath> = paths.iter().collect();
    sorted.sort_by(|a, b| {
        kind(a).cmp(&kind(b)).then_with(|| {
            if kind(a) == 1 {
                let len = |p: &HTTPIngressPath| p.path.as_deref().unwrap_or("").len();
                len(b).cmp(&len(a))
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
    sorted
}

/// Host and path of one Ingress path as ALB conditions (host-header, then path-pattern).
fn conditions(host: Option<&str>, path: &HTTPIngressPath) -> Result<Vec<Condition>, String> {
    let mut out = Vec::new();
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        out.push(Condition::HostHeader(vec![host.to_string()]));
    }
    if let Some(p) = path.path.as_deref().filter(|p| !p.is_empty()) {
        let patterns = match path.path_type.as_str() {
            "Exact" => {
                if p.contains(['*', '?']) {
                    return Err(format!("Exact path {p:?} must not contain wildcards"));
                }
                vec![p.to_string()]
            }
            "Prefix" if p == "/" => vec!["/*".to_string()],
            "Prefix" => {
                if p.contains(['*', '?']) {
                    return Err(format!("Prefix path {p:?} must not contain wildcards"));
                }
                let p = p.trim_end_matches('/');
                vec![p.to_string(), format!("{p}/*")]
            }
            _ => vec![p.to_string()],
        };
        out.push(Condition::PathPattern(patterns));
    }
    if out.is_empty() {
        out.push(Condition::PathPattern(vec!["/*".to_string()]));
    }
    Ok(out)
}

/// Subnets for the scheme's role tag, minus those tagged for another cluster, one per AZ
/// (our cluster's tag first, then the lowest ID), at least two AZs.
fn select_subnets(
    subnets: &[Subnet],
    scheme: Scheme,
    cluster: &str,
) -> Result<BTreeSet<String>, String> {
    let role = match scheme {
        Scheme::InternetFacing => ROLE_ELB,
        Scheme::Internal => ROLE_INTERNAL_ELB,
    };
    let our_tag = format!("{CLUSTER_TAG_PREFIX}{cluster}");
    let mut by_az: BTreeMap<&str, Vec<&Subnet>> = BTreeMap::new();
    for s in subnets {
        let has_role = s.tags.get(role).is_some_and(|v| v.is_empty() || v == "1");
        let tagged_for_cluster = s.tags.keys().any(|k| k.starts_with(CLUSTER_TAG_PREFIX));
        let ours = s.tags.contains_key(&our_tag);
        if has_role && (!tagged_for_cluster || ours) {
            by_az
                .entry(s.availability_zone.as_str())
                .or_default()
                .push(s);
        }
    }
    let chosen: BTreeSet<String> = by_az
        .values()
        .filter_map(|candidates| {
            candidates
                .iter()
                .min_by_key(|s| (!s.tags.contains_key(&our_tag), s.id.as_str()))
                .map(|s| s.id.clone())
        })
        .collect();
    if chosen.len() < 2 {
        return Err(format!(
            "unable to discover at least 2 subnets in different Availability Zones for a {} load balancer: tag subnets with {role}=1 (found {})",
            scheme.as_str(),
            chosen.len()
        ));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects of a multi-document YAML manifest, by kind.
    #[derive(Default)]
    struct Fixture {
        ingresses: Vec<Ingress>,
        services: BTreeMap<ObjKey, Service>,
        slices: BTreeMap<ObjKey, Vec<EndpointSlice>>,
    }

    fn fixture(yaml: &str) -> Fixture {
        let mut f = Fixture::default();
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let v = serde_yaml::Value::deserialize(doc).unwrap();
            let kind = v
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_string();
            match kind.as_str() {
                "Ingress" => f.ingresses.push(serde_yaml::from_value(v).unwrap()),
                "Service" => {
                    let s: Service = serde_yaml::from_value(v).unwrap();
                    let key = ObjKey {
                        namespace: s.metadata.namespace.clone().unwrap(),
                        name: s.metadata.name.clone().unwrap(),
                    };
                    f.services.insert(key, s);
                }
                "EndpointSlice" => {
                    let s: EndpointSlice = serde_yaml::from_value(v).unwrap();
                    let svc =
                        s.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"].clone();
                    let key = ObjKey {
                        namespace: s.metadata.namespace.clone().unwrap(),
                        name: svc,
                    };
                    f.slices.entry(key).or_default().push(s);
                }
                other => panic!("unexpected kind {other}"),
            }
        }
        f
    }

    use serde::Deserialize;

    fn subnet(id: &str, az: &str, tags: &[(&str, &str)]) -> Subnet {
        Subnet {
            id: id.into(),
            availability_zone: az.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
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
        build(&Inputs {
            cluster: "test",
            group: GroupId::Implicit {
                namespace: ing.metadata.namespace.clone().unwrap(),
                name: ing.metadata.name.clone().unwrap(),
            },
            members: f.ingresses.iter().collect(),
            services: &f.services,
            endpoint_slices: &f.slices,
            subnets,
        })
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
        assert!(
            built.problems.is_empty() && built.warnings.is_empty(),
            "{:?}",
            built
        );
        let stack = built.stack.unwrap();
        let l = &stack.listeners[0];
        assert_eq!((l.port, l.protocol), (80, Protocol::Http));
        assert_eq!(l.default_action, Action::fixed("404"));
        let paths: Vec<_> = l
            .rules
            .iter()
            .map(|r| (r.priority, r.conditions.clone()))
            .collect();
        assert_eq!(
            paths,
            vec![
                (1, vec![Condition::PathPattern(vec!["/health".into()])]),
                (
                    2,
                    vec![Condition::PathPattern(vec![
                        "/api/v2".into(),
                        "/api/v2/*".into()
                    ])]
                ),
                (
                    3,
                    vec![Condition::PathPattern(vec!["/api".into(), "/api/*".into()])]
                ),
                (4, vec![Condition::PathPattern(vec!["/static/*".into()])]),
            ]
        );
        // port 80 and port "http" are two backends, so two target groups, as LBC.
        assert_eq!(stack.target_groups.len(), 2);
        let tg = &stack.target_groups[0];
        assert_eq!(tg.resource_id, "shop/shop-web:80");
        assert_eq!(tg.port, 8080);
        assert_eq!(
            tg.targets
                .iter()
                .map(|t| (t.id.as_str(), t.port))
                .collect::<Vec<_>>(),
            vec![("10.0.1.1", 8080), ("10.0.1.2", 8080)]
        );
        assert_eq!(
            l.rules[0].action,
            Action::Forward {
                target_group: "shop/shop-web:80".into()
            }
        );
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
        assert_eq!(
            stack.load_balancer.subnets,
            BTreeSet::from([
                "subnet-priv-a".into(),
                "subnet-priv-b".into(),
                "subnet-priv-c".into()
            ])
        );
        assert!(stack.load_balancer.name.starts_with("k8s-shop-shop-"));
        assert_eq!(
            stack.listeners[0].default_action,
            Action::Forward {
                target_group: "shop/shop-web:80".into()
            }
        );
        assert!(stack.listeners[0].rules.is_empty());
        for tags in [
            &stack.load_balancer.tags,
            &stack.security_group.tags,
            &stack.target_groups[0].tags,
            &stack.listeners[0].tags,
        ] {
            assert_eq!(tags[TAG_CLUSTER], "test");
            assert_eq!(tags[TAG_STACK], "shop/shop");
            assert_eq!(tags["team"], "web");
        }
        assert_eq!(stack.load_balancer.tags[TAG_RESOURCE], "LoadBalancer");
        assert_eq!(
            stack.security_group.tags[TAG_RESOURCE],
            "ManagedLBSecurityGroup"
        );
        assert_eq!(
            stack.security_group.ingress,
            BTreeSet::from([Permission {
                protocol: "tcp".into(),
                from_port: 80,
                to_port: 80,
                cidr: "0.0.0.0/0".into()
            }])
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
        s.push(subnet(
            "subnet-pub-c-other",
            "us-east-1c",
            &[(ROLE_ELB, "1"), ("kubernetes.io/cluster/other", "owned")],
        ));
        s.push(subnet(
            "subnet-pub-b2",
            "us-east-1b",
            &[(ROLE_ELB, "1"), ("kubernetes.io/cluster/test", "shared")],
        ));
        let stack = run(&f, &s).stack.unwrap();
        assert_eq!(stack.load_balancer.scheme, Scheme::InternetFacing);
        // One per AZ, our cluster's tag preferred, the other cluster's subnet dropped.
        assert_eq!(
            stack.load_balancer.subnets,
            BTreeSet::from(["subnet-pub-a".into(), "subnet-pub-b2".into()])
        );
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
        assert!(
            built.problems[0].message.contains("at least 2 subnets"),
            "{:?}",
            built.problems
        );
    }

    #[test]
    fn missing_service_answers_503_with_a_warning_naming_it() {
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
      - {path: /, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}
      - {path: /web, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}
"#,
        );
        let built = run(&f, &subnets());
        let stack = built.stack.unwrap();
        let rules = &stack.listeners[0].rules;
        assert_eq!(
            rules[0].conditions[0],
            Condition::HostHeader(vec!["shop.example.com".into()])
        );
        assert!(rules.iter().all(|r| r.action == Action::fixed("503")));
        assert!(stack.target_groups.is_empty());
        assert_eq!(built.warnings.len(), 2);
        assert!(
            built
                .warnings
                .iter()
                .any(|w| w.message.contains("shop/nope not found")),
            "{:?}",
            built.warnings
        );
        assert!(
            built
                .warnings
                .iter()
                .any(|w| w.message.contains("has no port 81")),
            "{:?}",
            built.warnings
        );
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
        assert!(
            built.problems[0]
                .message
                .contains("alb.ingress.kubernetes.io/scheme"),
            "{}",
            built.problems[0].message
        );
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
        assert_eq!(
            tg.targets,
            BTreeSet::from([Target {
                id: "10.0.2.1".into(),
                port: 50051
            }])
        );
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
}
