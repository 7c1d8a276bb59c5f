//! Tags: one value per key for the whole load balancer, within AWS's quota; every resource
//! carries the members' tags plus the controller's own (cluster, stack, resource).

use std::collections::BTreeMap;

use super::intent::{MemberIntent, Wording, problem};
use super::{GroupId, ObjKey, Problem, Stack, Tags, limits};

/// The tags the controller adds to every resource: cluster, stack, resource.
pub const OWN_TAGS: usize = 3;

/// Leaves out a member whose tag conflicts with an earlier member's value for the key (LBC
/// refuses conflicting ones), or whose tags would take the load balancer over the quota.
pub fn agree(members: &mut Vec<MemberIntent>, wording: &Wording, problems: &mut Vec<Problem>) {
    let mut owner: BTreeMap<String, (String, ObjKey)> = BTreeMap::new();
    members.retain(|m| {
        for (k, v) in &m.tags {
            if let Some((other, first)) = owner.get(k)
                && other != v
            {
                problems.push(problem(&m.key, format!("{}: {k}={v} conflicts with {k}={other} set by {first}", wording.tags)));
                return false;
            }
        }
        let merged = owner.len() + m.tags.keys().filter(|k| !owner.contains_key(*k)).count();
        if merged + OWN_TAGS > limits::MAX_TAGS {
            problems.push(problem(
                &m.key,
                format!(
                    "{}: with this {}'s tags the load balancer would have {} tags (with the controller's own); AWS allows {}",
                    wording.tags,
                    wording.member,
                    merged + OWN_TAGS,
                    limits::MAX_TAGS
                ),
            ));
            return false;
        }
        for (k, v) in &m.tags {
            owner.entry(k.clone()).or_insert_with(|| (v.clone(), m.key.clone()));
        }
        true
    });
}

/// The tags of the stack's resources.
pub struct StackTags {
    /// The members' tags, merged.
    members: Tags,
    /// Cluster and stack.
    base: Tags,
    resource_key: &'static str,
}

impl StackTags {
    pub fn new(cluster: &str, group: &GroupId, members: &[MemberIntent]) -> Self {
        let mut merged = Tags::new();
        for m in members {
            merged.extend(m.tags.clone());
        }
        StackTags { members: merged, base: Stack::base_tags(cluster, group), resource_key: group.resource_tag() }
    }

    /// A load-balancer-wide resource's: the members' tags and the controller's.
    pub fn resource(&self, resource: &str) -> Tags {
        self.own(self.members.clone(), resource)
    }

    /// A resource of one member (its rules, its target groups): that member's tags only.
    pub fn own(&self, mut tags: Tags, resource: &str) -> Tags {
        tags.extend(self.base.clone());
        tags.insert(self.resource_key.to_string(), resource.to_string());
        tags
    }

    pub fn members(&self) -> &Tags {
        &self.members
    }
}
