//! `alb-controller plan`: the load balancers a set of manifests would get, with no
//! cluster and no AWS. Uses the controller's own grouping and model builder.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::k8s::class::ClassFilter;
use crate::k8s::gateway_api::gatewayclasses::GatewayClass;
use crate::k8s::gateway_api::gateways::Gateway;
use crate::k8s::gateway_config::{LoadBalancerConfiguration, TargetGroupConfiguration};
use crate::k8s::gateway_objects;
use crate::k8s::grouping::{self, Snapshot};
use crate::model::gateway::spec as gw_spec;
use crate::model::{self, Action, Certificate, Condition, GroupId, ObjKey, Problem, SecurityGroupInfo, Stack, Subnet, TargetType};

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// Manifest files or directories of them (YAML, multi-document): Ingresses, Services,
    /// EndpointSlices, IngressClasses, IngressClassParams, Nodes, Namespaces, and Gateway
    /// API objects (GatewayClasses, Gateways, HTTPRoutes, GRPCRoutes, ReferenceGrants).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Cluster name (names and tags derive from it).
    #[arg(long, default_value = "plan")]
    cluster_name: String,
    /// Environment file (YAML): `subnets: [{id, availabilityZone, tags}]` and
    /// `certificates: [{arn, domains}]`.
    #[arg(long)]
    env: Option<PathBuf>,
    /// A subnet, `ID@ZONE:public` or `ID@ZONE:private` (repeatable; replaces the default
    /// three public and three private subnets).
    #[arg(long = "subnet")]
    subnets: Vec<String>,
    /// An ISSUED ACM certificate, `ARN=domain[,domain…]` (repeatable).
    #[arg(long = "certificate")]
    certificates: Vec<String>,
    #[arg(long, default_value = "instance", value_parser = TargetType::parse)]
    default_target_type: TargetType,
    /// As the controller's flag: a rule forwarding to a missing Service answers a fixed
    /// 503; `false` fails its Ingress instead.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    tolerate_non_existent_backend_service: bool,
    /// As the controller's flag: a `use-annotation` backend without its `actions.*`
    /// annotation answers a fixed 503; `false` fails its Ingress instead.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    tolerate_non_existent_backend_action: bool,
    #[arg(long, default_value = "ingress.k8s.aws/alb")]
    controller_name: String,
    #[arg(long, default_value = "alb")]
    ingress_class: String,
    /// The GatewayClass controller name Gateways are planned for (a Gateway whose class is
    /// not in the manifests is assumed to be of it).
    #[arg(long, default_value = crate::model::gateway::CONTROLLER_NAME)]
    gateway_controller_name: String,
    /// `table` or `json`.
    #[arg(short = 'o', long, default_value = "table")]
    output: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Environment {
    #[serde(default)]
    subnets: Vec<EnvSubnet>,
    #[serde(default)]
    certificates: Vec<Certificate>,
    #[serde(default)]
    security_groups: Vec<SecurityGroupInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvSubnet {
    id: String,
    availability_zone: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct Objects {
    ingresses: Vec<Ingress>,
    services: BTreeMap<ObjKey, Service>,
    slices: BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>>,
    /// IngressClasses, IngressClassParams and Namespaces: what grouping reads.
    cluster: Snapshot,
    nodes: Vec<Arc<Node>>,
    secrets: BTreeMap<ObjKey, BTreeMap<String, String>>,
    gateway_classes: Vec<GatewayClass>,
    gateways: Vec<Gateway>,
    routes: Vec<gw_spec::RouteSpec>,
    grants: Vec<gw_spec::Grant>,
    load_balancer_configs: BTreeMap<ObjKey, LoadBalancerConfiguration>,
    target_configs: BTreeMap<ObjKey, gw_spec::TargetConfig>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Planned {
    load_balancers: Vec<PlannedLoadBalancer>,
    problems: Vec<Problem>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlannedLoadBalancer {
    group: String,
    ingresses: Vec<String>,
    stack: Stack,
}

/// The YAML files of `path`: itself, or those below it (sorted).
pub fn yaml_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                yaml_files(&e, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
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
            let mut value = value;
            // Objects without a namespace land in `default`, as kubectl would put them.
            if matches!(
                kind.as_str(),
                "Ingress"
                    | "Service"
                    | "EndpointSlice"
                    | "Gateway"
                    | "HTTPRoute"
                    | "GRPCRoute"
                    | "ReferenceGrant"
                    | "LoadBalancerConfiguration"
                    | "TargetGroupConfiguration"
            ) && let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_mapping_mut())
                && !meta.contains_key("namespace")
            {
                meta.insert("namespace".into(), "default".into());
            }
            match kind.as_str() {
                "Ingress" => o.ingresses.push(serde_yaml::from_value(value).map_err(bad)?),
                "Service" => {
                    let s: Service = serde_yaml::from_value(value).map_err(bad)?;
                    o.services.insert(ObjKey { namespace: s.namespace().unwrap_or_default(), name: s.name_any() }, s);
                }
                "EndpointSlice" => {
                    let s: EndpointSlice = serde_yaml::from_value(value).map_err(bad)?;
                    if let Some(svc) = s.labels().get("kubernetes.io/service-name") {
                        o.slices
                            .entry(ObjKey { namespace: s.namespace().unwrap_or_default(), name: svc.clone() })
                            .or_default()
                            .push(Arc::new(s));
                    }
                }
                "IngressClass" => o.cluster.classes.push(Arc::new(serde_yaml::from_value(value).map_err(bad)?)),
                "IngressClassParams" => o.cluster.params.push(Arc::new(serde_yaml::from_value(value).map_err(bad)?)),
                "Node" => o.nodes.push(Arc::new(serde_yaml::from_value(value).map_err(bad)?)),
                "GatewayClass" => o.gateway_classes.push(serde_yaml::from_value(value).map_err(bad)?),
                "TargetGroupConfiguration" => {
                    let c: TargetGroupConfiguration = serde_yaml::from_value(value).map_err(bad)?;
                    o.target_configs.extend(gateway_objects::target_config(&c));
                }
                "LoadBalancerConfiguration" => {
                    let c: LoadBalancerConfiguration = serde_yaml::from_value(value).map_err(bad)?;
                    o.load_balancer_configs.insert(ObjKey { namespace: c.namespace().unwrap_or_default(), name: c.name_any() }, c);
                }
                "Gateway" => o.gateways.push(serde_yaml::from_value(value).map_err(bad)?),
                "HTTPRoute" => o.routes.push(gateway_objects::http_route(&serde_yaml::from_value(value).map_err(bad)?)),
                "GRPCRoute" => o.routes.push(gateway_objects::grpc_route(&serde_yaml::from_value(value).map_err(bad)?)),
                "ReferenceGrant" => o.grants.push(gateway_objects::grant(&serde_yaml::from_value(value).map_err(bad)?)),
                "Namespace" => o.cluster.namespaces.push(serde_yaml::from_value(value).map_err(bad)?),
                "Secret" => {
                    let s: k8s_openapi::api::core::v1::Secret = serde_yaml::from_value(value).map_err(bad)?;
                    let key = ObjKey { namespace: s.namespace().unwrap_or_else(|| "default".into()), name: s.name_any() };
                    o.secrets.insert(key, crate::k8s::secret_data(s));
                }
                _ => {}
            }
        }
    }
    Ok(o)
}

fn default_subnets() -> Vec<Subnet> {
    let mut out = Vec::new();
    for zone in ["a", "b", "c"] {
        for (role, tag) in [("public", "kubernetes.io/role/elb"), ("private", "kubernetes.io/role/internal-elb")] {
            out.push(Subnet {
                id: format!("subnet-{role}-{zone}"),
                availability_zone: format!("us-east-1{zone}"),
                tags: BTreeMap::from([(tag.to_string(), "1".to_string())]),
            });
        }
    }
    out
}

/// What discovery would find in AWS.
struct Discovered {
    subnets: Vec<Subnet>,
    certificates: Vec<Certificate>,
    security_groups: Vec<SecurityGroupInfo>,
}

fn environment(args: &PlanArgs) -> Result<Discovered, String> {
    let env: Environment = match &args.env {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Environment::default(),
    };
    let mut subnets: Vec<Subnet> =
        env.subnets.into_iter().map(|s| Subnet { id: s.id, availability_zone: s.availability_zone, tags: s.tags }).collect();
    for s in &args.subnets {
        let parsed = s.split_once('@').and_then(|(id, rest)| rest.split_once(':').map(|(zone, role)| (id, zone, role)));
        let (id, zone, role) = parsed.ok_or_else(|| format!("--subnet {s:?}: expected ID@ZONE:public or ID@ZONE:private"))?;
        let tag = match role {
            "public" => "kubernetes.io/role/elb",
            "private" => "kubernetes.io/role/internal-elb",
            _ => return Err(format!("--subnet {s:?}: the role must be public or private")),
        };
        subnets.push(Subnet { id: id.into(), availability_zone: zone.into(), tags: BTreeMap::from([(tag.to_string(), "1".to_string())]) });
    }
    if subnets.is_empty() {
        subnets = default_subnets();
    }
    let mut certificates = env.certificates;
    for c in &args.certificates {
        let (arn, domains) = c.split_once('=').ok_or_else(|| format!("--certificate {c:?}: expected ARN=domain[,domain…]"))?;
        certificates.push(Certificate { arn: arn.into(), domains: domains.split(',').map(|d| d.trim().to_string()).collect() });
    }
    Ok(Discovered { subnets, certificates, security_groups: env.security_groups })
}

/// Runs `plan`; the exit code is non-zero when any Ingress has a problem.
pub fn run(args: &PlanArgs) -> Result<bool, String> {
    let mut objects = load(&args.files)?;
    let Discovered { subnets, certificates, security_groups } = environment(args)?;
    // The `alb` IngressClass is cluster setup, rarely in an app's manifests: assume it.
    if !objects.cluster.classes.iter().any(|c| c.name_any() == args.ingress_class) {
        objects.cluster.classes.push(Arc::new(
            serde_json::from_value(
                serde_json::json!({"metadata": {"name": args.ingress_class}, "spec": {"controller": args.controller_name}}),
            )
            .expect("a valid IngressClass"),
        ));
    }
    let filter = ClassFilter { controller: args.controller_name.clone(), legacy_class: args.ingress_class.clone() };
    let mut groups: BTreeMap<GroupId, Vec<&Ingress>> = BTreeMap::new();
    let mut planned = Planned { load_balancers: Vec::new(), problems: Vec::new() };
    for ing in objects.ingresses.iter().filter(|i| grouping::is_active(&objects.cluster, &filter, i)) {
        match grouping::group_of(&objects.cluster, &filter, ing) {
            Ok(g) => groups.entry(g).or_default().push(ing),
            Err(message) => planned.problems.push(Problem {
                ingress: ObjKey { namespace: ing.namespace().unwrap_or_default(), name: ing.name_any() },
                reason: "FailedBuildModel",
                message,
            }),
        }
    }
    for (group, members) in groups {
        let params = members
            .iter()
            .filter_map(|m| {
                let key = ObjKey { namespace: m.namespace().unwrap_or_default(), name: m.name_any() };
                Some((key, grouping::class_params(&objects.cluster, &filter, m)?))
            })
            .collect();
        let built = model::build(&model::Inputs {
            cluster: &args.cluster_name,
            group: group.clone(),
            members: members.clone(),
            services: &objects.services,
            endpoint_slices: &objects.slices,
            subnets: &subnets,
            certificates: &certificates,
            security_groups: &security_groups,
            secrets: &objects.secrets,
            nodes: &objects.nodes,
            options: model::Options {
                default_target_type: args.default_target_type,
                tolerate_missing_backend_service: args.tolerate_non_existent_backend_service,
                tolerate_missing_backend_action: args.tolerate_non_existent_backend_action,
                ..model::Options::default()
            },
            gated_pods: &Default::default(),
            params: &params,
        });
        let bad: Vec<ObjKey> = built.problems.iter().map(|p| p.ingress.clone()).collect();
        planned.problems.extend(built.problems);
        planned.problems.extend(built.warnings);
        if let Some(stack) = built.stack {
            let ingresses = members
                .iter()
                .map(|m| ObjKey { namespace: m.namespace().unwrap_or_default(), name: m.name_any() })
                .filter(|k| !bad.contains(k))
                .map(|k| k.to_string())
                .collect();
            planned.load_balancers.push(PlannedLoadBalancer { group: group.to_string(), ingresses, stack });
        }
    }
    plan_gateways(args, &objects, &subnets, &certificates, &security_groups, &mut planned);
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&planned).map_err(|e| e.to_string())?),
        "table" => print!("{}", table(&planned, &args.cluster_name)),
        other => return Err(format!("unknown output {other:?}: use table or json")),
    }
    Ok(planned.problems.is_empty())
}

