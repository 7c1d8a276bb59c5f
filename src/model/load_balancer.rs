//! The load balancer itself: scheme, subnets, name, address type and attributes.

use std::collections::{BTreeMap, BTreeSet};

use super::intent::{LoadBalancerIntent, Subnet, SubnetChoice, Wording};
use super::tags::StackTags;
use super::{GroupId, LoadBalancer, Scheme, names};

pub(crate) const ROLE_ELB: &str = "kubernetes.io/role/elb";
pub(crate) const ROLE_INTERNAL_ELB: &str = "kubernetes.io/role/internal-elb";
const CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster/";

pub fn scheme(lb: &LoadBalancerIntent) -> Scheme {
    lb.scheme.unwrap_or(Scheme::Internal)
}

pub fn build(
    lb: &LoadBalancerIntent,
    cluster: &str,
    group: &GroupId,
    subnets: BTreeSet<String>,
    security_groups: BTreeSet<String>,
    tags: &StackTags,
) -> LoadBalancer {
    let scheme = scheme(lb);
    LoadBalancer {
        name: lb.name.clone().unwrap_or_else(|| names::load_balancer(cluster, group, scheme.as_str())),
        scheme,
        ip_address_type: lb.ip_address_type.clone().unwrap_or_else(|| "ipv4".into()),
        subnets,
        security_groups,
        attributes: lb.attributes.clone().unwrap_or_default(),
        tags: tags.resource("LoadBalancer"),
    }
}

/// The named subnets (IDs or Name tags), the tagged ones (one per AZ, the lowest ID), else
/// discovery: subnets with the scheme's role tag, minus those tagged for another cluster,
/// one per AZ (our cluster's tag first, then the lowest ID). At least two AZs either way.
pub fn subnets(
    subnets: &[Subnet],
    scheme: Scheme,
    cluster: &str,
    chosen: &SubnetChoice,
    wording: &Wording,
) -> Result<BTreeSet<String>, String> {
    match chosen {
        SubnetChoice::Tagged(tags) => tagged(subnets, tags, wording),
        SubnetChoice::Named(wanted) => named(subnets, wanted, wording),
        SubnetChoice::Discover => discovered(subnets, scheme, cluster),
    }
}

fn tagged(subnets: &[Subnet], tags: &BTreeMap<String, Vec<String>>, wording: &Wording) -> Result<BTreeSet<String>, String> {
    let mut by_az: BTreeMap<&str, &str> = BTreeMap::new();
    for s in subnets.iter().filter(|s| tags.iter().all(|(k, vals)| s.tags.get(k).is_some_and(|v| vals.contains(v)))) {
        let e = by_az.entry(s.availability_zone.as_str()).or_insert(s.id.as_str());
        *e = (*e).min(s.id.as_str());
    }
    if by_az.len() < 2 {
        return Err(format!("{}: fewer than 2 Availability Zones have a subnet with those tags", wording.subnet_tags));
    }
    Ok(by_az.values().map(|s| s.to_string()).collect())
}

fn named(subnets: &[Subnet], wanted: &[String], wording: &Wording) -> Result<BTreeSet<String>, String> {
    let mut ids = BTreeSet::new();
    let mut azs = BTreeSet::new();
    for w in wanted {
        let s = subnets
            .iter()
            .find(|s| &s.id == w || s.tags.get("Name") == Some(w))
            .ok_or_else(|| format!("{}: no subnet {w:?} (by ID or Name tag) in the VPC", wording.subnets))?;
        ids.insert(s.id.clone());
        azs.insert(s.availability_zone.clone());
    }
    if azs.len() < 2 {
        return Err(format!("{}: an ALB needs subnets in at least 2 Availability Zones", wording.subnets));
    }
    Ok(ids)
}

fn discovered(subnets: &[Subnet], scheme: Scheme, cluster: &str) -> Result<BTreeSet<String>, String> {
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
