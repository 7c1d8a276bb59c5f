//! Ingresses + Services + EndpointSlices + discovery results in, a `Stack` out.
//! Pure: no clients, no clock, no I/O.
//!
//! A member Ingress with a problem (bad annotation, conflicting exclusive setting, no
//! certificate, …) is left out and reported; the others still make the stack.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::limits::{self, MAX_RULES};
use super::*;
use crate::k8s::annotations::{self, ActionSpec, AuthIdp, IngressConfig, TargetRef};
use crate::k8s::params::IngressClassParamsSpec;

/// A subnet as discovery found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Subnet {
    pub id: String,
    pub availability_zone: String,
    #[serde(default)]
    pub tags: Tags,
}

/// A security group of the VPC, for `security-groups` given by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroupInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub name_tag: Option<String>,
}

/// An ISSUED ACM certificate: its ARN and every name it covers (domain + SANs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Certificate {
    pub arn: String,
    pub domains: Vec<String>,
}

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
const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";
/// ALB quota checked before AWS is called (the others are in `limits`).
const MAX_CERTIFICATES: usize = 25;
/// The tags the controller adds to every resource: cluster, stack, resource.
const OWN_TAGS: usize = 3;

/// One valid member and what it contributes.
struct Member<'a> {
    ing: &'a Ingress,
    key: ObjKey,
    cfg: IngressConfig,
    ports: Vec<(Protocol, i32)>,
    default_action: Option<Action>,
    /// In this Ingress's own order.
    rules: Vec<RuleParts>,
    target_groups: Vec<TargetGroup>,
    warnings: Vec<Problem>,
}

fn problem(key: &ObjKey, message: String) -> Problem {
    Problem { ingress: key.clone(), reason: "FailedBuildModel", message }
}

/// An annotation accepted with a remark (a JSON key LBC would ignore too): the build went on.
fn annotation_warning(key: &ObjKey, message: String) -> Problem {
    Problem { ingress: key.clone(), reason: "AnnotationWarning", message }
}