/// Each Gateway of our GatewayClass is a load balancer of its own; a route its listeners do
/// not accept is a problem, worded as its status condition.
fn plan_gateways(
    args: &PlanArgs,
    objects: &Objects,
    subnets: &[Subnet],
    certificates: &[Certificate],
    security_groups: &[SecurityGroupInfo],
    planned: &mut Planned,
) {
    let ours = |class: &str| {
        objects
            .gateway_classes
            .iter()
            .find(|c| c.name_any() == class)
            .is_none_or(|c| c.spec.controller_name == args.gateway_controller_name)
    };
    let namespaces: BTreeMap<String, BTreeMap<String, String>> =
        objects.cluster.namespaces.iter().map(|n| (n.name_any(), n.labels().clone())).collect();
    for gw in objects.gateways.iter().filter(|g| ours(&g.spec.gateway_class_name)) {
        let spec = gateway_objects::gateway(gw);
        let settings = match gateway_config(objects, gw).and_then(|c| gateway_objects::load_balancer_settings(&c)) {
            Ok(s) => s,
            Err(message) => {
                planned.problems.push(Problem { ingress: spec.key.clone(), reason: "InvalidParameters", message });
                continue;
            }
        };
        let built = model::gateway::build(&model::gateway::Inputs {
            cluster: &args.cluster_name,
            gateway: &spec,
            load_balancer: settings.load_balancer,
            tags: settings.tags,
            listener_certificates: settings.listener_certificates,
            routes: &objects.routes,
            namespaces: &namespaces,
            grants: &objects.grants,
            target_configs: &objects.target_configs,
            services: &objects.services,
            endpoint_slices: &objects.slices,
            subnets,
            certificates,
            security_groups,
            nodes: &objects.nodes,
            gated_pods: &Default::default(),
            options: model::Options { default_target_type: args.default_target_type, ..model::Options::default() },
        });
        let problem = |key: &ObjKey, what: &str, c: &model::gateway::StatusCondition| Problem {
            ingress: key.clone(),
            reason: c.reason,
            message: format!("{what} {}: {}", c.type_, c.message),
        };
        let mut accepted = Vec::new();
        for route in &built.routes {
            for p in &route.parents {
                // What failed first, then the rules left out of an accepted route.
                let (partial, failed): (Vec<_>, Vec<_>) =
                    p.conditions.iter().filter(|c| c.is_problem()).partition(|c| c.type_ == "PartiallyInvalid");
                planned.problems.extend(failed.into_iter().chain(partial).map(|c| problem(&route.key, route.kind.as_str(), c)));
                if p.conditions.first().is_some_and(|c| c.status) {
                    accepted.push(format!("{} {}", route.kind.as_str(), route.key));
                }
            }
        }
        if built.accepted.is_problem() {
            planned.problems.push(problem(&spec.key, "Gateway", &built.accepted));
        }
        for l in built.listeners.iter() {
            let what = format!("Gateway listener {:?}", l.name);
            planned.problems.extend(l.conditions.iter().filter(|c| c.is_problem()).map(|c| problem(&spec.key, &what, c)));
        }
        planned.problems.extend(built.built.warnings);
        if let Some(stack) = built.built.stack {
            accepted.dedup();
            planned.load_balancers.push(PlannedLoadBalancer { group: format!("Gateway {}", spec.key), ingresses: accepted, stack });
        }
    }
}

