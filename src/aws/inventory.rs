//! Which ELBv2 load balancers and target groups belong to which stack, found by tag.
//!
//! Listing everything and reading tags costs a handful of calls for the whole account,
//! so it is done once and then kept current by our own creates and deletes; it is
//! re-read when older than the drift-check interval, and when a stack is deleted (what a
//! create with a lost reply made is known to no cache: [`Inventory::stack_read_since`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer, TargetGroup};
use tokio::sync::Mutex;

use super::{Aws, Error, paginate};
use crate::model::{TAG_CLUSTER, Tags};

const ELBV2: &str = "elasticloadbalancingv2";
/// LBC's tag on its shared backend security group.
pub const BACKEND_SG_TAG: &str = "elbv2.k8s.aws/resource";
pub const BACKEND_SG_VALUE: &str = "backend-sg";
/// DescribeTags takes at most 20 ARNs.
const TAGS_PER_CALL: usize = 20;

#[derive(Default)]
struct Loaded {
    lbs: HashMap<String, Vec<LoadBalancer>>,
    tgs: HashMap<String, Vec<(TargetGroup, Tags)>>,
    /// Managed security group IDs.
    sgs: HashMap<String, Vec<String>>,
    /// LBC's shared backend security groups of the cluster (`k8s-traffic-…`).
    backend_sgs: Vec<String>,
}

/// What the inventory knows of one stack.
pub struct StackResources {
    pub load_balancers: Vec<LoadBalancer>,
    pub target_groups: Vec<(TargetGroup, Tags)>,
    pub security_groups: Vec<String>,
    /// LBC's shared backend security groups: kept on the load balancers they are on, since
    /// node and pod security group rules LBC wrote allow traffic from them.
    pub backend_security_groups: Vec<String>,
}

pub struct Inventory {
    cluster: String,
    vpc_id: String,
    ttl: Duration,
    /// When the last read of AWS started, and what it found (kept current since).
    state: Mutex<Option<(Instant, Loaded)>>,
}

impl Inventory {
    pub fn new(cluster: String, vpc_id: String, ttl: Duration) -> Self {
        Inventory { cluster, vpc_id, ttl, state: Mutex::new(None) }
    }

    /// The load balancers, target groups (with their tags) and managed security groups
    /// tagged for `stack`.
    pub async fn stack(&self, aws: &Aws, stack: &str) -> Result<StackResources, Error> {
        let mut state = self.state.lock().await;
        Ok(Self::resources_of(self.fresh(aws, &mut state).await?, stack))
    }

    /// As [`Inventory::stack`], from a read of AWS that started at `since` or later: made
    /// now unless one did meanwhile. The reads take turns, so many stacks deleted at once
    /// share a few reads rather than making one each.
    pub async fn stack_read_since(&self, aws: &Aws, stack: &str, since: Instant) -> Result<StackResources, Error> {
        let mut state = self.state.lock().await;
        match state.as_ref() {
            Some((started, loaded)) if *started >= since => Ok(Self::resources_of(loaded, stack)),
            _ => {
                let started = Instant::now();
                let loaded = self.load(aws).await?;
                Ok(Self::resources_of(&state.insert((started, loaded)).1, stack))
            }
        }
    }

    fn resources_of(loaded: &Loaded, stack: &str) -> StackResources {
        StackResources {
            load_balancers: loaded.lbs.get(stack).cloned().unwrap_or_default(),
            target_groups: loaded.tgs.get(stack).cloned().unwrap_or_default(),
            security_groups: loaded.sgs.get(stack).cloned().unwrap_or_default(),
            backend_security_groups: loaded.backend_sgs.clone(),
        }
    }

    /// The cluster's shared backend security groups (normally one).
    pub async fn backend_security_groups(&self, aws: &Aws) -> Result<Vec<String>, Error> {
        let mut state = self.state.lock().await;
        Ok(self.fresh(aws, &mut state).await?.backend_sgs.clone())
    }

    /// Whether a load balancer of the cluster has this security group.
    pub async fn any_load_balancer_uses(&self, aws: &Aws, sg: &str) -> Result<bool, Error> {
        let mut state = self.state.lock().await;
        let loaded = self.fresh(aws, &mut state).await?;
        Ok(loaded.lbs.values().flatten().any(|lb| lb.security_groups().iter().any(|s| s == sg)))
    }