pub fn build(inputs: &Inputs) -> Built {
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
                out.warnings.extend(cfg.warnings.drain(..).map(|w| annotation_warning(&key, w.to_string())));
                members.push((*ing, key, cfg))
            }
            Err(message) => out.problems.push(problem(&key, message)),
        }
    }
    // LBC's order: group.order, then namespace/name.
    members.sort_by(|a, b| (a.2.group_order, &a.1).cmp(&(b.2.group_order, &b.1)));
    let members = drop_order_clashes(members, &mut out.problems);
    let (members, mut group_cfg) = merge_exclusive(members, &mut out.problems);

    // Each member on its own: backends, rules, ports. A failure leaves that member out.
    let mut built: Vec<Member> = Vec::new();
    for (ing, key, cfg) in members {
        match build_member(inputs, ing, key.clone(), cfg) {
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
    // A tag has one value for the whole load balancer (LBC refuses conflicting ones).
    let mut tag_owner: BTreeMap<String, (String, ObjKey)> = BTreeMap::new();
    built.retain(|m| {
        for (k, v) in &m.cfg.tags {
            if let Some((other, owner)) = tag_owner.get(k)
                && other != v
            {
                out.problems.push(problem(
                    &m.key,
                    format!("annotation {}tags: {k}={v} conflicts with {k}={other} set by {owner}", annotations::PREFIX),
                ));
                return false;
            }
        }
        let merged = tag_owner.len() + m.cfg.tags.keys().filter(|k| !tag_owner.contains_key(*k)).count();
        if merged + OWN_TAGS > limits::MAX_TAGS {
            out.problems.push(problem(
                &m.key,
                format!(
                    "annotation {}tags: with this Ingress's tags the load balancer would have {} tags (with the controller's own); AWS allows {}",
                    annotations::PREFIX,
                    merged + OWN_TAGS,
                    limits::MAX_TAGS
                ),
            ));
            return false;
        }
        for (k, v) in &m.cfg.tags {
            tag_owner.entry(k.clone()).or_insert_with(|| (v.clone(), m.key.clone()));
        }
        true
    });
    // A port is HTTP or HTTPS for the whole load balancer: later members may not flip it.
    let mut listeners: BTreeMap<i32, Protocol> = BTreeMap::new();
    built.retain(|m| {
        for &(protocol, port) in &m.ports {
            if let Some(&p) = listeners.get(&port)
                && p != protocol
            {
                out.problems.push(problem(&m.key, format!("listen port {port} is {} in another Ingress of the group", p.as_str())));
                return false;
            }
        }
        for &(protocol, port) in &m.ports {
            listeners.insert(port, protocol);
        }
        true
    });
    if built.is_empty() {
        return out;
    }

    let scheme = group_cfg.scheme.unwrap_or(Scheme::Internal);
    let chosen = match (&group_cfg.subnets, &group_cfg.subnet_tags) {
        (Some(names), _) => SubnetChoice::Named(names),
        (None, Some(tags)) => SubnetChoice::Tagged(tags),
        (None, None) => SubnetChoice::Discover,
    };
    let subnets = match select_subnets(inputs.subnets, scheme, inputs.cluster, chosen) {
        Ok(s) => s,
        Err(message) => {
            out.problems.extend(built.iter().map(|m| problem(&m.key, message.clone())));
            return out;
        }
    };

    let mut certificates = match certificates(inputs, &built, &listeners) {
        Ok(c) => c,
        Err(problems) => {
            let bad: BTreeSet<ObjKey> = problems.iter().map(|p| p.ingress.clone()).collect();
            out.problems.extend(problems);
            built.retain(|m| !bad.contains(&m.key));
            listeners.retain(|port, _| built.iter().any(|m| m.ports.iter().any(|(_, p)| p == port)));
            if built.is_empty() {
                return out;
            }
            certificates(inputs, &built, &listeners).unwrap_or_default()
        }
    };
    if let Some(port) = group_cfg.ssl_redirect
        && listeners.get(&port) != Some(&Protocol::Https)
    {
        // The members that ask for it are left out; the others do not redirect.
        let msg = format!("annotation {}ssl-redirect: port {port} is not an HTTPS listen port of this load balancer", annotations::PREFIX);
        drop_members(&mut built, &mut listeners, &mut out.problems, |m| m.cfg.ssl_redirect.is_some(), &msg);
        group_cfg.ssl_redirect = None;
        if built.is_empty() {
            return out;
        }
        certificates = self::certificates(inputs, &built, &listeners).unwrap_or_default();
    }

    let custom_sgs = match &group_cfg.security_groups {
        Some(wanted) => match resolve_security_groups(inputs.security_groups, wanted) {
            Ok(ids) => ids,
            Err(message) => {
                out.problems.extend(built.iter().map(|m| problem(&m.key, message.clone())));
                return out;
            }
        },
        None => BTreeSet::new(),
    };
    // As LBC: a managed security group comes with rules on the targets' groups; named
    // groups only with manage-backend-security-group-rules, which needs the shared group.
    let all_ports = inputs.options.unrestricted_sg_rules;
    let backend_rules = if custom_sgs.is_empty() {
        let source = if inputs.options.backend_security_group { BackendSource::SharedBackendGroup } else { BackendSource::ManagedGroup };
        Some(BackendRules { source, all_ports })
    } else if group_cfg.manage_backend_security_group_rules == Some(true) && !inputs.options.backend_security_group {
        // The members that ask for it are left out; the others need no backend rules.
        let msg = format!(
            "annotation {}manage-backend-security-group-rules: needs the shared backend security group, which --enable-backend-security-group=false turns off",
            annotations::PREFIX
        );
        drop_members(&mut built, &mut listeners, &mut out.problems, |m| m.cfg.manage_backend_security_group_rules == Some(true), &msg);
        if built.is_empty() {
            return out;
        }
        certificates = self::certificates(inputs, &built, &listeners).unwrap_or_default();
        None
    } else if group_cfg.manage_backend_security_group_rules == Some(true) {
        Some(BackendRules { source: BackendSource::SharedBackendGroup, all_ports })
    } else {
        None
    };

    // The rules quota: in group order, a member whose rules do not fit is left out.
    if rule_count(&built, &listeners, group_cfg.ssl_redirect) > MAX_RULES {
        let mut kept: Vec<Member> = Vec::new();
        for m in std::mem::take(&mut built) {
            kept.push(m);
            let total = rule_count(&kept, &listeners, group_cfg.ssl_redirect);
            if total > MAX_RULES {
                let m = kept.pop().expect("just pushed");
                let msg = format!(
                    "with this Ingress's {} rules the load balancer would have {total} rules; an ALB allows {MAX_RULES} (default rules not counted)",
                    m.rules.len()
                );
                out.problems.push(problem(&m.key, msg));
            }
        }
        built = kept;
        listeners.retain(|port, _| built.iter().any(|m| m.ports.iter().any(|(_, p)| p == port)));
        if built.is_empty() {
            return out;
        }
        certificates = self::certificates(inputs, &built, &listeners).unwrap_or_default();
    }

    let mut tags = Tags::new();
    for m in &built {
        tags.extend(m.cfg.tags.clone());
    }
    let base = Stack::base_tags(inputs.cluster, &inputs.group);
    let with = |resource: &str| {
        let mut t = tags.clone();
        t.extend(base.clone());
        t.insert(TAG_RESOURCE.to_string(), resource.to_string());
        t
    };

    let default_action = built.iter().find_map(|m| m.default_action.clone()).unwrap_or_else(|| Action::fixed("404"));
    let mut listener_list = Vec::new();
    for (&port, &protocol) in &listeners {
        let redirect = group_cfg.ssl_redirect.filter(|_| protocol == Protocol::Http);
        let mut rules = Vec::new();
        if redirect.is_none() {
            for m in built.iter().filter(|m| m.ports.iter().any(|&(_, p)| p == port)) {
                rules.extend(m.rules.iter().cloned());
            }
        }
        let (rules, unreachable) = optimize(rules, protocol, port);
        out.warnings.extend(unreachable);
        listener_list.push(Listener {
            port,
            protocol,
            certificates: if protocol == Protocol::Https { certificates.clone() } else { Vec::new() },
            ssl_policy: (protocol == Protocol::Https).then(|| group_cfg.ssl_policy.clone().unwrap_or_else(|| DEFAULT_SSL_POLICY.into())),
            // Merged across the group's members; the first in group order wins a key.
            attributes: built.iter().rev().filter_map(|m| m.cfg.listener_attributes.get(&port)).fold(Tags::new(), |mut acc, a| {
                acc.extend(a.clone());
                acc
            }),
            default_action: match redirect {
                Some(to) => Action::Redirect {
                    protocol: Some("HTTPS".into()),
                    port: Some(to.to_string()),
                    host: None,
                    path: None,
                    query: None,
                    status_code: "HTTP_301".into(),
                },
                None => default_action.clone(),
            },
            rules: rules
                .into_iter()
                .enumerate()
                .map(|(i, r)| Rule {
                    priority: i as i32 + 1,
                    from: r.from.clone(),
                    conditions: r.conditions,
                    // ALBs authenticate on HTTPS listeners only.
                    auth: r.auth.filter(|_| protocol == Protocol::Https),
                    action: r.action,
                    // A rule carries its own Ingress's tags, not the group's (as LBC).
                    tags: {
                        let mut t = built.iter().find(|m| m.key == r.from).map_or_else(|| tags.clone(), |m| m.cfg.tags.clone());
                        t.extend(base.clone());
                        t.insert(TAG_RESOURCE.to_string(), format!("{port}:{}", i + 1));
                        t
                    },
                })
                .collect(),
            tags: with(&port.to_string()),
        });
    }

    let cidrs = group_cfg.inbound_cidrs.clone().unwrap_or_else(|| {
        let mut c = vec!["0.0.0.0/0".to_string()];
        // As LBC, both dual-stack types open IPv6 too.
        if group_cfg.ip_address_type.as_deref().is_some_and(|t| t.starts_with("dualstack")) {
            c.push("::/0".into());
        }
        c
    });
    let ingress = listeners
        .keys()
        .flat_map(|&port| {
            cidrs.iter().map(move |cidr| Permission { protocol: "tcp".into(), from_port: port, to_port: port, cidr: cidr.clone() })
        })
        .collect();

    let mut target_groups: BTreeMap<String, TargetGroup> = BTreeMap::new();
    for m in &mut built {
        for mut tg in m.target_groups.drain(..) {
            // Its own tags (its Ingress's and Service's, see service_target_group), not the group's.
            tg.tags.extend(base.clone());
            tg.tags.insert(TAG_RESOURCE.to_string(), tg.resource_id.clone());
            // One target group per Ingress and Service port, as LBC (an Ingress naming a
            // Service port twice uses one).
            target_groups.entry(tg.name.clone()).or_insert(tg);
        }
        out.warnings.append(&mut m.warnings);
    }
    // One Event per warning, however many backends share the annotation that caused it.
    let mut seen = BTreeSet::new();
    out.warnings.retain(|w| seen.insert((w.ingress.clone(), w.message.clone())));
    out.stack = Some(Stack {
        group: inputs.group.clone(),
        load_balancer: LoadBalancer {
            name: group_cfg
                .load_balancer_name
                .clone()
                .unwrap_or_else(|| names::load_balancer(inputs.cluster, &inputs.group, scheme.as_str())),
            scheme,
            ip_address_type: group_cfg.ip_address_type.clone().unwrap_or_else(|| "ipv4".into()),
            subnets,
            security_groups: custom_sgs.clone(),
            attributes: group_cfg.load_balancer_attributes.clone().unwrap_or_default(),
            tags: with("LoadBalancer"),
        },
        security_group: custom_sgs.is_empty().then(|| SecurityGroup {
            name: names::security_group(inputs.cluster, &inputs.group),
            description: "[k8s] Managed SecurityGroup for LoadBalancer".into(),
            ingress,
            tags: with(RESOURCE_MANAGED_SG),
        }),
        listeners: listener_list,
        target_groups: target_groups.into_values().collect(),
        backend_rules,
    });
    out
}

type Parsed<'a> = (&'a Ingress, ObjKey, IngressConfig);