/// The LoadBalancerConfiguration of a Gateway: its class's and its own, merged as LBC does.
fn gateway_config(objects: &Objects, gw: &Gateway) -> Result<crate::k8s::gateway_config::LoadBalancerConfigurationSpec, String> {
    let find = |ns: &str, group: &str, kind: &str, name: &str, whose: &str| {
        if group != "gateway.k8s.aws" || kind != "LoadBalancerConfiguration" {
            return Err(format!(
                "{whose} parametersRef {group}/{kind} {name}: only gateway.k8s.aws LoadBalancerConfiguration is supported"
            ));
        }
        let key = ObjKey { namespace: ns.to_string(), name: name.to_string() };
        objects
            .load_balancer_configs
            .get(&key)
            .map(|c| c.spec.clone())
            .ok_or_else(|| format!("{whose} parametersRef: LoadBalancerConfiguration {key} not found"))
    };
    let ns = gw.namespace().unwrap_or_default();
    let class = objects.gateway_classes.iter().find(|c| c.name_any() == gw.spec.gateway_class_name);
    let class_config = match class.and_then(|c| c.spec.parameters_ref.as_ref()) {
        Some(r) => Some(find(r.namespace.as_deref().unwrap_or_default(), &r.group, &r.kind, &r.name, "GatewayClass")?),
        None => None,
    };
    let own = match gw.spec.infrastructure.as_ref().and_then(|i| i.parameters_ref.as_ref()) {
        Some(r) => Some(find(&ns, &r.group, &r.kind, &r.name, "Gateway spec.infrastructure")?),
        None => None,
    };
    Ok(gateway_objects::merge_configs(class_config.as_ref(), own.as_ref()))
}

