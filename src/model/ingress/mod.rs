//! The Ingress front-end: an IngressGroup's Ingresses, their annotations and
//! IngressClassParams, translated into intents for the stack builders.
//!
//! A member Ingress with a problem (bad annotation, conflicting exclusive setting, no
//! certificate, …) is left out and reported; the others still make the stack.

mod backends;
mod paths;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;

use super::intent::{
    self, Certificate, LoadBalancerIntent, MemberIntent, Route, SecurityGroupInfo, Subnet, SubnetChoice, Wording, World, problem,
    setting_warning,
};
use super::stack::{self, Built};
use super::*;
use crate::k8s::annotations::{self, IngressConfig};
use crate::k8s::params::IngressClassParamsSpec;

pub use backends::BackendRef;
pub use paths::sorted as sorted_paths;

pub struct Inputs<'a> {
    pub cluster: &'a str,
    pub group: GroupId,
    /// Member Ingresses, in any order.
    pub members: Vec<&'a Ingress>,
    pub services: &'a BTreeMap<ObjKey, Service>,
    /// EndpointSlices by the Service they belong to.
    pub endpoint_slices: &'a BTreeMap<ObjKey, Vec<Arc<EndpointSlice>>>,
    pub subnets: &'a [Subnet],
    pub certificates: &'a [Certificate],
    /// The VPC's security groups (only needed when `security-groups` is used).
    pub security_groups: &'a [SecurityGroupInfo],
    /// Secrets' data by Secret, for OIDC client credentials.
    pub secrets: &'a BTreeMap<ObjKey, BTreeMap<String, String>>,
    /// Nodes, for `instance` targets.
    pub nodes: &'a [Arc<Node>],
    /// Controller-wide settings (flags).
    pub options: Options,
    /// Pods whose containers are ready and whose only wait is one of our readiness gates:
    /// their (not yet ready) endpoints are registered, so the gate can turn True.
    pub gated_pods: &'a BTreeSet<ObjKey>,
    /// Each member's IngressClassParams, if its class has some (an error if they are
    /// referenced but cannot be used).
    pub params: &'a BTreeMap<ObjKey, Result<IngressClassParamsSpec, String>>,
}

impl<'a> Inputs<'a> {
    fn world(&'a self) -> World<'a> {
        World {
            cluster: self.cluster,
            group: &self.group,
            endpoint_slices: self.endpoint_slices,
            subnets: self.subnets,
            certificates: self.certificates,
            security_groups: self.security_groups,
            nodes: self.nodes,
            gated_pods: self.gated_pods,
            options: self.options,
        }
    }
}

/// How an Ingress's settings are named in messages: by their annotations.
pub const WORDING: Wording = Wording {
    member: "Ingress",
    tags: "annotation alb.ingress.kubernetes.io/tags",
    subnets: "annotation alb.ingress.kubernetes.io/subnets",
    subnet_tags: "IngressClassParams spec.subnets.tags",
    security_groups: "annotation alb.ingress.kubernetes.io/security-groups",
    certificate_arn: "annotation alb.ingress.kubernetes.io/certificate-arn",
    certificate_hint: "set annotation alb.ingress.kubernetes.io/certificate-arn, or add spec.tls hosts matched by an ISSUED ACM certificate",
    ssl_redirect: "annotation alb.ingress.kubernetes.io/ssl-redirect",
    manage_backend_security_group_rules: "annotation alb.ingress.kubernetes.io/manage-backend-security-group-rules",
    target_group_attributes: "annotation alb.ingress.kubernetes.io/target-group-attributes",
    healthcheck_port: "annotation alb.ingress.kubernetes.io/healthcheck-port",
    target_type_hint: "or use annotation alb.ingress.kubernetes.io/target-type: ip",
};

type Parsed<'a> = (&'a Ingress, ObjKey, IngressConfig);

pub fn build(inputs: &Inputs) -> Built {
    let world = inputs.world();
    let mut out = Built::default();
    let mut members = Vec::new();
    for ing in &inputs.members {
        let key = ing_key(ing);
        let empty = BTreeMap::new();
        let parsed = annotations::parse(ing.metadata.annotations.as_ref().unwrap_or(&empty))
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            .and_then(|mut cfg| {
                match inputs.params.get(&key) {
                    Some(Ok(p)) => annotations::apply_params(&mut cfg, p)?,
                    Some(Err(e)) => return Err(e.clone()),
                    None => {}
                }
                Ok(cfg)
            });
        let parsed = parsed.and_then(|cfg| own_settings_resolve(inputs, &cfg).map(|()| cfg));
        match parsed {
            Ok(mut cfg) => {
                out.warnings.extend(cfg.warnings.drain(..).map(|w| setting_warning(&key, w.to_string())));
                members.push((*ing, key, cfg))
            }
            Err(message) => out.problems.push(problem(&key, message)),
        }
    }
    // LBC's order: group.order, then namespace/name.
    members.sort_by(|a, b| (a.2.group_order, &a.1).cmp(&(b.2.group_order, &b.1)));
    let members = drop_order_clashes(members, &mut out.problems);
    let (members, group_cfg) = merge_exclusive(members, &mut out.problems);

    // Each member on its own: backends, rules, ports. A failure leaves that member out.
    let mut built: Vec<MemberIntent> = Vec::new();
    for (ing, key, cfg) in members {
        match build_member(inputs, &world, ing, key.clone(), cfg) {
            Ok(m) => built.push(m),
            Err(message) => out.problems.push(problem(&key, message)),
        }
    }
    // One default backend per load balancer (LBC refuses a second one).
    let mut default_owner: Option<ObjKey> = None;
    built.retain(|m| {
        if m.default_action.is_none() {
            return true;
        }
        match &default_owner {
            Some(owner) => {
                out.problems.push(problem(&m.key, format!("spec.defaultBackend: the group's default backend is already set by {owner}")));
                false
            }
            None => {
                default_owner = Some(m.key.clone());
                true
            }
        }
    });
    stack::assemble(&world, &WORDING, load_balancer_intent(group_cfg), built, &mut out);
    out
}

