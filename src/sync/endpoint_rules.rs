//! Inbound rules on the security groups of the targets' network interfaces (LBC's
//! "endpoint security groups"): they let the load balancer reach its targets.
//!
//! As LBC writes them: one TCP rule per endpoint group and source group, from the lowest to
//! the highest port any target group behind that endpoint group needs (its targets' ports
//! and a health-check port other than the traffic port), or every port with
//! `--disable-restricted-sg-rules`; each carries LBC's description
//! `elbv2.k8s.aws/targetGroupBinding=shared`, so the rules LBC wrote are ours and nothing
//! else on those groups is touched. The needs of every group are kept here and aggregated
//! across the cluster. A rule is revoked only when every group of the cluster is known (after
//! a restart, until each group has been reconciled once, rules are only added), or when its
//! source is a group's own managed security group and that group is known.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, IpPermission, UserIdGroupPair};
use tokio::sync::Mutex;

use crate::aws::enis::Eni;
use crate::aws::{self, Aws, ec2_filter, paginate};
use crate::model::{GroupId, Tags};

const EC2: &str = "ec2";
/// LBC's label on the rules it manages (a rule's description).
pub const RULE_DESCRIPTION: &str = "elbv2.k8s.aws/targetGroupBinding=shared";
const CLUSTER_TAG_PREFIX: &str = "kubernetes.io/cluster/";
const VALUES_PER_CALL: usize = 199;

/// One inbound TCP rule from a source security group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SgRule {
    pub source: String,
    pub from_port: i32,
    pub to_port: i32,
}

/// The ports one group needs open from one source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ports {
    pub all: bool,
    pub ports: BTreeSet<i32>,
}

/// What one group needs: by (endpoint security group, source security group), the ports.
pub type Needs = BTreeMap<(String, String), Ports>;

/// A group's needs and what they come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupNeeds {
    pub needs: Needs,
    /// The group's load balancer uses the cluster's shared backend group.
    pub uses_shared: bool,
    /// The group's own managed security group, when it is the source of its rules.
    pub own_source: Option<String>,
}

/// The rules every endpoint group must have, aggregated over all groups' needs.
pub fn desired<'a>(needs: impl IntoIterator<Item = &'a Needs>) -> BTreeMap<String, BTreeSet<SgRule>> {
    let mut merged: BTreeMap<(String, String), Ports> = BTreeMap::new();
    for n in needs {
        for (key, ports) in n {
            let m = merged.entry(key.clone()).or_default();
            m.all |= ports.all;
            m.ports.extend(&ports.ports);
        }
    }
    let mut out: BTreeMap<String, BTreeSet<SgRule>> = BTreeMap::new();
    for ((sg, source), ports) in merged {
        let range = if ports.all { Some((0, 65535)) } else { ports.ports.first().copied().zip(ports.ports.last().copied()) };
        if let Some((from_port, to_port)) = range {
            out.entry(sg).or_default().insert(SgRule { source, from_port, to_port });
        }
    }
    out
}

/// The endpoint group of an interface, as LBC picks it: its only group, else the one group
/// tagged `kubernetes.io/cluster/<cluster>`. Never a guess.
pub fn endpoint_group(eni: &Eni, tags: &HashMap<String, Tags>, cluster: &str) -> Result<String, String> {
    if let [only] = eni.security_groups.as_slice() {
        return Ok(only.clone());
    }
    let key = format!("{CLUSTER_TAG_PREFIX}{cluster}");
    let tagged: Vec<&String> = eni.security_groups.iter().filter(|sg| tags.get(*sg).is_some_and(|t| t.contains_key(&key))).collect();
    match tagged.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(format!(
            "network interface {} has security groups {} and {} of them tagged {key}: tag exactly one so the load balancer can be allowed in",
            eni.id,
            eni.security_groups.join(", "),
            tagged.len()
        )),
    }
}

struct SgState {
    tags: Tags,
    /// Our (labelled) rules, as last read or written.
    ours: BTreeSet<SgRule>,
    read_at: Instant,
}

#[derive(Default)]
struct Inner {
    groups: HashMap<GroupId, GroupNeeds>,
    sgs: HashMap<String, SgState>,
    /// The cluster's tagged groups were listed once (so rules on groups no target uses any
    /// more are found and revoked, as LBC does).
    listed: bool,
    /// The last reconcile failed part way: the next one runs even if no need changed.
    failed: bool,
    /// Whether the last reconcile knew every group (when that turns true, stale rules can go).
    complete: bool,
}