fn describe_action(a: &Action) -> String {
    match a {
        Action::FixedResponse { status_code, .. } => format!("fixed-response {status_code}"),
        Action::Redirect { protocol, port, host, path, status_code, .. } => format!(
            "redirect {status_code} to {}://{}:{}{}",
            protocol.as_deref().unwrap_or("#{protocol}"),
            host.as_deref().unwrap_or("#{host}"),
            port.as_deref().unwrap_or("#{port}"),
            path.as_deref().unwrap_or("")
        ),
        Action::Forward { target_groups, stickiness_seconds } => {
            let tgs: Vec<String> = target_groups
                .iter()
                .map(|t| match t.weight {
                    Some(w) => format!("{} (weight {w})", t.target_group),
                    None => t.target_group.clone(),
                })
                .collect();
            let sticky = stickiness_seconds.map(|s| format!(", sticky {s}s")).unwrap_or_default();
            format!("forward to {}{sticky}", tgs.join(", "))
        }
    }
}

fn describe_condition(c: &Condition) -> String {
    match c {
        Condition::HostHeader(v) => format!("host {}", v.join(" | ")),
        Condition::PathPattern(v) => format!("path {}", v.join(" | ")),
        Condition::PathRegex(v) => format!("path ~ {}", v.join(" | ")),
        Condition::HttpHeader { name, values } => format!("header {name}: {}", values.join(" | ")),
        Condition::HttpHeaderRegex { name, values } => format!("header {name} ~ {}", values.join(" | ")),
        Condition::HttpRequestMethod(v) => format!("method {}", v.join(" | ")),
        Condition::QueryString(v) => {
            format!("query {}", v.iter().map(|(k, val)| format!("{}={val}", k.as_deref().unwrap_or(""))).collect::<Vec<_>>().join(" | "))
        }
        Condition::SourceIp(v) => format!("source-ip {}", v.join(" | ")),
    }
}