/// The settings of one member that name or size AWS things, checked on that member alone so
/// that a bad one leaves only it out: its `subnets` and `security-groups` must exist, its
/// load balancer attributes be in range.
fn own_settings_resolve(inputs: &Inputs, cfg: &IngressConfig) -> Result<(), String> {
    if let Some(names) = &cfg.subnets {
        select_subnets(inputs.subnets, Scheme::Internal, inputs.cluster, SubnetChoice::Named(names))?;
    }
    if let Some(tags) = &cfg.subnet_tags {
        select_subnets(inputs.subnets, Scheme::Internal, inputs.cluster, SubnetChoice::Tagged(tags))?;
    }
    if let Some(wanted) = &cfg.security_groups {
        resolve_security_groups(inputs.security_groups, wanted)?;
    }
    if let Some(attrs) = &cfg.load_balancer_attributes {
        limits::check_attributes(attrs, &format!("{}load-balancer-attributes", annotations::PREFIX))?;
    }
    for (port, attrs) in &cfg.listener_attributes {
        limits::check_attributes(attrs, &format!("{}listener-attributes (port {port})", annotations::PREFIX))?;
    }
    Ok(())
}

/// Leaves out the members `bad` picks, with `message`, and the listeners only they had.
fn drop_members(
    built: &mut Vec<Member>,
    listeners: &mut BTreeMap<i32, Protocol>,
    problems: &mut Vec<Problem>,
    bad: impl Fn(&Member) -> bool,
    message: &str,
) {
    built.retain(|m| {
        if bad(m) {
            problems.push(problem(&m.key, message.to_string()));
        }
        !bad(m)
    });
    listeners.retain(|port, _| built.iter().any(|m| m.ports.iter().any(|(_, p)| p == port)));
}

/// How many rules the listeners would have: each listener's members' rules, optimized
/// (none on an HTTP listener that redirects to HTTPS).
fn rule_count(built: &[Member], listeners: &BTreeMap<i32, Protocol>, ssl_redirect: Option<i32>) -> usize {
    listeners
        .iter()
        .filter(|(_, protocol)| ssl_redirect.is_none() || **protocol == Protocol::Https)
        .map(|(&port, &protocol)| {
            let rules = built.iter().filter(|m| m.ports.iter().any(|&(_, p)| p == port)).flat_map(|m| m.rules.iter().cloned()).collect();
            optimize(rules, protocol, port).0.len()
        })
        .sum()
}

/// One listener rule before it gets its priority.
#[derive(Clone)]
struct RuleParts {
    /// The Ingress it comes from, and its host and path as written there, for messages.
    from: ObjKey,
    written: String,
    conditions: Vec<Condition>,
    auth: Option<Authenticate>,
    action: Action,
}

/// As LBC's rule optimizer (pkg/ingress/rule_optimizer.go): a redirect that would
/// redirect to itself is dropped (`actions.ssl-redirect` on the HTTPS listener), and so
/// is a rule an earlier redirect already answers (the rules after `ssl-redirect` on the
/// HTTP listener). Every other rule is kept, even one an earlier rule leaves unreachable
/// (an ALB LBC made keeps its rules); that one gets a warning naming the earlier rule.
fn optimize(rules: Vec<RuleParts>, protocol: Protocol, port: i32) -> (Vec<RuleParts>, Vec<Problem>) {
    let mut kept: Vec<RuleParts> = Vec::new();
    let mut warnings = Vec::new();
    for rule in rules {
        if redirects_to_itself(&rule, protocol, port)
            || kept.iter().any(|k| matches!(k.action, Action::Redirect { .. }) && answers_all(&k.conditions, &rule.conditions))
        {
            continue;
        }
        if let Some((i, earlier)) = kept.iter().enumerate().find(|(_, k)| answers_all(&k.conditions, &rule.conditions)) {
            warnings.push(Problem {
                ingress: rule.from.clone(),
                reason: "UnreachableRule",
                message: format!(
                    "the rule for {} on port {port} can never match: rule {} of the listener, for {} of {}, matches every request it would (kept, as LBC keeps it)",
                    rule.written,
                    i + 1,
                    earlier.written,
                    earlier.from
                ),
            });
        }
        kept.push(rule);
    }
    (kept, warnings)
}

/// LBC's `isInfiniteRedirectRule`: every part of the redirect target is the request's own
/// (unset, the `#{…}` placeholder, or a value the rule's conditions require).
fn redirects_to_itself(rule: &RuleParts, protocol: Protocol, port: i32) -> bool {
    let Action::Redirect { protocol: to_protocol, port: to_port, host, path, query, .. } = &rule.action else { return false };
    let mut hosts = Vec::new();
    let mut paths = Vec::new();
    for c in &rule.conditions {
        match c {
            Condition::HostHeader(v) => hosts.extend(v),
            Condition::PathPattern(v) => paths.extend(v),
            // A regular expression cannot be compared with a redirect path.
            Condition::PathRegex(_) => return false,
            _ => {}
        }
    }
    host.as_ref().is_none_or(|h| h == "#{host}" || hosts.contains(&h))
        && path.as_ref().is_none_or(|p| p == "/#{path}" || paths.contains(&p))
        && to_port.as_deref().is_none_or(|p| p == "#{port}" || p == port.to_string())
        && to_protocol.as_deref().is_none_or(|p| p == "#{protocol}" || p == protocol.as_str())
        && query.as_deref().is_none_or(|q| q == "#{query}")
}