/// The group's agreed settings as the stack builders take them.
fn load_balancer_intent(cfg: IngressConfig) -> LoadBalancerIntent {
    let subnets = match (cfg.subnets, cfg.subnet_tags) {
        (Some(names), _) => Some(SubnetChoice::Named(names)),
        (None, Some(tags)) => Some(SubnetChoice::Tagged(tags)),
        (None, None) => None,
    };
    LoadBalancerIntent {
        scheme: cfg.scheme,
        ip_address_type: cfg.ip_address_type,
        name: cfg.load_balancer_name,
        subnets,
        inbound_cidrs: cfg.inbound_cidrs,
        ssl_redirect: cfg.ssl_redirect,
        ssl_policy: cfg.ssl_policy,
        attributes: cfg.load_balancer_attributes,
        security_groups: cfg.security_groups,
        manage_backend_security_group_rules: cfg.manage_backend_security_group_rules,
    }
}

/// The settings of one member that name or size AWS things, checked on that member alone so
/// that a bad one leaves only it out: its `subnets` and `security-groups` must exist, its
/// load balancer attributes be in range.
fn own_settings_resolve(inputs: &Inputs, cfg: &IngressConfig) -> Result<(), String> {
    if let Some(names) = &cfg.subnets {
        load_balancer::subnets(inputs.subnets, Scheme::Internal, inputs.cluster, &SubnetChoice::Named(names.clone()), &WORDING)?;
    }
    if let Some(tags) = &cfg.subnet_tags {
        load_balancer::subnets(inputs.subnets, Scheme::Internal, inputs.cluster, &SubnetChoice::Tagged(tags.clone()), &WORDING)?;
    }
    if let Some(wanted) = &cfg.security_groups {
        security_groups::resolve(inputs.security_groups, wanted, &WORDING)?;
    }
    if let Some(attrs) = &cfg.load_balancer_attributes {
        limits::check_attributes(attrs, &format!("{}load-balancer-attributes", annotations::PREFIX))?;
    }
    for (port, attrs) in &cfg.listener_attributes {
        limits::check_attributes(attrs, &format!("{}listener-attributes (port {port})", annotations::PREFIX))?;
    }
    Ok(())
}

/// A setting as a user wrote it (`"internet-facing"`, `["a","b"]`, `443`), for messages.
fn shown(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Two members may not claim the same explicit `group.order`.
fn drop_order_clashes<'a>(members: Vec<Parsed<'a>>, problems: &mut Vec<Problem>) -> Vec<Parsed<'a>> {
    let mut seen: BTreeMap<i64, ObjKey> = BTreeMap::new();
    members
        .into_iter()
        .filter(|(_, key, cfg)| {
            if cfg.group_order == 0 {
                return true;
            }
            match seen.get(&cfg.group_order) {
                Some(first) => {
                    problems.push(problem(
                        key,
                        format!("annotation {}group.order: order {} is already used by {first}", annotations::PREFIX, cfg.group_order),
                    ));
                    false
                }
                None => {
                    seen.insert(cfg.group_order, key.clone());
                    true
                }
            }
        })
        .collect()
}
/// Load-balancer-wide settings every member must agree on (LBC's "Exclusive" merge):
/// the first member (in group order) that sets one wins; a member setting another value
/// is left out and told which Ingress it conflicts with.
fn merge_exclusive<'a>(members: Vec<Parsed<'a>>, problems: &mut Vec<Problem>) -> (Vec<Parsed<'a>>, IngressConfig) {
    let mut group = members.first().map(|m| m.2.clone()).unwrap_or_else(|| annotations::parse(&BTreeMap::new()).expect("empty parses"));
    let mut owners: BTreeMap<&'static str, ObjKey> = BTreeMap::new();
    let mut kept = Vec::new();
    for (ing, key, cfg) in members {
        let mut conflicts = Vec::new();
        macro_rules! exclusive {
            ($field:ident, $name:literal) => {
                if let Some(v) = &cfg.$field {
                    match owners.get($name) {
                        Some(owner) if group.$field.as_ref() != Some(v) => conflicts.push(format!(
                            "annotation {}{}: {} conflicts with {} set by {owner}",
                            annotations::PREFIX,
                            $name,
                            shown(v),
                            shown(group.$field.as_ref().unwrap())
                        )),
                        Some(_) => {}
                        None => {
                            owners.insert($name, key.clone());
                            group.$field = Some(v.clone());
                        }
                    }
                }
            };
        }
        exclusive!(scheme, "scheme");
        exclusive!(ip_address_type, "ip-address-type");
        exclusive!(load_balancer_name, "load-balancer-name");
        exclusive!(subnets, "subnets");
        exclusive!(subnet_tags, "subnets");
        exclusive!(inbound_cidrs, "inbound-cidrs");
        exclusive!(ssl_redirect, "ssl-redirect");
        exclusive!(ssl_policy, "ssl-policy");
        exclusive!(load_balancer_attributes, "load-balancer-attributes");
        exclusive!(security_groups, "security-groups");
        exclusive!(manage_backend_security_group_rules, "manage-backend-security-group-rules");
        if conflicts.is_empty() {
            kept.push((ing, key, cfg));
        } else {
            problems.push(problem(&key, conflicts.join("; ")));
        }
    }
    // Fields nobody set stay unset (defaults apply), even if the first member was dropped.
    macro_rules! unset_unowned {
        ($($field:ident, $name:literal);*) => { $( if !owners.contains_key($name) { group.$field = None; } )* };
    }
    unset_unowned!(scheme, "scheme"; ip_address_type, "ip-address-type"; load_balancer_name, "load-balancer-name"; subnets, "subnets";
        subnet_tags, "subnets"; load_balancer_attributes, "load-balancer-attributes"; security_groups, "security-groups";
        inbound_cidrs, "inbound-cidrs"; ssl_redirect, "ssl-redirect"; ssl_policy, "ssl-policy";
        manage_backend_security_group_rules, "manage-backend-security-group-rules");
    (kept, group)
}