fn table(p: &Planned, cluster: &str) -> String {
    let mut out = String::new();
    if p.load_balancers.is_empty() {
        out.push_str("No load balancers.\n");
    }
    for lb in &p.load_balancers {
        let s = &lb.stack;
        let l = &s.load_balancer;
        let _ = writeln!(out, "Load balancer {}  ({}, {})", l.name, l.scheme.as_str(), l.ip_address_type);
        let _ = writeln!(out, "  group        {}   Ingresses: {}", lb.group, lb.ingresses.join(", "));
        let _ = writeln!(out, "  subnets      {}", l.subnets.iter().cloned().collect::<Vec<_>>().join(", "));
        match &s.security_group {
            Some(sg) => {
                let inbound: Vec<String> = sg.ingress.iter().map(|p| format!("{}/{} from {}", p.protocol, p.from_port, p.cidr)).collect();
                let _ = writeln!(out, "  security     {} ({})", sg.name, inbound.join(", "));
            }
            None => {
                let _ = writeln!(out, "  security     {}", l.security_groups.iter().cloned().collect::<Vec<_>>().join(", "));
            }
        }
        if let Some(rules) = &s.backend_rules {
            let from = match rules.source {
                model::BackendSource::SharedBackendGroup => {
                    format!("shared group {} (attached)", model::names::backend_security_group(cluster))
                }
                model::BackendSource::ManagedGroup => "the managed group".to_string(),
            };
            let ports: std::collections::BTreeSet<i32> = s.target_groups.iter().flat_map(|tg| tg.backend_ports()).collect();
            let on = if rules.all_ports {
                "every TCP port".to_string()
            } else if ports.is_empty() {
                "no port yet (no targets)".to_string()
            } else {
                ports.iter().map(|p| format!("tcp/{p}")).collect::<Vec<_>>().join(", ")
            };
            let _ = writeln!(out, "  backend      the targets' security groups allow {from} on {on}");
        }
        let _ = writeln!(out, "  tags         {}", l.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "));
        for listener in &s.listeners {
            let certs = if listener.certificates.is_empty() {
                String::new()
            } else {
                format!("  certificates {}", listener.certificates.join(", "))
            };
            let _ = writeln!(out, "  Listener {}:{}{certs}", listener.protocol.as_str(), listener.port);
            for r in &listener.rules {
                let conds: Vec<String> = r.conditions.iter().map(describe_condition).collect();
                let rewrites: String = r
                    .transforms
                    .iter()
                    .map(|t| match t {
                        model::Transform::HostHeaderRewrite { regex, replace } => format!(" rewriting host {regex} to {replace}"),
                        model::Transform::UrlRewrite { regex, replace } => format!(" rewriting url {regex} to {replace}"),
                    })
                    .collect();
                let _ = writeln!(out, "    {:>3}  {}  ->{rewrites} {}", r.priority, conds.join(" AND "), describe_action(&r.action));
            }
            let _ = writeln!(out, "    default  -> {}", describe_action(&listener.default_action));
        }
        for tg in &s.target_groups {
            let hc = &tg.health_check;
            let _ = writeln!(
                out,
                "  Target group {}  ({}, {}:{} {}, health check {} {} every {}s)",
                tg.name,
                tg.target_type.as_str(),
                tg.protocol.as_str(),
                tg.port,
                tg.protocol_version,
                hc.path,
                hc.success_codes,
                hc.interval_seconds
            );
            // Shown only where they differ from the load balancer's (a Service's own `tags`).
            let user = |t: &BTreeMap<String, String>| {
                t.iter()
                    .filter(|(k, _)| k.as_str() != model::TAG_RESOURCE && k.as_str() != model::TAG_GATEWAY_RESOURCE)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
            };
            if user(&tg.tags) != user(&l.tags) {
                let _ = writeln!(out, "    tags       {}", user(&tg.tags).join(", "));
            }
            match &tg.targets {
                None => {
                    let _ =
                        writeln!(out, "    (targets unknown: no EndpointSlice for the Service; registered targets are left as they are)");
                }
                Some(t) if t.is_empty() => {
                    let _ = writeln!(out, "    (no targets)");
                }
                Some(targets) => {
                    for t in targets {
                        let _ = writeln!(out, "    target {}:{}", t.id, t.port);
                    }
                }
            }
        }
        out.push('\n');
    }
    for problem in &p.problems {
        let _ = writeln!(out, "Warning  {}  {}: {}", problem.reason, problem.ingress, problem.message);
    }
    out
}