/// Whether a rule with conditions `earlier` matches every request `later` matches, judged
/// as LBC's `isSupersetConditions`: only host and path conditions, compared as sets of
/// values (`/*` covers every path); any other condition on `earlier` narrows it.
fn answers_all(earlier: &[Condition], later: &[Condition]) -> bool {
    type Values<'c> = (BTreeSet<&'c String>, BTreeSet<(bool, &'c String)>);
    fn values(conditions: &[Condition], strict: bool) -> Option<Values<'_>> {
        let (mut hosts, mut paths) = (BTreeSet::new(), BTreeSet::new());
        for c in conditions {
            match c {
                Condition::HostHeader(v) => hosts.extend(v),
                Condition::PathPattern(v) => paths.extend(v.iter().map(|p| (false, p))),
                Condition::PathRegex(v) => paths.extend(v.iter().map(|p| (true, p))),
                _ if strict => return None,
                _ => {}
            }
        }
        Some((hosts, paths))
    }
    let (Some((e_hosts, e_paths)), Some((l_hosts, l_paths))) = (values(earlier, true), values(later, false)) else {
        return false;
    };
    let every_path = String::from("/*");
    let hosts = e_hosts.is_empty() || (!l_hosts.is_empty() && e_hosts.is_superset(&l_hosts));
    let paths = e_paths.is_empty() || e_paths.contains(&(false, &every_path)) || (!l_paths.is_empty() && e_paths.is_superset(&l_paths));
    hosts && paths
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

fn build_member<'a>(inputs: &Inputs<'a>, ing: &'a Ingress, key: ObjKey, cfg: IngressConfig) -> Result<Member<'a>, String> {
    let spec = ing.spec.as_ref();
    let has_tls = spec.and_then(|s| s.tls.as_ref()).is_some_and(|t| !t.is_empty());
    let ports = cfg.listen_ports.clone().unwrap_or_else(|| {
        if has_tls || !cfg.certificate_arns.is_empty() { vec![(Protocol::Https, 443)] } else { vec![(Protocol::Http, 80)] }
    });
    let mut m = Member { ing, key, cfg, ports, default_action: None, rules: Vec::new(), target_groups: Vec::new(), warnings: Vec::new() };
    if let Some(backend) = spec.and_then(|s| s.default_backend.as_ref()) {
        m.default_action = Some(backend_action(inputs, &mut m, backend)?);
    }
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let Some(http) = rule.http.as_ref() else { continue };
        for path in sort_paths(&http.paths) {
            let extra = path.backend.service.as_ref().and_then(|s| m.cfg.conditions.get(&s.name)).cloned().unwrap_or_default();
            let conditions = conditions(rule.host.as_deref(), path, extra, m.cfg.use_regex_path_match)?;
            let written = match rule.host.as_deref().filter(|h| !h.is_empty()) {
                Some(host) => format!("host {:?} path {:?}", shortened(host), shortened(path.path.as_deref().unwrap_or(""))),
                None => format!("path {:?}", shortened(path.path.as_deref().unwrap_or(""))),
            };
            limits::check_conditions(&conditions, &written)?;
            let action = backend_action(inputs, &mut m, &path.backend)?;
            limits::check_action(&action)?;
            let auth = rule_auth(inputs, &m, &path.backend)?;
            m.rules.push(RuleParts { from: m.key.clone(), written, conditions, auth, action });
        }
    }
    Ok(m)
}

/// A host or path as messages quote it: a prefix when it is long.
fn shortened(s: &str) -> String {
    const SHOWN: usize = 60;
    if s.chars().count() <= SHOWN { s.to_string() } else { format!("{}…", s.chars().take(SHOWN).collect::<String>()) }
}

fn ing_key(ing: &Ingress) -> ObjKey {
    ObjKey { namespace: ing.metadata.namespace.clone().unwrap_or_default(), name: ing.metadata.name.clone().unwrap_or_default() }
}

/// LBC's bodies of the fixed 503 that stands in for a missing backend.
const NO_SERVICE_BODY: &str = "Backend service does not exist";
const NO_ACTION_BODY: &str = "Backend action does not exist";
/// Ours: LBC fails the build on a missing Service port.
const NO_PORT_BODY: &str = "Backend service port does not exist";

/// The fixed 503 a rule answers while its backend is missing (as LBC's, text/plain).
fn unavailable(body: &str) -> Action {
    Action::FixedResponse { status_code: "503".into(), content_type: Some("text/plain".into()), message_body: Some(body.into()) }
}

/// A warning on the member, once however many rules share its cause.
fn warn(m: &mut Member, message: String) {
    let w = problem(&m.key, message);
    if !m.warnings.contains(&w) {
        m.warnings.push(w);
    }
}

/// The action of an Ingress backend: an `actions.${name}` annotation when the port is
/// `use-annotation`, else a forward to the Service port's target group. A missing
/// annotation, Service or port answers a fixed 503 with a warning (LBC's
/// `--tolerate-non-existent-backend-*`), or fails the member when not tolerated; an
/// invalid annotation is an error (the member is left out).
fn backend_action(inputs: &Inputs, m: &mut Member, backend: &IngressBackend) -> Result<Action, String> {
    let Some(svc_ref) = backend.service.as_ref() else {
        return Err("backend is not a Service; only Service backends are supported".into());
    };
    let port_ref = svc_ref.port.as_ref();
    let port_str = match (port_ref.and_then(|p| p.number), port_ref.and_then(|p| p.name.as_ref())) {
        (Some(n), _) => n.to_string(),
        (None, Some(name)) => name.clone(),
        (None, None) => return Err(format!("backend Service {}/{} has no port", m.key.namespace, svc_ref.name)),
    };
    if port_str == "use-annotation" {
        let Some(spec) = m.cfg.actions.get(&svc_ref.name).cloned() else {
            let missing =
                format!("backend {:?} uses annotation {}actions.{}, which is not set", svc_ref.name, annotations::PREFIX, svc_ref.name);
            if !inputs.options.tolerate_missing_backend_action {
                return Err(missing);
            }
            warn(m, format!("{missing}; its rules answer 503 ({NO_ACTION_BODY:?}) until it is"));
            return Ok(unavailable(NO_ACTION_BODY));
        };
        return match spec {
            ActionSpec::Fixed(action) => Ok(action),
            ActionSpec::Forward { targets, stickiness_seconds } => {
                let mut target_groups = Vec::new();
                for (target, weight) in targets {
                    let target_group = match target {
                        TargetRef::Arn(arn) => arn,
                        // One missing Service makes the whole forward a 503 (LBC fails the
                        // build unless the forward is to that one Service alone).
                        TargetRef::Service { name, port } => match service_target_group(inputs, m, &name, &port)? {
                            Backend::TargetGroup(tg) => tg,
                            Backend::Missing(body) => return Ok(unavailable(body)),
                        },
                    };
                    target_groups.push(WeightedTargetGroup { target_group, weight });
                }
                if let ([one], None) = (target_groups.as_mut_slice(), stickiness_seconds) {
                    one.weight = None;
                }
                Ok(Action::Forward { target_groups, stickiness_seconds })
            }
        };
    }
    Ok(match service_target_group(inputs, m, &svc_ref.name, &port_str)? {
        Backend::TargetGroup(tg) => Action::forward(&tg),
        Backend::Missing(body) => unavailable(body),
    })
}