pub struct EndpointRules {
    cluster: String,
    vpc_id: String,
    /// How long a security group's rules are trusted before they are read again.
    ttl: Duration,
    inner: Mutex<Inner>,
}

fn permission(rule: &SgRule, with_description: bool) -> IpPermission {
    let pair = UserIdGroupPair::builder().group_id(&rule.source);
    let pair = if with_description { pair.description(RULE_DESCRIPTION) } else { pair };
    IpPermission::builder().ip_protocol("tcp").from_port(rule.from_port).to_port(rule.to_port).user_id_group_pairs(pair.build()).build()
}

impl EndpointRules {
    pub fn new(cluster: String, vpc_id: String, ttl: Duration) -> Self {
        EndpointRules { cluster, vpc_id, ttl, inner: Mutex::default() }
    }

    /// The groups whose needs are known.
    pub async fn known_groups(&self) -> BTreeSet<GroupId> {
        self.inner.lock().await.groups.keys().cloned().collect()
    }

    /// Whether any known group's load balancer uses the shared backend group.
    pub async fn shared_in_use(&self) -> bool {
        self.inner.lock().await.groups.values().any(|g| g.uses_shared)
    }

    /// The endpoint group of each interface (or why there is none), reading the tags of
    /// groups not seen yet (only interfaces with several groups need them).
    pub async fn endpoint_groups(&self, aws: &Aws, enis: &[Arc<Eni>]) -> Result<BTreeMap<String, Result<String, String>>, aws::Error> {
        let mut inner = self.inner.lock().await;
        let unknown: BTreeSet<String> = enis
            .iter()
            .filter(|e| e.security_groups.len() > 1)
            .flat_map(|e| e.security_groups.iter())
            .filter(|sg| !inner.sgs.contains_key(*sg))
            .cloned()
            .collect();
        self.read(aws, &mut inner, unknown.into_iter().collect()).await?;
        let tags: HashMap<String, Tags> = inner.sgs.iter().map(|(id, s)| (id.clone(), s.tags.clone())).collect();
        Ok(enis.iter().map(|e| (e.id.clone(), endpoint_group(e, &tags, &self.cluster))).collect())
    }

    /// Records what `group` needs now and brings every endpoint group's rules to what all
    /// known groups need. `complete`: every group of the cluster is known.
    pub async fn set(&self, aws: &Aws, group: &GroupId, needs: GroupNeeds, complete: bool) -> Result<(), aws::Error> {
        let mut inner = self.inner.lock().await;
        if inner.groups.get(group) == Some(&needs) && inner.listed && !inner.failed && inner.complete == complete {
            return Ok(());
        }
        inner.groups.insert(group.clone(), needs);
        let result = self.reconcile(aws, &mut inner, complete, None).await;
        inner.failed = result.is_err();
        inner.complete = complete;
        result
    }

    /// Revokes every rule whose source is `source` (the shared backend group, before it is
    /// deleted), on every endpoint group known.
    pub async fn revoke_source(&self, aws: &Aws, source: &str) -> Result<(), aws::Error> {
        let mut inner = self.inner.lock().await;
        self.reconcile(aws, &mut inner, true, Some(source)).await
    }