    pub async fn put_backend_security_group(&self, id: String) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut()
            && !loaded.backend_sgs.contains(&id)
        {
            loaded.backend_sgs.push(id);
        }
    }

    pub async fn remove_backend_security_group(&self, id: &str) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut() {
            loaded.backend_sgs.retain(|s| s != id);
        }
    }

    // The puts replace what a read of AWS made concurrently with the create may have found.
    pub async fn put_security_group(&self, stack: &str, id: String) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut() {
            let ids = loaded.sgs.entry(stack.to_string()).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }

    pub async fn remove_security_group(&self, stack: &str, id: &str) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut()
            && let Some(v) = loaded.sgs.get_mut(stack)
        {
            v.retain(|s| s != id);
        }
    }

    pub async fn put_load_balancer(&self, stack: &str, lb: LoadBalancer) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut() {
            let lbs = loaded.lbs.entry(stack.to_string()).or_default();
            lbs.retain(|known| known.load_balancer_arn() != lb.load_balancer_arn());
            lbs.push(lb);
        }
    }

    pub async fn remove_load_balancer(&self, stack: &str, arn: &str) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut()
            && let Some(v) = loaded.lbs.get_mut(stack)
        {
            v.retain(|lb| lb.load_balancer_arn() != Some(arn));
        }
    }

    pub async fn put_target_group(&self, stack: &str, tg: TargetGroup, tags: Tags) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut() {
            let tgs = loaded.tgs.entry(stack.to_string()).or_default();
            tgs.retain(|(known, _)| known.target_group_arn() != tg.target_group_arn());
            tgs.push((tg, tags));
        }
    }

    pub async fn remove_target_group(&self, stack: &str, arn: &str) {
        if let Some((_, loaded)) = self.state.lock().await.as_mut()
            && let Some(v) = loaded.tgs.get_mut(stack)
        {
            v.retain(|(tg, _)| tg.target_group_arn() != Some(arn));
        }
    }

    /// What was loaded, re-read first when older than the TTL.
    async fn fresh<'s>(&self, aws: &Aws, state: &'s mut Option<(Instant, Loaded)>) -> Result<&'s Loaded, Error> {
        if state.as_ref().is_none_or(|(at, _)| at.elapsed() >= self.ttl) {
            let started = Instant::now();
            let loaded = self.load(aws).await?;
            return Ok(&state.insert((started, loaded)).1);
        }
        // Not stale, so present: nothing is inserted here.
        Ok(&state.get_or_insert_with(|| (Instant::now(), Loaded::default())).1)
    }

    async fn load(&self, aws: &Aws) -> Result<Loaded, Error> {
        let lbs = paginate(|marker| async move {
            let out = aws
                .call(ELBV2, "DescribeLoadBalancers", || {
                    aws.elbv2.describe_load_balancers().page_size(400).set_marker(marker.clone()).send()
                })
                .await?;
            Ok((out.load_balancers.unwrap_or_default(), out.next_marker))
        })
        .await?;
        let tgs = paginate(|marker| async move {
            let out = aws
                .call(ELBV2, "DescribeTargetGroups", || aws.elbv2.describe_target_groups().page_size(400).set_marker(marker.clone()).send())
                .await?;
            Ok((out.target_groups.unwrap_or_default(), out.next_marker))
        })
        .await?;
        let arns: Vec<String> = lbs
            .iter()
            .filter_map(|lb| lb.load_balancer_arn.clone())
            .chain(tgs.iter().filter_map(|tg| tg.target_group_arn.clone()))
            .collect();
        let tags = self.read_tags(aws, &arns).await?;
        let mut loaded = Loaded::default();
        for lb in lbs {
            if let Some(stack) = lb.load_balancer_arn().and_then(|a| self.stack_of(tags.get(a))) {
                loaded.lbs.entry(stack).or_default().push(lb);
            }
        }
        for tg in tgs {
            let arn = tg.target_group_arn().unwrap_or_default().to_string();
            if let Some(stack) = self.stack_of(tags.get(&arn)) {
                loaded.tgs.entry(stack).or_default().push((tg, tags.get(&arn).cloned().unwrap_or_default()));
            }
        }
        // One listing of the cluster's groups serves both kinds: managed (per stack) and
        // LBC's shared backend group.
        for g in self.cluster_security_groups(aws).await? {
            let tag = |key: &str| g.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string);
            let tags: Tags = g.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect();
            let (managed, backend) = (
                crate::model::resource_of(&tags).map(String::as_str) == Some(crate::model::RESOURCE_MANAGED_SG),
                tag(BACKEND_SG_TAG).as_deref() == Some(BACKEND_SG_VALUE),
            );
            let (stack, Some(id)) = (crate::model::stack_key(&tags), g.group_id) else { continue };
            match stack {
                Some(stack) if managed => loaded.sgs.entry(stack).or_default().push(id),
                _ if backend => loaded.backend_sgs.push(id),
                _ => {}
            }
        }
        tracing::info!(stacks = loaded.lbs.len(), "read the load balancer inventory");
        Ok(loaded)
    }

    /// The VPC's security groups tagged for this cluster.
    async fn cluster_security_groups(&self, aws: &Aws) -> Result<Vec<aws_sdk_ec2::types::SecurityGroup>, Error> {
        let filter = |name: &str, value: &str| aws_sdk_ec2::types::Filter::builder().name(name).values(value).build();
        let filters = vec![filter("vpc-id", &self.vpc_id), filter(&format!("tag:{TAG_CLUSTER}"), &self.cluster)];
        let filters = &filters;
        paginate(|token| async move {
            let out = aws
                .call("ec2", "DescribeSecurityGroups", || {
                    aws.ec2.describe_security_groups().set_filters(Some(filters.clone())).set_next_token(token.clone()).send()
                })
                .await?;
            Ok((out.security_groups.unwrap_or_default(), out.next_token))
        })
        .await
    }

    fn stack_of(&self, tags: Option<&Tags>) -> Option<String> {
        let tags = tags?;
        (tags.get(TAG_CLUSTER) == Some(&self.cluster)).then(|| crate::model::stack_key(tags)).flatten()
    }

    async fn read_tags(&self, aws: &Aws, arns: &[String]) -> Result<HashMap<String, Tags>, Error> {
        let mut out = HashMap::new();
        for chunk in arns.chunks(TAGS_PER_CALL) {
            let resp = aws.call(ELBV2, "DescribeTags", || aws.elbv2.describe_tags().set_resource_arns(Some(chunk.to_vec())).send()).await?;
            for d in resp.tag_descriptions.unwrap_or_default() {
                if let Some(arn) = d.resource_arn.clone() {
                    out.insert(arn, super::elbv2_tags_to_map(d.tags()));
                }
            }
        }
        Ok(out)
    }
}