/// The authentication a backend asks for (`auth-*` on the Ingress or its Service), with
/// the OIDC client credentials read from the named Secret.
fn rule_auth(inputs: &Inputs, m: &Member, backend: &IngressBackend) -> Result<Option<Authenticate>, String> {
    let empty = BTreeMap::new();
    let svc =
        backend.service.as_ref().and_then(|s| inputs.services.get(&ObjKey { namespace: m.key.namespace.clone(), name: s.name.clone() }));
    let cfg = annotations::parse_backend_auth(
        m.ing.metadata.annotations.as_ref().unwrap_or(&empty),
        svc.and_then(|s| s.metadata.annotations.as_ref()).unwrap_or(&empty),
    )
    .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
    let Some(cfg) = cfg else { return Ok(None) };
    Ok(Some(match cfg.idp {
        AuthIdp::Oidc { issuer, authorization_endpoint, token_endpoint, user_info_endpoint, secret_name } => {
            let key = ObjKey { namespace: m.key.namespace.clone(), name: secret_name };
            let data = inputs
                .secrets
                .get(&key)
                .ok_or_else(|| format!("Secret {key} named by annotation {}auth-idp-oidc (secretName) not found", annotations::PREFIX))?;
            let get = |k: &str| data.get(k).ok_or_else(|| format!("Secret {key} has no key {k}"));
            // As LBC: the legacy key clientId too, and a trailing newline (from `echo` or a
            // file) is not part of the credentials.
            let client_id = data
                .get("clientID")
                .or_else(|| data.get("clientId"))
                .ok_or_else(|| format!("Secret {key} has no key clientID"))?
                .trim_end()
                .to_string();
            let client_secret = get("clientSecret")?.trim_end_matches(char::is_control).to_string();
            Authenticate::Oidc {
                issuer,
                authorization_endpoint,
                token_endpoint,
                user_info_endpoint,
                client_id,
                client_secret,
                session: cfg.session,
            }
        }
        AuthIdp::Cognito { user_pool_arn, user_pool_client_id, user_pool_domain } => {
            Authenticate::Cognito { user_pool_arn, user_pool_client_id, user_pool_domain, session: cfg.session }
        }
    }))
}

/// Where a Service backend's requests go.
enum Backend {
    /// The name of its target group.
    TargetGroup(String),
    /// Nowhere: the Service or its port is missing; a fixed 503 with this body.
    Missing(&'static str),
}

/// The target group of a Service port, made on first use; `Missing` (with a warning)
/// when the Service or port does not exist and `--tolerate-non-existent-backend-service`
/// allows it, else an error.
fn service_target_group(inputs: &Inputs, m: &mut Member, svc_name: &str, port_str: &str) -> Result<Backend, String> {
    let tolerate = inputs.options.tolerate_missing_backend_service;
    let svc_key = ObjKey { namespace: m.key.namespace.clone(), name: svc_name.to_string() };
    let Some(svc) = inputs.services.get(&svc_key) else {
        let missing = format!("backend Service {svc_key} not found");
        if !tolerate {
            return Err(missing);
        }
        warn(m, format!("{missing}; its rules answer 503 ({NO_SERVICE_BODY:?}) until it exists"));
        return Ok(Backend::Missing(NO_SERVICE_BODY));
    };
    let Some(svc_port) = service_port(svc, port_str) else {
        let missing = format!("backend Service {svc_key} has no port {port_str}");
        if !tolerate {
            return Err(missing);
        }
        warn(m, format!("{missing}; its rules answer 503 ({NO_PORT_BODY:?}) until it does"));
        return Ok(Backend::Missing(NO_PORT_BODY));
    };
    let resource_id = format!("{}/{}-{}:{}", m.key.namespace, m.key.name, svc_key.name, port_str);
    let backend = BackendRef {
        cluster: inputs.cluster,
        group: &inputs.group,
        ing: m.ing,
        target_type: m.cfg.target_type,
        default_target_type: inputs.options.default_target_type,
    };
    let (name, mut backend_cfg, tg_port) = backend.target_group(svc, svc_port, port_str)?;
    limits::check_attributes(&backend_cfg.attributes, &format!("{}target-group-attributes", annotations::PREFIX))
        .map_err(|e| format!("backend Service {svc_key}: {e}"))?;
    m.warnings.extend(backend_cfg.warnings.drain(..).map(|w| annotation_warning(&m.key, w.to_string())));
    if m.target_groups.iter().any(|tg| tg.name == name) {
        return Ok(Backend::TargetGroup(name));
    }
    // As LBC: IngressClassParams tags over the Service's over the Ingress's, key by key.
    let mut tags = std::mem::take(&mut backend_cfg.tags);
    if let Some(Ok(p)) = inputs.params.get(&m.key) {
        tags.extend(p.tags.iter().flatten().map(|t| (t.key.clone(), t.value.clone())));
    }
    if tags.len() + OWN_TAGS > limits::MAX_TAGS {
        return Err(format!(
            "backend Service {svc_key}: its target group would have {} tags (with the controller's own); AWS allows {}",
            tags.len() + OWN_TAGS,
            limits::MAX_TAGS
        ));
    }
    let source = match backend_cfg.target_type {
        TargetType::Ip => TargetSource::Endpoints {
            service: svc_key.clone(),
            port_name: svc_port.name.clone(),
            publish_not_ready: svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false),
        },
        TargetType::Instance => TargetSource::Nodes { labels: backend_cfg.node_labels.clone(), node_port: tg_port },
    };
    let slices = inputs.endpoint_slices.get(&svc_key).map(Vec::as_slice).unwrap_or_default();
    let targets = source.targets(slices.iter().map(Arc::as_ref), inputs.nodes, inputs.gated_pods);
    m.target_groups.push(TargetGroup {
        resource_id,
        name: name.clone(),
        protocol: backend_cfg.protocol,
        protocol_version: backend_cfg.protocol_version,
        port: tg_port,
        target_type: backend_cfg.target_type,
        health_check: backend_cfg.health_check,
        attributes: backend_cfg.attributes,
        targets,
        source,
        tags,
    });
    Ok(Backend::TargetGroup(name))
}