fn build_member(inputs: &Inputs, world: &World, ing: &Ingress, key: ObjKey, cfg: IngressConfig) -> Result<MemberIntent, String> {
    let spec = ing.spec.as_ref();
    let has_tls = spec.and_then(|s| s.tls.as_ref()).is_some_and(|t| !t.is_empty());
    let ports = cfg.listen_ports.clone().unwrap_or_else(|| {
        if has_tls || !cfg.certificate_arns.is_empty() { vec![(Protocol::Https, 443)] } else { vec![(Protocol::Http, 80)] }
    });
    let mut b = backends::Backends { inputs, world, ing, key: &key, cfg: &cfg, target_groups: Vec::new(), warnings: Vec::new() };
    let default_action = match spec.and_then(|s| s.default_backend.as_ref()) {
        Some(backend) => Some(b.action(backend)?),
        None => None,
    };
    let mut routes = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let Some(http) = rule.http.as_ref() else { continue };
        for path in paths::sorted(&http.paths) {
            let extra = path.backend.service.as_ref().and_then(|s| cfg.conditions.get(&s.name)).cloned().unwrap_or_default();
            let conditions = paths::conditions(rule.host.as_deref(), path, extra, cfg.use_regex_path_match)?;
            let written = match rule.host.as_deref().filter(|h| !h.is_empty()) {
                Some(host) => {
                    format!("host {:?} path {:?}", intent::shortened(host), intent::shortened(path.path.as_deref().unwrap_or("")))
                }
                None => format!("path {:?}", intent::shortened(path.path.as_deref().unwrap_or(""))),
            };
            limits::check_conditions(&conditions, &written)?;
            let action = b.action(&path.backend)?;
            limits::check_action(&action)?;
            let auth = b.auth(&path.backend)?;
            routes.push(Route { from: key.clone(), written, conditions, auth, action, transforms: Vec::new(), port: None, rank: None });
        }
    }
    let (target_groups, warnings) = (b.target_groups, b.warnings);
    Ok(MemberIntent {
        ports,
        default_action,
        routes,
        target_groups,
        certificate_hosts: certificate_hosts(ing),
        certificate_arns: cfg.certificate_arns,
        tags: cfg.tags,
        listener_attributes: cfg.listener_attributes,
        sets_ssl_redirect: cfg.ssl_redirect.is_some(),
        sets_backend_security_group_rules: cfg.manage_backend_security_group_rules == Some(true),
        warnings,
        key,
    })
}

/// The hosts certificates are discovered for: TLS hosts and rule hosts both, as LBC
/// discovers them.
fn certificate_hosts(ing: &Ingress) -> Vec<String> {
    let spec = ing.spec.as_ref();
    let mut hosts: Vec<String> =
        spec.and_then(|s| s.tls.as_ref()).into_iter().flatten().flat_map(|t| t.hosts.iter().flatten()).cloned().collect();
    hosts.extend(spec.and_then(|s| s.rules.as_ref()).into_iter().flatten().filter_map(|r| r.host.clone()));
    hosts.sort();
    hosts.dedup();
    hosts
}

fn ing_key(ing: &Ingress) -> ObjKey {
    ObjKey { namespace: ing.metadata.namespace.clone().unwrap_or_default(), name: ing.metadata.name.clone().unwrap_or_default() }
}