    async fn reconcile(&self, aws: &Aws, inner: &mut Inner, complete: bool, drop_source: Option<&str>) -> Result<(), aws::Error> {
        if !inner.listed {
            self.list_cluster_groups(aws, inner).await?;
        }
        let mut desired = desired(inner.groups.values().map(|g| &g.needs));
        if let Some(source) = drop_source {
            for rules in desired.values_mut() {
                rules.retain(|r| r.source != source);
            }
        }
        // Sources whose every user is known: a group's own managed group, or (complete) all of ours.
        let own: BTreeSet<String> = inner.groups.values().filter_map(|g| g.own_source.clone()).collect();
        let ours: BTreeSet<String> = desired.values().flatten().map(|r| r.source.clone()).chain(own.iter().cloned()).collect();
        let revocable =
            |r: &SgRule| own.contains(&r.source) || drop_source == Some(r.source.as_str()) || (complete && ours.contains(&r.source));
        let wanted: BTreeSet<String> = desired.keys().chain(inner.sgs.keys()).cloned().collect();
        let stale: Vec<String> =
            wanted.iter().filter(|sg| inner.sgs.get(*sg).is_none_or(|s| s.read_at.elapsed() >= self.ttl)).cloned().collect();
        self.read(aws, inner, stale).await?;
        let mut first_error = None;
        for sg in wanted {
            let want = desired.remove(&sg).unwrap_or_default();
            let Some(state) = inner.sgs.get_mut(&sg) else { continue };
            let add: Vec<SgRule> = want.difference(&state.ours).cloned().collect();
            let remove: Vec<SgRule> = state.ours.difference(&want).filter(|r| revocable(r)).cloned().collect();
            if let Err(e) = apply(aws, &sg, &add, &remove).await {
                if e.is_code(&["InvalidGroup.NotFound"]) {
                    inner.sgs.remove(&sg);
                    continue;
                }
                tracing::warn!(security_group = %sg, error = %crate::telemetry::Excerpt(&e), "updating the rules for the load balancers failed");
                first_error.get_or_insert(e);
                continue;
            }
            state.ours.extend(add);
            for r in &remove {
                state.ours.remove(r);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The VPC's security groups tagged for the cluster (the nodes' groups), once.
    async fn list_cluster_groups(&self, aws: &Aws, inner: &mut Inner) -> Result<(), aws::Error> {
        let filters = vec![
            ec2_filter("vpc-id", [self.vpc_id.as_str()]),
            ec2_filter(&format!("tag:{CLUSTER_TAG_PREFIX}{}", self.cluster), ["owned", "shared"]),
        ];
        self.describe(aws, inner, filters).await?;
        inner.listed = true;
        Ok(())
    }

    /// Reads the tags and our rules of these groups (a group that does not exist is dropped).
    async fn read(&self, aws: &Aws, inner: &mut Inner, ids: Vec<String>) -> Result<(), aws::Error> {
        for chunk in ids.chunks(VALUES_PER_CALL) {
            // A filter, not GroupIds: a group deleted meanwhile must not fail the call.
            for id in chunk {
                inner.sgs.remove(id);
            }
            self.describe(aws, inner, vec![ec2_filter("group-id", chunk.to_vec())]).await?;
        }
        Ok(())
    }

    async fn describe(&self, aws: &Aws, inner: &mut Inner, filters: Vec<Filter>) -> Result<(), aws::Error> {
        let filters = &filters;
        let groups = paginate(|token| async move {
            let out = aws
                .call(EC2, "DescribeSecurityGroups", || {
                    aws.ec2.describe_security_groups().set_filters(Some(filters.clone())).set_next_token(token.clone()).send()
                })
                .await?;
            Ok((out.security_groups.unwrap_or_default(), out.next_token))
        })
        .await?;
        let now = Instant::now();
        for g in groups {
            let Some(id) = g.group_id.clone() else { continue };
            let tags = g.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect();
            let ours = g
                .ip_permissions()
                .iter()
                .filter(|p| p.ip_protocol() == Some("tcp"))
                .flat_map(|p| {
                    p.user_id_group_pairs().iter().filter(|pair| pair.description() == Some(RULE_DESCRIPTION)).filter_map(|pair| {
                        Some(SgRule {
                            source: pair.group_id()?.to_string(),
                            from_port: p.from_port().unwrap_or_default(),
                            to_port: p.to_port().unwrap_or_default(),
                        })
                    })
                })
                .collect();
            inner.sgs.insert(id, SgState { tags, ours, read_at: now });
        }
        Ok(())
    }
}

/// New rules first, then the old ones go: a port change never leaves a gap.
async fn apply(aws: &Aws, sg: &str, add: &[SgRule], remove: &[SgRule]) -> Result<(), aws::Error> {
    if !add.is_empty() {
        let perms: Vec<IpPermission> = add.iter().map(|r| permission(r, true)).collect();
        match aws
            .call(EC2, "AuthorizeSecurityGroupIngress", || {
                aws.ec2.authorize_security_group_ingress().group_id(sg).set_ip_permissions(Some(perms.clone())).send()
            })
            .await
        {
            Ok(_) => {
                tracing::info!(security_group = %sg, rules = %crate::telemetry::Excerpt(&format_args!("{add:?}")), "allowed the load balancers in")
            }
            // Already there (a rule of the same shape, perhaps without our label): one at a time.
            Err(e) if e.is_code(&["InvalidPermission.Duplicate"]) && add.len() > 1 => {
                for r in add {
                    Box::pin(apply(aws, sg, std::slice::from_ref(r), &[])).await?;
                }
            }
            Err(e) if e.is_code(&["InvalidPermission.Duplicate"]) => {}
            Err(e) => return Err(e),
        }
    }
    if !remove.is_empty() {
        let perms: Vec<IpPermission> = remove.iter().map(|r| permission(r, false)).collect();
        match aws
            .call(EC2, "RevokeSecurityGroupIngress", || {
                aws.ec2.revoke_security_group_ingress().group_id(sg).set_ip_permissions(Some(perms.clone())).send()
            })
            .await
        {
            Ok(_) => {
                tracing::info!(security_group = %sg, rules = %crate::telemetry::Excerpt(&format_args!("{remove:?}")), "revoked rules no target needs")
            }
            Err(e) if e.is_code(&["InvalidPermission.NotFound"]) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(p: &[i32]) -> Ports {
        Ports { all: false, ports: p.iter().copied().collect() }
    }

    fn key(sg: &str, source: &str) -> (String, String) {
        (sg.to_string(), source.to_string())
    }

    fn rule(source: &str, from_port: i32, to_port: i32) -> SgRule {
        SgRule { source: source.into(), from_port, to_port }
    }

    #[test]
    fn one_rule_per_endpoint_group_and_source_over_the_lowest_to_the_highest_port() {
        let a: Needs = [(key("sg-node", "sg-backend"), ports(&[8080])), (key("sg-pod", "sg-backend"), ports(&[9090]))].into();
        let b: Needs = [(key("sg-node", "sg-backend"), ports(&[8081, 30000]))].into();
        let d = desired([&a, &b]);
        assert_eq!(d["sg-node"], BTreeSet::from([rule("sg-backend", 8080, 30000)]));
        assert_eq!(d["sg-pod"], BTreeSet::from([rule("sg-backend", 9090, 9090)]));
    }

    #[test]
    fn all_ports_win_and_sources_stay_apart() {
        let a: Needs =
            [(key("sg-node", "sg-managed-a"), ports(&[8080])), (key("sg-node", "sg-managed-b"), Ports { all: true, ..ports(&[]) })].into();
        let d = desired([&a]);
        assert_eq!(d["sg-node"], BTreeSet::from([rule("sg-managed-a", 8080, 8080), rule("sg-managed-b", 0, 65535)]));
        let empty: Needs = [(key("sg-node", "sg-x"), ports(&[]))].into();
        assert!(desired([&empty]).is_empty(), "no port, no rule");
    }

    #[test]
    fn the_endpoint_group_is_the_only_one_or_the_one_tagged_for_the_cluster() {
        let eni = |sgs: &[&str]| Eni { id: "eni-1".into(), security_groups: sgs.iter().map(|s| s.to_string()).collect() };
        let tags: HashMap<String, Tags> = [
            ("sg-a".to_string(), Tags::from([("kubernetes.io/cluster/prod".to_string(), "owned".to_string())])),
            ("sg-b".to_string(), Tags::new()),
            ("sg-c".to_string(), Tags::from([("kubernetes.io/cluster/prod".to_string(), "shared".to_string())])),
        ]
        .into();
        assert_eq!(endpoint_group(&eni(&["sg-b"]), &tags, "prod"), Ok("sg-b".into()));
        assert_eq!(endpoint_group(&eni(&["sg-a", "sg-b"]), &tags, "prod"), Ok("sg-a".into()));
        let none = endpoint_group(&eni(&["sg-b", "sg-x"]), &tags, "prod").unwrap_err();
        assert!(none.contains("eni-1") && none.contains("0 of them tagged kubernetes.io/cluster/prod"), "{none}");
        assert!(endpoint_group(&eni(&["sg-a", "sg-c"]), &tags, "prod").unwrap_err().contains("2 of them"));
        assert!(endpoint_group(&eni(&["sg-a", "sg-b"]), &tags, "other").is_err(), "another cluster's tag is no tag");
    }
}