/// The Service port an Ingress backend names, by number or by name.
pub fn service_port<'s>(svc: &'s Service, port: &str) -> Option<&'s ServicePort> {
    svc.spec.as_ref()?.ports.as_ref()?.iter().find(|p| p.port.to_string() == port || p.name.as_deref() == Some(port))
}

/// What names a backend's target group: the group, the Ingress and its settings.
pub struct BackendRef<'a> {
    pub cluster: &'a str,
    pub group: &'a GroupId,
    pub ing: &'a Ingress,
    /// From IngressClassParams: wins over annotations.
    pub target_type: Option<TargetType>,
    pub default_target_type: TargetType,
}

impl BackendRef<'_> {
    /// The target group of a Service port: its name, settings and port.
    pub fn target_group(
        &self,
        svc: &Service,
        svc_port: &ServicePort,
        port_str: &str,
    ) -> Result<(String, annotations::BackendConfig, i32), String> {
        let svc_key =
            ObjKey { namespace: svc.metadata.namespace.clone().unwrap_or_default(), name: svc.metadata.name.clone().unwrap_or_default() };
        let empty = BTreeMap::new();
        let mut backend_cfg = annotations::parse_backend(
            self.ing.metadata.annotations.as_ref().unwrap_or(&empty),
            svc.metadata.annotations.as_ref().unwrap_or(&empty),
            self.default_target_type,
        )
        .map_err(|errors| {
            format!("backend Service {svc_key}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        })?;
        if let Some(t) = self.target_type {
            backend_cfg.target_type = t;
        }
        let tg_port = tg_port(&svc_key, svc, svc_port, backend_cfg.target_type)?;
        let hc_port = &mut backend_cfg.health_check.port;
        if hc_port.as_str() != "traffic-port" && annotations::is_port_name(hc_port) {
            *hc_port = health_check_port(&svc_key, svc, hc_port, backend_cfg.target_type)?.to_string();
        }
        let name = names::target_group(&names::TargetGroupNameParts {
            cluster: self.cluster,
            group: self.group,
            ingress_namespace: self.ing.metadata.namespace.as_deref().unwrap_or_default(),
            ingress_name: self.ing.metadata.name.as_deref().unwrap_or_default(),
            svc_namespace: &svc_key.namespace,
            svc_name: &svc_key.name,
            svc_uid: svc.metadata.uid.as_deref().unwrap_or_default(),
            svc_port: port_str,
            tg_port,
            target_type: backend_cfg.target_type.as_str(),
            protocol: backend_cfg.protocol.as_str(),
            protocol_version: &backend_cfg.protocol_version,
        });
        Ok((name, backend_cfg, tg_port))
    }
}

/// A `healthcheck-port` given as a Service port name, as LBC resolves it: the port's
/// NodePort for instance targets, its numeric targetPort for IP targets.
fn health_check_port(svc_key: &ObjKey, svc: &Service, name: &str, target_type: TargetType) -> Result<i32, String> {
    let bad = |why: String| format!("backend Service {svc_key}: annotation {}healthcheck-port: {why}", annotations::PREFIX);
    let port = service_port(svc, name).ok_or_else(|| bad(format!("the Service has no port {name:?}")))?;
    match (target_type, &port.target_port) {
        (TargetType::Instance, _) => port.node_port.ok_or_else(|| bad(format!("port {name:?} has no NodePort"))),
        (TargetType::Ip, Some(IntOrString::Int(n))) => Ok(*n),
        (TargetType::Ip, None) => Ok(port.port),
        (TargetType::Ip, Some(IntOrString::String(_))) => {
            Err(bad(format!("port {name:?} has a named targetPort, which IP targets cannot resolve")))
        }
    }
}

fn tg_port(svc_key: &ObjKey, svc: &Service, svc_port: &ServicePort, target_type: TargetType) -> Result<i32, String> {
    Ok(match (target_type, &svc_port.target_port) {
        (TargetType::Instance, _) => {
            let svc_type = svc.spec.as_ref().and_then(|s| s.type_.as_deref()).unwrap_or("ClusterIP");
            match svc_port.node_port {
                Some(p) if svc_type == "NodePort" || svc_type == "LoadBalancer" => p,
                _ => {
                    return Err(format!(
                        "backend Service {svc_key} is of type {svc_type}: target-type instance needs a NodePort or LoadBalancer Service (or use annotation {}target-type: ip)",
                        annotations::PREFIX
                    ));
                }
            }
        }
        (TargetType::Ip, Some(IntOrString::Int(n))) => *n,
        (TargetType::Ip, Some(IntOrString::String(_))) => 1,
        (TargetType::Ip, None) => svc_port.port,
    })
}

/// Certificates of the HTTPS listeners: every `certificate-arn` of the group (first is the
/// default); else ACM certificates discovered for the TLS hosts (or, without TLS hosts,
/// the rule hosts) of the members listening on HTTPS. An exact name beats a wildcard;
/// two certificates for one host is a problem, as is no certificate at all.
fn certificates(inputs: &Inputs, members: &[Member], listeners: &BTreeMap<i32, Protocol>) -> Result<Vec<String>, Vec<Problem>> {
    if !listeners.values().any(|p| *p == Protocol::Https) {
        return Ok(Vec::new());
    }
    let mut arns: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for m in members {
        let mut own = arns.clone();
        for arn in &m.cfg.certificate_arns {
            if !own.contains(arn) {
                own.push(arn.clone());
            }
        }
        // The member whose certificate-arn takes the listener over the quota is at fault.
        if own.len() > MAX_CERTIFICATES {
            let msg = format!(
                "annotation {}certificate-arn: with this Ingress's certificates the HTTPS listener would have {}; an ALB listener allows {MAX_CERTIFICATES}",
                annotations::PREFIX,
                own.len()
            );
            problems.push(problem(&m.key, msg));
            continue;
        }
        arns = own;
    }
    let https_members: Vec<&Member> = members.iter().filter(|m| m.ports.iter().any(|(p, _)| *p == Protocol::Https)).collect();
    // A host some member gave a certificate for explicitly is not discovered again: an
    // Ingress without certificate-arn must not add a certificate that SNI could pick
    // over the chosen one (LBC #4850).
    let explicit: Vec<&Certificate> = inputs.certificates.iter().filter(|c| arns.contains(&c.arn)).collect();
    let mut discovered: Vec<String> = Vec::new();
    {
        for m in https_members.iter().filter(|m| m.cfg.certificate_arns.is_empty()) {
            let spec = m.ing.spec.as_ref();
            let mut hosts: Vec<&str> = spec
                .and_then(|s| s.tls.as_ref())
                .into_iter()
                .flatten()
                .flat_map(|t| t.hosts.iter().flatten())
                .map(String::as_str)
                .collect();
            // TLS hosts and rule hosts both, as LBC discovers them.
            hosts.extend(spec.and_then(|s| s.rules.as_ref()).into_iter().flatten().filter_map(|r| r.host.as_deref()));
            hosts.sort();
            hosts.dedup();
            for host in hosts {
                if explicit.iter().any(|c| covers(c, host)) {
                    continue;
                }
                match certificate_for(inputs.certificates, host) {
                    Ok(arn) if !arns.contains(&arn) && !discovered.contains(&arn) => discovered.push(arn),
                    Ok(_) => {}
                    Err(message) => problems.push(problem(&m.key, message)),
                }
            }
        }
    }
    // Discovered ones after the explicit ones, sorted (as LBC orders them).
    discovered.sort();
    arns.extend(discovered);
    if problems.is_empty() && arns.is_empty() {
        let msg = format!(
            "no certificate for the HTTPS listener: set annotation {}certificate-arn, or add spec.tls hosts matched by an ISSUED ACM certificate",
            annotations::PREFIX
        );
        problems.extend(https_members.iter().map(|m| problem(&m.key, msg.clone())));
    }
    if arns.len() > MAX_CERTIFICATES {
        let msg = format!("the HTTPS listener would have {} certificates; an ALB listener allows {MAX_CERTIFICATES}", arns.len());
        problems.extend(https_members.iter().map(|m| problem(&m.key, msg.clone())));
    }
    if problems.is_empty() { Ok(arns) } else { Err(problems) }
}

/// Whether a certificate's names cover a host (exactly, or by a one-level wildcard).
fn covers(cert: &Certificate, host: &str) -> bool {
    cert.domains.iter().any(|d| {
        d.eq_ignore_ascii_case(host)
            || d.strip_prefix("*.").is_some_and(|rest| host.split_once('.').is_some_and(|(_, h)| h.eq_ignore_ascii_case(rest)))
    })
}

fn certificate_for(certs: &[Certificate], host: &str) -> Result<String, String> {
    let host = host.to_ascii_lowercase();
    let exact: Vec<&Certificate> = certs.iter().filter(|c| c.domains.iter().any(|d| d.eq_ignore_ascii_case(&host))).collect();
    let wildcard: Vec<&Certificate> = certs
        .iter()
        .filter(|c| {
            c.domains
                .iter()
                .any(|d| d.strip_prefix("*.").is_some_and(|rest| host.split_once('.').is_some_and(|(_, h)| h.eq_ignore_ascii_case(rest))))
        })
        .collect();
    let chosen = if exact.is_empty() { wildcard } else { exact };
    match chosen.as_slice() {
        [one] => Ok(one.arn.clone()),
        [] => Err(format!("no ISSUED ACM certificate matches host {host}")),
        many => Err(format!(
            "{} ACM certificates match host {host} ({}); set annotation {}certificate-arn to choose",
            many.len(),
            many.iter().map(|c| c.arn.as_str()).collect::<Vec<_>>().join(", "),
            annotations::PREFIX
        )),
    }
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
/// `extra` are the `conditions.${backend}` annotation's: their hosts and paths join the
/// rule's own, the other fields become conditions of their own (as LBC merges them).
fn conditions(host: Option<&str>, path: &HTTPIngressPath, extra: Vec<Condition>, regex: bool) -> Result<Vec<Condition>, String> {
    let mut out = Vec::new();
    let mut hosts: Vec<String> = host.filter(|h| !h.is_empty()).map(str::to_string).into_iter().collect();
    let mut paths = Vec::new();
    for c in extra {
        match c {
            Condition::HostHeader(v) => hosts.extend(v),
            Condition::PathPattern(v) => paths.extend(v),
            other => out.push(other),
        }
    }
    if !hosts.is_empty() {
        out.push(Condition::HostHeader(hosts));
    }
    let implementation_specific = !matches!(path.path_type.as_str(), "Exact" | "Prefix");
    if regex
        && implementation_specific
        && let Some(p) = path.path.as_deref().filter(|p| !p.is_empty())
    {
        out.push(Condition::PathRegex(vec![p.to_string()]));
    } else if let Some(p) = path.path.as_deref().filter(|p| !p.is_empty()) {
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
        paths.splice(0..0, patterns);
    }
    if !paths.is_empty() {
        out.push(Condition::PathPattern(paths));
    }
    if out.is_empty() {
        out.push(Condition::PathPattern(vec!["/*".to_string()]));
    }
    Ok(out)
}

/// The `subnets` annotation's subnets (IDs or Name tags), else discovery: subnets with
/// the scheme's role tag, minus those tagged for another cluster, one per AZ (our
/// cluster's tag first, then the lowest ID). At least two AZs either way.
/// `security-groups` entries (IDs, group names or Name tags) as IDs.
fn resolve_security_groups(groups: &[SecurityGroupInfo], wanted: &[String]) -> Result<BTreeSet<String>, String> {
    wanted
        .iter()
        .map(|w| {
            groups.iter().find(|g| &g.id == w || &g.name == w || g.name_tag.as_ref() == Some(w)).map(|g| g.id.clone()).ok_or_else(|| {
                format!("annotation {}security-groups: no security group {w:?} (by ID, name or Name tag) in the VPC", annotations::PREFIX)
            })
        })
        .collect()
}

enum SubnetChoice<'a> {
    /// IDs or Name tags.
    Named(&'a [String]),
    /// For each tag key, one of the values.
    Tagged(&'a BTreeMap<String, Vec<String>>),
    Discover,
}

fn select_subnets(subnets: &[Subnet], scheme: Scheme, cluster: &str, chosen: SubnetChoice) -> Result<BTreeSet<String>, String> {
    if let SubnetChoice::Tagged(tags) = chosen {
        let mut by_az: BTreeMap<&str, &str> = BTreeMap::new();
        for s in subnets.iter().filter(|s| tags.iter().all(|(k, vals)| s.tags.get(k).is_some_and(|v| vals.contains(v)))) {
            let e = by_az.entry(s.availability_zone.as_str()).or_insert(s.id.as_str());
            *e = (*e).min(s.id.as_str());
        }
        if by_az.len() < 2 {
            return Err("IngressClassParams spec.subnets.tags: fewer than 2 Availability Zones have a subnet with those tags".into());
        }
        return Ok(by_az.values().map(|s| s.to_string()).collect());
    }
    if let SubnetChoice::Named(wanted) = chosen {
        let mut ids = BTreeSet::new();
        let mut azs = BTreeSet::new();
        for w in wanted {
            let s = subnets
                .iter()
                .find(|s| &s.id == w || s.tags.get("Name") == Some(w))
                .ok_or_else(|| format!("annotation {}subnets: no subnet {w:?} (by ID or Name tag) in the VPC", annotations::PREFIX))?;
            ids.insert(s.id.clone());
            azs.insert(s.availability_zone.clone());
        }
        if azs.len() < 2 {
            return Err(format!("annotation {}subnets: an ALB needs subnets in at least 2 Availability Zones", annotations::PREFIX));
        }
        return Ok(ids);
    }
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
            by_az.entry(s.availability_zone.as_str()).or_default().push(s);
        }
    }
    let chosen: BTreeSet<String> = by_az
        .values()
        .filter_map(|candidates| candidates.iter().min_by_key(|s| (!s.tags.contains_key(&our_tag), s.id.as_str())).map(|s| s.id.clone()))
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
                group: Some(GroupId::Implicit {
                    namespace: ing.metadata.namespace.clone().unwrap(),
                    name: ing.metadata.name.clone().unwrap(),
                }),
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
        for tags in [
            &stack.load_balancer.tags,
            &stack.security_group.as_ref().unwrap().tags,
            &stack.target_groups[0].tags,
            &stack.listeners[0].tags,
        ] {
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
                .map(|i| {
                    format!("\n      - {{path: /{name}{i}, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}")
                })
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
        let arns = |from: usize, n: usize| {
            (from..from + n).map(|i| format!("arn:aws:acm:us-east-1:1:certificate/c{i}")).collect::<Vec<_>>().join(",")
        };
        let https = |certs: String| {
            format!(
                ", alb.ingress.kubernetes.io/listen-ports: '[{{\"HTTPS\": 443}}]', alb.ingress.kubernetes.io/certificate-arn: '{certs}'"
            )
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
        assert!(
            matches!(&http.default_action, Action::Redirect { port: Some(p), status_code, .. } if p == "443" && status_code == "HTTP_301")
        );
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

    fn rule(conditions: Vec<Condition>, action: Action) -> RuleParts {
        RuleParts { from: ObjKey { namespace: "shop".into(), name: "a".into() }, written: "x".into(), conditions, auth: None, action }
    }

    fn path(p: &str) -> Condition {
        Condition::PathPattern(vec![p.into()])
    }

    fn redirect(protocol: Option<&str>, port: Option<&str>, host: Option<&str>) -> Action {
        Action::Redirect {
            protocol: protocol.map(Into::into),
            port: port.map(Into::into),
            host: host.map(Into::into),
            path: None,
            query: None,
            status_code: "HTTP_301".into(),
        }
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
    fn the_optimizer_drops_self_redirects_and_what_an_earlier_redirect_answers() {
        let to_https = redirect(Some("HTTPS"), Some("443"), None);
        let forward = Action::forward("tg");
        let rules = vec![
            rule(vec![path("/*")], to_https.clone()),
            rule(vec![path("/a")], forward.clone()),
            rule(vec![Condition::HttpHeader { name: "X".into(), values: vec!["1".into()] }, path("/b")], forward.clone()),
        ];
        // HTTP:80: the redirect answers everything after it.
        let (kept, warnings) = optimize(rules.clone(), Protocol::Http, 80);
        assert_eq!(kept.len(), 1);
        assert!(warnings.is_empty(), "dropping is not worth a warning: the ssl-redirect pattern");
        // HTTPS:443: the redirect would loop, so it goes; the rest stay.
        let (kept, _) = optimize(rules, Protocol::Https, 443);
        assert_eq!(kept.iter().map(|r| r.conditions.last().cloned()).collect::<Vec<_>>(), vec![Some(path("/a")), Some(path("/b"))]);
        // As LBC's isInfiniteRedirectRule: a placeholder or the rule's own host is "itself"
        // too; another host, port or protocol is not.
        let host = |h: &str| Condition::HostHeader(vec![h.into()]);
        let loops = |c: Vec<Condition>, a: Action, protocol, port| optimize(vec![rule(c, a)], protocol, port).0.is_empty();
        assert!(loops(vec![path("/*")], redirect(None, None, None), Protocol::Http, 80));
        assert!(loops(vec![host("a.com")], redirect(Some("#{protocol}"), Some("#{port}"), Some("a.com")), Protocol::Http, 80));
        assert!(!loops(vec![host("a.com")], redirect(None, None, Some("b.com")), Protocol::Http, 80));
        assert!(!loops(vec![path("/*")], redirect(Some("HTTPS"), Some("443"), None), Protocol::Http, 80));
        assert!(!loops(vec![Condition::PathRegex(vec!["^/x".into()])], redirect(None, None, None), Protocol::Http, 80));
    }

    #[test]
    fn only_host_and_path_conditions_make_an_earlier_rule_answer_all() {
        let host = |h: &str| Condition::HostHeader(vec![h.into()]);
        let header = Condition::HttpHeader { name: "X".into(), values: vec!["1".into()] };
        assert!(answers_all(&[path("/*")], &[host("a.com"), path("/x")]));
        assert!(answers_all(&[host("a.com")], &[host("a.com"), header.clone(), path("/x")]));
        assert!(answers_all(&[Condition::PathPattern(vec!["/a".into(), "/a/*".into()])], &[path("/a")]));
        assert!(!answers_all(&[host("a.com"), path("/*")], &[path("/x")]), "a later rule without the host matches more");
        assert!(!answers_all(&[header, path("/*")], &[path("/x")]), "a header narrows the earlier rule");
        assert!(!answers_all(&[path("/a/*")], &[path("/a/b")]), "patterns are compared as values, as LBC does");
        assert!(!answers_all(&[Condition::PathRegex(vec!["/*".into()])], &[path("/x")]));
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
            node(
                "n2",
                "web",
                "aws:///us-east-1b/i-bbb",
                serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
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
}
