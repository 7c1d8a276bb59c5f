//! Security groups: the named ones, or a managed group open on the listener ports; and the
//! rules the targets' groups get (from the managed group, or the shared backend group).

use std::collections::{BTreeMap, BTreeSet};

use super::intent::{LoadBalancerIntent, SecurityGroupInfo, Wording};
use super::tags::StackTags;
use super::{BackendRules, BackendSource, GroupId, Options, Permission, Protocol, RESOURCE_MANAGED_SG, SecurityGroup, names};

/// Named security groups (IDs, group names or Name tags) as IDs.
pub fn resolve(groups: &[SecurityGroupInfo], wanted: &[String], wording: &Wording) -> Result<BTreeSet<String>, String> {
    wanted
        .iter()
        .map(|w| {
            groups
                .iter()
                .find(|g| &g.id == w || &g.name == w || g.name_tag.as_ref() == Some(w))
                .map(|g| g.id.clone())
                .ok_or_else(|| format!("{}: no security group {w:?} (by ID, name or Name tag) in the VPC", wording.security_groups))
        })
        .collect()
}

/// What the targets' security groups must allow, as LBC decides it: a managed security
/// group comes with rules on the targets' groups; named groups only with
/// manage-backend-security-group-rules, which needs the shared backend group.
pub enum Backend {
    Rules(Option<BackendRules>),
    /// Asked for, but the shared backend group is turned off.
    NeedsSharedGroup,
}

pub fn backend(lb: &LoadBalancerIntent, named: &BTreeSet<String>, options: &Options) -> Backend {
    let all_ports = options.unrestricted_sg_rules;
    if named.is_empty() {
        let source = if options.backend_security_group { BackendSource::SharedBackendGroup } else { BackendSource::ManagedGroup };
        Backend::Rules(Some(BackendRules { source, all_ports }))
    } else if lb.manage_backend_security_group_rules == Some(true) && !options.backend_security_group {
        Backend::NeedsSharedGroup
    } else if lb.manage_backend_security_group_rules == Some(true) {
        Backend::Rules(Some(BackendRules { source: BackendSource::SharedBackendGroup, all_ports }))
    } else {
        Backend::Rules(None)
    }
}

/// The managed group: open on every listener port to the inbound CIDRs (by default the
/// whole internet, IPv6 too for both dual-stack address types, as LBC).
pub fn managed(
    lb: &LoadBalancerIntent,
    listeners: &BTreeMap<i32, Protocol>,
    cluster: &str,
    group: &GroupId,
    tags: &StackTags,
) -> SecurityGroup {
    let cidrs = lb.inbound_cidrs.clone().unwrap_or_else(|| {
        let mut c = vec!["0.0.0.0/0".to_string()];
        if lb.ip_address_type.as_deref().is_some_and(|t| t.starts_with("dualstack")) {
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
    SecurityGroup {
        name: names::security_group(cluster, group),
        description: "[k8s] Managed SecurityGroup for LoadBalancer".into(),
        ingress,
        tags: tags.resource(RESOURCE_MANAGED_SG),
    }
}
